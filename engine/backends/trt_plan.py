"""Which TensorRT plan a session needs: the request, its optimisation profile, its cache key.

The runtime only *loads* plans (``engine.backends.tensorrt``); building one is the job of
``trt_build`` (export, preparation, calibration through the stages' own code, parity), which
sits above the engine and is started by the front ends. Both sides meet here: a
:class:`PlanRequest` says what a stage will feed its session, ``plan_key`` turns it into the
:class:`~engine.backends.trt_cache.EngineKey` that names the plan, and a request the runtime
could not satisfy is remembered (``missing_plans``) so a front end can hand it to
``trt_build.background.EngineBuilder`` and switch to TensorRT when the build is done.

Profiles cover everything the configs accept, so TensorRT never refuses an input ONNX Runtime
runs: a batch axis gets ``1 .. max_batch`` (opt ``max_batch // 2``: a handful of faces per
frame); dynamic spatial axes get ``32 .. max_side`` rounded up to 32 (opt 640, or max_side if
smaller), where ``max_side`` is the longest network side the detector's config can produce
(``engine.detectors.base.max_net_side``; without it, 4096, the largest ``DetectorConfig``
input size). A wider profile costs execution-context memory (sized for the max shape), not
speed at the opt shape.
"""
from __future__ import annotations

import importlib.metadata
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.backends.trt_cache import EngineKey, Profile, lookup, trt_cache_dir
from engine.config import PRECISIONS
from engine.errors import ModelError
from engine.models.card import ModelCard, sha256_file
from engine.models.prepare import load_onnx

if TYPE_CHECKING:  # only for annotations: the run path does not import onnx
    import onnx

SPATIAL_MIN, SPATIAL_OPT, SPATIAL_MAX = 32, 640, 4096   # DetectorConfig.input_size is checked to [32, 4096]
RECIPE = "prepare-v2"   # bump when prepare/build/profile rules change: old plans then miss the cache


def input_shapes(model: onnx.ModelProto) -> dict[str, tuple[int | str, ...]]:
    """Graph inputs (initializers excluded) -> dims, a name for each dynamic axis."""
    inits = {t.name for t in model.graph.initializer}
    shapes = {}
    for i in model.graph.input:
        if i.name in inits:
            continue
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                     for d in i.type.tensor_type.shape.dim)
        shapes[i.name] = dims
    return shapes


def _round_up(v: int, k: int = 32) -> int:
    return -(-int(v) // k) * k


def profile_for(onnx_path: str | Path, max_batch: int, max_side: int | None = None) -> Profile | None:
    """The optimisation profile for every dynamic input of ``onnx_path`` (None if all static)."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    hi_side = _round_up(max(max_side or SPATIAL_MAX, SPATIAL_MIN))
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
                lo.append(SPATIAL_MIN), opt.append(min(SPATIAL_OPT, hi_side)), hi.append(hi_side)
        shapes.append((name, tuple(lo), tuple(opt), tuple(hi)))
    return Profile(tuple(shapes)) if shapes else None


@dataclass(frozen=True)
class PlanRequest:
    """What one stage's session needs. ``onnx``: the prepared model file the runtime was given;
    ``max_side``: the longest spatial side it will be fed (detectors); ``card``: the stage's
    model card, which the builder preprocesses real parity and calibration inputs with."""

    onnx: Path
    precision: str = "fp16"
    max_batch: int = 16
    workspace_mb: int = 1024
    max_side: int | None = None
    card: ModelCard | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.max_side is not None and self.max_side < SPATIAL_MIN:
            raise ValueError(f"max_side must be >= {SPATIAL_MIN}, got {self.max_side}")

    @property
    def model(self) -> str:
        return self.card.name if self.card is not None else Path(self.onnx).stem

    def profile(self) -> Profile | None:
        return profile_for(self.onnx, self.max_batch, self.max_side)

    def describe(self) -> str:
        side = f", sides <= {_round_up(self.max_side)} px" if self.max_side else ""
        return f"{self.model} ({self.precision}, batch <= {self.max_batch}{side})"


def calibration_cache_path(onnx_path: str | Path, cache: Path | None = None) -> Path:
    return trt_cache_dir(cache) / f"{Path(onnx_path).stem}-{sha256_file(Path(onnx_path))[:16]}.calib"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def plan_key(request: PlanRequest, cache: Path | None = None) -> EngineKey:
    """The key of the plan for ``request`` on this machine's CUDA device 0 (imports TensorRT)."""
    from engine.backends.cuda_api import import_tensorrt, tensorrt_cuda_build
    from engine.backends.select import probe

    trt = import_tensorrt()
    machine = probe()
    if not machine.cuda_works or not machine.gpus:
        raise ModelError("TensorRT needs a working NVIDIA GPU; " + machine.gpu_verdict())
    calib = ""
    if request.precision == "int8":
        cpath = calibration_cache_path(request.onnx, cache)
        if not cpath.is_file():
            raise ModelError(f"int8 needs a calibration cache ({cpath}); make one with facescope trt build "
                             f"--model {request.model} --precision int8 --calib IMAGE_DIR")
        calib = sha256_file(cpath)
    gpu = machine.gpus[0]
    return EngineKey(model=request.model, onnx_sha256=sha256_file(Path(request.onnx)),
                     tensorrt=f"{trt.__version__}/{RECIPE}", gpu=gpu.name, compute_capability=gpu.compute_capability,
                     precision=request.precision, profile=request.profile() or Profile(()),
                     calibration_sha256=calib, tensorrt_build=tensorrt_cuda_build(), onnxslim=_version("onnxslim"))


def find_plan(request: PlanRequest, cache: Path | None = None) -> Path | None:
    """The cached plan for ``request``, or None (never builds)."""
    return lookup(plan_key(request, cache), cache)


_MISSING: dict[PlanRequest, PlanRequest] = {}
_MISSING_LOCK = threading.Lock()


def note_missing(request: PlanRequest) -> None:
    """Remember a request the runtime found no plan for (front ends build them: trt_build.background)."""
    with _MISSING_LOCK:
        _MISSING[request] = request


def missing_plans() -> list[PlanRequest]:
    """Requests for plans not built yet, in the order the stages asked (deduplicated)."""
    with _MISSING_LOCK:
        return list(_MISSING.values())


def forget_missing(request: PlanRequest | None = None) -> None:
    """Drop one request (built, or given up on) or, with None, all of them."""
    with _MISSING_LOCK:
        if request is None:
            _MISSING.clear()
        else:
            _MISSING.pop(request, None)
