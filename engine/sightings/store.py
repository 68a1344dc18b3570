"""Sightings in the gallery file: write (owner thread), purge by retention, list, search.

Writes go through a :class:`engine.gallery.Gallery` (its write transaction and audit trail:
one ``record_sightings`` / ``purge_sightings`` entry with counts only); reads take any
``sqlite3.Connection`` to the file (the gallery's, or ``schema.read_only``).
"""
from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from engine.gallery.codec import CROP_SHAPE, blobs_to_matrix, decode_crop, embedding_to_blob, encode_crop
from engine.gallery.schema import write_transaction
from engine.records import NO_ID

from .collector import Sighting
from .config import DAY_S, RetentionConfig

_COLUMNS = "s.id, s.person_id, p.name, s.group_id, s.source, s.first_seen, s.last_seen, s.frames, s.quality, " \
           "s.similarity"


@dataclass(frozen=True)
class SightingRow:
    """A stored sighting without its blobs (``crop``/``embeddings`` fetch those)."""

    id: int
    person_id: int | None
    name: str | None
    group_id: int | None
    source: str
    first_seen: float
    last_seen: float
    frames: int
    quality: float
    similarity: float | None

    def to_json(self) -> dict:
        return {"id": self.id, "person_id": self.person_id, "name": self.name, "group_id": self.group_id,
                "source": self.source, "first_seen": self.first_seen, "last_seen": self.last_seen,
                "frames": self.frames, "quality": round(self.quality, 4),
                "similarity": None if self.similarity is None else round(self.similarity, 4)}


def _check(s: Sighting, dim: int) -> tuple:
    crop = np.asarray(s.crop)
    if crop.shape != CROP_SHAPE or crop.dtype != np.uint8:
        raise ValueError(f"a sighting's crop must be {CROP_SHAPE} uint8, got {crop.shape} {crop.dtype}")
    emb = np.asarray(s.embedding, np.float32).reshape(-1)
    if emb.shape != (dim,) or not np.isfinite(emb).all() or not np.any(emb):
        raise ValueError(f"a sighting's embedding must be {dim} finite values, not all zero")
    if not (math.isfinite(s.first_seen) and math.isfinite(s.last_seen) and s.last_seen >= s.first_seen):
        raise ValueError(f"a sighting needs finite first_seen <= last_seen, got {s.first_seen}, {s.last_seen}")
    if int(s.frames) < 1:
        raise ValueError(f"a sighting needs frames >= 1, got {s.frames}")
    pid = None if s.person_id == NO_ID else int(s.person_id)
    sim = float(s.similarity) if math.isfinite(s.similarity) else None
    return (pid, str(s.source), float(s.first_seen), float(s.last_seen), int(s.frames), encode_crop(crop),
            embedding_to_blob(emb), float(np.clip(s.quality, 0.0, 1.0)), sim)


def _epoch(iso: str) -> float:
    """A ``utc_now()`` timestamp as epoch seconds (inf when unreadable: never older than a visit)."""
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return math.inf


def _still_theirs(pid: int | None, s: Sighting, alive: dict, by_name: dict) -> int | None:
    """The person id to store for ``s`` (see :func:`record`); None = unknown."""
    if pid is None or s.name is None:  # unknown, or an id without a name to check it by
        return pid if pid in alive else None
    if pid in alive and alive[pid][0] == s.name:
        return pid
    if s.name in by_name:
        return by_name[s.name]  # the same name under a new id (renumbered)
    if pid in alive and alive[pid][1] <= s.last_seen:
        return pid  # the same row, renamed since
    return None  # erased (the id gone, or reused by a newer row)


