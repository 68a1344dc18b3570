"""The cached path from an ONNX file to a TensorRT plan, shared by the runtime backend and
``facescope trt build``: key -> cache hit, or prepare -> build -> parity -> store.

Profiles: a batch axis (named, at dim 0) gets ``1 .. max_batch`` with opt = max_batch // 2
(the pipeline embeds a handful of faces per frame); dynamic spatial axes (detectors run at the
frame's own size when ``DetectorConfig.input_size`` is None) get 32 .. 1920 px, opt 640.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.backends.select import probe
from engine.backends.trt_cache import EngineKey, Profile, lookup, plan_path, store, trt_cache_dir
from engine.errors import ModelError
from engine.models.card import sha256_file
from engine.models.prepare import load_onnx
from trt_build.prepare import input_shapes, prepare_onnx

SPATIAL = (32, 640, 1920)
RECIPE = "prepare-v1"        # bump when prepare/build settings change: old plans then miss the cache
MIN_COSINE = {"fp32": 0.9999, "fp16": 0.99, "int8": 0.9}   # below this the engine is broken, not imprecise


@dataclass(frozen=True)
class EngineOptions:
    precision: str = "fp16"
    max_batch: int = 16
    workspace_mb: int = 1024


def profile_for(onnx_path: str | Path, max_batch: int, spatial: tuple[int, int, int] = SPATIAL) -> Profile | None:
    """The optimisation profile for every dynamic input of ``onnx_path`` (None if all static)."""
    shapes = []
    for name, dims in input_shapes(load_onnx(Path(onnx_path))).items():
        if all(isinstance(d, int) and d > 0 for d in dims):
            continue
        lo, opt, hi = [], [], []
        for axis, d in enumerate(dims):
            if isinstance(d, int) and d > 0:
                lo.append(d), opt.append(d), hi.append(d)
            elif axis == 0:
                lo.append(1), opt.append(max(1, max_batch // 2)), hi.append(max_batch)
            else:
                lo.append(spatial[0]), opt.append(spatial[1]), hi.append(spatial[2])
        shapes.append((name, tuple(lo), tuple(opt), tuple(hi)))
    return Profile(tuple(shapes)) if shapes else None


def calibration_cache_path(onnx_path: str | Path, cache: Path | None = None) -> Path:
    return trt_cache_dir(cache) / f"{Path(onnx_path).stem}-{sha256_file(Path(onnx_path))[:16]}.calib"


def engine_key(onnx_path: str | Path, options: EngineOptions, cache: Path | None = None) -> EngineKey:
    """The key of the plan for ``onnx_path`` on this machine's first GPU."""
    from trt_build.cuda_api import import_tensorrt

    trt = import_tensorrt()
    gpus = probe().gpus
    if not gpus:
        raise ModelError("TensorRT needs an NVIDIA GPU; none was found (facescope doctor says why)")
    calib = ""
    if options.precision == "int8":
        cpath = calibration_cache_path(onnx_path, cache)
        if not cpath.is_file():
            raise ModelError(f"int8 needs a calibration cache ({cpath}); make one with "
                             f"facescope trt build --model NAME --precision int8 --calib IMAGE_DIR")
        calib = sha256_file(cpath)
    profile = profile_for(onnx_path, options.max_batch) or Profile(())
    return EngineKey(model=Path(onnx_path).stem, onnx_sha256=sha256_file(Path(onnx_path)),
                     tensorrt=f"{trt.__version__}/{RECIPE}", gpu=gpus[0].name,
                     compute_capability=gpus[0].compute_capability, precision=options.precision,
                     profile=profile, calibration_sha256=calib)


def ensure_engine(onnx_path: str | Path, options: EngineOptions = EngineOptions(), cache: Path | None = None,
                  calibration: list[np.ndarray] | None = None) -> tuple[Path, dict]:
    """The plan for ``onnx_path``: from the cache, or built now (then parity-checked against
    ONNX Runtime and stored). ``calibration``: int8 batches when no calibration cache exists
    yet. Returns (plan path, summary with "cached" True/False)."""
    from trt_build.build import BuildOptions, build_engine
    from trt_build.calibrate import make_calibrator
    from trt_build.parity import engine_parity

    onnx_path = Path(onnx_path)
    cpath = calibration_cache_path(onnx_path, cache)
    if options.precision == "int8" and not cpath.is_file() and not calibration:
        raise ModelError(f"int8 needs calibration images the first time: facescope trt build --model "
                         f"{onnx_path.stem} --precision int8 --calib IMAGE_DIR")
    if options.precision != "int8" or cpath.is_file():
        hit = lookup(engine_key(onnx_path, options, cache), cache)
        if hit is not None:
            return hit, {"plan": str(hit), "cached": True}
    profile = profile_for(onnx_path, options.max_batch)
    trt_cache_dir(cache).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=trt_cache_dir(cache)) as tmp:
        prepared = prepare_onnx(onnx_path, Path(tmp) / onnx_path.name)
        calibrator, calib_profile = None, None
        if options.precision == "int8":
            calibrator = make_calibrator(calibration or [], cpath)
            if profile is not None and calibration:   # calibration runs at the batches' one shape
                shape = tuple(calibration[0].shape)
                calib_profile = Profile(tuple((name, shape, shape, shape) for name, *_ in profile.shapes))
        plan_tmp = Path(tmp) / "engine.plan"
        summary = build_engine(prepared.onnx, plan_tmp, BuildOptions(options.precision, options.workspace_mb, profile,
                                                                       calibrator, calib_profile))
        key = engine_key(onnx_path, options, cache)   # after calibration: the cache's sha is in the key
        parity = engine_parity(plan_tmp, prepared.onnx, profile)
        if parity["min_cosine"] < MIN_COSINE[options.precision]:
            raise ModelError(f"TensorRT {options.precision} engine for {onnx_path.name} disagrees with ONNX Runtime "
                             f"(cosine {parity['min_cosine']:.4f} < {MIN_COSINE[options.precision]}); not cached")
        path = store(key, plan_tmp.read_bytes(), cache, summary["seconds"])
    assert path == plan_path(key, cache)
    return path, {**summary, "plan": str(path), "cached": False, "parity": parity,
                  "dequantized": prepared.dequantized, "nodes": [prepared.nodes_before, prepared.nodes_after]}
