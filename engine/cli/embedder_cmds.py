"""Embedder toolkit commands: ``prepare``, ``train embedder`` (registered by train_cmd),
``export embedder``, ``experiment losses``."""
from __future__ import annotations

import argparse
import json

from engine.cli.extras import need_extra
from engine.errors import FacescopeError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="detect and align every face of identity folders into 112x112 crops",
                       description="SRC/<identity>/<image> -> OUT/<identity>/<image>.png with the app's own detector, "
                                   "landmarks and ArcFace alignment; resumable; OUT/prepare_report.json lists images "
                                   "with no face, several faces (central one kept) or unreadable.")
    p.add_argument("--src", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_prepare)

    ex = sub.add_parser("export", help="export a trained model for the app")
    exs = ex.add_subparsers(dest="export", metavar="MODEL", required=True)
    e = exs.add_parser("embedder", help="checkpoint -> ONNX + model card (use with --embedder OUT/card.json)")
    e.add_argument("checkpoint")
    e.add_argument("--out", required=True)
    e.add_argument("--name", help="model name in the card (default: BACKBONE-LOSS)")
    e.add_argument("--threshold", type=float, help="cosine threshold (default: the checkpoint's LFW threshold)")
    e.set_defaults(func=run_export)

    x = sub.add_parser("experiment", help="reproducible studies")
    xs = x.add_subparsers(dest="experiment", metavar="NAME", required=True)
    lo = xs.add_parser("losses", help="train one backbone with every loss under one budget; LFW folds 6-10 table")
    lo.add_argument("--lfw", default="../shared/data/lfw")
    lo.add_argument("--aligned", default="runs/lfw112", help="aligned LFW (made with facescope prepare if missing)")
    lo.add_argument("--data", help="aligned training identities (default: the aligned LFW minus folds 6-10 people)")
    lo.add_argument("--out", default="runs/loss_experiment")
    lo.add_argument("--backbone", default="mobilefacenet")
    lo.add_argument("--epochs", type=int, default=2)
    lo.add_argument("--batches-per-epoch", type=int, default=30)
    lo.add_argument("--batch-size", type=int, default=64)
    lo.add_argument("--pk", default="16,4", help="metric losses: P identities x K images per batch (default 16,4)")
    lo.add_argument("--losses", default="", help="comma-separated subset (default: all)")
    lo.add_argument("--no-progress", action="store_true")
    lo.set_defaults(func=run_experiment)


def add_train_parser(tr: argparse._SubParsersAction) -> None:
    from engine.train.embedder_choices import OPTIMIZERS, SCHEDULES  # torch-free: building the parser needs no extra

    e = tr.add_parser("embedder", help="train or fine-tune a face embedder on aligned identity folders")
    e.add_argument("--data", required=True, help="aligned identity folders (facescope prepare)")
    e.add_argument("--out", default="runs/embedder")
    e.add_argument("--backbone", default="mobilefacenet")
    e.add_argument("--loss", default="arcface")
    e.add_argument("--embedding-size", type=int, default=128)
    e.add_argument("--epochs", type=int, default=10)
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw")
    e.add_argument("--lr", type=float, default=1e-3)
    e.add_argument("--weight-decay", type=float, default=5e-4)
    e.add_argument("--schedule", choices=SCHEDULES, default="warmup_cosine")
    e.add_argument("--warmup-epochs", type=int, default=1)
    e.add_argument("--freeze", default="", help="comma-separated parameter prefixes frozen at first (backbone, "
                                                "loss.head, backbone.conv1 ...)")
    e.add_argument("--unfreeze-epoch", type=int, default=0, help="epoch (0-based) from which frozen parts train")
    e.add_argument("--head-init", choices=("random", "imprint"), default="random",
                   help="imprint: start the classifier from class-mean embeddings (fine-tuning)")
    e.add_argument("--init", help="backbone weights (mobilefacenet_y1: the OpenVINO .xml)")
    e.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    e.add_argument("--lfw", help="LFW folder (pairs.txt) to evaluate on each epoch; needs --lfw-aligned")
    e.add_argument("--lfw-aligned", help="aligned LFW (facescope prepare --src LFW/lfw-deepfunneled)")
    e.add_argument("--lfw-folds", default="1-10", help="folds to evaluate, e.g. 6-10 (default 1-10)")
    e.add_argument("--exclude-lfw-test-people", action="store_true",
                   help="never train on people who appear in the evaluated LFW folds")
    e.add_argument("--min-images", type=int, default=1)
    e.add_argument("--batches-per-epoch", type=int, default=0, help="cap (0 = whole epoch)")
    e.add_argument("--eval-start", action="store_true", help="evaluate once before training (logged as epoch 0)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--resume", metavar="CHECKPOINT")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=run_train)


