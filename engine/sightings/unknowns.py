"""The unknown-people lane in the gallery file: regroup, list, name, merge, ignore.

Groups live in ``unknown_groups`` (ids persist across restarts) and sightings point at them
(``sightings.group_id``). :func:`regroup` recomputes the grouping of every unknown sighting
(:func:`grouping.dbscan`) and keeps ids stable (:func:`grouping.stable_ids`); the work is split
in :mod:`engine.sightings.regrouping` (snapshot / compute / apply) so that a window computes it
on a worker thread (about 1-2 s for 20,000 sightings, the size cap, on a busy 2-core CPU; never
per frame) and holds its own thread only for the read and the final short write.
An ignored group keeps its centroid as an anchor: unknown sightings within ``max_distance`` of
it join it directly and never form a new visible group. Every change is one transaction with
one audit entry (ids and counts only).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.gallery.codec import blobs_to_matrix, clean_name, embedding_to_blob, utc_now
from engine.gallery.schema import write_transaction

from .grouping import GroupingConfig, unit_rows


@dataclass(frozen=True)
class GroupInfo:
    """One group of unknown sightings: ``best`` sighting ids (highest quality first),
    ``suggestion`` (name, similarity) when its centroid sits just below a known person's match."""

    id: int
    status: str
    sightings: int
    first_seen: float | None
    last_seen: float | None
    sources: tuple[str, ...]
    best: tuple[int, ...]
    suggestion: tuple[str, float] | None = None

    def to_json(self) -> dict:
        return {"id": self.id, "status": self.status, "sightings": self.sightings, "first_seen": self.first_seen,
                "last_seen": self.last_seen, "sources": list(self.sources), "best": list(self.best),
                "suggestion": None if self.suggestion is None else
                {"name": self.suggestion[0], "similarity": round(self.suggestion[1], 4)}}


def regroup(gallery, config: GroupingConfig | None = None) -> dict:
    """Regroup every unknown sightings now, on this thread; returns counts (groups, new, moved,
    emptied, unknown_sightings). The owner thread of a GUI uses :mod:`engine.sightings.regrouping`
    instead (snapshot, compute on a worker, apply), as ``LiveSession.request_regroup`` does."""
    from .regrouping import regroup as run

    return run(gallery, config)


def groups(gallery, threshold: float | None = None, *, include_ignored: bool = False, best_k: int = 5,
           config: GroupingConfig | None = None) -> list[GroupInfo]:
    """The groups (newest activity first), with their best sightings and, given the match
    ``threshold``, an "is this X?" hint when the centroid's best match is within
    ``suggest_within`` below it."""
    cfg = config or GroupingConfig()
    conn = gallery.db.conn
    where = "" if include_ignored else "WHERE g.status = 'active'"
    rows = conn.execute(f"SELECT g.id, g.status, g.centroid, count(s.id), min(s.first_seen), max(s.last_seen) "
                        f"FROM unknown_groups g LEFT JOIN sightings s ON s.group_id = g.id {where} "
                        "GROUP BY g.id ORDER BY max(s.last_seen) DESC, g.id").fetchall()
    out = []
    for gid, status, centroid, n, first, last in rows:
        best = tuple(r[0] for r in conn.execute("SELECT id FROM sightings WHERE group_id = ? "
                                                "ORDER BY quality DESC, id LIMIT ?", [gid, best_k]))
        sources = tuple(r[0] for r in conn.execute("SELECT DISTINCT source FROM sightings WHERE group_id = ? "
                                                   "ORDER BY source", [gid]))
        hint = None
        if centroid is not None and threshold is not None and len(gallery.index):
            pids, names, sims = gallery.index.search(np.frombuffer(centroid, "<f4").astype(np.float32))
            if names[0] is not None and threshold - cfg.suggest_within <= sims[0] < threshold:
                hint = (names[0], float(sims[0]))
        out.append(GroupInfo(gid, status, n, first, last, sources, best, hint))
    return out


