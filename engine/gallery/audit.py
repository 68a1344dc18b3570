"""The gallery's audit trail: an append-only, hash-chained record of every change (schema v2).

One row per change, written in the SAME transaction as the change (so a rolled-back change
leaves no entry and a committed one always has its entry):

* ``seq``       1, 2, 3 ... without gaps (the entry number ``--verify`` reports)
* ``at``        UTC ISO-8601 time
* ``action``    one of ``ACTIONS``
* ``frontend``  ``cli``, ``gui`` or ``api`` (which program made the change)
* ``user``      the operating-system account that ran it (accountability of the operator)
* ``person_id`` the person the change is about, or NULL
* ``details``   JSON of counts and ids only (faces added, faces moved, import mode ...)
* ``prev``, ``hash``  ``hash = sha256(prev + canonical JSON of the other fields)``

What is never stored: embeddings, crops, and the person's NAME. A name is personal data: if
the trail kept it (even as a salted hash, which anyone holding the file can test names
against), erasing a person would leave them identifiable in the trail forever. The person
id is meaningless once the person's row is gone. Caveat: ids are SQLite rowids, so the id of
the most recently created person may be handed out again after that person is deleted; the
trail's order (delete, then create) keeps the history unambiguous.

``audit_head`` (one row) holds the last entry's ``seq`` and ``hash``, so removing entries
from the END is detected as well as editing or removing one in the middle. SQLite triggers
refuse UPDATE and DELETE on ``audit`` (an application bug cannot rewrite history). Limits:
this detects edits by anyone who does not recompute the chain; someone with write access to
the file can rewrite the whole chain and head. To anchor it, keep the head hash elsewhere
(``facescope gallery audit --json`` prints it).
"""
from __future__ import annotations

import getpass
import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from .codec import utc_now

FRONTENDS = ("cli", "gui", "api")
ACTIONS = ("create", "migrate", "add_person", "enroll", "rename", "merge", "delete_person", "delete_face",
           "import", "reembed", "export",
           "encrypt", "decrypt", "rekey",  # encryption at rest (rekey.py): key source only, never a key
           # people features (schema v3): counts and ids only, like the rest
           "record_sightings", "purge_sightings", "regroup", "name_group", "merge_groups", "ignore_group", "not_person")
GENESIS = "0" * 64  # ``prev`` of entry 1
_default_frontend = "api"

_SCHEMA = (
    "CREATE TABLE audit (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, action TEXT NOT NULL, frontend TEXT NOT NULL, "
    "user TEXT, person_id INTEGER, details TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL)",
    "CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL)",
    f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS}')",
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the gallery audit trail is append-only'); END",
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the gallery audit trail is append-only'); END",
    "CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
    "BEGIN SELECT RAISE(ABORT, 'the gallery audit trail is append-only'); END",
)
REQUIRED_COLUMNS = {
    "audit": {"seq", "at", "action", "frontend", "user", "person_id", "details", "prev", "hash"},
    "audit_head": {"id", "seq", "hash"},
}


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    action: str
    frontend: str
    user: str | None
    person_id: int | None
    details: dict[str, Any]
    prev: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "action": self.action, "frontend": self.frontend, "user": self.user,
                "person_id": self.person_id, "details": self.details, "prev": self.prev, "hash": self.hash}


@dataclass(frozen=True)
class Verification:
    """``problems``: one line per break, naming the entry number; ``first_bad``: the lowest such seq."""

    entries: int
    head: str
    problems: list[str]
    first_bad: int | None

    @property
    def ok(self) -> bool:
        return not self.problems


def set_default_frontend(frontend: str) -> None:
    """The front end recorded for galleries opened without ``frontend=`` (the CLI and GUI set theirs)."""
    global _default_frontend
    _default_frontend = check_frontend(frontend)


def default_frontend() -> str:
    return _default_frontend


def check_frontend(frontend: str) -> str:
    if frontend not in FRONTENDS:
        raise ValueError(f"frontend must be one of {FRONTENDS}, got {frontend!r}")
    return frontend


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the audit tables and triggers; call inside the caller's write transaction."""
    for sql in _SCHEMA:
        conn.execute(sql)


def entry_hash(prev: str, seq: int, at: str, action: str, frontend: str, user: str | None, person_id: int | None,
               details_json: str) -> str:
    body = json.dumps([seq, at, action, frontend, user, person_id, details_json], ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry / no login name (some containers)
        return None


def append(conn: sqlite3.Connection, action: str, frontend: str, person_id: int | None = None,
           **details: Any) -> AuditEntry:
    """Append one entry; call INSIDE the write transaction of the change it records.

    ``details``: JSON-able counts and ids, never biometric data or names.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    check_frontend(frontend)
    head_seq, prev = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    seq, at, user = head_seq + 1, utc_now(), _os_user()
    pid = None if person_id is None else int(person_id)
    details_json = json.dumps(details, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    digest = entry_hash(prev, seq, at, action, frontend, user, pid, details_json)
    conn.execute("INSERT INTO audit (seq, at, action, frontend, user, person_id, details, prev, hash) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (seq, at, action, frontend, user, pid, details_json, prev, digest))
    conn.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, digest))
    return AuditEntry(seq, at, action, frontend, user, pid, details, prev, digest)


def _rows(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT seq, at, action, frontend, user, person_id, details, prev, hash FROM audit "
                        "ORDER BY seq").fetchall()


def entries(conn: sqlite3.Connection) -> list[AuditEntry]:
    """Every entry, oldest first (details parsed; an unparsable one shows as ``{"unparsable": text}``)."""
    out = []
    for seq, at, action, frontend, user, pid, details, prev, digest in _rows(conn):
        try:
            parsed = json.loads(details)
        except (TypeError, ValueError):
            parsed = {"unparsable": str(details)}
        out.append(AuditEntry(seq, at, action, frontend, user, pid, parsed, prev, digest))
    return out


def verify(conn: sqlite3.Connection) -> Verification:
    """Recompute the chain: report every missing, inserted, reordered or edited entry by number."""
    problems: list[str] = []
    bad: list[int] = []
    prev, expected = GENESIS, 1
    for seq, at, action, frontend, user, pid, details, stored_prev, digest in _rows(conn):
        if seq != expected:
            what = (f"entries {expected}-{seq - 1} are missing" if seq > expected + 1
                    else f"entry {expected} is missing")
            problems.append(f"{what} (the next one found is {seq})" if seq > expected else
                            f"entry {seq} is out of order (expected {expected})")
            bad.append(min(seq, expected))
        if stored_prev != prev:
            problems.append(f"entry {seq} does not follow the entry before it (its prev hash differs)")
            bad.append(seq)
        if entry_hash(stored_prev, seq, at, action, frontend, user, pid, details) != digest:
            problems.append(f"entry {seq} was edited (its content does not match its hash)")
            bad.append(seq)
        prev, expected = digest, seq + 1
    head = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    last = expected - 1
    if head is None:
        problems.append("the audit head row is missing")
        bad.append(last + 1)
    elif head[0] != last or head[1] != prev:
        if head[0] > last:
            problems.append(f"entries {last + 1}-{head[0]} were removed from the end (the head says {head[0]})"
                            if head[0] > last + 1 else f"entry {head[0]} was removed from the end")
            bad.append(last + 1)
        else:
            problems.append(f"the audit head (entry {head[0]}) does not match the last entry {last}")
            bad.append(min(head[0] + 1, last) if last else 1)
    return Verification(last, prev, problems, min(bad) if bad else None)