def _folds(text: str) -> tuple[int, ...]:
    a, _, b = text.partition("-")
    return tuple(range(int(a) - 1, int(b or a)))


def run_train(args: argparse.Namespace) -> int:
    need_extra("train", "train embedder", ("torch",))
    from engine.metrics.lfw import find_lfw_root
    from engine.train.embedder import EmbedderTrainConfig, train_embedder
    from engine.train.embedder_eval import LfwPairs

    pairs = str(find_lfw_root(args.lfw)[0]) if args.lfw else None
    if bool(args.lfw) != bool(args.lfw_aligned):
        raise FacescopeError("--lfw and --lfw-aligned go together")
    folds = _folds(args.lfw_folds)
    exclude = tuple(sorted(LfwPairs.load(pairs, args.lfw_aligned, folds).identities())) \
        if pairs and args.exclude_lfw_test_people else ()
    cfg = EmbedderTrainConfig(
        data=args.data, out=args.out, backbone=args.backbone, loss=args.loss, embedding_size=args.embedding_size,
        epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
        weight_decay=args.weight_decay, schedule=args.schedule, warmup_epochs=args.warmup_epochs,
        freeze=tuple(p for p in args.freeze.split(",") if p), unfreeze_epoch=args.unfreeze_epoch,
        head_init=args.head_init, init=args.init, amp=args.amp, lfw_pairs=pairs, lfw_aligned=args.lfw_aligned,
        lfw_folds=folds, exclude_identities=exclude, min_images=args.min_images,
        limit_batches=args.batches_per_epoch, seed=args.seed, eval_start=args.eval_start)
    try:
        summary = train_embedder(cfg, resume=args.resume, progress=not args.no_progress)
    except FileNotFoundError as exc:  # a --data / --init / --resume path that is not there
        raise FacescopeError(str(exc)) from None
    print(json.dumps(summary, indent=2, default=str))
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from engine.train.face_prepare import prepare_folder

    try:
        r = prepare_folder(args.src, args.out, progress=not args.no_progress)
    except FileNotFoundError as exc:
        raise FacescopeError(str(exc)) from None
    print(f"aligned {r.written} new crops ({r.skipped_existing} already there); no face: {len(r.no_face)}, "
          f"several faces (central kept): {len(r.several_faces)}, unreadable: {len(r.unreadable)}; "
          f"report: {args.out}/prepare_report.json")
    return 0


def run_export(args: argparse.Namespace) -> int:
    need_extra("train", "export embedder", ("torch",))
    from engine.train.embedder_export import export_embedder

    r = export_embedder(args.checkpoint, args.out, args.name, args.threshold)
    print(json.dumps(r, indent=2))
    if r["non_commercial"]:
        print("note: these weights are InsightFace's, for non-commercial research only")
    print(f"use it: facescope run --embedder {r['card']} ...; facescope eval lfw --embedder {r['card']} ...")
    return 0


def run_experiment(args: argparse.Namespace) -> int:
    need_extra("train", "experiment losses", ("torch",))
    from pathlib import Path

    from engine.metrics.lfw import find_lfw_root
    from engine.train.face_prepare import prepare_folder
    from engine.train.loss_experiment import LOSSES, ExperimentConfig
    from engine.train.loss_experiment import run_experiment as run

    _, images = find_lfw_root(args.lfw)
    if not (Path(args.aligned) / "prepare_report.json").is_file():
        print(f"aligning LFW into {args.aligned} (once)")
        prepare_folder(images, args.aligned, progress=not args.no_progress)
    losses = tuple(x for x in args.losses.split(",") if x) or LOSSES
    unknown = set(losses) - set(LOSSES)
    if unknown:
        raise FacescopeError(f"unknown losses {sorted(unknown)}; choose from {', '.join(LOSSES)}")
    cfg = ExperimentConfig(lfw=args.lfw, aligned=args.aligned, data=args.data, out=args.out, backbone=args.backbone,
                           epochs=args.epochs, batches_per_epoch=args.batches_per_epoch, losses=losses,
                           batch_size=args.batch_size, pk=tuple(int(v) for v in args.pk.split(",")))
    from engine.train.loss_experiment import table
    rows = run(cfg, progress=not args.no_progress)
    print(table(rows, cfg))
    return 0
