"""On-disk format of a gallery: schema v2, connection settings, file modes, migration, and a read-only probe.

Tables (timestamps are UTC ISO-8601 text):

* ``meta``    one row (id = 1): schema_version, embedder_id, embedding_dim, created_at, updated_at
* ``persons`` id, name (trimmed, unique), name_key (casefolded name, unique: names are unique
  case-insensitively for all of Unicode, which SQLite's ASCII-only NOCASE is not), created_at, updated_at
* ``faces``   id, person_id -> persons ON DELETE CASCADE (indexed), embedding (D float32
  little-endian), embedder_id, crop_jpeg (aligned 112x112 BGR crop), quality, source,
  created_at, updated_at
* ``audit``, ``audit_head`` (since v2) the hash-chained audit trail, see ``audit.py``
* ``sightings``, ``unknown_groups``, ``negatives`` (since v3) see ``people_tables.py``

An older file (v1: no audit trail; v2: no people tables) is migrated to v3 in one transaction
when it is opened for writing (``migrate``); ``probe`` reads all of them without writing.

Files are private: a new gallery is created 0600 (its -wal and -shm inherit the main file's
mode: SQLite creates them with it) in folders created 0700; an existing gallery readable by
others is tightened on open with a one-line warning. Every connection runs with
``secure_delete`` (deleted rows are overwritten with zeros) and ``temp_store = MEMORY`` (no
sort or VACUUM spills of face data into the temp folder).

The header's ``application_id`` marks the file as a facescope gallery, so another program's
SQLite database (even one with a ``meta`` table) is recognised as foreign.
"""
from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.db import ForeignKey

from . import audit, crypto, keys, people_tables  # crypto, keys: encrypted galleries (SQLCipher, optional)
from .codec import utc_now
from .errors import GalleryBusyError, GalleryError, GalleryFormatError, database_failure
from .files import prepare_files

SCHEMA_VERSION = 3
APPLICATION_ID = 0x46534350  # "FSCP" in the SQLite header (PRAGMA application_id)
BUSY_TIMEOUT_MS = 5000       # wait this long for another process's write lock
_SQLITE_MAGIC = b"SQLite format 3\x00"
_REQUIRED = {
    "meta": {"id", "schema_version", "embedder_id", "embedding_dim", "created_at"},
    "persons": {"id", "name", "name_key", "created_at", "updated_at"},
    "faces": {"id", "person_id", "embedding", "embedder_id", "crop_jpeg", "quality", "source",
              "created_at", "updated_at"},
}
_REQUIRED_SINCE = {"audit": 2, "audit_head": 2,  # tables added by later schema versions
                   **{t: people_tables.SINCE_VERSION for t in people_tables.REQUIRED_COLUMNS}}
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GalleryMeta:
    """What a gallery file says about itself (``Gallery.inspect``)."""

    path: str
    schema_version: int
    embedder_id: str
    embedding_dim: int
    created_at: str
    updated_at: str | None
    persons: int
    faces: int


