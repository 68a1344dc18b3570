"""Fused best-match kernel: argmax_i <q, M_i> for a few queries in one pass over the gallery.

Why not ``queries @ matrix.T`` for the per-frame case: with one or a few queries the
product is a matrix-vector product, bound by memory bandwidth (100k x 128 float32 is 51 MB
read per search). OpenBLAS splits that gemv over all cores and, on a 2-core machine that is
also detecting and embedding, its worker threads fight the pipeline: measured 8-12 ms per
query against 2-3 ms single-threaded. This kernel reads the matrix once, single-threaded and
without the GIL, keeps the running maximum in registers instead of materialising a (Q, M)
similarity matrix, and needs no allocation. It is the same computation as
``argmax(queries @ matrix[:n].T, axis=1)``; ties resolve to the lowest row, NaN never wins.
Many queries at once (evaluation, re-identification sweeps) are compute-bound, where BLAS
gemm is faster: ``GalleryIndex`` switches to the matrix product above KERNEL_MAX_QUERIES.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from engine.records import NO_ID

# Above this many queries one BLAS matrix product beats the fused single-threaded pass.
KERNEL_MAX_QUERIES = 32
_BLAS_TEMP_ELEMENTS = 1 << 22  # bound of the (Q, chunk) similarity block in the BLAS path (16 MB)

# Re-association lets LLVM vectorise the dot product; 'nnan'/'ninf' are left out on purpose
# so the -inf start value and NaN queries compare correctly.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def best_rows(matrix, n, queries, out_rows, out_sims):  # pragma: no cover - compiled
    """For each query j: out_rows[j] = argmax_{i<n} matrix[i] . queries[j], out_sims[j] = that dot.

    matrix (capacity, D) float32 C-contiguous, rows >= n ignored; queries (Q, D) float32;
    out_rows (Q,) int64 (-1 when n == 0 or the query is NaN); out_sims (Q,) float32 (-inf then).
    """
    nq = queries.shape[0]
    dim = queries.shape[1]
    for j in range(nq):
        out_rows[j] = -1
        out_sims[j] = -np.inf
    for i in range(n):
        row = matrix[i]
        for j in range(nq):
            q = queries[j]
            s = np.float32(0.0)
            for d in range(dim):
                s += row[d] * q[d]
            if s > out_sims[j]:
                out_sims[j] = s
                out_rows[j] = i


@njit(cache=True, nogil=True, fastmath=_FASTMATH)
def best_two_people(matrix, person_ids, n, queries, out_rows, out_sims, out_second):  # pragma: no cover - compiled
    """``best_rows`` plus, per query, the best similarity of any OTHER person than the best row's
    (the margin rule's second-best person), in the same single pass.

    person_ids (capacity,) int64 parallel to ``matrix``; out_second (Q,) float32 (-inf when every
    row belongs to the best person). Running top-2 over distinct people: a row of the current
    best person can only raise the best; a row of another person that beats the best demotes the
    old best to second (the old best is the maximum over every other person's rows seen so far).
    """
    nq = queries.shape[0]
    dim = queries.shape[1]
    for j in range(nq):
        out_rows[j] = -1
        out_sims[j] = -np.inf
        out_second[j] = -np.inf
    for i in range(n):
        row = matrix[i]
        p = person_ids[i]
        for j in range(nq):
            q = queries[j]
            s = np.float32(0.0)
            for d in range(dim):
                s += row[d] * q[d]
            if s > out_sims[j]:
                if out_rows[j] >= 0 and person_ids[out_rows[j]] != p:
                    out_second[j] = out_sims[j]
                out_sims[j] = s
                out_rows[j] = i
            elif s > out_second[j] and out_rows[j] >= 0 and person_ids[out_rows[j]] != p:
                out_second[j] = s


def row_norms(x: np.ndarray) -> np.ndarray:
    """(K, D) float32 -> (K,) L2 norms, without a (K, D) temporary."""
    return np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float32))


def normalise_rows(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(K, D) float32 -> unit rows (into ``out`` if given); zero or non-finite rows become NaN."""
    norms = row_norms(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.divide(x, norms[:, None], out=out)
    out[~(norms > 0) | ~np.isfinite(norms)] = np.nan
    return out


def best_two_people_blas(matrix: np.ndarray, person_ids: np.ndarray, n: int, unit: np.ndarray, rows: np.ndarray,
                         sims: np.ndarray, second: np.ndarray) -> None:
    """:func:`best_two_people` for many queries (compute-bound, so BLAS gemm wins); row chunks bound
    the (Q, chunk) temporary. Same outputs: best row, its similarity, best of the other people.

    Each chunk is summarised as (best row, best, best of the other people) and merged into the
    running summary: when the two bests belong to different people, the loser's best is a
    candidate second; otherwise only the two seconds are."""
    rows[:] = NO_ID
    sims[:] = -np.inf
    second[:] = -np.inf
    step = max(1024, _BLAS_TEMP_ELEMENTS // len(unit))
    arange = np.arange(len(unit))
    for start in range(0, n, step):
        stop = min(n, start + step)
        block = unit @ matrix[start:stop].T
        idx = block.argmax(axis=1)
        val = block[arange, idx]
        chunk_pids = person_ids[start:stop]
        best_pid = chunk_pids[idx]
        block[chunk_pids[None, :] == best_pid[:, None]] = -np.inf
        val2 = block.max(axis=1)  # the chunk's best other person
        old_pid = np.where(rows >= 0, person_ids[np.maximum(rows, 0)], NO_ID)
        differ = old_pid != best_pid
        with np.errstate(invalid="ignore"):
            better = val > sims  # strict: ties keep the lower row; NaN never wins
            loser = np.where(better, sims, val)
            cand = np.where(differ, np.fmax(loser, np.fmax(second, val2)), np.fmax(second, val2))
        second[:] = np.where(rows >= 0, cand, val2)
        rows[better] = idx[better] + start
        sims[better] = val[better]
    second[rows < 0] = -np.inf
