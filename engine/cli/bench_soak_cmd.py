"""``facescope bench soak``: memory, threads, file descriptors, FPS and CPU over a long real-time run."""
from __future__ import annotations

import argparse

from engine.cli.common import add_model_args, add_threshold_arg, write_json


def register(bench: argparse._SubParsersAction) -> None:
    """Add ``soak`` to ``facescope bench``'s sub-commands."""
    p = bench.add_parser(
        "soak", help="run the real-time pipeline for N minutes and sample RSS, threads, fds, FPS and CPU",
        description="Runs what 'facescope run --realtime' runs (a video file paced like a camera and restarted at "
                    "its end; a temporary gallery enrolled from SOURCE.json, recording sightings) for --minutes, "
                    "samples the process every few seconds and reports, after a warm-up, the least-squares slope "
                    "per minute of RSS, anonymous memory, threads and open file descriptors, the FPS drift, the "
                    "peak RSS and the CPU cores used per source. --gui runs the desktop window (offscreen) instead.")
    p.add_argument("--source", action="append", required=True,
                   help="video file (looped), webcam index or URL; repeat for several sources (headless only)")
    p.add_argument("--minutes", type=float, default=10.0, help="how long to run (default 10)")
    p.add_argument("--every", type=float, default=None, metavar="SECONDS",
                   help="sampling period (default 5 s; shorter for runs under 2.5 minutes)")
    p.add_argument("--warmup", type=float, default=None, metavar="SECONDS",
                   help="samples before this are left out of the slopes (default 20%% of the run, at most 60 s)")
    p.add_argument("--gallery", help="gallery to match against and record sightings in (default: a temporary one "
                                     "enrolled from SOURCE.json when it exists)")
    p.add_argument("--truth", help="ground-truth JSON of a synthetic clip (default: SOURCE.json if it exists)")
    p.add_argument("--no-sightings", action="store_true", help="do not record sightings")
    p.add_argument("--gui", action="store_true", help="run the desktop window (offscreen) instead of the headless "
                                                      "pipeline (needs the gui extra)")
    p.add_argument("--json", metavar="PATH", help="write the figures and every sample here")
    add_threshold_arg(p)
    add_model_args(p, det_size="640x384")
    p.set_defaults(func=run_soak)


def _config(args: argparse.Namespace):
    from engine.bench.soak import SoakConfig

    return SoakConfig(minutes=args.minutes, every_s=args.every, warmup_s=args.warmup)


def run_soak(args: argparse.Namespace) -> int:
    from engine.capture import parse_source

    config = _config(args)  # bad numbers fail before any model loads
    specs = [parse_source(s) for s in args.source]
    if args.gui:
        return _run_gui(args, config, specs)
    import tempfile
    from contextlib import ExitStack
    from pathlib import Path

    from engine.bench.soak_run import soak
    from engine.cli.common import build_tracking_recognizer
    from engine.cli.enroll_cmd import open_gallery

    rec = build_tracking_recognizer(args)
    with ExitStack() as stack:
        if args.gallery:
            gallery = stack.enter_context(open_gallery(args.gallery, rec.embedder, create=False))
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="facescope-soak-"))
            gallery = stack.enter_context(open_gallery(str(Path(tmp) / "soak.db"), rec.embedder, create=True))
            _enrol_truth(rec, gallery, specs[0], args.truth)
        print(f"soak: {', '.join(s.display for s in specs)} for {config.minutes:g} min, a sample every "
              f"{config.period_s:g} s, warm-up {config.warmup:g} s", flush=True)
        result = soak(rec, specs, config, gallery, sightings=not args.no_sightings, progress=_progress(config))
    print(format_soak(result))
    write_json(args.json, result)
    return 1 if result["stopped_early"] else 0


def _enrol_truth(rec, gallery, spec, truth_arg: str | None) -> None:
    """Enrol the people of a synthetic clip (SOURCE.json, or ``--truth``) or of the demo clip, as
    ``facescope bench`` does, so that faces get named and sightings carry people."""
    from pathlib import Path

    from engine.cli.demo_cmd import DEMO_MANIFEST, DEMO_VIDEO, enrol_from_manifest
    from engine.enrolment import prepare_enrolment

    if spec.kind != "file":
        return
    source = Path(spec.value)
    truth_path = Path(truth_arg) if truth_arg else source.with_suffix(source.suffix + ".json")
    people = []
    if truth_path.is_file():
        from engine.synth import load_truth

        try:
            identities = load_truth(truth_path)["identities"]
        except ValueError:
            if truth_arg:  # asked for by name: say what is wrong with it
                raise
            identities = []  # SOURCE.json of another kind (e.g. the demo clip's hand-checked truth)
        people = [p for p in identities if p.get("enrolled", True) and p.get("enrol_images")]
    for person in people:  # a synthetic clip's truth names the photos each person was made from
        batch = prepare_enrolment(rec, person["enrol_images"])
        if len(batch):
            batch.enroll_into(gallery, person["name"])
    if not people and source.resolve() == DEMO_VIDEO.resolve():
        enrol_from_manifest(rec, gallery, DEMO_MANIFEST)


