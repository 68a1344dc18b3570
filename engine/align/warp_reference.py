"""The readable specification of :func:`engine.align.warp.warp_to_tensor`: per-face
cv2.warpAffine + numpy, same signature and the same bits (tests/test_align.py), and the
opponent of ``facescope bench warp``."""
from __future__ import annotations

import cv2
import numpy as np

from .warp import _check_out, _prepare


def warp_reference(
    image: np.ndarray,
    M: np.ndarray,
    size: tuple[int, int] = (112, 112),
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    rgb: bool = True,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Baseline with `warp_to_tensor`'s signature: per-face cv2.warpAffine + numpy.

    The readable specification and the benchmark's opponent, tuned rather than a strawman:
    warps land in one preallocated crop batch, normalisation is two ufuncs over CHW planes.
    """
    img, m64, w, h, mean32, std32 = _prepare(image, M, size, mean, std)
    out = _check_out(out, (m64.shape[0], 3, h, w))
    crops = np.empty((m64.shape[0], h, w, 3), dtype=np.uint8)
    for i in range(m64.shape[0]):
        cv2.warpAffine(img, m64[i], (w, h), dst=crops[i], flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # Broadcasting over contiguous (h, w) planes is ~5x faster in numpy than over a
    # length-3 last axis (HWC), with identical bits.
    x = crops.transpose(0, 3, 1, 2)
    if rgb:
        x = x[:, ::-1]
    np.subtract(x, mean32[:, None, None], out=out, dtype=np.float32)
    np.divide(out, std32[:, None, None], out=out)
    return out
