"""Face alignment: 5-point similarity fit and fused warp into the embedder's input tensor.

Typical use per frame::

    M = estimate_transforms(kps, ARCFACE_TEMPLATE_112)        # (N, 2, 3) image -> crop
    x = warp_to_tensor(frame_bgr, M, (112, 112), rgb=True)    # (N, 3, 112, 112) float32
"""
from __future__ import annotations

from .similarity import estimate_transforms, umeyama
from .template import ARCFACE_TEMPLATE_112, scaled_template
from .tensor import crops_to_tensor
from .warp import warp_crops, warp_to_tensor
from .warp_reference import warp_reference

__all__ = [
    "ARCFACE_TEMPLATE_112",
    "crops_to_tensor",
    "estimate_transforms",
    "scaled_template",
    "umeyama",
    "warp_crops",
    "warp_reference",
    "warp_to_tensor",
]
