"""Regrouping the unknown sightings in three steps, so that no step holds the owner thread for long.

1. :func:`snapshot` (owner thread, one read): the unknown sightings' ids, group ids, qualities and
   embeddings, the groups' status and stored centroids.
2. :func:`compute` (any thread, pure numpy/scipy, no SQLite): the ignored anchors, DBSCAN
   (:func:`grouping.dbscan`), persistent ids (:func:`grouping.stable_ids`) and centroids. This
   is the expensive part: for 20,000 sightings (the size cap) 1.2-1.9 s of DBSCAN on this 2-core
   CPU when it is moderately busy, 5-6 s under a load average of 15-20.
3. :func:`apply` (owner thread): one short write transaction that writes only what changed
   (snapshot + apply at 20,000 sightings: 0.5-0.7 s under that load; most of it is SQLite
   stepping over the rows' crops to reach their embeddings and group ids).
   If the groups were edited meanwhile (named, merged, ignored, another regroup) or a sighting
   of the snapshot moved, the plan is stale: nothing is written and None comes back (compute
   again from a new snapshot). Sightings recorded after the snapshot are left as they are
   (ungrouped until the next regroup); sightings purged meanwhile are skipped.

:func:`regroup` runs the three in a row (the CLI, tests); :class:`engine.live.LiveSession` runs
step 2 on a worker thread (``request_regroup``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix

from engine.gallery.codec import blobs_to_matrix, embedding_to_blob, utc_now
from engine.gallery.schema import write_transaction

from .grouping import NOISE, GroupingConfig, cluster, earlier_pairs, stable_ids, unit_rows


@dataclass(frozen=True)
class Snapshot:
    """The unknown sightings and groups at one moment. ``ids``/``previous`` (K,) int64 (group
    id, -1 none), ``quality`` (K,) float32, ``embeddings`` (K, D) float32 unit rows;
    ``status`` {group id: status} of every group; ``centroids`` {group id: stored blob or None};
    ``anchor_ids`` (G,) / ``anchors`` (G, D): the ignored groups with a centroid."""

    ids: np.ndarray
    previous: np.ndarray
    quality: np.ndarray
    embeddings: np.ndarray
    status: dict
    centroids: dict
    anchor_ids: np.ndarray
    anchors: np.ndarray
    next_id: int


@dataclass(frozen=True)
class PairCache:
    """The neighbour pairs of the last grouping, so that the next one only compares the new
    sightings with the others (an (n, K) product instead of (K, K)) and gives the same result.
    ``a``/``b``/``s``: pairs of sighting ids (each pair once) with their cosine >= 1 - max_distance,
    each sighting's ``max_neighbours`` best with earlier ones (:func:`grouping.earlier_pairs`),
    over ``ids``: the sightings of quality >= ``min_quality`` then. Pairs never change (a stored
    embedding never does); sightings that are gone drop their pairs (a sighting that lost a
    capped neighbour that way does not take its next best until a full regroup)."""

    max_distance: float
    min_quality: float
    max_neighbours: int | None
    ids: np.ndarray
    a: np.ndarray
    b: np.ndarray
    s: np.ndarray


@dataclass(frozen=True)
class Plan:
    """A computed grouping of a :class:`Snapshot`: ``group`` (K,) int64 new group ids (-1 none),
    ``new`` group ids to create, ``centroids`` {group id: (D,) float32} that differ from the stored ones,
    ``pairs``: the neighbour pairs, for the next :func:`compute` once this plan is applied."""

    snapshot: Snapshot
    group: np.ndarray
    new: tuple[int, ...]
    centroids: dict
    pairs: PairCache | None = None


def snapshot(gallery) -> Snapshot:
    """Owner thread: read what :func:`compute` needs (one read transaction, no write)."""
    dim = gallery.dim
    conn = gallery.db.conn
    conn.execute("BEGIN")  # one consistent read over the three queries
    with conn:  # ends it (nothing was written)
        # from the covering index sightings_vectors (no crop read), sorted here: ORDER BY id would
        # make SQLite walk the table instead
        rows = sorted(conn.execute("SELECT id, group_id, embedding, quality FROM sightings WHERE person_id IS NULL"),
                      key=lambda r: r[0])
        groups = conn.execute("SELECT id, status, centroid FROM unknown_groups ORDER BY id").fetchall()
        top = conn.execute("SELECT coalesce(max(id), 0) FROM unknown_groups").fetchone()[0] or 0
    ids = np.array([r[0] for r in rows], np.int64)
    prev = np.array([-1 if r[1] is None else r[1] for r in rows], np.int64)
    quality = np.array([r[3] for r in rows], np.float32)
    emb = unit_rows(blobs_to_matrix([r[2] for r in rows], dim)) if rows else np.zeros((0, dim), np.float32)
    anchors = [(g, c) for g, s, c in groups if s == "ignored" and c is not None]
    return Snapshot(ids, prev, quality, emb, {g: s for g, s, _ in groups}, {g: c for g, _, c in groups},
                    np.array([g for g, _ in anchors], np.int64),
                    unit_rows(blobs_to_matrix([c for _, c in anchors], dim)) if anchors
                    else np.zeros((0, dim), np.float32), int(top) + 1)


def neighbours(snap: Snapshot, cfg: GroupingConfig, cache: PairCache | None = None) -> PairCache:
    """The neighbour pairs of the snapshot's sightings of quality >= ``min_quality``: all of
    them computed, or, given the ``cache`` of an earlier grouping with the same settings, its
    pairs still present plus those of the sightings it did not have."""
    eligible = snap.quality >= cfg.min_quality
    ids, x = snap.ids[eligible], snap.embeddings[eligible]
    floor, settings = 1.0 - cfg.max_distance, (cfg.max_distance, cfg.min_quality, cfg.max_neighbours)
    new = np.flatnonzero(~np.isin(ids, cache.ids)) if cache is not None else None
    if (cache is None or (cache.max_distance, cache.min_quality, cache.max_neighbours) != settings
            or (len(new) and len(cache.ids) and ids[new].min() < cache.ids.max())):  # an older one joined: all
        i, j, s = earlier_pairs(x, floor, cfg.max_neighbours)
        return PairCache(*settings, ids, ids[i], ids[j], s)
    keep = np.isin(cache.a, ids) & np.isin(cache.b, ids)
    i, j, s = earlier_pairs(x, floor, cfg.max_neighbours, rows=new)
    return PairCache(*settings, ids, np.concatenate([cache.a[keep], ids[i]]),
                     np.concatenate([cache.b[keep], ids[j]]), np.concatenate([cache.s[keep], s]))


def compute(snap: Snapshot, config: GroupingConfig | None = None, pairs: PairCache | None = None) -> Plan:
    """Any thread: group the snapshot (anchors first: near an ignored group means in it; then
    DBSCAN over the rest of quality >= ``min_quality``; ids kept by majority). ``pairs``: the
    :attr:`Plan.pairs` of the last applied plan (same result, only the new sightings compared)."""
    cfg = config or GroupingConfig()
    k = len(snap.ids)
    group = np.full(k, -1, np.int64)
    free = snap.quality >= cfg.min_quality
    if len(snap.anchor_ids) and k:
        sims = snap.embeddings @ snap.anchors.T
        best = sims.argmax(axis=1)
        near = sims[np.arange(k), best] >= 1.0 - cfg.max_distance
        group[near] = snap.anchor_ids[best[near]]
        free &= ~near
    cache = neighbours(snap, cfg, pairs)
    pos = np.full(k, -1, np.int64)  # index among the free sightings
    pos[free] = np.arange(int(free.sum()))
    a, b = pos[np.searchsorted(snap.ids, cache.a)], pos[np.searchsorted(snap.ids, cache.b)]
    both = (a >= 0) & (b >= 0)
    labels = np.full(k, NOISE, np.int64)
    labels[free] = cluster(int(free.sum()), a[both], b[both], cache.s[both], cfg.min_samples)
    known = np.isin(snap.previous, np.fromiter(snap.status, np.int64, len(snap.status)))
    gids, new = stable_ids(labels, np.where(known, snap.previous, -1), snap.next_id)
    group[free] = gids[free]
    centroids = {}
    members = group >= 0
    if members.any():  # centroid: the unit mean of the members
        uniq, inv = np.unique(group[members], return_inverse=True)
        rows = np.flatnonzero(members)  # one sparse product sums each group's rows (np.add.at: 10x slower)
        sums = coo_matrix((np.ones(len(rows), np.float32), (inv, rows)), shape=(len(uniq), k)).tocsr() @ snap.embeddings
        for gid, c in zip(uniq.tolist(), unit_rows(sums), strict=True):
            old = snap.centroids.get(gid)
            if old is None or len(old) != 4 * len(c) or not np.allclose(np.frombuffer(old, "<f4"), c, atol=1e-6):
                centroids[gid] = c
    return Plan(snap, group, tuple(new), centroids, cache)


def apply(gallery, plan: Plan) -> dict | None:
    """Owner thread: write ``plan`` in one transaction (one ``regroup`` audit entry when anything
    changed); the counts (groups, new, moved, emptied, unknown_sightings), or None when the
    gallery changed since the snapshot in a way the plan did not see (nothing written)."""
    snap = plan.snapshot
    with write_transaction(gallery.db) as db:
        conn = db.conn
        if dict(conn.execute("SELECT id, status FROM unknown_groups").fetchall()) != snap.status:
            return None  # named, merged, ignored or regrouped meanwhile
        now_rows = conn.execute("SELECT id, group_id FROM sightings WHERE person_id IS NULL").fetchall()
        current = dict(now_rows)
        alive = np.array([int(i) in current for i in snap.ids.tolist()], bool)
        cur = np.array([-1 if current.get(i) is None else current[i] for i in snap.ids.tolist()], np.int64)
        if np.any(cur[alive] != snap.previous[alive]):
            return None
        now = utc_now()
        conn.executemany("INSERT INTO unknown_groups (id, status, created_at, updated_at) VALUES (?, 'active', ?, ?)",
                         [(gid, now, now) for gid in plan.new])
        changed = alive & (plan.group != snap.previous)
        conn.executemany("UPDATE sightings SET group_id = ? WHERE id = ?",
                         [(None if g < 0 else int(g), int(i))
                          for g, i in zip(plan.group[changed].tolist(), snap.ids[changed].tolist(), strict=True)])
        conn.executemany("UPDATE unknown_groups SET centroid = ? WHERE id = ?",
                         [(embedding_to_blob(c), gid) for gid, c in plan.centroids.items()])
        emptied = conn.execute("DELETE FROM unknown_groups WHERE status = 'active' AND id NOT IN "
                               "(SELECT group_id FROM sightings WHERE group_id IS NOT NULL)").rowcount
        grouped = plan.group[alive]
        summary = {"groups": int(len(np.unique(grouped[grouped >= 0]))), "new": len(plan.new),
                   "moved": int(changed.sum()), "emptied": emptied, "unknown_sightings": len(now_rows)}
        if plan.new or changed.any() or emptied:
            gallery._audit("regroup", None, **summary)
    return summary


def regroup(gallery, config: GroupingConfig | None = None) -> dict:
    """Snapshot, compute and apply in a row on this thread; the counts (see :func:`apply`)."""
    for _ in range(3):  # stale only if another connection edits the groups in between: try again
        summary = apply(gallery, compute(snapshot(gallery), config))
        if summary is not None:
            return summary
    raise RuntimeError("the unknown groups kept changing while regrouping; try again")
