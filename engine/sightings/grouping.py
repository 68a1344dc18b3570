"""Grouping unknown faces: a DBSCAN rule on cosine distance, and ids that persist across regroupings.

Pure numpy/scipy, no SQLite. :func:`dbscan` is the textbook rule (a point with at least
``min_samples`` points, itself included as in scikit-learn, within ``max_distance`` is a core
point; cores within reach of each other share a cluster; a non-core point joins its most
similar core neighbour's cluster, else it is noise), computed in row blocks so memory stays
O(block x K) plus the neighbour pairs. Written here rather than taken from scikit-learn to
avoid a large dependency for ~40 lines; the connected components come from scipy.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

NOISE = -1
_BLOCK = 512  # rows per similarity block: 512 x 20,000 float32 = 41 MB at the size cap


@dataclass(frozen=True)
class GroupingConfig:
    """``min_samples``/``max_distance``: the DBSCAN rule. Immich uses 3 and 0.5; on LFW with SFace
    (2,899 images of 423 people as sightings) 0.5 mixes two people in 10 of 414 groups
    (purity 0.977), 0.40 in 2 of 422 (purity 0.9993) while still grouping 96.7 % of the images,
    one group per person (README, "People"). End to end (``facescope eval grouping``, seeds 0-2,
    9 strangers on clips) 0.40 gives one pure group per stranger, all 9 after two passes; after
    the first pass (3 sightings each) 7/9, where 0.45 and 0.50 give 9/9 and 0.35 6/9, all pure:
    too few strangers to trade LFW's purity for that, so 0.40 stays. ``min_quality``: sightings whose
    best frame is poorer are left out (blurred or tiny faces bridge different people).
    ``suggest_within``: a group whose centroid's best gallery match lies this far below the
    match threshold is shown with "is this X?". ``max_neighbours``: each sighting keeps its pairs
    with its most similar *earlier* sightings, this many at most (None: all). All pairs grow with
    the square of one stranger's sightings: a stranger seen 20,000 times (the size cap) is 200
    million pairs, 4 GB held between regroups; capped, at most K x max_neighbours pairs (12.8 MB
    at 20,000 x 32). The core rule stays exact for a point with >= min_samples neighbours among
    its earlier ones or its later ones' top 32; a cluster could only split where every link
    between two dense halves lies outside the top 32 of its later end."""

    min_samples: int = 3
    max_distance: float = 0.40
    min_quality: float = 0.3
    suggest_within: float = 0.1
    max_neighbours: int | None = 32

    def __post_init__(self) -> None:
        if not isinstance(self.min_samples, int) or self.min_samples < 1:
            raise ValueError(f"GroupingConfig.min_samples must be an int >= 1, got {self.min_samples!r}")
        m = self.max_neighbours
        if m is not None and (not isinstance(m, int) or isinstance(m, bool) or m < self.min_samples):
            raise ValueError(f"GroupingConfig.max_neighbours must be None or an int >= min_samples "
                             f"({self.min_samples}), got {m!r}")
        for name, lo, hi in (("max_distance", 0.0, 2.0), ("min_quality", 0.0, 1.0), ("suggest_within", 0.0, 2.0)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
                raise ValueError(f"GroupingConfig.{name} must be in [{lo}, {hi}], got {v!r}")


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def earlier_pairs(x: np.ndarray, floor: float, limit: int | None,
                  rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's pairs with *earlier* rows (lower index) of cosine >= ``floor``, its ``limit``
    most similar at most (None: all): (i, j, sims) with i < j, j the row, each pair once and never
    (i, i). ``rows``: only these rows' pairs (new points; their pairs with later rows belong to
    those later rows). Uncapped, all pairs of the matrix's lower triangle: computed in row blocks
    against the columns before each block's last row (about half the products of the full
    matrix), read with ``flatnonzero`` on the flat block (~10x faster than ``nonzero`` on 2-D)."""
    rows = np.arange(len(x)) if rows is None else np.asarray(rows, np.int64)
    out_i, out_j, out_s = [], [], []
    for a in range(0, len(rows), _BLOCK):
        r = rows[a:a + _BLOCK]
        width = int(r.max()) if len(r) else 0
        if width == 0:
            continue
        s = x[r] @ x[:width].T  # (b, width); columns at or after a row's own index are not earlier
        s[np.arange(width)[None, :] >= r[:, None]] = -np.inf
        hit = s >= floor
        many = np.zeros(len(r), bool) if limit is None else hit.sum(axis=1) > limit
        if many.any():  # those rows keep their `limit` best (argpartition only where needed)
            top = np.argpartition(-s[many], limit - 1, axis=1)[:, :limit]
            hit[many] = False
            hit[np.flatnonzero(many)[:, None], top] = True
        flat = np.flatnonzero(hit)
        ri, col = np.divmod(flat, width)
        out_i.append(col)
        out_j.append(r[ri])
        out_s.append(s.reshape(-1)[flat])
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return (np.concatenate(out_i).astype(np.int64), np.concatenate(out_j).astype(np.int64),
            np.concatenate(out_s).astype(np.float32))