def connect(path: Path) -> Database:
    """Read-write connection with the gallery's pragmas (call only after ``probe`` accepted the file).

    WAL lets the UI read while a writer commits and makes a commit one sequential append.
    synchronous=NORMAL is safe with WAL: a commit survives the process being killed (the
    WAL is written before COMMIT returns) and the file can never be corrupted; only a power
    loss / OS crash may roll back the last few commits, since WAL is fsynced at checkpoints
    rather than every commit. That is the right trade for a face gallery, and enrolment
    stays ~1 ms per transaction instead of several fsyncs.
    """
    prepare_files(path)
    key = keys.key_for(path)  # None: a plaintext gallery (no .fskey key file beside it)
    conn = (sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000) if key is None
            else crypto.connect(str(path), key, timeout=BUSY_TIMEOUT_MS / 1000))
    db = Database(conn, execute_plugins=False)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA secure_delete = ON")  # erased faces and names are zeroed, not left in free space
    db.execute("PRAGMA temp_store = MEMORY")
    db.enable_wal()
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def create_schema(db: Database, embedder_id: str, dim: int, frontend: str) -> None:
    """Create the current schema in an empty database; call inside the caller's write transaction."""
    now = utc_now()
    db["meta"].create({"id": int, "schema_version": int, "embedder_id": str, "embedding_dim": int,
                       "created_at": str, "updated_at": str}, pk="id", not_null=["schema_version", "embedder_id",
                                                                                   "embedding_dim", "created_at"])
    db["meta"].insert({"id": 1, "schema_version": SCHEMA_VERSION, "embedder_id": embedder_id,
                       "embedding_dim": dim, "created_at": now, "updated_at": now})
    db["persons"].create({"id": int, "name": str, "name_key": str, "created_at": str, "updated_at": str},
                         pk="id", not_null=["name", "name_key", "created_at", "updated_at"])
    db["persons"].create_index(["name"], index_name="persons_name_unique", unique=True)
    db["persons"].create_index(["name_key"], index_name="persons_name_key_unique", unique=True)
    db["faces"].create({"id": int, "person_id": int, "embedding": bytes, "embedder_id": str, "crop_jpeg": bytes,
                        "quality": float, "source": str, "created_at": str, "updated_at": str},
                       pk="id", not_null=["person_id", "embedding", "embedder_id", "created_at", "updated_at"],
                       foreign_keys=[ForeignKey("faces", "person_id", "persons", "id", on_delete="CASCADE")])
    db["faces"].create_index(["person_id"], index_name="faces_person_id")
    audit.create_tables(db.conn)
    people_tables.create_tables(db.conn)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    audit.append(db.conn, "create", frontend, embedder=embedder_id, dim=dim, schema=SCHEMA_VERSION)


def migrate(db: Database, path: Path, frontend: str) -> bool:
    """Bring an older gallery to SCHEMA_VERSION in ONE write transaction; True if it did.

    v1 -> v2 adds the audit trail; v2 -> v3 adds the people tables (sightings, unknown groups,
    negatives). One audit entry records the whole migration. Afterwards, from v1 only, once:
    VACUUM, since rows deleted before v2 (without secure_delete) may still lie in free pages.
    """
    with write_transaction(db):
        version = db.execute("SELECT schema_version FROM meta WHERE id = 1").fetchone()[0]
        if version >= SCHEMA_VERSION:  # another process migrated it meanwhile
            return False
        if version not in (1, 2):
            raise GalleryFormatError(f"{path}: no migration from gallery schema v{version}")
        if version == 1:
            audit.create_tables(db.conn)
        people_tables.create_tables(db.conn)
        db.execute("UPDATE meta SET schema_version = ?, updated_at = ? WHERE id = 1", [SCHEMA_VERSION, utc_now()])
        audit.append(db.conn, "migrate", frontend, from_version=version, to_version=SCHEMA_VERSION)
    if version == 1:
        scrub(db, path, vacuum=True)
    return True


def scrub(db: Database, path: Path, *, vacuum: bool = False) -> bool:
    """After an erasure: optionally VACUUM, then checkpoint the WAL into the file and truncate it.

    secure_delete has zeroed the freed bytes in the new page versions, but the WAL still holds
    the OLD versions (the erased faces) until a checkpoint copies the new ones over and
    TRUNCATE empties it. If another process is mid-read, that cannot happen now: False, with a
    warning (the next checkpoint, at the latest when the last connection closes, finishes it).
    """
    try:
        if vacuum:
            db.execute("VACUUM")
        busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    except crypto.errors("OperationalError") as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise GalleryError(f"cannot clean up gallery {path} after an erasure: {exc}") from exc
        busy = 1
    if busy:
        _log.warning("gallery %s is in use by another connection: erased data stays in its -wal file until that "
                     "connection lets go (it is overwritten at the next checkpoint)", path)
    return not busy


