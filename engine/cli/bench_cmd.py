"""``facescope bench``: the pipeline benchmark (``--source``) and micro-benchmarks (``warp``, ``models``, ...)."""
from __future__ import annotations

import argparse

from engine.cli.common import add_model_args, add_threshold_arg, write_json
from engine.cli.gate_args import add_gate_args, decode_on_demand, gate_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark the real-time pipeline on a video (--source), or warp / search",
                       description="With --source: run the real-time pipeline on a video file as fast as possible "
                                   "and report FPS, per-stage and end-to-end latency; --baseline opencv-zoo also runs "
                                   "cv2.FaceDetectorYN + cv2.FaceRecognizerSF on every face of the same frames.")
    p.add_argument("--source", action="append", default=[],
                   help="video file to benchmark the pipeline on; repeat it for several sources at once, paced like "
                        "cameras through one engine (per-source FPS, latency, accuracy, CPU cores)")
    p.add_argument("--multi", action="store_true",
                   help="the several-sources benchmark even with one --source (same code path, for comparison)")
    p.add_argument("--frames", type=int, default=0, help="frames to process (0 = the whole file)")
    p.add_argument("--baseline", choices=["opencv-zoo"], help="also run this baseline on the same frames")
    p.add_argument("--gallery", help="gallery to identify against (default: built from --truth, or the demo manifest)")
    p.add_argument("--truth", help="ground-truth JSON of a synthetic clip (default: SOURCE.json if it exists)")
    p.add_argument("--no-latency-pass", action="store_true",
                   help="skip the second pass paced at the file's native rate (camera-like end-to-end latency)")
    p.add_argument("--json", metavar="PATH")
    add_threshold_arg(p)
    add_model_args(p, det_size="640x384")
    add_gate_args(p)
    p.set_defaults(func=run_pipeline, bench=None)
    bench = p.add_subparsers(dest="bench", metavar="BENCH")

    w = bench.add_parser("warp", help="fused Numba warp vs cv2.warpAffine + numpy, same inputs, same run")
    w.add_argument("--batch", type=int, default=16, help="faces per frame (default 16)")
    w.add_argument("--repeats", type=int, default=200)
    w.add_argument("--json", metavar="PATH")
    w.set_defaults(func=run_warp)

    g = bench.add_parser("gui", help="event-loop latency of the desktop window while it runs a source")
    g.add_argument("--source", default=None, help="video file (default: the shipped demo clip)")
    g.add_argument("--seconds", type=float, default=15.0, help="measurement time after warm-up (default 15)")
    g.add_argument("--json", metavar="PATH")
    g.set_defaults(func=run_gui)

    ph = bench.add_parser("photos", help="LFW people identified in photos upscaled 1-16x (big faces), with and "
                                         "without the still-image detector pyramid")
    ph.add_argument("--lfw", default="../shared/data/lfw", help="LFW folder (default ../shared/data/lfw)")
    ph.add_argument("--people", type=int, default=60, help="the first N people with >= 2 images (default 60)")
    ph.add_argument("--scales", default="1,8,16", help="comma-separated upscale factors (default 1,8,16)")
    ph.add_argument("--json", metavar="PATH")
    add_threshold_arg(ph)
    add_model_args(ph)
    ph.set_defaults(func=run_photos)

    gc = bench.add_parser("gallery", help="what encryption at rest costs: open/load and enrol, plain vs "
                                          "encrypted, same gallery (needs the secure extra)")
    gc.add_argument("--faces", type=int, default=6000, help="faces in the gallery (default 6000)")
    gc.add_argument("--json", metavar="PATH")
    gc.set_defaults(func=run_gallery_crypto)

    m = bench.add_parser("models", help="CPU per call of each shipped model: as prepared (PRelu rewritten) vs "
                                        "PRelu kept, same input, one ONNX Runtime thread")
    m.add_argument("--model", action="append", default=[], help="a shipped model name; repeat it (default: all)")
    m.add_argument("--repeats", type=int, default=30)
    m.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    m.add_argument("--json", metavar="PATH")
    m.set_defaults(func=run_models)

    sr = bench.add_parser("sightings", help="reading stored sightings (Find similar, sightings search, regroup "
                                            "snapshot, the unknown-people list) with and without their covering "
                                            "indexes, plain and encrypted")
    sr.add_argument("--size", type=int, default=20_000, help="stored sightings (default 20000, the retention cap)")
    sr.add_argument("--repeats", type=int, default=5)
    sr.add_argument("--json", metavar="PATH")
    sr.set_defaults(func=run_sightings_read)

    s = bench.add_parser("search", help="gallery search latency over N stored embeddings")
    s.add_argument("--size", type=int, default=100_000, help="stored embeddings (default 100000)")
    s.add_argument("--dim", type=int, default=128)
    s.add_argument("--queries", type=int, default=500)
    s.add_argument("--json", metavar="PATH")
    s.set_defaults(func=run_search)

    from engine.cli import bench_corpus_cmd

    bench_corpus_cmd.register(bench)

    from engine.cli import bench_soak_cmd  # facescope bench soak (its own module)

    bench_soak_cmd.register(bench)


