"""``facescope run`` with several sources: ``--source A --source B ...`` or ``--sources FILE``.

One process, one recognizer, one gallery, one engine loop (:class:`engine.multi.MultiSource`);
per source: its own tracker, annotated video (``--out DIR``: ``DIR/<name>.avi``), events and
sightings tagged with the source's name. One source without ``--sources`` keeps the
single-source path of ``run_cmd`` unchanged. The webcam options here apply to every webcam
source (single or several); a sources file can set them per source.
"""
from __future__ import annotations

import argparse
import time
from contextlib import ExitStack
from pathlib import Path

from engine.errors import FacescopeError


def add_source_args(p: argparse.ArgumentParser) -> None:
    """The options of several sources and of webcams (``--source`` itself is run_cmd's)."""
    p.add_argument("--source-name", action="append", default=[], metavar="NAME",
                   help="name of the matching --source (in order; default: from the source, e.g. door.mp4, webcam0)")
    p.add_argument("--sources", metavar="FILE", help="a .json or .toml list of sources with per-source settings "
                                                     "(name, enabled, det_size, min_face, roi, webcam, decode_threads)")
    g = p.add_argument_group("webcams (facescope cameras lists them)")
    g.add_argument("--webcam-size", metavar="WxH", help="resolution to ask webcams for, e.g. 1920x1080 or 720p")
    g.add_argument("--webcam-fps", type=float, metavar="FPS", help="frame rate to ask webcams for")
    g.add_argument("--webcam-format", metavar="FOURCC",
                   help="pixel format, e.g. MJPG (default: MJPG when asking above 1280x720 or 30 fps)")
    g.add_argument("--webcam-backend", default="auto",
                   help="auto (V4L2 on Linux, MSMF on Windows, AVFoundation on macOS), v4l2, dshow, msmf, "
                        "avfoundation, gstreamer or any")


def webcam_settings(args: argparse.Namespace):
    """The WebcamSettings of the options, or None when none was given."""
    from engine.capture.webcams import WebcamSettings, parse_resolution

    size, fps, fmt, backend = (getattr(args, k, None) for k in ("webcam_size", "webcam_fps", "webcam_format",
                                                                 "webcam_backend"))
    if size is None and fps is None and fmt is None and backend in (None, "auto"):
        return None
    return WebcamSettings(parse_resolution(size) if size else None, fps, fmt, backend or "auto")


def is_multi(args: argparse.Namespace) -> bool:
    return bool(args.sources) or len(args.source) > 1


def sources_from_args(args: argparse.Namespace) -> list:
    """SourceSettings from ``--sources FILE`` or the repeated ``--source`` / ``--source-name``."""
    from engine.multi import SourceSettings, load_sources, unique_names

    if args.sources and args.source:
        raise FacescopeError("give either --sources FILE or --source ... (not both)")
    if args.sources:
        items = load_sources(args.sources)
    else:
        if len(args.source_name) > len(args.source):
            raise FacescopeError(f"{len(args.source_name)} --source-name for {len(args.source)} --source")
        names = args.source_name + [None] * (len(args.source) - len(args.source_name))
        cam = webcam_settings(args)
        items = [SourceSettings(src, name, webcam=cam) for src, name in zip(args.source, names, strict=True)]
    unique_names(items)
    if not any(s.enabled for s in items):
        raise FacescopeError("every source is disabled")
    return items


def _say_state(name: str, state: str, reason: str) -> None:
    """A source going wrong is said as it happens (the others go on); the summary repeats it."""
    if state in ("failed", "error", "reconnecting"):
        print(f"{name}: {state}: {reason}", flush=True)


