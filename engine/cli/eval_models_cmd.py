"""``facescope eval landmarks`` and ``facescope eval detector``: the P4 model measurements."""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict

import numpy as np

from engine.cli.common import write_json
from engine.errors import FacescopeError

SPLITS = ("all", "heldout", "train")


def register(ev: argparse._SubParsersAction) -> None:
    lm = ev.add_parser("landmarks", help="68-point landmark NME, failure rates, CED/AUC (optionally vs dlib)",
                       description="Crops come from the detector box (as in the app); errors are normalised by "
                                   "the outer-eye-corner distance.")
    lm.add_argument("--data", required=True, help="folder of 300-W style *.jpg + *.pts files (searched recursively)")
    # Default all: a folder given on the command line is scored whole. The recipe's hash split is
    # only meaningful for the folder the shipped model was trained on, so it must be asked for.
    lm.add_argument("--split", choices=SPLITS, default="all",
                    help="all (default): every face of the folder; heldout / train: the training recipe's "
                         "split of it (a hash of file names, 15 %% held out; use heldout on the training data)")
    lm.add_argument("--model", default="hourglass68", help="landmark model name or card path")
    lm.add_argument("--flip-test", action="store_true", help="average with the mirrored crop's prediction")
    lm.add_argument("--refine", action="store_true", help="second pass on the crop implied by the first pass")
    lm.add_argument("--compare", choices=("dlib",), help="also run dlib's 68-point predictor on the same boxes")
    lm.add_argument("--json", metavar="PATH", help="write results as one JSON object")
    lm.add_argument("--ced", metavar="PNG", default=None,
                    help="also draw the CED curves into this PNG (default: no plot)")
    lm.add_argument("--limit", type=int, default=0, help="use only the first N faces (smoke runs)")
    lm.set_defaults(func=run_landmarks)

    det = ev.add_parser("detector", help="a detector's recall/precision against YuNet on held-out LFW and AFW")
    det.add_argument("--lfw", help="LFW folder (its held-out identities are used)")
    det.add_argument("--afw", help="folder of AFW images (multi-face photos)")
    det.add_argument("--detector", default="yolo", help="detector to measure (default yolo)")
    det.add_argument("--weights", default=None, help="yolo weights (.pt or card); default: the shipped model")
    det.add_argument("--reference-threshold", type=float, default=0.6, help="YuNet score for reference faces")
    det.add_argument("--iou", type=float, default=0.5, help="IoU for a match (default 0.5)")
    det.add_argument("--images", type=int, default=500, help="held-out LFW images (one per identity)")
    det.add_argument("--json", metavar="PATH")
    det.set_defaults(func=run_detector)


