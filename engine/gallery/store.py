"""``Gallery``: the durable face gallery (one SQLite file) and its in-memory search index.

Every write is one transaction (``write_transaction``), validated before it starts, so an
enrolment of K faces is all-or-nothing. The index is updated only after the commit, by the
cheapest exact edit (append, relabel, compact), never by reloading the whole gallery.
One ``Gallery`` belongs to one thread (SQLite connection rule); its ``index`` may be
searched from any thread.

Every change appends an audit entry (``audit.py``) inside the change's transaction, tagged with the
gallery's ``frontend``. Erasures (delete, delete_face, merge, rename, import --replace) then
``scrub`` the file: with ``secure_delete`` on, a checkpoint + WAL truncation leaves none of
the erased bytes in the .db, -wal or -shm.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sqlite_utils import Database

from . import audit, crypto, people_tables, transfer
from .codec import blobs_to_matrix, check_enrolment, clean_name, embedding_to_blob, name_key, utc_now
from .errors import (
    DuplicatePersonError,
    EmbedderMismatchError,
    GalleryError,
    GalleryFormatError,
    GalleryNotFoundError,
    UnknownFaceError,
    database_failure,
)
from .index import GalleryIndex
from .reader import FaceInfo, GalleryReader, PersonInfo
from .schema import SCHEMA_VERSION, GalleryMeta, connect, create_schema, migrate, probe, scrub, write_transaction

__all__ = ["FaceInfo", "Gallery", "PersonInfo"]


class Gallery(GalleryReader):
    """A face gallery file. Create with ``Gallery.open`` (or ``open_for_reembed``); close or use ``with``."""

    def __init__(self, db: Database, path: Path, embedder_id: str, dim: int, *, reembed_only: bool = False,
                 frontend: str = "api") -> None:
        self._db: Database | None = db
        self._path = path
        self._frontend = audit.check_frontend(frontend)
        self._embedder_id, self._dim = embedder_id, dim
        self._reembed_only = reembed_only
        self._index = GalleryIndex(dim)
        self._data_version = -1
        self._load_index()

    # ------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | Path, embedder_id: str, dim: int, *, create: bool = True,
             frontend: str | None = None) -> Gallery:
        """Open (or, with ``create``, start) the gallery at ``path`` for ``embedder_id``'s D-dim embeddings.

        Missing folders are created 0700 and a new file 0600; an older schema is migrated.
        ``frontend`` ("cli", "gui", "api"; default ``audit.default_frontend()``) is recorded in
        the audit trail with every change made through this object.

        EmbedderMismatchError: the file was made by another embedder id or dim.
        GalleryFormatError: not a gallery / newer schema / damaged (the file is not modified).
        GalleryNotFoundError: ``create=False`` and there is no file.
        """
        if not isinstance(embedder_id, str) or not embedder_id.strip():
            raise ValueError(f"embedder_id must be a non-empty string, got {embedder_id!r}")
        if int(dim) < 1:
            raise ValueError(f"embedding dimension must be >= 1, got {dim}")
        return cls._open(Path(path), embedder_id, int(dim), create=create, reembed_only=False, frontend=frontend)

    @classmethod
    def open_for_reembed(cls, path: str | Path, *, frontend: str | None = None) -> Gallery:
        """Open a gallery whatever its embedder, only to ``reembed`` it (or read/export it).

        Enrolling and importing are refused until ``reembed`` has switched the embedder,
        since the caller's embeddings would not be comparable with the stored ones.
        """
        meta = cls.inspect(path)
        return cls._open(Path(path), meta.embedder_id, meta.embedding_dim, create=False, reembed_only=True,
                         frontend=frontend)

    @staticmethod
    def inspect(path: str | Path) -> GalleryMeta:
        """Schema version, embedder and counts of a gallery file, read-only."""
        meta = probe(Path(path))
        if meta is None:
            if not Path(path).exists():
                raise GalleryNotFoundError(f"gallery {path} does not exist")
            raise GalleryFormatError(f"{path} is an empty file, not a gallery")
        return meta

    @classmethod
    def _open(cls, path: Path, embedder_id: str, dim: int, *, create: bool, reembed_only: bool,
              frontend: str | None) -> Gallery:
        frontend = audit.check_frontend(frontend or audit.default_frontend())
        meta = probe(path)
        if meta is None and not create:
            cls.inspect(path)  # raises the right "missing" / "empty" error
        if meta is not None and (meta.embedder_id, meta.embedding_dim) != (embedder_id, dim):
            raise EmbedderMismatchError(str(path), meta.embedder_id, meta.embedding_dim, embedder_id, dim)
        try:
            db = connect(path)
        except (*crypto.errors("Error"), OSError) as exc:
            raise GalleryError(f"cannot open gallery {path}: {getattr(exc, 'strerror', None) or exc}") from exc
        try:
            if meta is None:
                with write_transaction(db):
                    if not db["meta"].exists():  # another process may have created it meanwhile
                        create_schema(db, embedder_id, dim, frontend)
                stored = db["meta"].get(1)
                if (stored["embedder_id"], stored["embedding_dim"]) != (embedder_id, dim):
                    raise EmbedderMismatchError(str(path), stored["embedder_id"], stored["embedding_dim"],
                                                embedder_id, dim)
            if meta is not None and meta.schema_version < SCHEMA_VERSION:
                migrate(db, path, frontend)
            if missing := people_tables.missing_indexes(db.conn):  # a v3 file made before they were added
                with write_transaction(db):
                    for sql in missing:
                        db.execute(sql)
            return cls(db, path, embedder_id, dim, reembed_only=reembed_only, frontend=frontend)
        except crypto.errors("DatabaseError") as exc:  # a damaged file, a full disk: one clear error
            db.close()
            if (failure := database_failure(exc, path)) is not None:
                raise failure from exc
            raise
        except BaseException:
            db.close()
            raise

    def _load_index(self) -> None:
        """(Re)build the index from the file in one read transaction (a consistent snapshot)."""
        conn = self.db.conn
        with conn:
            conn.execute("BEGIN")
            rows = conn.execute("SELECT id, person_id, embedder_id, embedding FROM faces ORDER BY id").fetchall()
            names = dict(conn.execute("SELECT id, name FROM persons").fetchall())
            negs = conn.execute("SELECT id, person_id, embedding FROM negatives ORDER BY id").fetchall()  # v3
            self._data_version = conn.execute("PRAGMA data_version").fetchone()[0]
        fids, pids, eids, blobs = zip(*rows, strict=True) if rows else ((), (), (), ())
        foreign = sorted(set(eids) - {self._embedder_id})
        if foreign:
            raise GalleryFormatError(f"{self._path} is damaged: some faces were embedded by {foreign} but the "
                                     f"gallery says {self._embedder_id!r}; re-embed it")
        try:
            self._index.reset(self._dim, np.array(fids, np.int64), np.array(pids, np.int64),
                              blobs_to_matrix(blobs, self._dim, copy=False), names)
            nids, npids, nblobs = zip(*negs, strict=True) if negs else ((), (), ())
            self._index.set_negatives(np.array(nids, np.int64), np.array(npids, np.int64),
                                      blobs_to_matrix(nblobs, self._dim))
        except ValueError as exc:
            raise GalleryFormatError(f"{self._path} is damaged: {exc}") from exc

    def refresh(self) -> bool:
        """Reload the index if another process committed to the file since; True if it did."""
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return False
        stored = self.db["meta"].get(1)
        if (stored["embedder_id"], stored["embedding_dim"]) != (self._embedder_id, self._dim):
            raise EmbedderMismatchError(str(self._path), stored["embedder_id"], stored["embedding_dim"],
                                        self._embedder_id, self._dim)
        self._load_index()
        return True

    # ------------------------------------------------------------- writes
    def _writable(self) -> None:
        if self._reembed_only:
            raise GalleryError(f"gallery {self._path} was opened for re-embedding only; run reembed first")

    def add_person(self, name: str) -> int:
        """Create a person without faces; DuplicatePersonError if the name exists (any case)."""
        self._writable()
        clean, now = clean_name(name), utc_now()
        with write_transaction(self.db) as db:
            if (clash := self._find_person(clean)) is not None:
                raise DuplicatePersonError(f"a person named {clash['name']!r} already exists in {self._path}")
            pid = db["persons"].insert({"name": clean, "name_key": name_key(clean), "created_at": now,
                                        "updated_at": now}).last_pk
            self._audit("add_person", pid)
        self._index.set_name(pid, clean)
        return int(pid)

    def enroll(self, name: str, embeddings: np.ndarray, crops: Sequence[np.ndarray] | None = None,
               qualities: Sequence[float] | None = None, sources: Sequence[str | None] | None = None) -> list[int]:
        """Store K faces of ``name`` (created if new) in one transaction; returns their face ids.

        embeddings (K, D) float32 (stored as given; normalised only in the index), crops K x
        (112, 112, 3) uint8 BGR (stored as JPEG), qualities (K,), sources K strings. Everything
        is validated first: ValueError and nothing written.
        """
        self._writable()
        clean = clean_name(name)
        batch = check_enrolment(embeddings, crops, qualities, sources, self._dim)
        now, k = utc_now(), len(batch.embeddings)
        with write_transaction(self.db) as db:
            pid, new_person = self._person_for_faces(db, clean, now)
            # Explicit ids: we hold the write lock, so max+1.. is ours, and insert_all can batch.
            first = transfer.next_face_id(db)
            ids = list(range(first, first + k))
            db["faces"].insert_all({"id": ids[i], "person_id": pid, "embedding": embedding_to_blob(batch.embeddings[i]),
                                    "embedder_id": self._embedder_id, "crop_jpeg": batch.jpegs[i],
                                    "quality": batch.qualities[i], "source": batch.sources[i],
                                    "created_at": now, "updated_at": now} for i in range(k))
            self._audit("enroll", pid, faces=k, new_person=new_person, first_face_id=first)
        if new_person:
            self._index.set_name(pid, clean)
        self._index.add(ids, np.full(k, pid), batch.embeddings)
        return ids

    def _person_for_faces(self, db, clean: str, now: str) -> tuple[int, bool]:
        """Inside a write transaction: the id of the person named ``clean`` (an already cleaned
        name), created now when new, and whether it was created. Enrolling and naming an unknown
        group both add faces this way."""
        person = self._find_person(clean)
        if person is None:
            pid = db["persons"].insert({"name": clean, "name_key": name_key(clean), "created_at": now,
                                        "updated_at": now}).last_pk
            return int(pid), True
        db["persons"].update(person["id"], {"updated_at": now})
        return int(person["id"]), False

    def rename_person(self, old: str, new: str) -> None:
        """Rename; DuplicatePersonError if ``new`` is someone else (merge them instead)."""
        clean, now = clean_name(new), utc_now()
        with write_transaction(self.db) as db:
            person = self._person(old)
            clash = self._find_person(clean)
            if clash is not None and clash["id"] != person["id"]:
                raise DuplicatePersonError(f"cannot rename {person['name']!r} to {clean!r}: {clash['name']!r} "
                                           "already exists (merge_persons combines two people)")
            db["persons"].update(person["id"], {"name": clean, "name_key": name_key(clean), "updated_at": now})
            self._audit("rename", person["id"])
        self._index.set_name(person["id"], clean)
        self.scrub()  # the old name is personal data too

    def merge_persons(self, src: str, dst: str) -> int:
        """Move all of ``src``'s faces to ``dst`` and delete ``src``; returns the faces moved."""
        now = utc_now()
        with write_transaction(self.db) as db:
            s, d = self._person(src), self._person(dst)
            if s["id"] == d["id"]:
                raise ValueError(f"cannot merge {s['name']!r} into itself")
            moved = db.execute("UPDATE faces SET person_id = ?, updated_at = ? WHERE person_id = ?",
                               [d["id"], now, s["id"]]).rowcount
            for table in ("sightings", "negatives"):  # schema v3: src's history follows (else cascade-deleted)
                db.execute(f"UPDATE {table} SET person_id = ? WHERE person_id = ?", [d["id"], s["id"]])
            db["persons"].update(d["id"], {"updated_at": now})
            db["persons"].delete(s["id"])
            self._audit("merge", s["id"], into=d["id"], faces=moved)
        self._index.move_faces(s["id"], d["id"])
        self.scrub()
        return moved

    def delete_person(self, name: str) -> int:
        """Delete (erase) a person and (ON DELETE CASCADE) their faces; returns the faces deleted.

        Afterwards none of their embeddings, crops or name remain in the .db, -wal or -shm
        (secure_delete + ``scrub``); the audit trail keeps only their id and the face count.
        """
        with write_transaction(self.db) as db:
            person = self._person(name)
            count = db["faces"].count_where("person_id = ?", [person["id"]])
            db["persons"].delete(person["id"])
            self._audit("delete_person", person["id"], faces=count)
        self._index.remove_person(person["id"])
        self.scrub()
        return count

    def delete_face(self, face_id: int) -> None:
        """Delete one face (its person stays, possibly with no faces left)."""
        fid = int(face_id)
        with write_transaction(self.db) as db:
            row = next(db["faces"].rows_where("id = ?", [fid], select="person_id"), None)
            if row is None:
                raise UnknownFaceError(f"no face with id {fid} in gallery {self._path}")
            db["faces"].delete(fid)
            db["persons"].update(row["person_id"], {"updated_at": utc_now()})
            self._audit("delete_face", row["person_id"], face_id=fid)
        self._index.remove_faces([fid])
        self.scrub()

    def scrub(self) -> bool:
        """Checkpoint and truncate the WAL so erased (zeroed) pages replace the old ones on disk.

        Called after every erasure; False (with a warning) while another connection is reading.
        """
        return scrub(self.db, self._path)

    def _audit(self, action: str, person_id: int | None = None, **details) -> None:
        """Append an audit entry; only inside the write transaction of the change it records."""
        audit.append(self.db.conn, action, self._frontend, person_id, **details)

    def audit_entries(self) -> list[audit.AuditEntry]:
        """The audit trail, oldest first."""
        return audit.entries(self.db.conn)

    def verify_audit(self) -> audit.Verification:
        """Recompute the audit trail's hash chain (see ``audit.verify``)."""
        return audit.verify(self.db.conn)

    # ------------------------------------------------- whole-gallery moves
    def export(self, path: str | Path, *, overwrite: bool = False) -> None:
        """Write the whole gallery as one self-contained SQLite file (no -wal needed), atomically."""
        transfer.export_gallery(self, Path(path), overwrite=overwrite)

    def import_from(self, path: str | Path, *, mode: str = "merge") -> transfer.ImportSummary:
        """Import another gallery file made by the same embedder (checked first; nothing changes on error).

        merge: faces join same-named (case-insensitively) persons, others are created.
        replace: this gallery becomes a copy of the source (same ids, timestamps, blobs).
        """
        self._writable()
        return transfer.import_gallery(self, Path(path), mode)

    def reembed(self, embed_fn: Callable[[np.ndarray], np.ndarray], new_embedder_id: str, new_dim: int,
                batch: int = 64, progress: Callable[[int, int], None] | None = None) -> int:
        """Recompute every embedding from its stored crop and switch the embedder, in ONE transaction.

        embed_fn: (K, 112, 112, 3) uint8 BGR -> (K, new_dim). MissingCropError (listing the
        faces) if any face has no crop. ``progress(done, total)`` after each batch. Returns
        the number of faces re-embedded.
        """
        count = transfer.reembed_gallery(self, embed_fn, new_embedder_id, int(new_dim), batch, progress)
        self._reembed_only = False
        return count
