"""From a :class:`~engine.backends.trt_plan.PlanRequest` to a cached, parity-checked TensorRT plan.

``ensure_engine``: cache hit, or prepare -> (calibrate) -> build -> parity on real inputs ->
store. The runtime (``engine.backends.tensorrt``) only loads what this stores; the request, its
profile and its cache key are defined on the runtime side (``engine.backends.trt_plan``) so both
agree on which plan a stage needs. Called by ``facescope trt build`` and, in the background, by
:class:`trt_build.background.EngineBuilder`.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.backends.trt_cache import Profile, lookup, plan_path, store, trt_cache_dir
from engine.backends.trt_plan import PlanRequest, calibration_cache_path, plan_key
from engine.errors import ModelError
from engine.models.card import ModelCard, find_card

Stage = Callable[[str, float], None]    # (step, fraction of that step) for progress reports


def _card(request: PlanRequest) -> ModelCard:
    if request.card is not None:
        return request.card
    try:                      # a prepared file is named <card>-<sha16>-v<N>.onnx
        return find_card(Path(request.onnx).stem.rsplit("-", 2)[0])
    except (ModelError, KeyError, ValueError) as exc:
        raise ModelError(f"{request.onnx}: which model card is this? pass PlanRequest(card=...) ({exc})") from None


def calibration_profile(profile: Profile | None, batches: list) -> Profile | None:
    """The one shape calibration runs at (the first batch's), checked to lie inside ``profile``."""
    if profile is None or not batches:
        return None
    first = batches[0]
    shapes = {name: tuple(np.shape(first[name] if isinstance(first, dict) else first)) for name, *_ in profile.shapes}
    for name, shape in shapes.items():
        if not profile.covers(name, shape):
            raise ModelError(f"calibration batches have shape {shape} for {name!r}, outside the engine's profile "
                             f"{profile.as_dict()[name]}")
    return Profile(tuple((name, s, s, s) for name, s in shapes.items()))


def ensure_engine(request: PlanRequest, calibration: list | None = None, cache: Path | None = None,
                  progress: Stage | None = None, cancel=None) -> tuple[Path, dict]:
    """The plan for ``request``: from the cache, or built now, parity-checked and stored.

    ``calibration``: int8 batches (from ``trt_build.calibrate.calibration_batches``) when no
    calibration cache exists yet. ``progress(step, fraction)``: "prepare", TensorRT's build
    phases, "parity", "stored". ``cancel``: a ``threading.Event`` that stops the build.
    Returns (plan path, summary with "cached" True/False). ModelError when it cannot be built
    or fails parity (nothing is cached then)."""
    from trt_build.build import BuildOptions, build_engine
    from trt_build.calibrate import make_calibrator
    from trt_build.parity import engine_parity
    from trt_build.prepare import prepare_onnx

    report = progress or (lambda step, fraction: None)
    onnx_path = Path(request.onnx)
    cpath = calibration_cache_path(onnx_path, cache)
    if request.precision == "int8" and not cpath.is_file() and not calibration:
        raise ModelError(f"int8 needs calibration images the first time: facescope trt build --model "
                         f"{request.model} --precision int8 --calib IMAGE_DIR")
    if request.precision != "int8" or cpath.is_file():
        hit = lookup(plan_key(request, cache), cache)
        if hit is not None:
            return hit, {"plan": str(hit), "cached": True}
    card = _card(request)
    profile = request.profile()
    trt_cache_dir(cache).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=trt_cache_dir(cache)) as tmp:
        report("prepare", 0.0)
        prepared = prepare_onnx(onnx_path, Path(tmp) / onnx_path.name)
        report("prepare", 1.0)
        calibrator = calib_profile = None
        if request.precision == "int8":
            calib_profile = calibration_profile(profile, calibration or [])
            expected = {n: lo for n, lo, _, _ in calib_profile.shapes} if calib_profile else None
            calibrator = make_calibrator(calibration or [], cpath, expected)
        plan_tmp = Path(tmp) / "engine.plan"
        try:
            summary = build_engine(prepared.onnx, plan_tmp, BuildOptions(
                request.precision, request.workspace_mb, profile, calibrator, calib_profile, progress=report,
                cancel=cancel))
        finally:
            if calibrator is not None:
                calibrator.free()
        key = plan_key(request, cache)          # after calibration: the cache's sha is in the key
        report("parity", 0.0)
        try:
            parity = engine_parity(plan_tmp, prepared.onnx, card, profile, request.precision)
        except ModelError as exc:
            if request.precision == "int8" and cpath.is_file():   # scales that give a broken engine: measure again
                cpath.unlink()
                raise ModelError(f"{exc}; calibration cache {cpath.name} removed, calibrate again") from None
            raise
        report("parity", 1.0)
        path = store(key, plan_tmp.read_bytes(), cache, summary["seconds"])
    if path != plan_path(key, cache):
        raise ModelError(f"stored plan {path} is not where its key points ({plan_path(key, cache)})")
    report("stored", 1.0)
    return path, {**summary, "plan": str(path), "cached": False, "parity": parity,
                  "dequantized": prepared.dequantized, "nodes": [prepared.nodes_before, prepared.nodes_after]}
