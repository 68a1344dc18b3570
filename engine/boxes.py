"""Geometry of axis-aligned boxes in xyxy pixel coordinates (x1, y1, x2, y2), float64 maths."""
from __future__ import annotations

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of xyxy boxes ``a`` (N, 4) and ``b`` (M, 4), by broadcasting.

    Either argument may be one box (4,) or any array-like; empty inputs give an empty matrix.
    Degenerate boxes (zero area) have IoU 0 with everything, including themselves.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def overlapping(boxes: np.ndarray) -> np.ndarray:
    """(N,) bool: does each of (N, 4) xyxy ``boxes`` overlap another one (a positive-area intersection)?"""
    touching = iou_matrix(boxes, boxes) > 0
    np.fill_diagonal(touching, False)
    return touching.any(axis=1)
