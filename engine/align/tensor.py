"""Crops already cut out -> network input: the one definition of colour order + mean/std + CHW.

The fused warp (:func:`engine.align.warp.warp_to_tensor`) computes the same values while it
resamples; this is for crops that exist as pixels (gallery crops, landmark crops, training
crops, calibration folders), so every stage and the trainers normalise identically.
"""
from __future__ import annotations

import numpy as np


def crops_to_tensor(crops: np.ndarray, mean, std, rgb: bool = False) -> np.ndarray:
    """(N, H, W, 3) uint8 BGR -> (N, 3, H, W) float32 ``(pixel - mean) / std``, channels
    reversed to RGB first when ``rgb``. ``mean``/``std``: scalars or per-channel (3,)."""
    x = crops[..., ::-1] if rgb else crops
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return np.ascontiguousarray(((x.astype(np.float32) - mean) / std).transpose(0, 3, 1, 2))
