"""In-memory search index over a gallery's faces: what every video frame is matched against.

The index never touches SQLite. It holds an L2-normalised float32 matrix (M, D) with
parallel int64 arrays ``face_ids`` and ``person_ids`` and a ``person_id -> name`` map; a
person's score for a query is the cosine similarity of their best face.

Storage grows geometrically (capacity doubles) so adding faces is amortised O(K*D) with no
per-add ``vstack``; deletions compact in place (O(M), rare UI actions). A lock serialises
mutations and searches, so a recognition thread may search while the UI thread edits.

Negatives ("not this person", schema v3) are a second, usually tiny, matrix (N, D) with their
person ids. ``search`` also returns, per query, the best similarity to the NEGATIVES of the
person it found (``SearchResult.negative``; -inf when that person has none), and
:func:`engine.gallery.decision.decide`
refuses a match that is closer to the person's negatives than to their faces. Without
negatives this costs one ``if``; with N negatives one (Q, N) product per frame.

``search`` also returns the second-best PERSON's similarity (``SearchResult.second``, from the
same single pass over the matrix), for the margin rule of :class:`DecisionConfig`: two
thresholds (unknown / probable / confirmed) and a margin, applied by
:func:`engine.gallery.decision.classify` (re-exported here).
"""
from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np

from engine.records import NO_ID

from .decision import Rule, classify, decide  # noqa: F401 - re-exported: callers import them from here
from .kernel import KERNEL_MAX_QUERIES, best_two_people, best_two_people_blas, normalise_rows, row_norms

NO_MATCH = NO_ID  # person id of "nobody": empty gallery, NaN/zero query, below threshold
_MIN_CAPACITY = 256



class SearchResult(tuple):
    """``(person_ids (Q,) int64, names list, similarities (Q,) float32)`` as before (it unpacks
    to three), plus ``negative`` (Q,) float32: the best similarity of each query to the
    negatives of the person found (-inf where that person has none); ``second`` (Q,) float32:
    the best similarity of any other person (-inf where there is none, or not computed);
    ``status`` (Q,) int8 ``STATUS_*`` after :meth:`GalleryIndex.match` (None after ``search``)."""

    negative: np.ndarray
    second: np.ndarray
    status: np.ndarray | None

    def __new__(cls, person_ids, names, sims, negative=None, second=None, status=None):
        self = super().__new__(cls, (person_ids, names, sims))
        self.negative = np.full(len(sims), -np.inf, np.float32) if negative is None else negative
        self.second = np.full(len(sims), -np.inf, np.float32) if second is None else second
        self.status = status
        return self


