"""``facescope demo``: recognise faces in the shipped demo video and write an annotated copy.

A first run builds the demo gallery: for the shipped clip from the frames listed in
``resources/demo/megamind_enrol.json`` (several views per character); for another
``--source``, the first clearly visible face is enrolled as ``--name``. Later runs reuse it. This is the README's "run the app" command until the desktop window
exists; the real-time pipeline with tracking is ``facescope run`` (milestone P2).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from engine.cli.common import add_model_args, add_threshold_arg, build_recognizer
from engine.cli.enroll_cmd import open_gallery
from engine.draw import draw_faces
from engine.errors import FacescopeError
from engine.recognizer import match_faces

DEMO_DIR = Path(__file__).resolve().parents[2] / "resources" / "demo"
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
    add_model_args(p, det_size="640x640")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    gallery_path = args.gallery or str(out_dir / "demo_gallery.db")
    cap = cv2.VideoCapture(args.source)
    if not cap.isOpened():
        raise FacescopeError(f"cannot open video {args.source}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    rec = build_recognizer(args)
    out_video = out_dir / "demo_annotated.mp4"
    writer = None
    frames = faces_seen = named = 0
    t0 = time.perf_counter()
    with open_gallery(gallery_path, rec.embedder, create=True) as gallery:
        if not gallery.persons() and Path(args.source).resolve() == DEMO_VIDEO:
            enrol_from_manifest(rec, gallery, DEMO_MANIFEST)
        limit = args.frames or total
        for _ in tqdm(range(limit) if limit else iter(int, 1), desc="demo", unit="frame"):
            ok, frame = cap.read()
            if not ok:
                break
            faces = rec.embed(frame, rec.detect(frame))
            if not gallery.persons() and len(faces) and faces.scores.max() >= 0.8:
                k = faces.largest()
                crop = rec.embedder.aligned_crops(frame, faces.keypoints[k : k + 1])
                gallery.enroll(args.name, faces.embeddings[k : k + 1], crops=list(crop),
                               qualities=faces.scores[k : k + 1], sources=[f"{args.source}#frame{frames}"])
                print(f"enrolled {args.name!r} from frame {frames} into {gallery_path}")
            faces = match_faces(faces, gallery.index, rec.threshold)
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(out_video), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                if not writer.isOpened():
                    raise FacescopeError(f"cannot write video {out_video}")
            writer.write(draw_faces(frame, faces))
            frames += 1
            faces_seen += len(faces)
            named += sum(n is not None for n in faces.names)
    cap.release()
    if writer is not None:
        writer.release()
    if frames == 0:
        raise FacescopeError(f"no frames could be read from {args.source}")
    dt = time.perf_counter() - t0
    print(f"{frames} frames in {dt:.1f} s ({frames / dt:.1f} FPS), {faces_seen} faces, "
          f"{named} identified ({100.0 * named / max(faces_seen, 1):.1f} %)")
    print(f"annotated video: {out_video}")
    return 0


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
            faces = rec.largest(frames[f])
            if len(faces) == 0:
                raise FacescopeError(f"demo manifest: no face in frame {f} of {spec['source']}")
            embeddings.append(faces.embeddings[0])
            crops.append(rec.embedder.aligned_crops(frames[f], faces.keypoints)[0])
            scores.append(float(faces.scores[0]))
        gallery.enroll(person["name"], np.stack(embeddings), crops=crops, qualities=np.array(scores),
                       sources=[f"{spec['source']}#frame{f}" for f in person["frames"]])
        print(f"enrolled {person['name']!r} from frames {person['frames']}")