def _group(conn, gid: int) -> tuple:
    row = conn.execute("SELECT id, status FROM unknown_groups WHERE id = ?", [int(gid)]).fetchone()
    if row is None:
        raise KeyError(f"no unknown group {gid}")
    return row


def name_group(gallery, group_id: int, name: str, k: int = 5) -> tuple[int, list[int]]:
    """Enrol group ``group_id``'s best ``k`` sightings (crop + embedding) as ``name`` (new or
    existing person) and mark all its sightings as that person, in ONE transaction; the group
    goes. Returns (person id, new face ids). The gallery index learns the faces at once."""
    from engine.gallery import transfer

    gallery._writable()
    clean = clean_name(name)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    now = utc_now()
    with write_transaction(gallery.db) as db:
        conn = db.conn
        _group(conn, group_id)
        best = conn.execute("SELECT id, embedding, crop_jpeg, quality, source FROM sightings WHERE group_id = ? "
                            "ORDER BY quality DESC, id LIMIT ?", [int(group_id), int(k)]).fetchall()
        if not best:
            raise ValueError(f"unknown group {group_id} has no sightings left to enrol")
        pid, new_person = gallery._person_for_faces(db, clean, now)
        first = transfer.next_face_id(db)
        fids = list(range(first, first + len(best)))
        db["faces"].insert_all({"id": fid, "person_id": pid, "embedding": r[1], "embedder_id": gallery.embedder_id,
                                "crop_jpeg": r[2], "quality": float(r[3]), "source": f"{r[4]} (sighting {r[0]})",
                                "created_at": now, "updated_at": now} for fid, r in zip(fids, best, strict=True))
        moved = conn.execute("UPDATE sightings SET person_id = ?, group_id = NULL WHERE group_id = ?",
                             [pid, int(group_id)]).rowcount
        conn.execute("DELETE FROM unknown_groups WHERE id = ?", [int(group_id)])
        gallery._audit("name_group", pid, group=int(group_id), faces=len(fids), sightings=moved,
                       new_person=new_person, first_face_id=first)
    if new_person:
        gallery.index.set_name(pid, clean)
    gallery.index.add(fids, np.full(len(fids), pid), blobs_to_matrix([r[1] for r in best], gallery.dim))
    return int(pid), fids


def merge_groups(gallery, keep: int, other: int) -> int:
    """Move ``other``'s sightings into ``keep`` and delete ``other``; returns the sightings moved."""
    if int(keep) == int(other):
        raise ValueError(f"cannot merge group {keep} into itself")
    with write_transaction(gallery.db) as db:
        conn = db.conn
        _group(conn, keep)
        _group(conn, other)
        moved = conn.execute("UPDATE sightings SET group_id = ? WHERE group_id = ?", [int(keep), int(other)]).rowcount
        conn.execute("DELETE FROM unknown_groups WHERE id = ?", [int(other)])
        conn.execute("UPDATE unknown_groups SET updated_at = ? WHERE id = ?", [utc_now(), int(keep)])
        gallery._audit("merge_groups", None, group=int(keep), merged=int(other), sightings=moved)
    return moved


def ignore_group(gallery, group_id: int) -> None:
    """Hide the group for good: it stays as an anchor (its centroid) that absorbs look-alikes."""
    with write_transaction(gallery.db) as db:
        conn = db.conn
        _group(conn, group_id)
        blobs = [r[0] for r in conn.execute("SELECT embedding FROM sightings WHERE group_id = ?", [int(group_id)])]
        if blobs:
            c = unit_rows(unit_rows(blobs_to_matrix(blobs, gallery.dim)).mean(axis=0, keepdims=True))[0]
            conn.execute("UPDATE unknown_groups SET centroid = ? WHERE id = ?", [embedding_to_blob(c), int(group_id)])
        conn.execute("UPDATE unknown_groups SET status = 'ignored', updated_at = ? WHERE id = ?",
                     [utc_now(), int(group_id)])
        gallery._audit("ignore_group", None, group=int(group_id), sightings=len(blobs))
