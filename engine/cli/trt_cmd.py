"""``facescope trt build|list|clear``: TensorRT plans in the user's cache folder.

A front end: it calls ``trt_build`` (which sits above the engine) to build the plans the
runtime only loads.
"""
from __future__ import annotations

import argparse
import json

from engine.backends import trt_cache
from engine.config import PRECISIONS, DetectorConfig, RuntimeConfig
from engine.errors import FacescopeError

DEFAULT_MODELS = ("yunet", "hourglass68", "sface")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trt", help="build, list or clear cached TensorRT engines (NVIDIA GPU + facescope[trt-cu12])")
    t = p.add_subparsers(dest="trt", metavar="ACTION", required=True)
    b = t.add_parser("build", help="build (or find cached) the engines of models for this GPU",
                     description="Builds the plans the tensorrt backend loads, so the app starts on TensorRT at "
                                 "once: same cache, same key (ONNX sha256, TensorRT version and CUDA build, GPU, "
                                 "compute capability, precision, profile, onnxslim). Each plan is checked against "
                                 "ONNX Runtime on real demo frames at the profile's min/opt/max shapes.")
    b.add_argument("--model", action="append", help="shipped model name (facescope models) or a model card path; "
                                                    f"repeat it; default: {', '.join(DEFAULT_MODELS)}")
    b.add_argument("--precision", choices=PRECISIONS, default="fp16")
    b.add_argument("--calib", metavar="DIR", help="int8: images to calibrate on (frames for a detector, face "
                                                   "images or aligned crops for landmarks / embedders)")
    b.add_argument("--calib-limit", type=int, default=500, help="images read for calibration at most (default 500)")
    b.add_argument("--max-batch", type=int, default=16, help="top of the batch profile (default 16)")
    b.add_argument("--detector-input-size", type=int, nargs=2, metavar=("W", "H"), default=(640, 640),
                   help="detectors: the input size the app runs them at (default 640 640, the app's default)")
    b.add_argument("--native-max-side", type=int, default=None, metavar="PX",
                   help="detectors at native size (input_size None): the longest side the profile covers")
    b.add_argument("--workspace-mb", type=int, default=1024)
    b.set_defaults(func=run_build)
    ls = t.add_parser("list", help="list cached engines with their keys")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=run_list)
    t.add_parser("clear", help="delete every cached engine and calibration cache").set_defaults(func=run_clear)


def stage_request(card, runtime: RuntimeConfig, detector: DetectorConfig | None = None):
    """The PlanRequest the stage for ``card`` makes when it opens its session (as
    ``engine.detectors.yunet`` / ``yolo`` ask: one frame, sides up to ``max_net_side``)."""
    from engine.backends.trt_plan import PlanRequest
    from engine.detectors.base import max_net_side
    from engine.models import prepared_model_path

    max_side, max_batch = None, runtime.max_batch
    if card.family == "detector":
        yunet = card.architecture == "yunet"
        divisor = max(card.size_divisor or 1, *card.extra.get("strides", (32,))) if yunet else 32
        max_batch, max_side = 1, max_net_side(detector or DetectorConfig(name=card.architecture), divisor)
    return PlanRequest(prepared_model_path(card), runtime.precision, max_batch, runtime.workspace_mb, max_side, card)


def _request(card, args: argparse.Namespace):
    detector = None
    if card.family == "detector":
        detector = (DetectorConfig(name=card.architecture, input_size=None, max_side=args.native_max_side)
                    if args.native_max_side else
                    DetectorConfig(name=card.architecture, input_size=tuple(args.detector_input_size)))
    runtime = RuntimeConfig(backend="tensorrt", precision=args.precision, max_batch=args.max_batch,
                            workspace_mb=args.workspace_mb)
    return stage_request(card, runtime, detector)


def run_build(args: argparse.Namespace) -> int:
    from engine.backends.cuda_api import import_cudart, import_tensorrt
    from engine.backends.select import probe
    from engine.backends.trt_plan import calibration_cache_path
    from engine.models import find_card
    from trt_build.calibrate import calibration_batches
    from trt_build.engines import ensure_engine

    cards = [find_card(m) for m in (args.model or DEFAULT_MODELS)]
    import_tensorrt(), import_cudart()          # fail before minutes of calibration, not after
    machine = probe()
    if not machine.cuda_works:
        raise FacescopeError("TensorRT needs a working NVIDIA GPU: " + machine.gpu_verdict())
    for card in cards:
        request = _request(card, args)
        batches = None
        if args.precision == "int8" and not calibration_cache_path(request.onnx).is_file():
            if not args.calib:
                raise FacescopeError("int8 needs --calib IMAGE_DIR the first time (then its calibration cache is "
                                     "reused)")
            size = 1 if card.family == "detector" else min(8, args.max_batch)
            try:
                batches = list(calibration_batches(card, args.calib, size, limit=args.calib_limit))
            except FileNotFoundError as exc:
                raise FacescopeError(str(exc)) from None
            if not batches:
                raise FacescopeError(f"no calibration input found in {args.calib} (no faces detected?)")
            print(f"{card.name}: calibrating on {len(batches)} batches of {size}")
        def progress(step: str, fraction: float, name=card.name, last={}) -> None:  # noqa: B006 - one dict per card
            if last.get(step) != round(fraction, 1):       # a line per 10 % of each step
                last[step] = round(fraction, 1)
                print(f"{name}: {step} {fraction:.0%}", flush=True)

        _, summary = ensure_engine(request, calibration=batches, progress=progress)
        print(json.dumps(summary, indent=2, default=str))
    return 0


def run_list(args: argparse.Namespace) -> int:
    rows = trt_cache.entries()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no cached engines in {trt_cache.trt_cache_dir()}")
    for r in rows:
        k = r["key"] or {}
        print(f"{r['path']}  {r['bytes'] / 1e6:.1f} MB  " + (
            f"{k['model']} {k['precision']} TensorRT {k['tensorrt']} ({k.get('tensorrt_build', '?')}) on {k['gpu']} "
            f"(sm {k['compute_capability']})" if k else "no key sidecar: never loaded, rebuilt on use"))
    return 0


def run_clear(args: argparse.Namespace) -> int:
    n = trt_cache.clear()
    print(f"removed {n} files from {trt_cache.trt_cache_dir()}")
    return 0
