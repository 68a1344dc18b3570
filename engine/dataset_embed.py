"""Embedding a list of still images (evaluation, calibration, bulk enrolment).

One face per image: the detection whose box contains the image centre, largest first
(benchmark images are centred on their subject); the largest face when none does. Images
with no detection fall back to the median keypoints of the detected images, in coordinates
relative to the image size — the usual treatment in LFW evaluations. The fallback count is
reported so that a number is never quietly flattered.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.errors import ImageError
from engine.imageio import read_image
from engine.recognizer import Recognizer
from engine.records import Faces


@dataclass
class EmbeddedSet:
    """Embeddings (N, D) for N paths; ``detected`` (N,) bool; ``failed`` lists unreadable files."""

    embeddings: np.ndarray
    detected: np.ndarray
    failed: list[str]

    @property
    def fallbacks(self) -> int:
        return int((~self.detected).sum()) - len(self.failed)


def central_face(faces: Faces, width: int, height: int) -> int | None:
    """Index of the subject face of a centred photo, or None when there are no faces."""
    if len(faces) == 0:
        return None
    cx, cy = width / 2, height / 2
    b = faces.boxes
    contains = (b[:, 0] <= cx) & (b[:, 2] >= cx) & (b[:, 1] <= cy) & (b[:, 3] >= cy)
    areas = faces.areas
    pool = np.flatnonzero(contains) if contains.any() else np.arange(len(faces))
    return int(pool[np.argmax(areas[pool])])


def embed_paths(recognizer: Recognizer, paths: Sequence[str | Path], batch: int = 64,
                progress: bool = True, desc: str = "embedding",
                select: Callable[[Faces, int, int], int | None] = central_face) -> EmbeddedSet:
    """Detect, pick one face per image, align and embed in batches of ``batch`` faces."""
    embedder = recognizer.embedder
    n = len(paths)
    emb = np.zeros((n, embedder.dim), np.float32)
    detected = np.zeros(n, bool)
    failed: list[str] = []
    pending_x: list[np.ndarray] = []
    pending_i: list[int] = []
    missing: list[tuple[int, np.ndarray]] = []  # (index, image) for the fallback pass
    rel_kps: list[np.ndarray] = []

    def flush() -> None:
        if pending_x:
            emb[pending_i] = embedder.embed_tensor(np.concatenate(pending_x))
            pending_x.clear()
            pending_i.clear()

    for i, path in enumerate(tqdm(paths, desc=desc, unit="img", disable=not progress)):
        try:
            image = read_image(path)
        except ImageError as exc:
            failed.append(str(exc))
            continue
        h, w = image.shape[:2]
        faces = recognizer.detect(image)
        k = select(faces, w, h)
        if k is None:
            missing.append((i, image))
            continue
        kps = recognizer.ensure_keypoints(image, faces.select([k])).keypoints
        rel_kps.append(kps[0] / np.array([w, h], np.float32))
        pending_x.append(embedder.align(image, kps))
        pending_i.append(i)
        detected[i] = True
        if len(pending_i) >= batch:
            flush()
    flush()
    if missing and rel_kps:
        median = np.median(np.stack(rel_kps), axis=0)
        for i, image in missing:
            h, w = image.shape[:2]
            pending_x.append(embedder.align(image, (median * np.array([w, h], np.float32))[None]))
            pending_i.append(i)
        flush()
    return EmbeddedSet(emb, detected, failed)