def record(gallery, sightings: Sequence[Sighting]) -> list[int]:
    """Store ``sightings`` in ONE transaction with one audit entry; returns their ids.

    All are validated (and their crops encoded) first: ValueError and nothing written. A
    sighting whose person was deleted meanwhile is stored as unknown (the person is gone). With
    its ``name`` (the name its identity was decided with), an id that carries another name now is
    kept only if that person's row existed when the visit was last seen (a rename); an id reused by
    a later enrolment after a deletion (SQLite hands the highest freed id out again: the row is
    newer than the visit) is stored as unknown, never as someone else, and a name renumbered by an
    import with ``--replace`` is followed to its new id (names are unique in a gallery).
    """
    if not sightings:
        return []
    rows = [_check(s, gallery.dim) for s in sightings]
    with write_transaction(gallery.db) as db:
        conn = db.conn
        alive = {pid: (name, _epoch(created)) for pid, name, created in
                 conn.execute("SELECT id, name, created_at FROM persons")}
        by_name = {name: pid for pid, (name, _) in alive.items()}
        ids, unknown = [], 0
        for r, s in zip(rows, sightings, strict=True):
            pid = _still_theirs(r[0], s, alive, by_name)
            unknown += pid is None
            cur = conn.execute("INSERT INTO sightings (person_id, source, first_seen, last_seen, frames, crop_jpeg, "
                               "embedding, quality, similarity) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (pid, *r[1:]))
            ids.append(int(cur.lastrowid))
        gallery._audit("record_sightings", None, sightings=len(ids), unknown=unknown, first_id=ids[0])
    return ids


def purge(gallery, retention: RetentionConfig | None = None, now: float | None = None) -> int:
    """Delete sightings past retention (unknown older than ``unknown_days``, named older than
    ``named_days``, then the oldest beyond ``max_rows``) in one transaction, audited, then
    scrub the freed bytes; returns how many went (0: nothing written at all)."""
    ret = retention or RetentionConfig()
    now = time.time() if now is None else float(now)
    with write_transaction(gallery.db) as db:
        conn = db.conn
        n = conn.execute("DELETE FROM sightings WHERE (person_id IS NULL AND last_seen < ?) OR "
                         "(person_id IS NOT NULL AND last_seen < ?)",
                         [now - ret.unknown_days * DAY_S, now - ret.named_days * DAY_S]).rowcount
        n += conn.execute("DELETE FROM sightings WHERE id IN (SELECT id FROM sightings "
                          "ORDER BY last_seen DESC, id DESC LIMIT -1 OFFSET ?)", [ret.max_rows]).rowcount
        if n:
            gallery._audit("purge_sightings", None, sightings=n)
    if n:
        gallery.scrub()
    return n


def delete(gallery, ids: Sequence[int] | None = None, before: float | None = None) -> int:
    """Delete the given sightings (or all with last_seen < ``before``; or all), audited and scrubbed."""
    with write_transaction(gallery.db) as db:
        if ids is not None:
            q = ",".join("?" * len(ids)) or "NULL"
            n = db.conn.execute(f"DELETE FROM sightings WHERE id IN ({q})", [int(i) for i in ids]).rowcount
        elif before is not None:
            n = db.conn.execute("DELETE FROM sightings WHERE last_seen < ?", [float(before)]).rowcount
        else:
            n = db.conn.execute("DELETE FROM sightings").rowcount
        if n:
            gallery._audit("purge_sightings", None, sightings=n)
    if n:
        gallery.scrub()
    return n


def list_sightings(conn: sqlite3.Connection, since: float | None = None, until: float | None = None,
                   person: str | None = None, unknown: bool = False, source: str | None = None,
                   limit: int | None = None, ids: Sequence[int] | None = None) -> list[SightingRow]:
    """Newest first. ``person``: only that person's (case-insensitive name); ``unknown``: only
    unknown ones; ``since``/``until`` epoch seconds on last_seen / first_seen; ``source`` substring;
    ``ids``: only these sightings."""
    where, args = [], []
    if ids is not None:
        where.append(f"s.id IN ({','.join('?' * len(ids)) or 'NULL'})")
        args.extend(int(i) for i in ids)
    if since is not None:
        where.append("s.last_seen >= ?")
        args.append(float(since))
    if until is not None:
        where.append("s.first_seen <= ?")
        args.append(float(until))
    if person is not None:
        where.append("p.name_key = ?")
        from engine.gallery.codec import name_key

        args.append(name_key(person))
    if unknown:
        where.append("s.person_id IS NULL")
    if source:
        where.append("instr(s.source, ?) > 0")
        args.append(source)
    sql = f"SELECT {_COLUMNS} FROM sightings s LEFT JOIN persons p ON p.id = s.person_id"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY s.last_seen DESC, s.id DESC"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return [SightingRow(*r) for r in conn.execute(sql, args)]


def crop(conn: sqlite3.Connection, sighting_id: int) -> np.ndarray:
    """The best crop of a sighting, (112, 112, 3) uint8 BGR; KeyError if there is no such sighting."""
    row = conn.execute("SELECT crop_jpeg FROM sightings WHERE id = ?", [int(sighting_id)]).fetchone()
    if row is None:
        raise KeyError(f"no sighting with id {sighting_id}")
    return decode_crop(row[0])


def crop_jpeg(conn: sqlite3.Connection, sighting_id: int) -> bytes:
    """The stored JPEG bytes of a sighting's best crop; KeyError if there is no such sighting."""
    row = conn.execute("SELECT crop_jpeg FROM sightings WHERE id = ?", [int(sighting_id)]).fetchone()
    if row is None:
        raise KeyError(f"no sighting with id {sighting_id}")
    return row[0]


def embeddings(conn: sqlite3.Connection, dim: int, where: str = "1", args: Sequence = ()) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """(ids (K,) int64 ascending, embeddings (K, dim) float32 as stored) of the sightings matching
    ``where``. Sorted here, not by SQL: without ORDER BY, SQLite reads a whole-table query from
    the covering index ``sightings_vectors`` instead of stepping over every row's crop."""
    rows = conn.execute(f"SELECT id, embedding FROM sightings WHERE {where}", list(args)).fetchall()
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    rows.sort(key=lambda r: r[0])
    ids, blobs = zip(*rows, strict=True)
    return np.array(ids, np.int64), blobs_to_matrix(blobs, dim)


def search(conn: sqlite3.Connection, query: np.ndarray, dim: int, top: int = 10) -> list[tuple[int, float]]:
    """The ``top`` sightings most similar to ``query`` (D,): [(sighting id, cosine)], best first.

    One (K, D) matrix product over all sightings (20,000 x 512 is ~40 MB and a few ms)."""
    ids, emb = embeddings(conn, dim)
    if not len(ids):
        return []
    q = np.asarray(query, np.float32).reshape(-1)
    q = q / np.linalg.norm(q)
    sims = (emb @ q) / np.maximum(np.linalg.norm(emb, axis=1), 1e-12)
    order = np.argsort(-sims, kind="stable")[: max(1, int(top))]
    return [(int(ids[i]), float(sims[i])) for i in order]