def _report(title: str, result: dict, path: str | None) -> None:
    print(title)
    for key, value in result.items():
        print(f"  {key:>24}: {value:.4g}" if isinstance(value, float) else f"  {key:>24}: {value}")
    write_json(path, result)


def run_warp(args: argparse.Namespace) -> int:
    from engine.bench.warp import bench_warp

    if args.batch < 1 or args.repeats < 1:
        raise ValueError("--batch and --repeats must be >= 1")
    _report(f"warp benchmark (batch {args.batch})", bench_warp(batch=args.batch, repeats=args.repeats), args.json)
    return 0


def run_models(args: argparse.Namespace) -> int:
    from engine.bench.models import bench_models, format_models

    if args.repeats < 1 or args.threads < 1:
        raise ValueError("--repeats and --threads must be >= 1")
    result = bench_models(args.model or None, repeats=args.repeats, threads=args.threads)
    print(format_models(result))
    write_json(args.json, result)
    return 0


def run_photos(args: argparse.Namespace) -> int:
    from engine.bench.photos import bench_photos, format_photos
    from engine.cli.common import build_recognizer

    try:
        scales = tuple(float(v) for v in args.scales.split(","))
    except ValueError:
        raise ValueError(f"--scales must be comma-separated numbers, got {args.scales!r}") from None
    result = bench_photos(build_recognizer(args), args.lfw, people=args.people, scales=scales)
    print(format_photos(result))
    write_json(args.json, result)
    return 0


def run_gallery_crypto(args: argparse.Namespace) -> int:
    from engine.bench.gallery_crypto import bench_gallery_crypto, format_gallery_crypto
    from engine.gallery import crypto

    crypto.module()  # the secure extra: one clear line when sqlcipher3 is missing
    result = bench_gallery_crypto(args.faces)
    print(format_gallery_crypto(result))
    write_json(args.json, result)
    return 0


def run_sightings_read(args: argparse.Namespace) -> int:
    from engine.bench.sightings_read import bench_sightings_read, format_sightings_read

    result = bench_sightings_read(args.size, args.repeats)
    print(format_sightings_read(result))
    write_json(args.json, result)
    return 0


def run_search(args: argparse.Namespace) -> int:
    from engine.bench.search import bench_search

    if args.size < 1 or args.dim < 1 or args.queries < 1:
        raise ValueError("--size, --dim and --queries must be >= 1")
    result = bench_search(size=args.size, dim=args.dim, queries=args.queries)
    _report(f"search benchmark ({args.size} embeddings x {args.dim})", result, args.json)
    return 0



