"""What the covering indexes of the sightings table buy (``sightings_vectors``,
``sightings_group_cover``: engine.gallery.people_tables), with and without them, plain and
encrypted, same run.

A gallery of ``size`` sightings of ``size // 100`` strangers is written with the real store (unit
embeddings around one random centre per stranger; a smooth 112x112 crop with noise, encoded as
the store encodes real crops, ~5 KB like a face) and regrouped once (200 groups at 20,000). A copy
laid out as v3 files were before the indexes (``sightings_group`` on group alone) is read through a
connection that does not add them back (plain read-only; for the encrypted file SQLCipher's
``connect_ro``). Per file, the median of ``repeats``: ``embeddings_ms`` (``store.embeddings`` over
every sighting: Find similar, ``facescope sightings search``), ``search_ms`` (``store.search``,
top 12), ``snapshot_ms`` (``regrouping.snapshot``: the owner -- GUI -- thread's part of a regroup)
and ``groups_ms`` (``unknowns.groups``: the unknown-people panel's list). In a row the embedding
and quality come after the crop, so without the indexes SQLite steps over (and, encrypted,
decrypts) the crops' pages. The encrypted variants need the secure extra; without it they are
left out.
"""
from __future__ import annotations

import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from engine.bench.gallery_crypto import bench_passphrase
from engine.gallery import Gallery, GalleryError
from engine.sightings import regrouping, store, unknowns
from engine.sightings.collector import Sighting

_DIM = 128
_EMBEDDER = "bench"


def _crop(rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:112, 0:112].astype(np.float32)
    base = np.stack([x * 1.5 + 40, y * 1.2 + 60, (x + y) * 0.8 + 30], -1) + rng.normal(0, 6, (112, 112, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def _write(path: Path, size: int, rng: np.random.Generator) -> None:
    crop, now = _crop(rng), time.time()
    centres = rng.standard_normal((max(1, size // 100), _DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    with Gallery.open(path, _EMBEDDER, _DIM) as g:
        for start in range(0, size, 1000):
            n = min(1000, size - start)
            e = centres[rng.integers(0, len(centres), n)] + 0.04 * rng.standard_normal((n, _DIM)).astype(np.float32)
            e /= np.linalg.norm(e, axis=1, keepdims=True)
            q = rng.uniform(0.3, 1.0, n)
            store.record(g, [Sighting(-1, f"cam{i % 3}", now - 3600 + start + i, now - 3599 + start + i, 5, crop,
                                      e[i], float(q[i])) for i in range(n)])
        regrouping.regroup(g)


_BEFORE = ("DROP INDEX sightings_vectors", "DROP INDEX sightings_group_cover",
           "CREATE INDEX sightings_group ON sightings (group_id)")  # v3 as first made


def _time(conn, repeats: int) -> dict:
    shim = SimpleNamespace(dim=_DIM, db=SimpleNamespace(conn=conn))  # what regrouping.snapshot reads
    emb, search, snap, groups = [], [], [], []
    query, n_groups = None, 0
    for _ in range(repeats):
        t = time.perf_counter()
        ids, vectors = store.embeddings(conn, _DIM)
        emb.append(1000 * (time.perf_counter() - t))
        query = vectors[len(vectors) // 2] if query is None else query
        t = time.perf_counter()
        store.search(conn, query, _DIM, 12)
        search.append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        regrouping.snapshot(shim)
        snap.append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        n_groups = len(unknowns.groups(shim))  # no threshold: no gallery search for hints
        groups.append(1000 * (time.perf_counter() - t))
    plan = " ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN SELECT id, embedding FROM sightings"))
    return {"embeddings_ms": statistics.median(emb), "search_ms": statistics.median(search),
            "snapshot_ms": statistics.median(snap), "groups_ms": statistics.median(groups), "groups": n_groups,
            "rows": len(ids), "plan": plan}


def bench_sightings_read(size: int = 20_000, repeats: int = 5, seed: int = 0) -> dict:
    """Returns size, crop_kb, file_mb, index_mb and per variant ("plain", "plain_no_index",
    "encrypted", "encrypted_no_index") embeddings_ms, search_ms, snapshot_ms, groups_ms, groups,
    rows, plan."""
    from engine.gallery import crypto, keys, rekey

    if size < 100 or repeats < 1:
        raise ValueError("size must be >= 100 and repeats >= 1")
    rng = np.random.default_rng(seed)
    try:
        crypto.module()
        secure = True
    except GalleryError:  # no secure extra: the encrypted variants are left out
        secure = False
    with bench_passphrase(), tempfile.TemporaryDirectory(prefix="facescope-bench-") as tmp:
        plain = Path(tmp) / "plain.db"
        _write(plain, size, rng)
        bare = Path(tmp) / "bare.db"
        shutil.copy(plain, bare)
        _as_before(sqlite3.connect(bare))
        out = {"size": size, "file_mb": plain.stat().st_size / 1e6,
               "index_mb": (plain.stat().st_size - bare.stat().st_size) / 1e6}
        with Gallery.open(plain, _EMBEDDER, _DIM) as g:
            out["crop_kb"] = g.db.execute("SELECT avg(length(crop_jpeg)) FROM sightings").fetchone()[0] / 1e3
            out["plain"] = _time(g.db.conn, repeats)
        out["plain_no_index"] = _time_closed(sqlite3.connect(f"{bare.resolve().as_uri()}?mode=ro", uri=True), repeats)
        if secure:
            enc = Path(tmp) / "encrypted.db"
            shutil.copy(plain, enc)
            rekey.change_key(enc, "passphrase")  # opens it as a Gallery: with the indexes
            key = keys.key_for(enc)
            # read-only connections never add the indexes back
            out["encrypted"] = _time_closed(crypto.connect_ro(enc, key), repeats)
            _as_before(crypto.connect(str(enc), key))  # the same file as v3 files were made
            out["encrypted_no_index"] = _time_closed(crypto.connect_ro(enc, key), repeats)
        return out


def _as_before(conn) -> None:
    """Lay a sightings file out as v3 files were first made (``_BEFORE``), compacted; closes ``conn``."""
    try:
        with conn:
            for sql in _BEFORE:
                conn.execute(sql)
        conn.execute("VACUUM")
    finally:
        conn.close()


def _time_closed(conn, repeats: int) -> dict:
    """:func:`_time` on ``conn``, closed after."""
    try:
        return _time(conn, repeats)
    finally:
        conn.close()


def format_sightings_read(r: dict) -> str:
    lines = [f"sightings: {r['size']} x {_DIM}-d, crops {r['crop_kb']:.1f} KB, file {r['file_mb']:.1f} MB "
             f"(covering indexes {r['index_mb']:.1f} MB); median ms (no_index: as v3 files were made before):"]
    for label in ("plain", "plain_no_index", "encrypted", "encrypted_no_index"):
        if label in r:
            v = r[label]
            lines.append(f"{label:>19}: all embeddings {v['embeddings_ms']:7.1f}, search {v['search_ms']:7.1f}, "
                         f"regroup snapshot {v['snapshot_ms']:7.1f}, {v['groups']} unknown groups listed "
                         f"{v['groups_ms']:7.1f}  [{v['plan']}]")
    return "\n".join(lines)
