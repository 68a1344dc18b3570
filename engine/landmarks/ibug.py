"""The iBUG 68-point scheme: index groups, the mirror permutation and the 68 -> 5 reduction.

Indices are 0-based (iBUG's 1-based point 37 is index 36). "Left/right" in names below are
*image* left/right, which is what the ArcFace 5-point template uses too.
"""
from __future__ import annotations

import numpy as np

N_POINTS = 68
EYE_IMAGE_LEFT = slice(36, 42)    # person's right eye
EYE_IMAGE_RIGHT = slice(42, 48)   # person's left eye
OUTER_EYE_CORNERS = (36, 45)      # NME normaliser ("inter-ocular", outer corners)
NOSE_TIP = 30
MOUTH_CORNERS = (48, 54)


def _mirror() -> np.ndarray:
    pairs = [(i, 16 - i) for i in range(8)]                       # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]                 # brows
    pairs += [(31, 35), (32, 34)]                                 # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]   # outer lips
    pairs += [(60, 64), (61, 63), (65, 67)]                       # inner lips
    perm = np.arange(N_POINTS)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


MIRROR = _mirror()  # points[MIRROR] re-indexes a horizontally flipped face


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """(..., 68, 2) -> (..., 5, 2): eye centres (mean of the 6 eye points), nose tip, mouth
    corners, in the ArcFace template order (image-left eye first)."""
    lm = np.asarray(landmarks, np.float32)
    return np.stack([lm[..., EYE_IMAGE_LEFT, :].mean(-2), lm[..., EYE_IMAGE_RIGHT, :].mean(-2),
                     lm[..., NOSE_TIP, :], lm[..., MOUTH_CORNERS[0], :], lm[..., MOUTH_CORNERS[1], :]], axis=-2)


def interocular(landmarks: np.ndarray) -> np.ndarray:
    """(..., 68, 2) -> (...,) distance between the outer eye corners (300-W's NME normaliser)."""
    lm = np.asarray(landmarks, np.float64)
    return np.linalg.norm(lm[..., OUTER_EYE_CORNERS[0], :] - lm[..., OUTER_EYE_CORNERS[1], :], axis=-1)