def run_landmarks(args: argparse.Namespace) -> int:
    from engine.config import DetectorConfig, LandmarkConfig
    from engine.detectors import create_detector
    from engine.imageio import read_image
    from engine.landmarks.dataset import detector_boxes, load_samples, split_samples
    from engine.metrics.landmarks import nme, plot_ced, summary
    from engine.recognizer import make_landmarker

    try:
        samples = load_samples(args.data)
    except (FileNotFoundError, ValueError) as exc:
        raise FacescopeError(str(exc)) from None
    train, heldout = split_samples(samples)
    folder_faces = len(samples)
    samples = {"heldout": heldout, "train": train, "all": samples}[args.split]
    split_faces = len(samples)
    if args.limit:
        samples = samples[:args.limit]
    if not samples:
        raise FacescopeError(f"no faces in split {args.split!r} of {args.data}")
    detector = create_detector("yunet", DetectorConfig(input_size=None))
    t0 = time.perf_counter()
    boxes, found, _ = detector_boxes(samples, lambda im: detector(im).boxes, read_image, progress=True)
    model = make_landmarker(LandmarkConfig(model=args.model, flip_test=args.flip_test, refine=args.refine))
    truth = np.stack([s.points for s in samples])
    pred = np.zeros_like(truth)
    times = []
    images = [read_image(s.image) for s in samples]
    for i, (img, box) in enumerate(zip(images, boxes, strict=True)):
        t = time.perf_counter()
        pred[i] = model.predict(img, box[None])[0][0]   # timed: crop + inference + decoding, one face
        times.append(time.perf_counter() - t)
    errors = nme(pred, truth)
    result = {"model": model.card.name, "model_sha256": model.card.sha256, "data": str(args.data),
              "split": args.split, "folder_faces": folder_faces, "split_faces": split_faces,
              "faces": len(samples), "flip_test": args.flip_test, "refine": args.refine,
              "detector_boxes": int(found.sum()),
              **summary(errors), "ms_per_face_p50": float(np.median(times) * 1e3),
              "ms_per_face_p95": float(np.percentile(times, 95) * 1e3)}
    subsets = sorted({s.subset for s in samples})
    result["nme_by_subset"] = {k: float(errors[[s.subset == k for s in samples]].mean()) for k in subsets}
    curves = {model.card.name: errors}
    if args.compare == "dlib":
        from engine.bench.dlib_landmarks import DlibLandmarks

        dl = DlibLandmarks()
        dl.calibrate(images, boxes)
        result["dlib_box_relation"] = {**asdict(dl.relation), "calibrated_on_faces": dl.calibrated_on}
        dpred = np.stack([dl.predict(img, box) for img, box in zip(images, boxes, strict=True)])
        derr = nme(dpred, truth)
        result.update(summary(derr, prefix="dlib_"))
        result["dlib_note"] = ("dlib's shape_predictor_68_face_landmarks was trained on 300-W (HELEN and AFW "
                               "included): on these images it is not a held-out comparison")
        curves["dlib (trained on 300-W)"] = derr
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["ced_png"] = str(plot_ced(curves, args.ced)) if args.ced else None
    which = ("every face" if args.split == "all" else
             f"the training recipe's {args.split} split, {split_faces}")
    limited = f", first {len(samples)} scored (--limit)" if len(samples) < split_faces else ""
    print(f"scored {result['faces']} faces: {which} of {folder_faces} in {args.data}{limited} "
          f"(--split {args.split}; {result['detector_boxes']} YuNet boxes)")
    print(f"  {model.card.name}: NME {result['nme'] * 100:.2f} %"
          f"  failure@0.08 {result['failure_rate_0.08'] * 100:.1f} %"
          f"  failure@0.10 {result['failure_rate_0.10'] * 100:.1f} %  AUC@0.08 {result['auc_0.08']:.3f}"
          f"  {result['ms_per_face_p50']:.2f} ms/face p50")
    for k, v in result["nme_by_subset"].items():
        print(f"    {k}: NME {v * 100:.2f} %")
    if "dlib_nme" in result:
        print(f"  dlib 68 (trained on 300-W, not held out): NME {result['dlib_nme'] * 100:.2f} %  failure@0.08 "
              f"{result['dlib_failure_rate_0.08'] * 100:.1f} %  AUC@0.08 {result['dlib_auc_0.08']:.3f}")
    write_json(args.json, result)
    return 0


def run_detector(args: argparse.Namespace) -> int:
    from engine.bench.detector_recall import compare_detectors

    if not args.lfw and not args.afw:
        raise FacescopeError("give --lfw and/or --afw")
    result = compare_detectors(args.detector, args.weights, lfw=args.lfw, afw=args.afw, images=args.images,
                               ref_threshold=args.reference_threshold, iou=args.iou)
    for name, r in result["sets"].items():
        print(f"{name}: {r['images']} images, {r['reference_faces']} YuNet faces, {r['detections']} detections -> "
              f"recall {r['recall'] * 100:.1f} %  precision {r['precision'] * 100:.1f} %  "
              f"({r['ms_p50']:.1f} ms/image p50 vs YuNet {r['reference_ms_p50']:.1f})")
    write_json(args.json, result)
    return 0
