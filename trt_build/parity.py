"""A built TensorRT plan against ONNX Runtime on the same inputs (GPU only)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.backends.trt_cache import Profile
from trt_build.compare import cosines


def feeds_for(session, profile: Profile | None, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded uniform [0, 1) inputs at the profile's opt shape (static inputs at their shape)."""
    rng = np.random.default_rng(seed)
    opt = {name: o for name, _, o, _ in (profile.shapes if profile else ())}
    return {name: rng.uniform(0, 1, opt.get(name, session.input_shape(name))).astype(np.float32)
            for name in session.input_names}


def engine_parity(plan: str | Path, onnx: str | Path, profile: Profile | None, seed: int = 0) -> dict:
    """{"min_cosine", "max_abs_diff"} over every output, per sample, TensorRT vs ONNX Runtime CPU."""
    from engine.backends.onnxruntime import OrtSession
    from engine.backends.tensorrt import TensorRTSession

    trt_sess, ort_sess = TensorRTSession(Path(plan)), OrtSession(Path(onnx))
    feeds = feeds_for(trt_sess, profile, seed)
    a, b = trt_sess.run(feeds), ort_sess.run(feeds)
    cos = min(float(cosines(a[k], b[k]).min()) for k in b)
    diff = max(float(np.abs(a[k].astype(np.float32) - b[k]).max()) for k in b)
    return {"min_cosine": cos, "max_abs_diff": diff, "inputs": {k: list(v.shape) for k, v in feeds.items()}}
