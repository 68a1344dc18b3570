"""Does a built plan compute what ONNX Runtime computes, on real inputs, at every profile corner?

A gate that lets a broken engine through is worse than none, so the inputs are real: frames of
the shipped demo clip, through the stage's *own* preprocessing (the detector's letterbox and
scaling; for landmark models and embedders, the faces YuNet finds, cropped / aligned and
normalised by the stage's code, exactly as in INT8 calibration). Uniform noise in [0, 1) for
networks that expect 0-255 pixels quantises to about zero under INT8 and agrees with anything.
The comparison runs at the profile's minimum, optimal and maximum shapes (batch 1 .. max for
the embedder and the hourglass, 32 px .. max side for a detector at native size), since a plan
can be right at one shape and wrong at another. Per sample and per output, the cosine of
TensorRT vs ONNX Runtime (an all-zero output against a non-zero one scores 0, not 1) must reach
the precision's threshold: fp32 0.9999, fp16 0.995, int8 0.98 (the value the GPU tests use for
INT8 embeddings; these thresholds are not yet measured on a GPU by this project).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.backends.trt_cache import Profile
from engine.errors import ModelError
from engine.models.card import ModelCard

MIN_AGREEMENT = {"fp32": 0.9999, "fp16": 0.995, "int8": 0.98}
CORNERS = ("min", "opt", "max")


def agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample cosine of two (N, ...) outputs (float64). Both all-zero: 1; one of them: 0."""
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    cos = (a * b).sum(1) / np.maximum(na * nb, 1e-30)
    return np.where((na == 0) & (nb == 0), 1.0, np.where((na == 0) | (nb == 0), 0.0, cos))


def demo_frames(n: int = 8) -> list[np.ndarray]:
    """``n`` BGR frames spread over the shipped demo clip (faces in most of them); blank frames
    (the clip opens on black) are skipped: a zero input agrees with any engine."""
    import cv2

    from engine.resources import demo_dir

    path = demo_dir() / "megamind.avi"
    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 1
    frames = []
    for i in np.linspace(0, total - 1, n + 1).astype(int)[1:]:
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
        ok, frame = cap.read()
        if ok and frame.std() > 10:
            frames.append(frame)
    cap.release()
    if not frames:
        raise ModelError(f"cannot read frames from {path} for the parity check")
    return frames


def _fit(blob: np.ndarray, h: int, w: int) -> np.ndarray:
    """Pad (with the letterbox's own pad value, the bottom-right pixel) or crop a (1, C, H', W')
    blob to (1, C, h, w): YOLO's letterbox picks its own multiple of 32 below the target size."""
    out = np.empty((*blob.shape[:2], h, w), blob.dtype)
    out[...] = blob[:, :, -1:, -1:]
    hh, ww = min(h, blob.shape[2]), min(w, blob.shape[3])
    out[:, :, :hh, :ww] = blob[:, :, :hh, :ww]
    return out


def real_feeds(card: ModelCard, name: str, shapes: dict[str, tuple[int, ...]],
               frames: list[np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """One feed per corner: ``{corner: array of that corner's shape}`` for input ``name``, made
    from real frames by ``card``'s stage (see the module docstring)."""
    from engine.config import DetectorConfig
    from trt_build.calibrate import INPUTS, _detector_inputs

    frames = frames if frames is not None else demo_frames()
    feeds = {}
    if card.family == "detector":
        for corner, shape in shapes.items():
            n, _, h, w = shape
            to_input = _detector_inputs(card, DetectorConfig(name=card.architecture, input_size=(w, h)))
            blobs = [_fit(to_input(f)[0][None], h, w) for f in frames]
            feeds[corner] = np.ascontiguousarray(np.concatenate([blobs[i % len(blobs)] for i in range(n)]), np.float32)
        return feeds
    samples = [x for f in frames for x in INPUTS[card.family](card)(f)]
    if not samples:
        raise ModelError(f"parity for {card.name}: no face found in the demo frames")
    for corner, shape in shapes.items():
        if tuple(samples[0].shape) != tuple(shape[1:]):
            raise ModelError(f"parity for {card.name}: stage input {samples[0].shape} does not fit input {name!r} "
                             f"{shape}")
        feeds[corner] = np.ascontiguousarray(np.stack([samples[i % len(samples)] for i in range(shape[0])]), np.float32)
    return feeds


def corner_shapes(profile: Profile | None, name: str, static: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    for n, lo, opt, hi in (profile.shapes if profile else ()):
        if n == name:
            return dict(zip(CORNERS, (lo, opt, hi), strict=True))
    return {"static": tuple(static)}


def compare(candidate, reference, feeds: dict[str, dict[str, np.ndarray]]) -> dict:
    """Run both sessions on each named feed; {"min_agreement", "corners": {corner: agreement}}."""
    corners = {}
    for corner, feed in feeds.items():
        a, b = candidate.run(feed), reference.run(feed)
        corners[corner] = min(float(agreement(np.asarray(a[k]), np.asarray(b[k])).min()) for k in b)
    return {"min_agreement": min(corners.values()), "corners": corners,
            "shapes": {c: {k: list(v.shape) for k, v in f.items()} for c, f in feeds.items()}}


def check(report: dict, precision: str, what: str) -> None:
    """ModelError when ``report`` (from :func:`compare`) is below the precision's threshold."""
    need = MIN_AGREEMENT[precision]
    if report["min_agreement"] < need:
        worst = min(report["corners"], key=report["corners"].get)
        raise ModelError(f"{what} ({precision}) disagrees with ONNX Runtime on real inputs: cosine "
                         f"{report['min_agreement']:.4f} < {need} at the {worst} profile shape "
                         f"{report['shapes'][worst]}; not cached")


def engine_parity(plan: str | Path, onnx: str | Path, card: ModelCard, profile: Profile | None, precision: str,
                  frames: list[np.ndarray] | None = None) -> dict:
    """The plan vs ONNX Runtime CPU on real inputs at every profile corner; raises if it fails."""
    from engine.backends.onnxruntime import OrtSession
    from engine.backends.tensorrt import TensorRTSession

    trt_sess, ort_sess = TensorRTSession(Path(plan)), OrtSession(Path(onnx))
    try:
        if len(trt_sess.input_names) != 1:
            raise ModelError(f"parity supports one-input networks; {Path(onnx).name} has {trt_sess.input_names}")
        name = trt_sess.input_names[0]
        shapes = corner_shapes(profile, name, trt_sess.input_shape(name))
        per_corner = real_feeds(card, name, shapes, frames)
        report = compare(trt_sess, ort_sess, {c: {name: x} for c, x in per_corner.items()})
    finally:
        trt_sess.close()
    check(report, precision, f"TensorRT engine for {card.name}")
    return report
