"""``facescope doctor``: what this machine has, which backend each stage will use, and why.

The backend line is the same :class:`~engine.backends.select.Choice` ``create_session`` acts on:
the choice, its reason, and the fallback chain tried when it cannot open a model. With TensorRT
chosen, each stage also says whether its plan is built (else the stage runs on the first
fallback until ``facescope trt build`` or the app's background builder has made it).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import sys
from pathlib import Path

from engine.backends.select import Choice, Probe, choose_backend, probe
from engine.errors import ModelError

PACKAGES = ("numpy", "opencv-python-headless", "onnx", "onnxruntime", "onnxruntime-gpu", "numba", "sqlite-utils",
            "PySide6-Essentials", "pyqtgraph", "torch", "torchvision", "ultralytics-opencv-headless", "onnxslim",
            "tensorrt", "tensorrt-cu12", "tensorrt-cu13", "cuda-python", "cuda-bindings")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="report Python, packages, GPU/CUDA/TensorRT, and the backend each stage uses")
    p.add_argument("--backend", default="auto", help="the backend you would ask for (default: auto)")
    p.add_argument("--detector", default="yunet")
    p.add_argument("--detector-weights", metavar="PATH", default=None)
    p.add_argument("--landmarks", default="hourglass68")
    p.add_argument("--embedder", default="sface")
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    p.set_defaults(func=run)


def packages() -> dict[str, str | None]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def _plan_state(model: str) -> str:
    """Whether the TensorRT plan this stage would load is cached ("built" / "not built yet ...")."""
    from engine.backends.trt_plan import find_plan
    from engine.cli.trt_cmd import stage_request
    from engine.config import RuntimeConfig
    from engine.models import find_card

    try:
        request = stage_request(find_card(model), RuntimeConfig(backend="tensorrt"))
        return "plan built" if find_plan(request) else (
            f"plan not built yet: runs on the fallback until `facescope trt build --model {model}` or the "
            "app's background build has made it")
    except ModelError as exc:
        return f"plan not checked: {exc}"


def stage_backends(args: argparse.Namespace, machine: Probe) -> dict[str, dict[str, str]]:
    """Per stage: the model and the backend that runs it, with the reason and the fallbacks."""
    choice: Choice = choose_backend(args.backend, machine)
    onnx = {"backend": choice.backend, "why": choice.reason, "fallbacks": list(choice.fallbacks)}
    stages = {"detector": {"model": args.detector, **onnx}}
    weights = args.detector_weights
    if args.detector == "yolo" and weights and Path(weights).suffix == ".pt":
        stages["detector"] = {"model": f"yolo {weights}", "backend": "ultralytics (PyTorch)",
                              "why": ".pt weights run through ultralytics' own predictor; export them to ONNX "
                                     "(trt_build.export.export_yolo) for ONNX Runtime / TensorRT", "fallbacks": []}
    if str(args.landmarks).lower() != "none":
        stages["landmarks"] = {"model": args.landmarks, **onnx}
    stages["embedder"] = {"model": args.embedder, **onnx}
    if choice.backend == "tensorrt":
        for stage in stages.values():
            if stage["backend"] == "tensorrt":
                stage["plan"] = _plan_state(stage["model"])
    return stages


def report(args: argparse.Namespace, machine: Probe | None = None) -> dict:
    m = machine if machine is not None else probe()
    return {
        "python": sys.version.split()[0], "platform": platform.platform(), "packages": packages(),
        "gpus": [g.__dict__ for g in m.gpus], "driver": m.driver, "cuda_runtime": m.cuda_runtime,
        "tensorrt": m.tensorrt, "cuda_python": m.cuda_python, "onnxruntime": m.ort,
        "cuda_works": m.cuda_works, "gpu_verdict": m.gpu_verdict(),
        "onnxruntime_providers": list(m.ort_providers), "probe_notes": list(m.notes),
        "stages": stage_backends(args, m),
    }


def run(args: argparse.Namespace) -> int:
    r = report(args)
    print(f"Python       {r['python']} on {r['platform']}")
    print("Packages     " + ", ".join(f"{k} {v}" for k, v in r["packages"].items() if v))
    missing = [k for k, v in r["packages"].items() if not v]
    print("Not installed " + ", ".join(missing))
    print(f"GPU          {r['gpu_verdict']}")
    print(f"Driver       {r['driver'] or '-'}   CUDA runtime {r['cuda_runtime'] or '-'}   "
          f"TensorRT {r['tensorrt'] or '-'}   cuda-python {r['cuda_python'] or '-'}")
    print(f"ONNX Runtime {r['onnxruntime']}  providers: {', '.join(r['onnxruntime_providers'])}")
    for stage, s in r["stages"].items():
        print(f"{stage:<12} {s['model']:<14} -> {s['backend']:<18} ({s['why']})")
        if s["fallbacks"]:
            print(f"{'':<12} {'':<14}    if it cannot open the model: {' -> '.join(s['fallbacks'])}")
        if "plan" in s:
            print(f"{'':<12} {'':<14}    TensorRT {s['plan']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
    return 0