class GalleryIndex:
    """Normalised embeddings of every stored face, searchable in one pass.

    ``search(queries (Q, D)) -> (person_ids (Q,) int64, names list[str | None], sims (Q,) float32)``.
    With an empty index, or a query that is all zeros or contains NaN, the result for that
    query is person id -1, name None and similarity ``-inf`` (never ``-1``, which is a real
    cosine), so ``sims >= threshold`` is False for any threshold.
    """

    def __init__(self, dim: int, capacity: int = _MIN_CAPACITY) -> None:
        if dim < 1:
            raise ValueError(f"embedding dimension must be >= 1, got {dim}")
        self._lock = threading.Lock()
        self._allocate(dim, capacity)
        self._names: dict[int, str] = {}
        self._neg = np.zeros((0, dim), np.float32)     # negatives, L2-normalised (N, D)
        self._neg_pids = np.zeros(0, np.int64)         # (N,) their person ids
        self._neg_ids = np.zeros(0, np.int64)          # (N,) their row ids in the gallery

    def _allocate(self, dim: int, capacity: int) -> None:
        capacity = max(_MIN_CAPACITY, int(capacity))
        self._dim = dim
        self._n = 0
        self._matrix = np.zeros((capacity, dim), np.float32)
        self._face_ids = np.zeros(capacity, np.int64)
        self._person_ids = np.zeros(capacity, np.int64)

    # ------------------------------------------------------------------ state
    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return self._n

    @property
    def capacity(self) -> int:
        return len(self._matrix)

    @property
    def face_ids(self) -> np.ndarray:
        """(M,) int64 copy, row order of the matrix."""
        with self._lock:
            return self._face_ids[: self._n].copy()

    @property
    def person_ids(self) -> np.ndarray:
        """(M,) int64 copy, parallel to ``face_ids``."""
        with self._lock:
            return self._person_ids[: self._n].copy()

    @property
    def names(self) -> dict[int, str]:
        """Copy of the ``person_id -> name`` map (includes people without faces)."""
        with self._lock:
            return dict(self._names)

    def vectors(self) -> np.ndarray:
        """(M, D) float32 copy of the L2-normalised matrix."""
        with self._lock:
            return self._matrix[: self._n].copy()

    @property
    def negative_count(self) -> int:
        return len(self._neg_pids)

    # -------------------------------------------------------------- negatives
    def set_negatives(self, ids, person_ids, embeddings) -> None:
        """Replace every negative: ids (N,), person ids (N,), embeddings (N, D) (normalised here)."""
        nids, pids, emb = self._check_rows(self._dim, ids, person_ids, np.asarray(embeddings, np.float32).reshape(
            -1, self._dim))
        with self._lock:
            self._neg, self._neg_pids, self._neg_ids = normalise_rows(emb), pids.copy(), nids.copy()

    def add_negatives(self, ids, person_ids, embeddings) -> None:
        nids, pids, emb = self._check_rows(self._dim, ids, person_ids, np.asarray(embeddings, np.float32).reshape(
            -1, self._dim))
        with self._lock:  # rare UI action: a copy is fine and keeps readers of the old arrays safe
            self._neg = np.concatenate([self._neg, normalise_rows(emb)])
            self._neg_pids = np.concatenate([self._neg_pids, pids])
            self._neg_ids = np.concatenate([self._neg_ids, nids])

    def _keep_negatives(self, keep: np.ndarray) -> None:
        self._neg, self._neg_pids, self._neg_ids = self._neg[keep], self._neg_pids[keep], self._neg_ids[keep]

    # -------------------------------------------------------------- mutations
    def reset(self, dim: int, face_ids: np.ndarray, person_ids: np.ndarray, embeddings: np.ndarray,
              names: Mapping[int, str]) -> None:
        """Replace everything (open, import-replace, reembed; ``dim`` may change)."""
        fids, pids, emb = self._check_rows(dim, face_ids, person_ids, embeddings)
        m = len(fids)
        with self._lock:
            self._allocate(dim, m + m // 4)  # headroom so the next enrolments do not regrow
            # Normalise straight into the new matrix: at 100k faces every extra (M, D)
            # temporary costs ~0.1 s of page faults at open.
            normalise_rows(emb, out=self._matrix[:m])
            self._face_ids[:m], self._person_ids[:m] = fids, pids
            self._n = m
            self._names = dict(names)
            if self._neg.shape[1] != dim:  # a re-embed changed the dimension: old negatives are void
                self._neg, self._neg_pids, self._neg_ids = np.zeros((0, dim), np.float32), \
                    np.zeros(0, np.int64), np.zeros(0, np.int64)

    def add(self, face_ids: np.ndarray, person_ids: np.ndarray, embeddings: np.ndarray) -> None:
        """Append K faces: ids (K,), embeddings (K, D) (normalised here). Amortised O(K*D)."""
        fids, pids, emb = self._check_rows(self._dim, face_ids, person_ids, embeddings)
        k = len(fids)
        with self._lock:
            need = self._n + k
            if need > self.capacity:
                self._grow(max(need, 2 * self.capacity))
            normalise_rows(emb, out=self._matrix[self._n : need])
            self._face_ids[self._n : need] = fids
            self._person_ids[self._n : need] = pids
            self._n = need

    def set_name(self, person_id: int, name: str) -> None:
        """Add or rename a person."""
        with self._lock:
            self._names[int(person_id)] = name

    def remove_faces(self, face_ids) -> int:
        """Drop faces by id (unknown ids ignored); returns how many rows went. O(M)."""
        with self._lock:
            n = self._n
            return self._compact(~np.isin(self._face_ids[:n], np.asarray(face_ids, np.int64)))

    def remove_person(self, person_id: int) -> int:
        """Drop a person's faces and name; returns how many rows went."""
        with self._lock:
            self._names.pop(int(person_id), None)
            self._keep_negatives(self._neg_pids != int(person_id))
            return self._compact(self._person_ids[: self._n] != person_id)

    def move_faces(self, src_person_id: int, dst_person_id: int) -> int:
        """Re-label src's faces as dst's and forget src (merge); returns how many moved."""
        with self._lock:
            sel = self._person_ids[: self._n] == src_person_id
            self._person_ids[: self._n][sel] = dst_person_id
            self._neg_pids[self._neg_pids == int(src_person_id)] = int(dst_person_id)
            self._names.pop(int(src_person_id), None)
            return int(sel.sum())

    def _grow(self, capacity: int) -> None:
        n = self._n
        matrix = np.zeros((capacity, self._dim), np.float32)
        matrix[:n] = self._matrix[:n]
        face_ids, person_ids = np.zeros(capacity, np.int64), np.zeros(capacity, np.int64)
        face_ids[:n], person_ids[:n] = self._face_ids[:n], self._person_ids[:n]
        self._matrix, self._face_ids, self._person_ids = matrix, face_ids, person_ids

    def _compact(self, keep: np.ndarray) -> int:
        # Stable compaction keeps row order (ties keep resolving to the same, older face).
        n, k = self._n, int(keep.sum())
        if k == n:
            return 0
        self._matrix[:k] = self._matrix[:n][keep]
        self._face_ids[:k] = self._face_ids[:n][keep]
        self._person_ids[:k] = self._person_ids[:n][keep]
        self._n = k
        return n - k

    @staticmethod
    def _check_rows(dim: int, face_ids, person_ids, embeddings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[1] != dim:
            raise ValueError(f"embeddings must have shape (K, {dim}), got {emb.shape}")
        fids = np.asarray(face_ids, np.int64).reshape(-1)
        pids = np.asarray(person_ids, np.int64).reshape(-1)
        if len(fids) != len(emb) or len(pids) != len(emb):
            raise ValueError(f"{len(fids)} face ids / {len(pids)} person ids for {len(emb)} embeddings")
        norms = row_norms(emb)
        if not (np.isfinite(norms) & (norms > 0)).all():
            raise ValueError("embeddings must be finite and non-zero to be indexed")
        return fids, pids, emb

    # ----------------------------------------------------------------- search
    def warmup(self) -> None:
        """Load/compile the search kernel now (~0.5 s once per process) rather than on the first frame."""
        best_two_people(np.zeros((1, self._dim), np.float32), np.zeros(1, np.int64), 0,
                        np.zeros((1, self._dim), np.float32), np.empty(1, np.int64), np.empty(1, np.float32),
                        np.empty(1, np.float32))

    def search(self, queries: np.ndarray) -> SearchResult:
        """Best face per query. queries (Q, D) or (D,) any float, normalised here.

        Returns person_ids (Q,) int64, names (list of Q str | None), similarities (Q,)
        float32 cosine in [-1, 1]; -1 / None / -inf where nothing can match (see class doc).
        Q <= KERNEL_MAX_QUERIES (the per-frame case) runs the fused single-pass kernel; more
        queries run one BLAS product ``queries @ matrix.T`` in row chunks.
        """
        q = np.asarray(queries, dtype=np.float32)
        if q.ndim == 1:
            q = q[None]
        if q.ndim != 2 or q.shape[1] != self._dim:
            raise ValueError(f"queries must have shape (Q, {self._dim}), got {np.shape(queries)}")
        unit = normalise_rows(q)
        nq = len(unit)
        rows = np.empty(nq, np.int64)
        sims = np.empty(nq, np.float32)
        second = np.empty(nq, np.float32)
        with self._lock:
            if nq <= KERNEL_MAX_QUERIES:
                best_two_people(self._matrix, self._person_ids, self._n, np.ascontiguousarray(unit), rows, sims,
                                second)
            else:
                best_two_people_blas(self._matrix, self._person_ids, self._n, unit, rows, sims, second)
            found = rows >= 0
            person_ids = np.where(found, self._person_ids[np.where(found, rows, 0)], NO_MATCH)
            names = [self._names.get(p) if p != NO_MATCH else None for p in person_ids.tolist()]
            negative = self._negative_sims(unit, person_ids) if len(self._neg_pids) else None
        return SearchResult(person_ids, names, sims, negative, second)

    def _negative_sims(self, unit: np.ndarray, person_ids: np.ndarray) -> np.ndarray:
        """(Q,) best similarity of each query to the negatives of its found person (-inf: none)."""
        s = unit @ self._neg.T  # (Q, N), N small
        s[self._neg_pids[None, :] != person_ids[:, None]] = -np.inf
        with np.errstate(invalid="ignore"):
            out = s.max(axis=1)
        return np.where(np.isnan(out), -np.inf, out).astype(np.float32)

    def match(self, queries: np.ndarray, threshold: Rule) -> SearchResult:
        """``search`` + :func:`classify`: an unknown face has id ``NO_ID`` and name None; the
        result's ``status`` (Q,) grades the others (probable / confirmed). ``threshold``: a
        :class:`DecisionConfig` or a float (one threshold). Similarities are returned unchanged
        (the best score, even when it was rejected).
        """
        result = self.search(queries)
        person_ids, names, sims = result
        person_ids, status = classify(person_ids, sims, threshold, result.negative, result.second)
        names = [n if p != NO_ID else None for n, p in zip(names, person_ids.tolist(), strict=True)]
        return SearchResult(person_ids, names, sims, result.negative, result.second, status)

    def names_of(self, person_ids) -> list[str | None]:
        """Current names of ``person_ids`` (None for ``NO_ID`` and for people no longer here):
        how labels follow a rename or a delete on the next frame."""
        with self._lock:
            return [self._names.get(int(p)) if p != NO_ID else None for p in person_ids]
