"""``facescope trt build|list|clear``: TensorRT engines in the user's cache folder."""
from __future__ import annotations

import argparse
import json

from engine.backends import trt_cache
from engine.config import PRECISIONS
from engine.errors import FacescopeError, ModelError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trt", help="build, list or clear cached TensorRT engines (NVIDIA GPU + facescope[trt])")
    t = p.add_subparsers(dest="trt", metavar="ACTION", required=True)
    b = t.add_parser("build", help="build (or find cached) the engine of a model for this GPU",
                     description="Builds the engine the tensorrt backend would build on first use, so the app "
                                 "starts at once later: same cache, same key (ONNX sha256, TensorRT version, GPU, "
                                 "compute capability, precision, profile).")
    b.add_argument("--model", required=True, help="shipped model name (facescope models) or a model card path")
    b.add_argument("--precision", choices=PRECISIONS, default="fp16")
    b.add_argument("--calib", metavar="DIR", help="int8: images to calibrate on (frames for a detector, face "
                                                   "images or aligned crops for landmarks / embedders)")
    b.add_argument("--calib-limit", type=int, default=500, help="images read for calibration at most (default 500)")
    b.add_argument("--max-batch", type=int, default=16, help="top of the batch profile (default 16)")
    b.add_argument("--workspace-mb", type=int, default=1024)
    b.set_defaults(func=run_build)
    ls = t.add_parser("list", help="list cached engines with their keys")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=run_list)
    t.add_parser("clear", help="delete every cached engine and calibration cache").set_defaults(func=run_clear)


def run_build(args: argparse.Namespace) -> int:
    from engine.models import find_card, prepared_model_path
    from trt_build.calibrate import calibration_batches
    from trt_build.cuda_api import import_cudart, import_tensorrt
    from trt_build.engines import EngineOptions, calibration_cache_path, ensure_engine

    card = find_card(args.model)
    import_tensorrt(), import_cudart()          # fail before minutes of calibration, not after
    from engine.backends.select import probe
    if not probe().gpus:
        raise ModelError("TensorRT needs an NVIDIA GPU; none was found (facescope doctor says why)")
    onnx = prepared_model_path(card)
    batches = None
    if args.precision == "int8" and not calibration_cache_path(onnx).is_file():
        if not args.calib:
            raise FacescopeError("int8 needs --calib IMAGE_DIR the first time (then its calibration cache is reused)")
        size = 1 if card.family == "detector" else min(8, args.max_batch)
        try:
            batches = list(calibration_batches(card, args.calib, size, limit=args.calib_limit))
        except FileNotFoundError as exc:
            raise FacescopeError(str(exc)) from None
        if not batches:
            raise FacescopeError(f"no calibration input found in {args.calib} (no faces detected?)")
        print(f"calibrating on {len(batches)} batches of {size}")
    _, summary = ensure_engine(onnx, EngineOptions(args.precision, args.max_batch, args.workspace_mb),
                               calibration=batches)
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
            f"{k['model']} {k['precision']} TensorRT {k['tensorrt']} on {k['gpu']} (sm {k['compute_capability']})"
            if k else "no key sidecar: never loaded, rebuilt on use"))
    return 0


def run_clear(args: argparse.Namespace) -> int:
    n = trt_cache.clear()
    print(f"removed {n} files from {trt_cache.trt_cache_dir()}")
    return 0
