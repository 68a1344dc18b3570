"""``facescope train landmarks|detector``: train the shipped landmark and YOLO face models.

Needs the ``train`` extra (torch, torchvision, ultralytics); imported only when run.
"""
from __future__ import annotations

import argparse
import json

from engine.cli.extras import need_extra
from engine.errors import FacescopeError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train",
                       help="train models (landmarks: stacked hourglass; detector: YOLO via ultralytics; embedder)")
    tr = p.add_subparsers(dest="train", metavar="MODEL", required=True)

    lm = tr.add_parser("landmarks", help="train the 68-point stacked hourglass on 300-W style data",
                       description="Trains on the non-held-out split of --data (a hash of file names keeps "
                                   "15%% for validation), writes checkpoints, a CSV log and an ONNX export + card. "
                                   "The shipped model is three runs (README, 'Training recipe'): this command "
                                   "with FaceMesh-labelled LFW faces (--annotation-dx 0), then two stages on "
                                   "300-W alone from the previous best.pt (--init ... --no-teacher), the first "
                                   "without mirroring, the second with it.")
    lm.add_argument("--data", required=True, help="folder of *.jpg + *.pts (e.g. ../shared/data/300w)")
    lm.add_argument("--out", default="runs/landmarks", help="output folder (default runs/landmarks)")
    lm.add_argument("--epochs", type=int, default=8, help="epochs over real + teacher-labelled faces (default 8)")
    lm.add_argument("--finetune-epochs", type=int, default=16,
                    help="then epochs over the real annotations only at a fifth of the learning rate (default 16)")
    lm.add_argument("--teacher", default="../shared/models/mediapipe/face_landmark.onnx",
                    help="FaceMesh ONNX used to pseudo-label --extra-faces (its 468 points are mapped to iBUG 68 "
                         "by a ridge fit on the training split)")
    lm.add_argument("--extra-faces", default="../shared/data/lfw", help="identity folders of unannotated faces")
    lm.add_argument("--extra-max", type=int, default=5000, help="teacher-labelled faces at most (default 5000)")
    lm.add_argument("--no-teacher", action="store_true", help="train on the real annotations only")
    lm.add_argument("--init", metavar="CHECKPOINT", help="start from these weights (a second training stage)")
    lm.add_argument("--no-flip", action="store_true",
                    help="no mirror augmentation")
    lm.add_argument("--annotation-dx", type=float, default=1.3,
                    help="x offset (image px) of the annotations from pixel centres, kept when mirroring: "
                         "300-W's sit ~1.3 px right of where a mirror-symmetric model puts them (default 1.3; "
                         "0 for data annotated at pixel centres)")
    lm.add_argument("--ema", type=float, default=0.0,
                    help="validate and export an exponential moving average of the weights (e.g. 0.998; 0 = off)")
    lm.add_argument("--batch-size", type=int, default=32)
    lm.add_argument("--lr", type=float, default=2e-3)
    lm.add_argument("--warmup-epochs", type=int, default=1)
    lm.add_argument("--seed", type=int, default=0)
    lm.add_argument("--channels", type=int, default=64)
    lm.add_argument("--stacks", type=int, default=2)
    lm.add_argument("--limit", type=int, default=0, help="use only the first N training faces (smoke runs)")
    lm.add_argument("--resume", metavar="CHECKPOINT", help="continue from out/last.pt")
    lm.add_argument("--no-progress", action="store_true")
    lm.set_defaults(func=run_landmarks)

    from engine.cli.embedder_cmds import add_train_parser
    add_train_parser(tr)

    det = tr.add_parser("detector", help="train a YOLO face detector with ultralytics on YuNet pseudo-labels")
    det.add_argument("--lfw", default="../shared/data/lfw", help="LFW folder ('' to skip)")
    det.add_argument("--landmarks-data", default="../shared/data/300w", help="300-W folder ('' to skip)")
    det.add_argument("--out", default="runs/detector")
    det.add_argument("--epochs", type=int, default=8)
    det.add_argument("--imgsz", type=int, default=256)
    det.add_argument("--batch", type=int, default=16)
    det.add_argument("--lfw-per-person", type=int, default=1)
    det.add_argument("--val-images", type=int, default=500)
    det.add_argument("--max-train", type=int, default=0, help="training images at most (0 = all; smoke runs)")
    det.add_argument("--seed", type=int, default=0)
    det.add_argument("--no-progress", action="store_true")
    det.set_defaults(func=run_detector)


def run_landmarks(args: argparse.Namespace) -> int:
    need_extra("train", "train landmarks", ("torch",))
    from engine.train.landmark_data import Augment
    from engine.train.landmarks import LandmarkTrainConfig, train_landmarks

    cfg = LandmarkTrainConfig(data=args.data, out=args.out, epochs=args.epochs, batch_size=args.batch_size,
                              lr=args.lr, seed=args.seed, channels=args.channels, stacks=args.stacks,
                              warmup_epochs=args.warmup_epochs, limit=args.limit,
                              finetune_epochs=args.finetune_epochs,
                              teacher=None if args.no_teacher else args.teacher,
                              extra_faces=None if args.no_teacher else args.extra_faces, extra_max=args.extra_max,
                              ema=args.ema, init=args.init, annotation_dx=args.annotation_dx,
                              augment=Augment(flip=0.0) if args.no_flip else Augment())
    try:
        summary = train_landmarks(cfg, resume=args.resume, progress=not args.no_progress)
    except FileNotFoundError as exc:
        raise FacescopeError(str(exc)) from None
    print(json.dumps(summary, indent=2, default=str))
    print(f"best validation NME {summary['best_val_nme'] * 100:.2f} % (epoch {summary['best_epoch']}); "
          f"model card: {summary['card']}")
    return 0


def run_detector(args: argparse.Namespace) -> int:
    need_extra("train", "train detector", ("torch", "ultralytics"))
    from engine.train.detector import DetectorTrainConfig, train_detector
    from engine.train.yolo_data import YoloDataConfig

    data = YoloDataConfig(lfw=args.lfw or None, landmarks=args.landmarks_data or None, out=f"{args.out}/data",
                          lfw_per_person=args.lfw_per_person, val_images=args.val_images, seed=args.seed,
                          max_train=args.max_train)
    cfg = DetectorTrainConfig(out=args.out, epochs=args.epochs, imgsz=args.imgsz, batch=args.batch, seed=args.seed,
                              data=data)
    try:
        summary = train_detector(cfg, progress=not args.no_progress)
    except FileNotFoundError as exc:
        raise FacescopeError(str(exc)) from None
    print(json.dumps(summary, indent=2, default=str))
    return 0
