"""Sub-pixel decoding of landmark heatmaps (integral regression / soft-argmax).

A heatmap of H x W cells over a crop of ``stride * W`` pixels is a logit map; its spatial
softmax is read as a probability distribution and the landmark is its expectation. This is
differentiable (training uses the same decoder, see ``engine.train.landmark_model``) and is
sub-pixel by construction, unlike argmax, which quantises to the cell size (4 px here).
Cell j covers crop pixels [stride*j - 0.5, stride*(j+1) - 0.5), so its centre is at
``stride*j + (stride-1)/2``.
"""
from __future__ import annotations

import numpy as np


def soft_argmax(heatmaps: np.ndarray, stride: float) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, H, W) logits -> ((N, K, 2) crop pixels x, y; (N, K) peak probability in (0, 1])."""
    hm = np.asarray(heatmaps, np.float32)
    n, k, h, w = hm.shape
    flat = hm.reshape(n, k, h * w).astype(np.float64)
    flat = flat - flat.max(-1, keepdims=True)
    p = np.exp(flat)
    p /= p.sum(-1, keepdims=True)
    p = p.reshape(n, k, h, w)
    ex = (p.sum(2) * np.arange(w)).sum(-1)
    ey = (p.sum(3) * np.arange(h)).sum(-1)
    off = (stride - 1) / 2.0
    xy = np.stack([ex * stride + off, ey * stride + off], axis=-1).astype(np.float32)
    return xy, p.reshape(n, k, -1).max(-1).astype(np.float32)
