"""Least-squares similarity transforms (rotation + uniform scale + translation).

Implements Umeyama (1991), "Least-squares estimation of transformation parameters between
two point patterns", with the reflection fix: the rotation is always proper (det = +1), so a
mirrored point set yields the best rotation rather than a flip. For non-degenerate input
this is the same estimate as `skimage.transform.SimilarityTransform.estimate`; where
skimage returns a NaN matrix (all points equal) we raise ValueError instead.

Why least squares and not `cv2.estimateAffinePartial2D` (RANSAC/LMEDS)? With only 5
landmarks robust fitting mostly discards information; on LFW with SFace the least-squares
fit scores 99.10% vs 98.93% for LMEDS (see /work/shared/README.md).
"""
from __future__ import annotations

import numpy as np


def _as_points(name: str, pts: object, ndim: int) -> np.ndarray:
    """Validate a float point array (..., K, 2) and return it as float64."""
    arr = np.asarray(pts)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim != ndim or arr.shape[-1] != 2:
        want = "(K, 2)" if ndim == 2 else "(N, K, 2)"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite coordinates")
    return arr


def _umeyama_batch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Batched Umeyama: src, dst (N, K, 2) float64 -> (N, 2, 3) float64 forward matrices.

    Vectorised with stacked SVDs so a batch of faces costs one numpy call chain instead of a
    Python loop per face. Raises ValueError naming the first degenerate item.
    """
    n, k, _ = src.shape
    src_mean = src.mean(axis=1, keepdims=True)
    dst_mean = dst.mean(axis=1, keepdims=True)
    src_c = src - src_mean
    dst_c = dst - dst_mean
    src_var = (src_c**2).sum(axis=(1, 2)) / k  # total variance, sum over x and y
    cov = np.einsum("nki,nkj->nij", dst_c, src_c) / k  # (N, 2, 2) = dst^T src / K

    u, s, vt = np.linalg.svd(cov)
    # Relative tolerances: coordinates carry ~1e-16 relative rounding noise (e.g. the mean
    # of identical points), so "coincident" means a spread below 1e-10 of the coordinate
    # magnitude. A tiny but genuine face (spread of a pixel or less) passes easily.
    rel = 1e-10
    src_mag = np.maximum(np.abs(src).max(axis=(1, 2)), 1.0)
    dst_mag = np.maximum(np.abs(dst).max(axis=(1, 2)), 1.0)
    src_std = np.sqrt(src_var)
    bad_src = src_std <= rel * src_mag
    bad_cov = s[:, 0] <= rel * dst_mag * src_std
    if bad_src.any():
        i = int(np.argmax(bad_src))
        raise ValueError(
            f"degenerate source points (item {i}): all {k} points coincide, "
            "no similarity transform is defined"
        )
    if bad_cov.any():
        i = int(np.argmax(bad_cov))
        raise ValueError(
            f"degenerate point sets (item {i}): destination points coincide or are "
            "uncorrelated with the source, no unique similarity transform"
        )

    # Reflection fix: d = diag(1, det(U) det(V)) makes R = U D V^T a proper rotation. This
    # single rule covers both of Umeyama's cases (full rank: sign(det cov) == det U det V;
    # rank 1: skimage's explicit det(U) det(V) test).
    d = np.ones((n, 2))
    d[:, 1] = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    rot = np.einsum("nij,nj,njk->nik", u, d, vt)
    scale = (s * d).sum(axis=1) / src_var

    out = np.empty((n, 2, 3), dtype=np.float64)
    out[:, :, :2] = rot * scale[:, None, None]
    out[:, :, 2] = dst_mean[:, 0, :] - np.einsum("nij,nj->ni", out[:, :, :2], src_mean[:, 0, :])
    return out


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Similarity transform that best maps `src` onto `dst` in the least-squares sense.

    src, dst: (K, 2) point arrays (x, y), K >= 2, same K. Returns the (2, 3) float64 matrix
    [[s*cos, -s*sin, tx], [s*sin, s*cos, ty]] such that dst ~= M[:, :2] @ p + M[:, 2].
    Raises ValueError for bad shapes, non-finite values, or degenerate (coincident) points.
    """
    s = _as_points("src", src, 2)
    d = _as_points("dst", dst, 2)
    if s.shape != d.shape:
        raise ValueError(f"src and dst must have the same shape, got {s.shape} and {d.shape}")
    if s.shape[0] < 2:
        raise ValueError(f"need at least 2 point pairs, got {s.shape[0]}")
    return _umeyama_batch(s[None], d[None])[0]


def estimate_transforms(kps: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Forward alignment matrices for a batch of faces.

    kps: (N, K, 2) landmarks in image pixels (K = 5 for YuNet/SCRFD, ordered like the
    template); template: (K, 2) target points in crop pixels (e.g. ARCFACE_TEMPLATE_112).
    Returns (N, 2, 3) float32 matrices mapping image coords -> crop coords, ready for
    `warp_to_tensor` / cv2.warpAffine. N may be 0. Computation is float64; the float32 cast
    at the end costs < 1e-4 px at typical image sizes.
    """
    t = _as_points("template", template, 2)
    k = _as_points("kps", kps, 3)
    if k.shape[1] != t.shape[0]:
        raise ValueError(
            f"kps has {k.shape[1]} points per face but template has {t.shape[0]}: "
            f"kps shape {k.shape}, template shape {t.shape}"
        )
    if t.shape[0] < 2:
        raise ValueError(f"need at least 2 points per face, got {t.shape[0]}")
    if k.shape[0] == 0:
        return np.zeros((0, 2, 3), dtype=np.float32)
    dst = np.broadcast_to(t, k.shape)
    return _umeyama_batch(k, dst).astype(np.float32)
