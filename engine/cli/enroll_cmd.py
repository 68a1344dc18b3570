"""``facescope enroll`` and ``facescope identify``: still images against a gallery."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import cv2
from tqdm import tqdm

from engine.cli.common import add_model_args, add_threshold_arg, build_recognizer, write_json
from engine.errors import FacescopeError, ImageError, NoFaceError
from engine.imageio import read_image
from engine.records import STATUS_NAMES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("enroll", help="add a person's face(s) to a gallery from images",
                       description="Enrol the largest face of each IMAGE as NAME. All-or-nothing: if any image "
                                   "is unreadable or has no face, nothing is enrolled (unless --skip-bad).")
    p.add_argument("--gallery", required=True, help="gallery file (created if missing)")
    p.add_argument("--name", required=True, help="person's name (created if new)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--skip-bad", action="store_true", help="enrol the good images and report the bad ones")
    p.add_argument("--allow-poor", action="store_true",
                   help="enrol turned (|yaw| > 40 deg, |pitch| > 30 deg) or blurred faces with a warning instead of "
                        "refusing them")
    add_model_args(p)
    p.set_defaults(func=run_enroll)

    q = sub.add_parser("identify", help="identify every face in images against a gallery")
    q.add_argument("--gallery", required=True, help="gallery file")
    q.add_argument("images", nargs="+", metavar="IMAGE")
    q.add_argument("--annotate", metavar="DIR", help="write annotated copies of the images here, as "
                   "<name>_annotated.jpg (never over an input image)")
    q.add_argument("--json", metavar="PATH", help="write the results as one JSON object")
    add_threshold_arg(q)
    add_model_args(q)
    q.set_defaults(func=run_identify)


def open_gallery(path: str, embedder, create: bool):
    from engine.gallery import Gallery

    if not create and not Path(path).is_file():
        raise FacescopeError(f"gallery {path} does not exist (enrol someone first: "
                             f"facescope enroll --gallery {path} ...)")
    return Gallery.open(path, embedder.id, embedder.dim, create=create)


def run_enroll(args: argparse.Namespace) -> int:
    from engine.enrolment import EnrolmentCheck, prepare_enrolment

    rec = build_recognizer(args)
    batch = prepare_enrolment(rec, tqdm(args.images, desc="detecting", unit="img", disable=len(args.images) < 5),
                              EnrolmentCheck(strict=not args.allow_poor))
    for warning in batch.warnings:
        print(f"warning: {warning}")
    problems = batch.problems
    if problems and (not args.skip_bad or not len(batch)):
        hint = "" if args.skip_bad else "; use --skip-bad to enrol the other images"
        raise NoFaceError("nothing enrolled: " + "; ".join(problems) + hint)
    with open_gallery(args.gallery, rec.embedder, create=True) as gallery:
        ids = batch.enroll_into(gallery, args.name)
    for problem in problems:
        print(f"skipped: {problem}")
    print(f"enrolled {len(ids)} face(s) of {args.name!r} into {args.gallery}")
    return 0


def annotated_path(folder: str | Path, image: str | Path, inputs: set[Path], written: set[Path]) -> Path:
    """Where the annotated copy of ``image`` goes: ``FOLDER/<stem>_annotated.jpg``, numbered
    (``_annotated-2``...) rather than land on an input image (``--annotate`` into the images' own
    folder, or run again on earlier output) or on a copy written earlier in this run (two inputs
    with one name from different folders)."""
    stem = Path(image).stem
    for n in range(1, len(inputs) + len(written) + 2):
        out = Path(folder) / f"{stem}_annotated{'' if n == 1 else f'-{n}'}.jpg"
        if out.resolve() not in inputs and out.resolve() not in written:
            return out
    raise AssertionError("unreachable: more candidate names than taken ones")


def run_identify(args: argparse.Namespace) -> int:
    rec = build_recognizer(args)
    results, errors = [], 0
    inputs = {Path(p).resolve() for p in args.images}
    written: set[Path] = set()
    with open_gallery(args.gallery, rec.embedder, create=False) as gallery:
        for path in args.images:
            try:
                image = read_image(path)
            except ImageError as exc:
                print(f"error: {exc}")
                errors += 1
                continue
            faces = rec.identify(image, gallery.index)
            if len(faces) == 0:
                print(f"{path}: no face found")
            for i in range(len(faces)):
                box = [round(float(v), 1) for v in faces.boxes[i]]
                name = faces.names[i] or "unknown"
                sim = float(faces.similarities[i])
                status = STATUS_NAMES[int(faces.states[i])]  # unknown / probable / confirmed
                shown = f"{name}?" if status == "probable" else name
                print(f"{path}: {shown} (similarity {sim:.3f}, {status}) box={box}")
                results.append({"image": str(path), "name": faces.names[i], "status": status, "similarity": sim,
                                "box": box, "score": float(faces.scores[i])})
            if args.annotate:
                from engine.draw import draw_faces

                out = annotated_path(args.annotate, path, inputs, written)
                out.parent.mkdir(parents=True, exist_ok=True)
                if not cv2.imwrite(str(out), draw_faces(image, faces)):
                    raise FacescopeError(f"cannot write {out} (disk full or no permission?)")
                written.add(out.resolve())
    write_json(args.json, {"threshold": rec.threshold, "decision": dataclasses.asdict(rec.decision), "faces": results,
                           "errors": errors})
    return 1 if errors else 0
