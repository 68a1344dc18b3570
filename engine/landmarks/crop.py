"""Face crop for the landmark model: a square around the detector box, as an affine map.

The crop is centred on the box centre shifted by ``shift_y`` box heights, its side is
``scale * max(w, h)``, and it is resampled to ``size`` x ``size`` pixels. Pixel centres are at
integer coordinates in both images. The same function serves training (with jittered
boxes), evaluation and the app, so the model always sees what it was trained on.
"""
from __future__ import annotations

import cv2
import numpy as np


def crop_matrix(box: np.ndarray, size: int, scale: float, shift_y: float = 0.0,
                angle_deg: float = 0.0) -> np.ndarray:
    """(2, 3) float64 affine taking image pixels to crop pixels.

    ``box``: (4,) xyxy in image pixels. ``angle_deg`` rotates the crop about its centre
    (positive = counter-clockwise in the image; used by training augmentation only).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0 + shift_y * h
    side = scale * max(w, h)
    s = size / side
    a = np.deg2rad(angle_deg)
    cos, sin = s * np.cos(a), s * np.sin(a)
    c = (size - 1) / 2.0
    return np.array([[cos, sin, c - cos * cx - sin * cy],
                     [-sin, cos, c + sin * cx - cos * cy]], np.float64)


def invert(m: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine."""
    return cv2.invertAffineTransform(np.asarray(m, np.float64))


def apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (..., 2) points through a (2, 3) affine."""
    p = np.asarray(points, np.float64)
    return p @ m[:, :2].T + m[:, 2]


def warp(image: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """The (size, size, 3) crop; outside the image is black, like the training crops."""
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
