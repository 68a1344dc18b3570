"""What encryption at rest costs: the same gallery plain and encrypted (SQLCipher), same run.

A gallery of ``faces`` random unit embeddings with 112x112 crops is written, copied, and the copy
encrypted in place with a passphrase (``facescope gallery encrypt``'s code). Then, for each file:
``open_ms`` — open + load every embedding into the in-memory index (median of 7; the passphrase's
scrypt is cached per process, so this is the per-open cost an app pays after start), ``enrol_ms``
— one face + crop per transaction (median and p90 of 200), and ``kdf_ms`` — scrypt once (what a
process pays when it first opens an encrypted gallery). The per-frame search runs on the
in-memory index and does not change (``facescope bench search``).
"""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from engine.gallery import Gallery

_DIM = 128


def bench_gallery_crypto(faces: int = 6000, seed: int = 0) -> dict:
    """Returns faces, file_mb, encrypt_ms, kdf_ms, encrypted_has_sqlite_header (False), and per
    variant ("plain", "encrypted") open_ms, enrol_ms, enrol_p90_ms. Needs the secure extra."""
    from engine.gallery import crypto, rekey

    if faces < 100:
        raise ValueError("faces must be >= 100")
    rng = np.random.default_rng(seed)
    with bench_passphrase(), tempfile.TemporaryDirectory(prefix="facescope-bench-") as tmp:
        plain, enc = Path(tmp) / "plain.db", Path(tmp) / "enc.db"
        with Gallery.open(plain, "bench", _DIM) as g:
            for i in range(0, faces, 100):
                g.enroll(f"person {i // 100}", rng.standard_normal((100, _DIM)).astype(np.float32),
                         crops=list(rng.integers(0, 256, (100, 112, 112, 3), dtype=np.uint8)))
        shutil.copy(plain, enc)
        t = time.perf_counter()
        rekey.change_key(enc, "passphrase")
        out = {"faces": faces, "file_mb": plain.stat().st_size / 1e6,
               "encrypt_ms": 1000 * (time.perf_counter() - t)}
        # a guard against timing a file that is not encrypted: SQLCipher leaves no SQLite header
        out["encrypted_has_sqlite_header"] = enc.read_bytes()[:16] == b"SQLite format 3\x00"
        info = crypto.read_info(crypto.sidecar(enc))
        kdf = []
        for _ in range(3):
            crypto._scrypt.cache_clear()
            t = time.perf_counter()
            crypto.derive(info, enc)
            kdf.append(1000 * (time.perf_counter() - t))
        out["kdf_ms"] = statistics.median(kdf)
        crop = [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)]
        for label, db in (("plain", plain), ("encrypted", enc)):
            opens = []
            for _ in range(7):
                t = time.perf_counter()
                Gallery.open(db, "bench", _DIM).close()
                opens.append(1000 * (time.perf_counter() - t))
            enrol = []
            with Gallery.open(db, "bench", _DIM) as g:
                for i in range(200):
                    e = rng.standard_normal((1, _DIM)).astype(np.float32)
                    t = time.perf_counter()
                    g.enroll(f"new {i % 20}", e, crops=crop)
                    enrol.append(1000 * (time.perf_counter() - t))
            out[label] = {"open_ms": statistics.median(opens), "enrol_ms": statistics.median(enrol),
                          "enrol_p90_ms": float(np.percentile(enrol, 90))}
        return out


@contextmanager
def bench_passphrase() -> Iterator[None]:
    """A benchmark's galleries are encrypted with a fixed passphrase, set in this process's
    environment only while the benchmark runs (the user's own setting is restored after)."""
    from engine.gallery import crypto

    old = os.environ.get(crypto.PASSPHRASE_ENV)
    os.environ[crypto.PASSPHRASE_ENV] = "benchmark passphrase"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(crypto.PASSPHRASE_ENV, None)
        else:
            os.environ[crypto.PASSPHRASE_ENV] = old


def format_gallery_crypto(r: dict) -> str:
    lines = [f"gallery: {r['faces']} faces x {_DIM}-d with 112x112 crops, {r['file_mb']:.1f} MB; "
             f"encrypt in place {r['encrypt_ms']:.0f} ms; scrypt once per process {r['kdf_ms']:.0f} ms"]
    for label in ("plain", "encrypted"):
        v = r[label]
        lines.append(f"{label:>9}: open + load index {v['open_ms']:.1f} ms; enrol 1 face + crop per transaction "
                     f"median {v['enrol_ms']:.2f} ms, p90 {v['enrol_p90_ms']:.2f} ms")
    return "\n".join(lines)
