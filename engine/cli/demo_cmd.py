"""``facescope demo``: recognise faces in the shipped demo video and write an annotated copy.

A first run builds the demo gallery: for the shipped clip from the frames listed in
``resources/demo/megamind_enrol.json`` (several views per character); for another
``--source``, the first clearly visible face is enrolled as ``--name``. Later runs reuse it.
Frames go through the real-time pipeline (tracking, identity voting), as fast as possible.
This is the README's "run the app" command until the desktop window exists.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from engine.cli.common import add_model_args, add_threshold_arg, build_tracking_recognizer
from engine.cli.enroll_cmd import open_gallery
from engine.draw import draw_faces
from engine.errors import FacescopeError
from engine.resources import demo_dir
from engine.util.video import native_fps

DEMO_DIR = demo_dir()  # resources/demo of a checkout, or the installed facescope_resources
DEMO_VIDEO = DEMO_DIR / "megamind.avi"
DEMO_MANIFEST = DEMO_DIR / "megamind_enrol.json"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="recognise faces in the shipped demo video, write an annotated copy")
    p.add_argument("--source", default=str(DEMO_VIDEO), help="video file (default: the shipped demo clip)")
    p.add_argument("--out", default="facescope-demo", help="output folder (default: ./facescope-demo)")
    p.add_argument("--gallery", help="gallery file (default: OUT/demo_gallery.db)")
    p.add_argument("--name", default="Person 1", help="who to enrol from another --source when the gallery is empty")
    p.add_argument("--frames", type=int, default=0, help="stop after this many frames (0 = all)")
    add_threshold_arg(p)
    add_model_args(p, det_size="640x384")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.capture import Capture, CaptureConfig, parse_source
    from engine.pipeline import Pipeline

    spec = parse_source(args.source)
    if spec.kind not in ("file", "folder"):
        raise FacescopeError(f"demo plays a video file or image folder, not {spec.display} (use `facescope run`)")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    gallery_path = args.gallery or str(out_dir / "demo_gallery.db")
    rec = build_tracking_recognizer(args)
    out_video = out_dir / "demo_annotated.mp4"
    writer = None
    frames = faces_seen = named = 0
    t0 = time.perf_counter()
    with open_gallery(gallery_path, rec.embedder, create=True) as gallery:
        if not gallery.persons():
            if spec.kind == "file" and Path(spec.value).resolve() == DEMO_VIDEO.resolve():
                enrol_from_manifest(rec, gallery, DEMO_MANIFEST)
            else:
                enrol_first_face(rec, gallery, spec, args.name)
        with Capture(spec, CaptureConfig(realtime=False, decode_on_demand=False)) as capture:  # every frame drawn
            capture.start()
            results = Pipeline(rec, gallery.index).run(capture, max_frames=args.frames or None)
            for r in tqdm(results, desc="demo", unit="frame", total=args.frames or None):
                if writer is None:
                    h, w = r.frame.image.shape[:2]
                    fps = native_fps(spec) or 25.0
                    writer = cv2.VideoWriter(str(out_video), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                    if not writer.isOpened():
                        raise FacescopeError(f"cannot write video {out_video}")
                writer.write(draw_faces(r.frame.image, r.faces))
                frames += 1
                faces_seen += len(r.faces)
                named += sum(n is not None for n in r.faces.names)
            state = capture.stats()
    if writer is not None:
        writer.release()
    if frames == 0:
        raise FacescopeError(f"no frames could be read from {spec.display}: {state.reason or state.state.value}")
    dt = time.perf_counter() - t0
    print(f"{frames} frames in {dt:.1f} s ({frames / dt:.1f} FPS), {faces_seen} faces, "
          f"{named} identified ({100.0 * named / max(faces_seen, 1):.1f} %)")
    print(f"annotated video: {out_video}")
    return 0


def _best_face(rec, image, min_score: float = 0.8):
    """The largest confident face of an image, embedded (0 or 1 faces)."""
    faces = rec.detect(image)
    faces = faces.select(faces.scores >= min_score)
    if len(faces) == 0:
        return faces
    return rec.embed(image, faces.select([faces.largest()]))


def enrol_first_face(rec, gallery, spec, name: str) -> None:
    """Enrol the first confidently detected face of the source as ``name``."""
    from engine.capture import Capture, CaptureConfig

    with Capture(spec, CaptureConfig(realtime=False)) as capture:
        capture.start()
        while (frame := capture.read(timeout=5.0)) is not None:
            faces = _best_face(rec, frame.image)
            if len(faces):
                crop = rec.embedder.aligned_crops(frame.image, faces.keypoints)
                gallery.enroll(name, faces.embeddings, crops=list(crop), qualities=faces.scores,
                               sources=[f"{spec.display}#frame{frame.index}"])
                print(f"enrolled {name!r} from frame {frame.index}")
                return
    raise FacescopeError(f"no face found in {spec.display} to enrol")


def enrol_from_manifest(rec, gallery, manifest: Path) -> None:
    """Enrol the largest face of each frame listed in the demo manifest."""
    spec = json.loads(manifest.read_text())
    cap = cv2.VideoCapture(str(manifest.parent / spec["source"]))
    frames = {}
    index = 0
    wanted = {f for person in spec["enrol"] for f in person["frames"]}
    while wanted - frames.keys():
        ok, frame = cap.read()
        if not ok:
            raise FacescopeError(f"demo manifest {manifest} lists frames past the end of the clip")
        if index in wanted:
            frames[index] = frame
        index += 1
    cap.release()
    for person in spec["enrol"]:
        embeddings, crops, scores = [], [], []
        for f in person["frames"]:
            faces = _best_face(rec, frames[f], min_score=0.6)
            if len(faces) == 0:
                raise FacescopeError(f"demo manifest: no face in frame {f} of {spec['source']}")
            embeddings.append(faces.embeddings[0])
            crops.append(rec.embedder.aligned_crops(frames[f], faces.keypoints)[0])
            scores.append(float(faces.scores[0]))
        gallery.enroll(person["name"], np.stack(embeddings), crops=crops, qualities=np.array(scores),
                       sources=[f"{spec['source']}#frame{f}" for f in person["frames"]])
        print(f"enrolled {person['name']!r} from frames {person['frames']}")