def run_multi(args: argparse.Namespace) -> int:
    from engine.capture import CaptureConfig
    from engine.cli.common import build_tracking_recognizer, open_events_file, say_error
    from engine.cli.enroll_cmd import open_gallery
    from engine.cli.gate_args import decode_on_demand, gate_config
    from engine.draw import draw_faces
    from engine.events_out.cli import open_publisher
    from engine.events_out.payload import source_slug
    from engine.gallery.watch import GalleryWatch
    from engine.multi import MultiEventLog, MultiSource, multi_pipeline_config
    from engine.sightings import SightingCollector, SightingConfig
    from engine.sightings import store as sighting_store
    from engine.util.video import native_fps, open_writer

    settings = sources_from_args(args)
    out_dir = Path(args.out) if args.out else None
    if out_dir is not None and out_dir.suffix.lower() in (".mp4", ".avi"):
        raise FacescopeError(f"--out with several sources is a folder (one video per source), got {args.out}")
    rec = build_tracking_recognizer(args, multi=True)
    per: dict[str, dict] = {}
    sightings = 0
    t0 = time.perf_counter()
    with ExitStack() as stack:
        gallery = stack.enter_context(open_gallery(args.gallery, rec.embedder, create=False)) if args.gallery else None
        pconfig = multi_pipeline_config(landmarks_every_frame=bool(args.draw_landmarks and rec.landmarker is not None),
                                 gate=gate_config(args))
        ccfg = CaptureConfig(realtime=args.realtime, decode_on_demand=decode_on_demand(args))
        runner = stack.enter_context(MultiSource(rec, settings, gallery.index if gallery else None, pconfig, ccfg,
                                                 args.frames or None,
                                                 on_state=_say_state))
        events = stack.enter_context(open_events_file(args.events)) if args.events else None
        publisher = stack.enter_context(open_publisher(args, None))  # each event names its own source
        log = MultiEventLog()
        collectors = {}
        if gallery is not None and not args.no_sightings:
            scfg = SightingConfig()
            purged = sighting_store.purge(gallery, scfg.retention)
            if purged:
                print(f"purged {purged} sightings past retention")
            collectors = {name: SightingCollector(name, scfg) for name in runner.names}
            next_flush = time.monotonic() + scfg.flush_every_s

            def flush() -> None:
                nonlocal sightings
                for c in collectors.values():
                    sightings += len(sighting_store.record(gallery, c.take()))

            stack.callback(lambda: ([c.end_all() for c in collectors.values()], flush()))
        writers: dict[str, object] = {}
        watch = GalleryWatch(gallery, say=say_error) if gallery is not None else None  # changes made elsewhere
        for rnd in runner.rounds():
            if watch is not None and (gone := watch.poll()) is not None:  # between rounds: no frame is in work
                for name in runner.names:
                    log.forget(name, runner.pipeline(name).forget_people(gone))
                if publisher is not None:
                    publisher.erase(watch.names_gone)  # retained MQTT state / HA sensors of erased people
            for sr in rnd.results:
                r, name = sr.result, sr.source
                st = per.setdefault(name, {"frames": 0, "faces": 0, "named": 0})
                if name in collectors:
                    collectors[name].observe(r)
                for line in log.update(sr):
                    if events:
                        events.write(line)
                    if publisher is not None:
                        publisher.publish(line)
                    if line["kind"] == "identified":
                        print(f"{name} frame {line['frame']}: track {line['track_id']} is {line['name'] or 'unknown'}")
                if out_dir is not None:
                    if name not in writers:
                        spec = runner.spec(name)
                        path = out_dir / f"{source_slug(name)}.avi"
                        writers[name] = open_writer(str(path), r.frame.image.shape, native_fps(spec) or 25.0)
                        stack.callback(writers[name].release)
                    writers[name].write(draw_faces(r.frame.image, r.faces, keypoints=args.draw_keypoints,
                                                   landmarks=args.draw_landmarks))
                st["frames"] += 1
                st["faces"] += len(r.faces)
                st["named"] += sum(n is not None for n in r.faces.names)
            if collectors and time.monotonic() >= next_flush:
                flush()
                next_flush = time.monotonic() + scfg.flush_every_s
        status = runner.status()
    dt = time.perf_counter() - t0
    for name, s in status.items():
        st = per.get(name, {"frames": 0, "faces": 0, "named": 0})
        n = st["frames"]
        tail = f" ({s.reason})" if s.state in ("failed", "error") else ""
        print(f"{name}: {n} frames ({n / dt:.1f} FPS processed, {s.dropped} dropped by capture), "
              f"{st['faces'] / max(n, 1):.2f} faces/frame, {100.0 * st['named'] / max(st['faces'], 1):.1f} % of "
              f"faces named; {s.state}{tail}")
    if out_dir is not None:
        print(f"annotated videos: {out_dir}/")
    if collectors:
        print(f"{sightings} sightings recorded in {args.gallery}")
    if not any(st["frames"] for st in per.values()):
        why = "; ".join(f"{n}: {s.state} ({s.reason or 'no reason given'})" for n, s in status.items())
        raise FacescopeError(f"no frames from any source: {why}")
    return 0
