"""Options shared by several commands and the objects they build."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.config import (
    LANDMARK_ALIGN,
    PRECISIONS,
    DetectorConfig,
    EmbedderConfig,
    LandmarkConfig,
    MatchConfig,
    RecognizerConfig,
    RuntimeConfig,
)


def _size(text: str) -> tuple[int, int] | None:
    if text in ("native", "auto"):
        return None
    try:
        w, _, h = text.lower().partition("x")
        return int(w), int(h or w)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH (e.g. 640x640) or 'native', got {text!r}") from None


def add_model_args(p: argparse.ArgumentParser, det_size: str = "native") -> None:
    g = p.add_argument_group("models")
    g.add_argument("--detector", default="yunet", help="detector name: yunet or yolo (default: yunet)")
    g.add_argument("--detector-weights", metavar="PATH", default=None,
                   help="yolo only: a .pt file (run by ultralytics) or an ONNX model card/folder "
                        "(default: the shipped yolo11p-face)")
    g.add_argument("--det-size", type=_size, default=_size(det_size), metavar="WxH",
                   help=f"detector input size, or 'native' = the image's own size (default: {det_size})")
    g.add_argument("--det-threshold", type=float, default=None, help="detector score threshold (default: model card)")
    g.add_argument("--min-face", type=float, default=0.0, help="ignore faces smaller than this many pixels")
    g.add_argument("--landmarks", default="hourglass68", metavar="MODEL",
                   help="68-point landmark model (name or card path), or 'none' (default: hourglass68)")
    g.add_argument("--align", choices=LANDMARK_ALIGN, default="landmarks",
                   help="alignment points: the landmark model's (landmarks, default: more accurate on LFW) or "
                        "the detector's when it has them (auto, detector); box-only detectors always use the "
                        "landmarks")
    g.add_argument("--embedder", default="sface", help="embedder name or path to a model card (default: sface)")
    g.add_argument("--flip", action="store_true", help="average embeddings of the face and its mirror image")
    g.add_argument("--threads", type=int, default=0,
                   help="CPU threads per model (0 = auto: all cores; with several sources one for the detector and "
                        "landmarks, all cores for the embedder)")
    g.add_argument("--backend", default="auto",
                   help="inference backend: auto (TensorRT on an NVIDIA GPU with TensorRT installed, else ONNX "
                        "Runtime CUDA, else ONNX Runtime CPU; `facescope doctor` says which and why), tensorrt, "
                        "onnxruntime-cuda or onnxruntime (default: auto)")
    g.add_argument("--precision", choices=PRECISIONS, default="fp16",
                   help="TensorRT engine precision (default fp16; int8 needs `facescope trt build --precision "
                        "int8 --calib DIR` first)")


def add_threshold_arg(p: argparse.ArgumentParser) -> None:
    """The open-set decision's settings (engine.gallery.decision); None = the embedder's calibration."""
    p.add_argument("--threshold", type=float, default=None,
                   help="cosine similarity below which a face is 'unknown' (default: the embedder's calibrated "
                        "open-set threshold, SFace 0.461; else its model card's)")
    p.add_argument("--confirmed", type=float, default=None,
                   help="cosine similarity from which a name is confirmed; between the two it is probable, "
                        "shown as 'Name?' (default: calibrated, SFace 0.519)")
    p.add_argument("--margin", type=float, default=None,
                   help="a confirmed name must lead the second-best person by this much (default: calibrated, "
                        "SFace 0.03)")


def recognizer_config(args: argparse.Namespace, realtime: bool = False, multi: bool = False) -> RecognizerConfig:
    """The config tree from the shared options, on the still-image preset or (``realtime``, for
    video through the tracker) the real-time one, which gives a detector without
    ``--det-threshold`` the tracker's low threshold. ``multi``: for several sources through one
    engine (:func:`engine.multi.multi_runtime`: the models' threads, unless ``--threads`` is set)."""
    parts = dict(
        detector=DetectorConfig(name=args.detector, input_size=args.det_size, score_threshold=args.det_threshold,
                                min_face_size=args.min_face),
        embedder=EmbedderConfig(name=args.embedder, flip=args.flip),
        runtime=_runtime(args, multi),
        match=MatchConfig(threshold=getattr(args, "threshold", None), confirmed=getattr(args, "confirmed", None),
                          margin=getattr(args, "margin", None)),
        landmarks=LandmarkConfig(model=None if str(args.landmarks).lower() == "none" else args.landmarks,
                                 align=args.align),
        detector_weights=args.detector_weights,
    )
    if realtime:
        from engine.pipeline import realtime_config

        return realtime_config(None, **parts)
    return RecognizerConfig.still(**parts)


def _runtime(args: argparse.Namespace, multi: bool) -> RuntimeConfig:
    runtime = RuntimeConfig(backend=args.backend, threads=args.threads, precision=args.precision)
    if multi:
        from engine.multi import multi_runtime

        runtime = multi_runtime(runtime)
    return runtime


def build_recognizer(args: argparse.Namespace, realtime: bool = False, multi: bool = False):
    """``Recognizer.from_config(recognizer_config(args, realtime, multi))``."""
    from engine.recognizer import Recognizer

    return Recognizer.from_config(recognizer_config(args, realtime, multi))


def build_tracking_recognizer(args: argparse.Namespace, multi: bool = False):
    """The real-time preset's recognizer (see :func:`recognizer_config`); ``multi`` for several sources."""
    return build_recognizer(args, realtime=True, multi=multi)


def write_json(path: str | Path | None, payload: dict) -> None:
    """Write one JSON object (the machine-readable result of an eval/bench command)."""
    if path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        print(f"wrote {path}")


def say_error(text: str) -> None:
    """A problem a run goes on through (a gallery it could not reload, a full disk), on stderr as it happens."""
    print(f"facescope: {text}", file=sys.stderr, flush=True)


def open_events_file(path: str | Path):
    """``run --events``: the JSON-lines file (:class:`engine.events_out.jsonl.JsonlFile`: private,
    appended to, one write per line; a full disk drops events with a message, the run goes on); a
    clear FacescopeError when it cannot be opened at all."""
    from engine.errors import FacescopeError
    from engine.events_out.jsonl import JsonlFile

    try:
        return JsonlFile(path, say=say_error)
    except OSError as exc:
        raise FacescopeError(f"cannot write events file {path}: {exc.strerror or exc}") from None
