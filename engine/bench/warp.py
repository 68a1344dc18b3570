"""Benchmark: fused Numba face warp vs per-face cv2.warpAffine + numpy preprocessing.

Both sides produce the same (N, 3, 112, 112) float32 RGB tensor normalised with ArcFace's
(x - 127.5) / 127.5 from the same frame and matrices, timed interleaved in one process so
CPU frequency or load drifts hit both equally. Medians are reported because the 2-core
CI/desktop machines have noisy neighbours.
"""
from __future__ import annotations

import time

import cv2
import numba
import numpy as np

from engine.align import ARCFACE_TEMPLATE_112, estimate_transforms, warp_reference, warp_to_tensor

_MEAN = (127.5, 127.5, 127.5)
_STD = (127.5, 127.5, 127.5)


def _synthetic_frame(rng: np.random.Generator, width: int = 1280, height: int = 720) -> np.ndarray:
    """Smooth random BGR frame: low-frequency colour blobs plus mild noise, like video."""
    coarse = rng.integers(0, 256, size=(height // 16 + 2, width // 16 + 2, 3)).astype(np.float32)
    ys = np.linspace(0, coarse.shape[0] - 1.001, height)
    xs = np.linspace(0, coarse.shape[1] - 1.001, width)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    # Separable bilinear upsampling keeps this numpy-only (no cv2.resize in the bench input).
    rows = coarse[y0] * (1 - fy) + coarse[y0 + 1] * fy
    frame = rows[:, x0] * (1 - fx) + rows[:, x0 + 1] * fx
    frame += rng.normal(0, 6, size=frame.shape)
    # Fancy indexing above leaves a non-C layout; a real frame from cv2 is C-contiguous.
    return np.ascontiguousarray(np.clip(frame, 0, 255).astype(np.uint8))


def random_face_transforms(
    rng: np.random.Generator, batch: int, width: int, height: int
) -> np.ndarray:
    """(batch, 2, 3) float32 forward matrices for plausible faces in a width x height frame.

    Each face: inter-ocular distance 20..120 px (faces ~50..300 px wide, a webcam or
    doorway camera at 720p; at most a quarter of the shorter side in small frames), roll
    +-35 degrees, landmarks jittered by 3% of the eye distance, fitted with
    `estimate_transforms` exactly as the pipeline does. Most faces sit inside the frame;
    every 4th is placed anywhere, so its crop runs off the edge and the border path is
    exercised too.
    """
    tpl = ARCFACE_TEMPLATE_112.astype(np.float64)
    tpl_c = tpl - tpl.mean(axis=0)
    eye_dist_tpl = float(np.linalg.norm(tpl[1] - tpl[0]))
    kps = np.empty((batch, 5, 2))
    eye_max = min(120.0, 0.25 * min(width, height))
    for i in range(batch):
        eye = rng.uniform(min(20.0, eye_max / 2), eye_max)
        s = eye / eye_dist_tpl
        a = np.deg2rad(rng.uniform(-35, 35))
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        margin = 0.0 if i % 4 == 3 else 2.0 * eye  # the crop reaches ~1.6 eye distances out
        centre = rng.uniform([margin, margin], [width - margin, height - margin])
        kps[i] = tpl_c @ rot.T * s + centre + rng.normal(0, 0.03 * eye, size=(5, 2))
    return estimate_transforms(kps, ARCFACE_TEMPLATE_112)


def bench_warp(
    batch: int = 16,
    repeats: int = 200,
    image: np.ndarray | None = None,
    seed: int = 0,
    opencv_threads: int | None = 1,
) -> dict:
    """Time warp_to_tensor (Numba) against warp_reference (cv2 + numpy), same inputs.

    batch: faces per frame; repeats: timed calls per side; image: optional (H, W, 3) uint8
    BGR frame (default: synthetic 1280x720). Returns medians in milliseconds, the speedup
    (opencv_ms / numba_ms), the thread counts and the max abs difference of the outputs.

    opencv_threads: cv2.setNumThreads for the run (restored afterwards; None leaves it).
    The default 1 is OpenCV's *fastest* setting for 112x112 warps here, and it stops
    OpenCV's pool threads from spinning after each call, which on 2 cores steals the
    second core from the Numba call that follows (0.52 -> 0.83 ms measured); with
    opencv_threads=None both sides pay that interference.
    """
    if batch < 1 or repeats < 1:
        raise ValueError(f"batch and repeats must be >= 1, got {batch}, {repeats}")
    rng = np.random.default_rng(seed)
    frame = _synthetic_frame(rng) if image is None else np.ascontiguousarray(image)
    bad = frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3
    if bad or min(frame.shape[:2]) < 8:
        raise ValueError(f"image must be uint8 (H, W, 3) BGR, >= 8 px: {frame.dtype} {frame.shape}")
    M = random_face_transforms(rng, batch, frame.shape[1], frame.shape[0])
    previous = cv2.getNumThreads()
    if opencv_threads is not None:
        cv2.setNumThreads(opencv_threads)
    try:
        return _run(batch, repeats, frame, M)
    finally:
        cv2.setNumThreads(previous)


def _run(batch: int, repeats: int, frame: np.ndarray, M: np.ndarray) -> dict:
    """The interleaved timing loop of `bench_warp`."""

    def run_numba() -> np.ndarray:
        return warp_to_tensor(frame, M, (112, 112), mean=_MEAN, std=_STD, rgb=True)

    def run_opencv() -> np.ndarray:
        return warp_reference(frame, M, (112, 112), mean=_MEAN, std=_STD, rgb=True)

    # Warm-up: JIT compile (or cache load), thread pools, allocator, caches.
    for _ in range(3):
        fused, ref = run_numba(), run_opencv()
    max_abs_diff = float(np.max(np.abs(fused - ref)))

    t_numba, t_opencv = [], []
    for i in range(repeats):
        # Alternate which side goes first so neither always runs with warmer caches.
        order = (run_numba, run_opencv) if i % 2 == 0 else (run_opencv, run_numba)
        for fn in order:
            t0 = time.perf_counter()
            fn()
            dt = (time.perf_counter() - t0) * 1e3
            (t_numba if fn is run_numba else t_opencv).append(dt)
    numba_ms = float(np.median(t_numba))
    opencv_ms = float(np.median(t_opencv))
    return {
        "batch": int(batch),
        "repeats": int(repeats),
        "numba_ms": round(numba_ms, 4),
        "opencv_ms": round(opencv_ms, 4),
        "speedup": round(opencv_ms / numba_ms, 3),
        "numba_threads": int(numba.get_num_threads()),
        "opencv_threads": int(cv2.getNumThreads()),
        "max_abs_diff": max_abs_diff,
    }