def dbscan(embeddings: np.ndarray, max_distance: float, min_samples: int) -> np.ndarray:
    """(K, D) embeddings -> (K,) int64 cluster labels 0..C-1 (in order of first member), ``NOISE`` = -1."""
    x = unit_rows(embeddings)
    return cluster(len(x), *earlier_pairs(x, 1.0 - float(max_distance), None), min_samples)


def cluster(k: int, i: np.ndarray, j: np.ndarray, s: np.ndarray, min_samples: int) -> np.ndarray:
    """The DBSCAN labels of K points from their neighbour pairs (each pair once, no self pair;
    see :func:`earlier_pairs`): (K,) int64, 0..C-1 in order of first member, ``NOISE`` = -1."""
    if k == 0:
        return np.zeros(0, np.int64)
    diag = np.arange(k)
    i, j, s = (np.concatenate([i, j, diag]), np.concatenate([j, i, diag]),
               np.concatenate([s, s, np.ones(k, np.float32)]))
    core = np.bincount(i, minlength=k) >= min_samples  # self included (s[i, i] = 1)
    both = core[i] & core[j]
    graph = coo_matrix((np.ones(int(both.sum()), np.int8), (i[both], j[both])), shape=(k, k)).tocsr()
    _, comp = connected_components(graph, directed=False)
    labels = np.full(k, NOISE, np.int64)
    labels[core] = comp[core]
    border = ~core[i] & core[j]  # a non-core point next to a core one: the most similar core decides
    if border.any():
        bi, bj, bs = i[border], j[border], s[border]
        order = np.lexsort((bj, -bs, bi))  # per point: most similar first, ties to the lowest index
        bi, bj = bi[order], bj[order]
        first = np.r_[True, bi[1:] != bi[:-1]]
        labels[bi[first]] = comp[bj[first]]
    # renumber 0..C-1 in order of first appearance (deterministic)
    out = np.full(k, NOISE, np.int64)
    seen: dict[int, int] = {}
    for n, lab in enumerate(labels.tolist()):
        if lab != NOISE:
            out[n] = seen.setdefault(lab, len(seen))
    return out


def stable_ids(labels: np.ndarray, previous: np.ndarray, next_id: int) -> tuple[np.ndarray, list[int]]:
    """Give each cluster a persistent id: the previous group id held by a strict majority of its
    previously grouped members (several clusters may keep the same id: a manual merge stays
    merged), else a new id from ``next_id`` upward. previous (K,) int64, -1 = none.
    Returns (K,) ids (-1 for noise) and the list of new ids."""
    ids = np.full(len(labels), -1, np.int64)
    new: list[int] = []
    for c in np.unique(labels[labels != NOISE]).tolist():
        members = labels == c
        old = previous[members]
        old = old[old >= 0]
        gid = None
        if len(old):
            top, n = Counter(old.tolist()).most_common(1)[0]
            if 2 * n > len(old):
                gid = top
        if gid is None:
            gid = next_id + len(new)
            new.append(gid)
        ids[members] = gid
    return ids, new
