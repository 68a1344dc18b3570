"""``facescope run``: the real-time pipeline on a webcam, stream, video file or image folder."""
from __future__ import annotations

import argparse
import time
from contextlib import ExitStack

from engine.cli.common import add_model_args, add_threshold_arg, build_tracking_recognizer, say_error
from engine.cli.gate_args import add_gate_args, decode_on_demand, gate_config
from engine.cli.run_multi import add_source_args, is_multi, run_multi, webcam_settings
from engine.errors import FacescopeError
from engine.events_out.cli import add_event_args, open_publisher


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="real-time recognition on a webcam, RTSP/HTTP stream, video file or image folder",
                       description="Detect, track and identify faces frame by frame; optionally write an annotated "
                                   "video and a JSON-lines log of appear / identified / lost events.")
    p.add_argument("--source", action="append", default=[],
                   help="webcam index (0), rtsp://... / http://... URL, video file or folder; repeat it for several "
                        "sources in one process (one engine, embeddings batched across sources)")
    p.add_argument("--gallery", help="gallery file to identify against (default: everyone is unknown); every "
                                     "face seen is recorded there as a sighting (facescope sightings list)")
    p.add_argument("--no-sightings", action="store_true", help="do not record sightings in the gallery")
    p.add_argument("--out", metavar="VIDEO", help="write the annotated video here (.mp4 or .avi)")
    p.add_argument("--events", metavar="JSONL", help="append one JSON object per event to this file")
    add_event_args(p)
    add_source_args(p)  # --source-name, --sources FILE, --webcam-* (engine/cli/run_multi.py)
    p.add_argument("--realtime", action="store_true",
                   help="play files at their native rate like a camera (frames are dropped if processing is slower)")
    p.add_argument("--frames", type=int, default=0, help="stop after this many processed frames (0 = until the end)")
    p.add_argument("--draw-keypoints", action="store_true", help="draw the 5 alignment keypoints")
    p.add_argument("--draw-landmarks", action="store_true",
                   help="draw the 68 landmarks and head pose of every face (runs the landmark model on every frame)")
    add_threshold_arg(p)
    add_model_args(p, det_size="640x384")
    add_gate_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.capture import Capture, CaptureConfig, parse_source
    from engine.cli.common import open_events_file
    from engine.cli.enroll_cmd import open_gallery
    from engine.draw import draw_faces
    from engine.events import EventLog, WallClock, event_line
    from engine.gallery.watch import GalleryWatch
    from engine.pipeline import Pipeline, PipelineConfig
    from engine.sightings import SightingCollector, SightingConfig
    from engine.sightings import store as sighting_store
    from engine.util.video import native_fps, open_writer

    if is_multi(args):
        return run_multi(args)
    if not args.source:
        raise FacescopeError("give --source (webcam index, URL, file or folder) or --sources FILE")
    spec = parse_source(args.source[0])
    rec = build_tracking_recognizer(args)
    log, clock = EventLog(), WallClock()
    stats_faces = stats_named = frames = sightings = 0
    writer = None
    t0 = time.perf_counter()
    with ExitStack() as stack:
        gallery = stack.enter_context(open_gallery(args.gallery, rec.embedder, create=False)) if args.gallery else None
        ccfg = CaptureConfig(realtime=args.realtime, webcam=webcam_settings(args),
                             decode_on_demand=decode_on_demand(args))
        capture = stack.enter_context(Capture(spec, ccfg))
        events = stack.enter_context(open_events_file(args.events)) if args.events else None
        publisher = stack.enter_context(open_publisher(args, spec.display))  # MQTT / webhooks, off this thread
        pconfig = PipelineConfig(landmarks_every_frame=bool(args.draw_landmarks and rec.landmarker is not None),
                                 gate=gate_config(args))
        pipeline = Pipeline(rec, gallery.index if gallery else None, pconfig)
        collector = None
        if gallery is not None and not args.no_sightings:
            scfg = SightingConfig()
            purged = sighting_store.purge(gallery, scfg.retention)
            if purged:
                print(f"purged {purged} sightings past retention")
            collector = SightingCollector(spec.display, scfg)  # display: URL passwords masked
            next_flush = time.monotonic() + scfg.flush_every_s
            next_purge = time.monotonic() + scfg.retention.purge_every_s

            def flush() -> None:
                nonlocal sightings, next_purge
                sightings += len(sighting_store.record(gallery, collector.take()))
                if time.monotonic() >= next_purge:  # a camera run lasts days: retention holds meanwhile
                    sighting_store.purge(gallery, scfg.retention)
                    next_purge = time.monotonic() + scfg.retention.purge_every_s

            # the source ended (or an error): close the open visits and write them, before the gallery closes
            stack.callback(lambda: (collector.end_all(), flush()))
        watch = GalleryWatch(gallery, say=say_error) if gallery is not None else None  # enrolments/erasures elsewhere
        capture.start()
        for result in pipeline.run(capture, max_frames=args.frames or None):
            frame = result.frame
            if watch is not None and (gone := watch.poll()) is not None:
                log.forget(pipeline.forget_people(gone))  # a hidden track's "lost" must not name them
                if publisher is not None:
                    publisher.erase(watch.names_gone)  # retained MQTT state / HA sensors of erased people
            if collector is not None:
                collector.observe(result)
                if time.monotonic() >= next_flush:
                    flush()
                    next_flush = time.monotonic() + scfg.flush_every_s
            for ev in log.update(result.faces, frame.index, frame.timestamp, frame.pts_s, result.alive):
                line = event_line(ev, clock.epoch(frame.timestamp), spec.display)  # display: URL passwords masked
                if events:
                    events.write(line)
                if publisher is not None:
                    publisher.publish(line)
                if ev.kind == "identified":
                    print(f"frame {frame.index}: track {ev.track_id} is {ev.name or 'unknown'}")
            if args.out:
                if writer is None:
                    writer = open_writer(args.out, frame.image.shape, native_fps(spec) or capture.stats().fps or 25.0)
                    stack.callback(writer.release)
                writer.write(draw_faces(frame.image, result.faces, keypoints=args.draw_keypoints,
                                        landmarks=args.draw_landmarks))
            frames += 1
            stats_faces += len(result.faces)
            stats_named += sum(n is not None for n in result.faces.names)
        stats = capture.stats()
    if frames == 0:
        why = stats.reason or "no reason given"
        raise FacescopeError(f"no frames from {spec.display} ({stats.state.value}: {why})")
    dt = time.perf_counter() - t0
    print(f"{frames} frames in {dt:.1f} s ({frames / dt:.1f} FPS processed, {stats.dropped} dropped by capture), "
          f"{stats_faces / frames:.2f} faces/frame, {100.0 * stats_named / max(stats_faces, 1):.1f} % of faces named")
    if stats.state.value == "failed":
        print(f"source failed: {stats.reason}")
    if args.out:
        print(f"annotated video: {args.out}")
    if args.gallery and not args.no_sightings:
        print(f"{sightings} sightings recorded in {args.gallery}")
    return 0