def run_pipeline(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from engine.bench.pipeline import bench_pipeline
    from engine.cli.common import build_tracking_recognizer
    from engine.cli.enroll_cmd import open_gallery
    from engine.errors import FacescopeError
    from engine.pipeline import PipelineConfig

    if len(args.source) > 1 or args.multi:
        from engine.cli.bench_multi_cmd import run_multi_bench  # several sources, one engine

        return run_multi_bench(args, _fill_bench_gallery)
    if not args.source:
        raise FacescopeError("give --source VIDEO for the pipeline benchmark, or a micro-benchmark: warp, search")
    source = Path(args.source[0])
    if not source.is_file():
        from engine.capture.source import mask_url

        raise FacescopeError(f"--source must be a video file, got {mask_url(args.source[0])}")
    truth_path = Path(args.truth) if args.truth else source.with_suffix(source.suffix + ".json")
    truth = None
    if truth_path.is_file():
        from engine.synth import load_truth

        truth = load_truth(truth_path)
    rec = build_tracking_recognizer(args)
    with tempfile.TemporaryDirectory() as tmp:
        if args.gallery:
            gallery = open_gallery(args.gallery, rec.embedder, create=False)
        else:
            gallery = open_gallery(str(Path(tmp) / "bench.db"), rec.embedder, create=True)
            _fill_bench_gallery(rec, gallery, source, truth)
        with gallery:
            result = bench_pipeline(rec, source, args.frames, gallery.index, truth, args.baseline,
                                    latency_pass=not args.no_latency_pass,
                                    config=PipelineConfig(gate=gate_config(args)), on_demand=decode_on_demand(args))
    _print_pipeline(result)
    write_json(args.json, result)
    return 0


def _fill_bench_gallery(rec, gallery, source, truth) -> None:
    """Enrol the clip's people: the synthetic clip's enrolment images, or the demo manifest."""
    from engine.cli.demo_cmd import DEMO_MANIFEST, DEMO_VIDEO, enrol_from_manifest
    from engine.enrolment import prepare_enrolment

    if source.resolve() == DEMO_VIDEO.resolve() or source.name == DEMO_VIDEO.name:  # its truth has no images
        enrol_from_manifest(rec, gallery, DEMO_MANIFEST)
    elif truth is not None:
        for person in truth["identities"]:
            if person.get("enrolled", True):
                batch = prepare_enrolment(rec, person["enrol_images"])
                if len(batch):
                    batch.enroll_into(gallery, person["name"])


def _print_pipeline(r: dict) -> None:
    print(f"pipeline on {r['source']}: {r['frames']} frames, {r['fps']:.1f} FPS (as fast as possible), "
          f"{r['faces_per_frame']:.2f} faces/frame, {r['embeddings_per_frame']:.2f} embeddings/frame")
    if r["latency_pass"] == "realtime":
        print(f"  end-to-end latency, paced like a camera: p50 {r['e2e_p50_ms']:.1f} ms / p95 {r['e2e_p95_ms']:.1f} ms "
              f"({r['realtime_dropped']} frames dropped); in the fast pass (frames queue behind the "
              f"pipeline): p50 {r['fast_e2e_p50_ms']:.1f} / p95 {r['fast_e2e_p95_ms']:.1f} ms")
    else:
        print(f"  end-to-end latency (fast pass): p50 {r['e2e_p50_ms']:.1f} ms / p95 {r['e2e_p95_ms']:.1f} ms")
    for stage, v in r["stages"].items():
        print(f"  {stage:>12}: p50 {v['p50_ms']:7.2f} ms   p95 {v['p95_ms']:7.2f} ms")
    if r.get("ident_accuracy") is not None:
        print(f"  identification accuracy {100 * r['ident_accuracy']:.2f} %, id switches {r['id_switches']} "
              f"(+{r['id_switches_at_occlusion']} right after a face was fully hidden or out of frame)")
    if r.get("wrong_names") is not None:
        rate = r.get("wrong_name_rate")
        print(f"  shown with a wrong name: {r['wrong_names']} faces in {r['frames_with_wrong_name']} frames"
              + (f" ({100 * rate:.2f} % of matched faces)" if rate is not None else "")
              + (f"; id changes right after a shot cut: {r['id_switches_at_cut']}"
                 if r.get("id_switches_at_cut") else ""))
    from engine.bench.timing_metrics import print_timing

    print_timing(r)  # detector gating, CPU, time-to-first-name, missed faces
    if "baseline_fps" in r:
        acc = r.get("baseline_ident_accuracy")
        acc_s = f", identification accuracy {100 * acc:.2f} %" if acc is not None else ""
        print(f"baseline {r['baseline']}: {r['baseline_fps']:.1f} FPS{acc_s}; ratio {r['ratio']:.1f}x")


def run_gui(args: argparse.Namespace) -> int:
    """GUI-thread responsiveness: the desktop package is loaded by name (the engine never imports Qt)."""
    import importlib

    from engine.cli.demo_cmd import DEMO_VIDEO
    from engine.cli.extras import need_extra

    need_extra("gui", "bench gui")
    probe = importlib.import_module("desktop.probe")
    if args.seconds <= 0:
        raise ValueError("--seconds must be > 0")
    argv = ["--source", args.source or str(DEMO_VIDEO), "--seconds", str(args.seconds)]
    if args.json:
        argv += ["--json", args.json]
    code = int(probe.main(argv) or 0)
    # PySide6 6.12 with pyqtgraph plots aborts Python 3.11 during interpreter teardown
    # ("bool_dealloc"); the results are printed and written, so end the process directly.
    import os
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
