"""Canonical 5-point landmark templates for aligned face crops.

Point order everywhere in `engine.align`: left eye, right eye, nose tip, left mouth corner,
right mouth corner, where "left" means the point on the *image's* left (the subject's right
eye). Coordinates are pixels (x, y) in the output crop, origin at the top-left pixel centre,
the same convention cv2.warpAffine uses.
"""
from __future__ import annotations

import numbers

import numpy as np

#: ArcFace / InsightFace template for 112x112 crops, (5, 2) float32, (x, y) pixels.
#: SFace and MobileFaceNet were trained on crops aligned to exactly these points.
ARCFACE_TEMPLATE_112: np.ndarray = np.array(
    [
        [38.2946, 51.6963],  # left eye
        [73.5318, 51.5014],  # right eye
        [56.0252, 71.7366],  # nose tip
        [41.5493, 92.3655],  # left mouth corner
        [70.7299, 92.2041],  # right mouth corner
    ],
    dtype=np.float32,
)
ARCFACE_TEMPLATE_112.setflags(write=False)  # shared module constant: keep callers from mutating it


def _parse_size(size: object) -> tuple[int, int]:
    """(width, height) as Python ints, or ValueError explaining what was wrong."""
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (size, size)
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError(f"size must be a (width, height) pair of ints, got {size!r}")
    w, h = size
    for v in (w, h):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise ValueError(f"size must hold ints, got {size!r}")
    w, h = int(w), int(h)
    if w <= 0 or h <= 0:
        raise ValueError(f"size must be positive, got {size!r}")
    return w, h


def scaled_template(size: tuple[int, int] | int = (112, 112)) -> np.ndarray:
    """ARCFACE_TEMPLATE_112 scaled to a square crop of `size` = (width, height) pixels.

    Returns a new (5, 2) float32 array: the 112 template multiplied by size/112, so the face
    keeps the same relative framing at any resolution. A bare int means a square of that side.

    Trade-off: InsightFace's own `norm_crop` handles multiples of 128 differently (it scales by
    size/128 and shifts x by 8*size/128, i.e. a slightly tighter crop); use that only if a
    model was trained that way. Non-square sizes raise ValueError because uniform scaling
    cannot fill them without choosing a framing policy.
    """
    w, h = _parse_size(size)
    if w != h:
        raise ValueError(f"scaled_template needs a square size, got {w}x{h}")
    if w == 112:
        return ARCFACE_TEMPLATE_112.copy()
    # Scale in float64 then round once, so e.g. 224 gives exactly 2x the float32 template.
    return (ARCFACE_TEMPLATE_112.astype(np.float64) * (w / 112.0)).astype(np.float32)
