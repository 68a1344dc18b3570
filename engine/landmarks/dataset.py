"""300-W style landmark data: ``*.jpg`` + ``*.pts`` pairs, a held-out split and face boxes.

Everything here is numpy/OpenCV so that training, ``facescope eval landmarks`` and the tests
share one definition of "the face box" for an annotated image: the detector's box that best
overlaps the annotation (what the model sees in the app), or, where the detector finds
nothing there, a box predicted from the annotation with the median detector-to-landmark
relation measured on the other images (counted and reported, never silent).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.boxes import iou_matrix
from engine.errors import ImageError
from engine.landmarks.ibug import N_POINTS
from engine.util.imagefiles import IMAGE_SUFFIXES


@dataclass(frozen=True)
class Sample:
    """One annotated face: ``image`` path, ``points`` (68, 2) float32 px, ``subset`` folder name."""

    image: Path
    points: np.ndarray
    subset: str

    @property
    def key(self) -> str:
        return f"{self.subset}/{self.image.name}"


def read_pts(path: str | Path) -> np.ndarray:
    """Parse an iBUG ``.pts`` file -> (68, 2) float32 (0-based pixels). ValueError if malformed."""
    text = Path(path).read_text().split("{", 1)
    if len(text) != 2 or "}" not in text[1]:
        raise ValueError(f"{path}: not a .pts file (no '{{ ... }}' block)")
    try:
        pts = np.array([[float(v) for v in line.split()] for line in text[1].split("}")[0].strip().splitlines()],
                       np.float32)
    except ValueError as exc:
        raise ValueError(f"{path}: bad coordinate line ({exc})") from None
    if pts.shape != (N_POINTS, 2):
        raise ValueError(f"{path}: expected {N_POINTS} points, got {pts.shape}")
    return pts


def load_samples(root: str | Path) -> list[Sample]:
    """Every ``<name>.pts`` under ``root`` (recursive) with its image; sorted for determinism."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"landmark data folder not found: {root}")
    samples = []
    for pts in sorted(root.rglob("*.pts")):
        image = next((pts.with_suffix(s) for s in IMAGE_SUFFIXES if pts.with_suffix(s).exists()), None)
        if image is None:
            raise FileNotFoundError(f"{pts}: no image beside it ({', '.join(IMAGE_SUFFIXES)})")
        samples.append(Sample(image, read_pts(pts), pts.parent.name))
    if not samples:
        raise FileNotFoundError(f"no .pts files under {root}")
    return samples


def split_samples(samples: Sequence[Sample], val_fraction: float = 0.15) -> tuple[list[Sample], list[Sample]]:
    """Deterministic held-out split by a hash of ``subset/filename`` (stable when files are
    added or removed, the same on every machine). Returns (train, val)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    train, val = [], []
    for s in samples:
        h = int.from_bytes(hashlib.sha1(s.key.encode()).digest()[:4], "little") / 2 ** 32
        (val if h < val_fraction else train).append(s)
    return train, val


def landmark_box(points: np.ndarray) -> np.ndarray:
    """(68, 2) -> (4,) xyxy bounding box of the points."""
    return np.concatenate([points.min(0), points.max(0)]).astype(np.float64)


@dataclass(frozen=True)
class BoxRelation:
    """A square box relative to a reference box: centre offset and side, in units of the
    reference's longer side (here: the median detector box relative to the landmark box, or
    dlib's box convention relative to ours)."""

    dx: float = 0.0
    dy: float = 0.0
    size: float = 1.0

    @classmethod
    def fit(cls, references: np.ndarray, boxes: np.ndarray) -> BoxRelation:
        """Median relation of ``boxes`` (N, 4) xyxy to ``references`` (N, 4); identity if N = 0."""
        ref, b = np.asarray(references, np.float64).reshape(-1, 4), np.asarray(boxes, np.float64).reshape(-1, 4)
        if not len(ref):
            return cls()
        side = np.maximum(ref[:, 2] - ref[:, 0], ref[:, 3] - ref[:, 1])
        rows = np.stack([((b[:, 0] + b[:, 2]) - (ref[:, 0] + ref[:, 2])) / 2 / side,
                         ((b[:, 1] + b[:, 3]) - (ref[:, 1] + ref[:, 3])) / 2 / side,
                         np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) / side], axis=1)
        dx, dy, size = np.median(rows, axis=0)
        return cls(float(dx), float(dy), float(size))

    def apply(self, reference: np.ndarray) -> np.ndarray:
        """The (4,) xyxy box this relation puts around ``reference`` (4,) xyxy."""
        r = np.asarray(reference, np.float64)
        side = max(r[2] - r[0], r[3] - r[1])
        cx, cy = (r[0] + r[2]) / 2 + self.dx * side, (r[1] + r[3]) / 2 + self.dy * side
        half = self.size * side / 2
        return np.array([cx - half, cy - half, cx + half, cy + half])

    def box(self, points: np.ndarray) -> np.ndarray:
        """The box around (68, 2) landmarks."""
        return self.apply(landmark_box(points))


def detector_boxes(samples: Sequence[Sample], detect: Callable[[np.ndarray], np.ndarray],
                   read: Callable[[Path], np.ndarray], min_iou: float = 0.3,
                   progress: bool = False) -> tuple[np.ndarray, np.ndarray, BoxRelation]:
    """Face box per sample: ((N, 4) xyxy, (N,) bool detected, relation used for the rest).

    ``detect(image) -> (M, 4)`` boxes; the one overlapping the landmark box most (IoU >=
    ``min_iou``) is the sample's box.
    """
    from tqdm import tqdm

    boxes = np.zeros((len(samples), 4))
    found = np.zeros(len(samples), bool)
    for i, s in enumerate(tqdm(samples, desc="face boxes", disable=not progress, unit="img")):
        try:
            dets = np.asarray(detect(read(s.image)), np.float64).reshape(-1, 4)
        except ImageError:
            dets = np.zeros((0, 4))
        if len(dets):
            iou = iou_matrix(dets, landmark_box(s.points))[:, 0]
            j = int(np.argmax(iou))
            if iou[j] >= min_iou:
                boxes[i], found[i] = dets[j], True
    rel = BoxRelation.fit(np.array([landmark_box(samples[i].points) for i in np.flatnonzero(found)]).reshape(-1, 4),
                          boxes[found])
    for i in np.flatnonzero(~found):
        boxes[i] = rel.box(samples[i].points)
    return boxes, found, rel
