"""Helper process for the crash test: enrol faces, one transaction at a time, until killed.

    python tests/gallery_writer.py GALLERY [TRANSACTIONS]

Each transaction enrols FACES_PER_COMMIT faces of one person (with crops, so pages are
real-sized); after each commit the total number of committed faces is printed and flushed,
so the parent knows a lower bound of what must survive a SIGKILL.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from engine.gallery import Gallery

EMBEDDER_ID = "writer-test"
DIM = 16
FACES_PER_COMMIT = 3


def main(path: str, transactions: int) -> None:
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (FACES_PER_COMMIT, 112, 112, 3), dtype=np.uint8)
    with Gallery.open(path, EMBEDDER_ID, DIM) as gallery:
        done = len(gallery.index)
        for i in range(transactions):
            emb = rng.standard_normal((FACES_PER_COMMIT, DIM)).astype(np.float32)
            gallery.enroll(f"person {i % 37}", emb, crops=list(crops), sources=[f"writer#{i}"] * FACES_PER_COMMIT)
            done += FACES_PER_COMMIT
            print(done, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000)