def _sniff(head: bytes) -> str:
    if head.startswith(b"\xff\xd8\xff"):
        return "it looks like a JPEG image"
    if head.startswith(b"\x89PNG"):
        return "it looks like a PNG image"
    if head.startswith(b"PK\x03\x04"):
        return "it looks like a zip archive"
    return ("it is not a SQLite database (nor an encrypted gallery: that has its key file "
            f"<gallery>{crypto.SIDECAR_SUFFIX} beside it)")


def probe(path: Path) -> GalleryMeta | None:
    """Read-only look at ``path``; never writes to it.

    None: nothing there yet (no file, a 0-byte file, or a SQLite database without tables),
    so a new gallery may be created. GalleryMeta: a gallery this version can open.
    GalleryFormatError (with the reason) for everything else.

    The file is read through SQLite only, never with a plain ``open()``: this process may
    hold the same file open in a ``Gallery``, and closing ANY descriptor of a file drops
    every POSIX (fcntl) lock the process holds on it, SQLite's included (SQLite works around
    that for its own descriptors, not for ours). Without its shared lock, the app's WAL
    connection looks gone to other processes: the next one to close believes it is the
    last, checkpoints and deletes the -wal/-shm under us, and our stale wal-index then
    misses commits or reads wrong pages ("database disk image is malformed").
    """
    if not path.exists():
        return None
    if not path.is_file():
        raise GalleryFormatError(f"{path} is not a file, so it cannot be a gallery")
    if path.stat().st_size == 0:
        return None
    key = keys.key_for(path)  # an encrypted gallery: GalleryKeyError here if its key is missing or wrong
    # A read-only connection to a WAL-mode file (a gallery of a newer schema) creates an empty -wal and a -shm
    # it never deletes (only a writer does, on close): removed again when this refuses the file.
    absent = [side for side in (Path(f"{path}-wal"), Path(f"{path}-shm")) if not side.exists()]
    try:
        # mode=ro: an unrelated database must not even get its journal mode switched.
        conn = crypto.connect_ro(path, key, BUSY_TIMEOUT_MS / 1000)
    except crypto.errors("Error") as exc:
        raise GalleryFormatError(f"{path} cannot be opened as a SQLite database ({exc})") from exc
    try:
        try:
            return _read_meta(conn, path)
        except GalleryFormatError:
            conn.close()
            _remove_empty_side_files(absent)
            raise
        finally:
            conn.close()
    except crypto.errors("DatabaseError") as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB and (what := _sniff_not_a_database(path)):
            raise GalleryFormatError(f"{path} is not a facescope gallery: {what}") from exc
        raise GalleryFormatError(f"{path} is not a readable gallery: SQLite says {exc}") from exc


def _remove_empty_side_files(created: list[Path]) -> None:
    """Delete the -wal/-shm that probe's read-only connection created, if the -wal is still empty (nothing
    else wrote to the file meanwhile)."""
    wal = [p for p in created if p.name.endswith("-wal")]
    if any(p.exists() and p.stat().st_size > 0 for p in wal):
        return
    for p in created:
        p.unlink(missing_ok=True)


