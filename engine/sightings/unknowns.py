"""The unknown-people lane in the gallery file: regroup, list, name, merge, ignore.

Groups live in ``unknown_groups`` (ids persist across restarts) and sightings point at them
(``sightings.group_id``). :func:`regroup` recomputes the grouping of every unknown sighting
(:func:`grouping.dbscan`: 5.9 s for 20,000 sightings, the size cap, on this 2-core CPU; so it runs
on demand and with the live session's hourly purge, never per frame) and keeps ids stable (:func:`grouping.stable_ids`).
An ignored group keeps its centroid as an anchor: unknown sightings within ``max_distance`` of
it join it directly and never form a new visible group. Every change is one transaction with
one audit entry (ids and counts only).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.gallery.codec import blobs_to_matrix, clean_name, embedding_to_blob, utc_now
from engine.gallery.schema import write_transaction

from .grouping import NOISE, GroupingConfig, dbscan, stable_ids, unit_rows


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
    """Regroup every unknown sighting in one transaction; returns counts (groups, new, grouped, ...)."""
    cfg = config or GroupingConfig()
    dim = gallery.dim
    with write_transaction(gallery.db) as db:
        conn = db.conn
        rows = conn.execute("SELECT id, group_id, embedding, quality FROM sightings WHERE person_id IS NULL "
                            "ORDER BY id").fetchall()
        ignored = conn.execute("SELECT id, centroid FROM unknown_groups WHERE status = 'ignored' "
                               "AND centroid IS NOT NULL ORDER BY id").fetchall()
        status = dict(conn.execute("SELECT id, status FROM unknown_groups").fetchall())
        ids = np.array([r[0] for r in rows], np.int64)
        prev = np.array([r[1] if r[1] is not None else -1 for r in rows], np.int64)
        quality = np.array([r[3] for r in rows], np.float32)
        emb = unit_rows(blobs_to_matrix([r[2] for r in rows], dim)) if rows else np.zeros((0, dim), np.float32)
        group = np.full(len(ids), -1, np.int64)
        free = quality >= cfg.min_quality
        if ignored and len(ids):  # anchors first: near an ignored group means in it
            anchors = unit_rows(blobs_to_matrix([r[1] for r in ignored], dim))
            sims = emb @ anchors.T
            best = sims.argmax(axis=1)
            near = sims[np.arange(len(ids)), best] >= 1.0 - cfg.max_distance
            group[near] = np.array([r[0] for r in ignored], np.int64)[best[near]]
            free &= ~near
        next_id = (conn.execute("SELECT coalesce(max(id), 0) FROM unknown_groups").fetchone()[0] or 0) + 1
        labels = np.full(len(ids), NOISE, np.int64)
        labels[free] = dbscan(emb[free], cfg.max_distance, cfg.min_samples)
        gids, new = stable_ids(labels, np.where(np.isin(prev, list(status)), prev, -1), next_id)
        group[free] = gids[free]
        now = utc_now()
        for gid in new:
            conn.execute("INSERT INTO unknown_groups (id, status, created_at, updated_at) VALUES (?, 'active', ?, ?)",
                         [gid, now, now])
        changed = group != prev
        conn.executemany("UPDATE sightings SET group_id = ? WHERE id = ?",
                         [(None if g < 0 else int(g), int(i)) for g, i in zip(group[changed], ids[changed],
                                                                               strict=True)])
        for gid in np.unique(group[group >= 0]).tolist():  # centroid: the unit mean of the members
            c = unit_rows(emb[group == gid].mean(axis=0, keepdims=True))[0]
            conn.execute("UPDATE unknown_groups SET centroid = ? WHERE id = ?", [embedding_to_blob(c), gid])
        emptied = conn.execute("DELETE FROM unknown_groups WHERE status = 'active' AND id NOT IN "
                               "(SELECT group_id FROM sightings WHERE group_id IS NOT NULL)").rowcount
        summary = {"groups": int(len(np.unique(group[group >= 0]))), "new": len(new), "moved": int(changed.sum()),
                   "emptied": emptied, "unknown_sightings": int(len(ids))}
        if new or changed.any() or emptied:
            gallery._audit("regroup", None, **summary)
    return summary


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
