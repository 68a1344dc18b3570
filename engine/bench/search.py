"""Gallery search benchmark: per-frame match latency and index load time at gallery scale.

A real gallery file is written in a temporary directory (random unit embeddings, no crops,
one person per enrolment batch of a few thousand faces, one transaction each), closed, and
timed while ``Gallery.open`` loads it into the in-memory index (``build_s``). Search is
then timed on the index the way the video pipeline uses it: one query per call
(``ms_per_query``, median; ``ms_per_query_p95``), and 16 queries per call, i.e. a crowded
frame (``batched_ms_per_query`` = median call time / 16).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from engine.gallery import Gallery

_ENROL_BATCH = 4096  # faces per enrolment transaction while writing the benchmark gallery
_BATCH_QUERIES = 16


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def bench_search(size: int = 100_000, dim: int = 128, queries: int = 500, seed: int = 0) -> dict:
    """Time gallery search over ``size`` stored ``dim``-d embeddings with ``queries`` queries.

    Returns gallery_size, dim, queries, ms_per_query (median single-query search),
    ms_per_query_p95, batched_ms_per_query (16-query calls / 16), build_s (open + load
    into the index), write_s (writing the gallery file, for reference) and match_rate
    (fraction of the first 64 single-query results that agree with
    ``argmax(queries @ matrix.T)``, a guard against a fast but wrong kernel).
    """
    if size < 1 or dim < 1 or queries < 1:
        raise ValueError("size, dim and queries must be >= 1")
    rng = np.random.default_rng(seed)
    embedder_id = f"bench-random-{dim}d"
    with tempfile.TemporaryDirectory(prefix="facescope-bench-") as tmp:
        path = Path(tmp) / "bench_gallery.db"
        t0 = time.perf_counter()
        with Gallery.open(path, embedder_id, dim) as gallery:
            for start in range(0, size, _ENROL_BATCH):
                k = min(_ENROL_BATCH, size - start)
                gallery.enroll(f"person {start // _ENROL_BATCH:05d}", _unit(rng, k, dim), sources=["bench"] * k)
        write_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        gallery = Gallery.open(path, embedder_id, dim, create=False)
        build_s = time.perf_counter() - t0
        try:
            index = gallery.index
            q = _unit(rng, queries, dim)
            index.search(q[:1])  # JIT compile / warm caches outside the timings
            index.search(q[:_BATCH_QUERIES])
            single = np.empty(queries)
            best = np.empty(queries, np.int64)
            for i in range(queries):
                t = time.perf_counter()
                best[i] = index.search(q[i : i + 1])[0][0]
                single[i] = time.perf_counter() - t
            batched = []
            for start in range(0, max(queries - _BATCH_QUERIES + 1, 1), _BATCH_QUERIES):
                block = q[start : start + _BATCH_QUERIES]
                t = time.perf_counter()
                index.search(block)
                batched.append((time.perf_counter() - t) / len(block))
            n_ref = min(queries, 64)  # plain BLAS product as the reference (bounded memory)
            reference = index.person_ids[np.argmax(q[:n_ref] @ index.vectors().T, axis=1)]
        finally:
            gallery.close()
    return {
        "gallery_size": size,
        "dim": dim,
        "queries": queries,
        "ms_per_query": float(np.median(single) * 1e3),
        "ms_per_query_p95": float(np.percentile(single, 95) * 1e3),
        "batched_ms_per_query": float(np.median(batched) * 1e3),
        "build_s": build_s,
        "write_s": write_s,
        "match_rate": float(np.mean(best[:n_ref] == reference)),
    }