def _sniff_not_a_database(path: Path) -> str | None:
    """What a file SQLite refused as "not a database" looks like (None: it has SQLite's magic).

    Reading it with ``open()`` is safe only here: SQLite has just found no database header,
    so no connection of this process can be using the file (see ``probe``).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError:
        return None
    return None if head.startswith(_SQLITE_MAGIC) else _sniff(head)


def _read_meta(conn: sqlite3.Connection, path: Path) -> GalleryMeta | None:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if not tables and app_id in (0, APPLICATION_ID):
        return None
    if app_id != APPLICATION_ID:
        listed = ", ".join(sorted(tables)[:8]) or "none"
        raise GalleryFormatError(f"{path} is a SQLite database but not a facescope gallery (no facescope "
                                 f"application_id, found {app_id:#x}; tables: {listed})")
    if "meta" not in tables:
        raise GalleryFormatError(f"{path} is a damaged gallery: table 'meta' is missing")
    version = _schema_version(conn, path)
    if version > SCHEMA_VERSION:
        raise GalleryFormatError(f"{path} was written by a newer facescope (gallery schema v{version}; this "
                                 f"version reads up to v{SCHEMA_VERSION}); upgrade facescope to open it")
    later = {**audit.REQUIRED_COLUMNS, **people_tables.REQUIRED_COLUMNS}
    required = {**_REQUIRED, **{t: c for t, c in later.items() if version >= _REQUIRED_SINCE[t]}}
    for table, needed in required.items():
        have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        if not have:
            raise GalleryFormatError(f"{path} is a damaged gallery: table {table!r} is missing")
        if needed - have:
            raise GalleryFormatError(f"{path} is a damaged gallery: table {table!r} lacks columns "
                                     f"{sorted(needed - have)}")
    row = conn.execute("SELECT schema_version, embedder_id, embedding_dim, created_at, updated_at FROM meta "
                       "WHERE id = 1").fetchone()
    if row is None or not isinstance(row[1], str) or not isinstance(row[2], int) or row[2] < 1:
        raise GalleryFormatError(f"{path} is a damaged gallery: its meta row is missing or invalid ({row!r})")
    persons = conn.execute("SELECT count(*) FROM persons").fetchone()[0]
    faces = conn.execute("SELECT count(*) FROM faces").fetchone()[0]
    return GalleryMeta(str(path), row[0], row[1], row[2], row[3], row[4], persons, faces)


def _schema_version(conn: sqlite3.Connection, path: Path) -> int:
    # Read before checking columns: a newer schema may legitimately have renamed them.
    try:
        row = conn.execute("SELECT schema_version FROM meta WHERE id = 1").fetchone()
    except crypto.errors("OperationalError"):
        row = None
    if row is None or not isinstance(row[0], int) or row[0] < 1:
        raise GalleryFormatError(f"{path} is a damaged gallery: no valid schema_version in its meta table")
    return row[0]


@contextmanager
def read_only(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection holding one snapshot (a read transaction) until the block ends."""
    conn = crypto.connect_ro(Path(path), keys.key_for(Path(path)), BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute("BEGIN")
        yield conn
    finally:
        conn.close()


@contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """Run a block as ONE write transaction: commit on success, roll back on any exception.

    ``with db.conn:`` alone is not enough with sqlite-utils 4: the Python driver only opens
    a transaction at the first DML statement, and every sqlite-utils write method wraps
    itself in ``atomic()``, which BEGINs and COMMITs on its own when no transaction is
    open, splitting a multi-step write into several commits. An explicit BEGIN IMMEDIATE
    first makes those nested calls savepoints of this transaction, and takes the write lock
    up front (waiting up to the busy timeout) instead of failing half-way on an upgrade.
    """
    try:
        db.conn.execute("BEGIN IMMEDIATE")
    except crypto.errors("OperationalError") as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise GalleryBusyError(f"the gallery is busy: another process kept it locked for "
                                   f"{BUSY_TIMEOUT_MS / 1000:g} s; try again") from exc
        _raise_if_readonly(exc)
        raise
    try:
        with db.conn:  # COMMIT on normal exit, ROLLBACK on any exception (KeyboardInterrupt included)
            yield db
    except crypto.errors("DatabaseError") as exc:
        _raise_if_readonly(exc)
        if (failure := database_failure(exc)) is not None:  # disk full, I/O error, damaged file: one clear line
            raise failure from exc
        raise


def _raise_if_readonly(exc: sqlite3.OperationalError) -> None:
    # Every change also writes its audit entry, so a gallery we may only read refuses them all.
    if getattr(exc, "sqlite_errorcode", None) is not None and exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_READONLY:
        raise GalleryError(f"the gallery is read-only here (file or folder permissions, read-only media): {exc}; "
                           "nothing was changed") from exc