def _progress(config):
    every = max(1, round(60.0 / config.period_s))  # about one line a minute

    def show(sample) -> None:
        show.n += 1
        if show.n % every == 0:
            print(f"  {sample.t_s / 60:5.1f} min: RSS {sample.rss_mb:.0f} MB (anon {sample.anon_mb:.0f}), "
                  f"{sample.threads} threads, {sample.fds} fds, frames {list(sample.frames)}", flush=True)
    show.n = 0
    return show


def format_soak(r: dict) -> str:
    """The human summary of a soak result (see :func:`engine.bench.soak.summarize`)."""
    if r["stopped_early"]:
        return "soak stopped early: " + "; ".join(r["errors"] or ["a source ended"])
    ok = {True: "OK", False: "GROWS"}
    lines = [
        f"soak {r['minutes']:g} min, {r['n_samples']} samples ({r['samples_after_warmup']} after the "
        f"{r['warmup_s']:g} s warm-up), peak RSS {r['peak_rss_mb']:.0f} MB",
        f"  RSS {r['rss']['first']:.0f} -> {r['rss']['last']:.0f} MB, slope {r['rss_slope_mb_per_min']:+.3f} MB/min "
        f"(target <= 1: {ok[r['rss_slope_ok']]}); anonymous {r['anon']['first']:.0f} -> {r['anon']['last']:.0f} MB, "
        f"slope {r['anon_slope_mb_per_min']:+.3f} MB/min",
        f"  threads {r['threads']['first']} -> {r['threads']['last']} (min {r['threads']['min']}, max "
        f"{r['threads']['max']}, growth {r['threads_growth']:+g}: {ok[r['threads_ok']]}); fds {r['fds']['first']} -> "
        f"{r['fds']['last']} (growth {r['fds_growth']:+g}: {ok[r['fds_ok']]})",
        f"  CPU {r['cpu_cores']:.2f} cores, {r['cpu_cores_per_source']:.2f} per source; CPU per frame "
        f"{_num(r['cpu_ms_per_frame']['first_quarter'], ' ms')} in the first quarter, "
        f"{_num(r['cpu_ms_per_frame']['last_quarter'], ' ms')} in the last "
        f"(drift {_num(r['cpu_ms_per_frame']['drift_pct'], ' %', '+')})",
    ]
    for s in r["sources"]:
        lines.append(f"  {s['source']}: {s['fps']:.1f} FPS ({s['frames']} frames), first quarter "
                     f"{s['fps_first_quarter']:.1f} -> last {s['fps_last_quarter']:.1f} FPS (drift "
                     f"{_num(s['fps_drift_pct'], ' %', '+')}, {s['fps_slope_per_min']:+.2f} FPS/min)")
    if "sightings_recorded" in r:
        lines.append(f"  {r['sightings_recorded']} sightings recorded, {r.get('events', 0)} events")
    return "\n".join(lines)


def _num(value: float | None, unit: str, sign: str = "") -> str:
    return "n/a" if value is None else f"{value:{sign}.1f}{unit}"


def _run_gui(args: argparse.Namespace, config, specs) -> int:
    """The desktop window's soak (desktop.soak_probe, loaded by name: the engine never imports Qt)."""
    import importlib
    import os
    import sys

    from engine.cli.extras import need_extra
    from engine.errors import FacescopeError

    if len(specs) != 1:
        raise FacescopeError("bench soak --gui runs one source (the window shows one)")
    need_extra("gui", "bench soak --gui")
    probe = importlib.import_module("desktop.soak_probe")
    result = probe.soak_window(args.source[0], config, gallery_path=args.gallery)
    print(format_soak(result))
    write_json(args.json, result)
    # PySide6 with pyqtgraph plots may abort Python 3.11 during interpreter teardown (see run_gui in
    # bench_cmd); the results are printed and written, so end the process directly.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1 if result["stopped_early"] else 0)
