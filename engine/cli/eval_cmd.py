"""``facescope eval lfw|ident`` and ``facescope calibrate``: accuracy on real face data."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from engine.cli.common import add_model_args, build_recognizer, write_json
from engine.dataset_embed import embed_paths
from engine.errors import FacescopeError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate recognition accuracy (LFW verification, identification rate)")
    ev = p.add_subparsers(dest="eval", metavar="BENCHMARK", required=True)

    lfw = ev.add_parser("lfw", help="LFW 10-fold verification accuracy, TAR@FAR, ROC curve")
    lfw.add_argument("--data", required=True, help="folder with pairs.txt and the LFW images")
    lfw.add_argument("--json", metavar="PATH", help="write results as one JSON object")
    # Opt-in: a command writes into the current folder only when asked to.
    lfw.add_argument("--roc", metavar="PNG", default=None,
                     help="also draw the ROC curve into this PNG (default: no plot)")
    lfw.add_argument("--limit", type=int, default=0, help="use only the first N pairs of each fold half (smoke runs)")
    add_model_args(lfw)
    lfw.set_defaults(func=run_lfw)

    ident = ev.add_parser("ident", help="open-set identification rate TPR@FPR (one gallery image per identity)")
    ident.add_argument("--data", required=True, help="identity-per-folder images (e.g. the LFW folder)")
    ident.add_argument("--json", metavar="PATH")
    ident.add_argument("--max-identities", type=int, default=None, help="enrolled identities to keep")
    ident.add_argument("--max-impostors", type=int, default=None, help="impostor identities to keep")
    ident.add_argument("--fprs", default="0.5,0.2,0.1,0.05,0.01", help="comma-separated target FPRs")
    add_model_args(ident)
    ident.set_defaults(func=run_ident)

    from engine.cli import eval_models_cmd, eval_people_cmd

    eval_models_cmd.register(ev)
    from engine.cli import eval_grouping_cmd

    eval_grouping_cmd.register(ev)
    eval_people_cmd.register(ev)

    cal = sub.add_parser("calibrate", help="derive a recognition threshold for a target false-accept rate")
    cal.add_argument("--data", required=True, help="folder with pairs.txt and the LFW images")
    cal.add_argument("--far", type=float, default=1e-3, help="target false-accept rate (default 1e-3)")
    cal.add_argument("--json", metavar="PATH")
    cal.add_argument("--limit", type=int, default=0, help="use only the first N pairs of each fold half (smoke runs)")
    add_model_args(cal)
    cal.set_defaults(func=run_calibrate)


def _lfw_pairs(data: str, limit: int = 0):
    from engine.metrics import find_lfw_root, read_pairs

    try:
        pairs_txt, images = find_lfw_root(data)
    except FileNotFoundError as exc:
        raise FacescopeError(str(exc)) from None
    pairs = read_pairs(pairs_txt, images)
    if limit:
        keep, seen = [], {}
        for p in pairs:
            key = (p.fold, p.same)
            seen[key] = seen.get(key, 0) + 1
            if seen[key] <= limit:
                keep.append(p)
        pairs = keep
    return pairs


def _embed_pairs(rec, pairs):
    paths = sorted({str(p.path1) for p in pairs} | {str(p.path2) for p in pairs})
    embedded = embed_paths(rec, paths, desc="LFW images")
    if embedded.failed:
        raise FacescopeError(f"{len(embedded.failed)} images unreadable, e.g. {embedded.failed[0]}")
    where = {p: i for i, p in enumerate(paths)}
    i1 = np.array([where[str(p.path1)] for p in pairs])
    i2 = np.array([where[str(p.path2)] for p in pairs])
    return paths, embedded, i1, i2


def _model_info(rec, args) -> dict:
    lm = rec.landmarker
    card = getattr(rec.detector, "card", None)
    return {"detector": rec.detector.name, "detector_model": card.id if card is not None else None,
            "det_size": args.det_size, "embedder": rec.embedder.id, "flip": args.flip,
            "landmarks": lm.card.id if lm is not None else None, "align": args.align}


def run_lfw(args: argparse.Namespace) -> int:
    from engine.metrics import format_table, kfold_accuracy, plot_roc, roc, tar_at_far

    t0 = time.perf_counter()
    pairs = _lfw_pairs(args.data, args.limit)
    rec = build_recognizer(args)
    paths, embedded, i1, i2 = _embed_pairs(rec, pairs)
    e = embedded.embeddings
    scores = np.einsum("ij,ij->i", e[i1], e[i2])
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    result = kfold_accuracy(scores, same, folds)
    tar, tar_thr = tar_at_far(scores, same, 1e-3)
    roc_png = None
    if args.roc:
        fpr, tpr, _ = roc(scores, same)
        roc_png = plot_roc({f"{rec.embedder.id} ({100 * result.accuracy:.2f} %)": (fpr, tpr)}, args.roc,
                           title=f"LFW ROC, {len(pairs)} pairs")
    seconds = time.perf_counter() - t0
    print(format_table([{"fold": k + 1, "accuracy": a, "threshold": t}
                        for k, (a, t) in enumerate(zip(result.fold_accuracies, result.fold_thresholds, strict=True))]))
    print(f"LFW 10-fold accuracy: {100 * result.accuracy:.2f} % ± {100 * result.accuracy_std:.2f} "
          f"({len(pairs)} pairs, {len(paths)} images, {embedded.fallbacks} without a detection, {seconds:.0f} s)")
    print(f"TAR@FAR=1e-3: {100 * tar:.2f} % (threshold {tar_thr:.3f}; {int((~same).sum())} impostor pairs "
          f"resolve FAR only to {1 / max(1, (~same).sum()):.1e})")
    if roc_png is not None:
        print(f"ROC curve: {roc_png}")
    write_json(args.json, {**result.to_json(), "tar_at_far_1e-3": tar, "tar_threshold": tar_thr,
                           "pairs": len(pairs), "images": len(paths), "no_detection": embedded.fallbacks,
                           "seconds": seconds, "roc_png": None if roc_png is None else str(roc_png),
                           **_model_info(rec, args)})
    return 0


def run_ident(args: argparse.Namespace) -> int:
    from engine.metrics import (
        format_table,
        identification_rates,
        identity_root,
        list_identity_folder,
        split_gallery_probe,
    )

    t0 = time.perf_counter()
    fprs = tuple(float(f) for f in args.fprs.split(","))
    try:
        paths, labels, _names = list_identity_folder(identity_root(args.data))
    except FileNotFoundError as exc:
        raise FacescopeError(str(exc)) from None
    g_idx, p_idx, i_idx = split_gallery_probe(labels, max_identities=args.max_identities,
                                              max_impostors=args.max_impostors)
    used = np.concatenate([g_idx, p_idx, i_idx])
    rec = build_recognizer(args)
    embedded = embed_paths(rec, [paths[i] for i in used], desc="identification images")
    emb = np.zeros((len(paths), rec.embedder.dim), np.float32)
    emb[used] = embedded.embeddings
    probes = np.concatenate([p_idx, i_idx])
    res = identification_rates(emb[g_idx], labels[g_idx], emb[probes], labels[probes], fprs=fprs)
    seconds = time.perf_counter() - t0
    print(format_table([{"FPR": f, "TPR": res.tpr_at_fpr[f], "threshold": res.thresholds[f]} for f in fprs]))
    print(f"rank-1 {100 * res.rank1:.2f} %; gallery {res.n_gallery} identities, {res.n_genuine} genuine probes, "
          f"{res.n_impostor} impostor probes; {embedded.fallbacks} images without a detection; {seconds:.0f} s")
    write_json(args.json, {**res.to_json(), "no_detection": embedded.fallbacks, "seconds": seconds,
                           **_model_info(rec, args)})
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    from engine.metrics import threshold_for_far

    if not 0 < args.far < 1:
        raise ValueError(f"--far must be in (0, 1), got {args.far}")
    pairs = _lfw_pairs(args.data, args.limit)
    rec = build_recognizer(args)
    paths, embedded, _, _ = _embed_pairs(rec, pairs)
    # Every cross-identity pair of these images is an impostor comparison: millions of them,
    # so FAR 1e-3..1e-5 is resolved far better than by the 3,000 impostor lines of pairs.txt.
    who = np.array([Path(p).parent.name for p in paths])
    _, label = np.unique(who, return_inverse=True)
    e = embedded.embeddings
    sims = e @ e.T
    upper = np.triu(np.ones_like(sims, dtype=bool), k=1)
    same = label[:, None] == label[None, :]
    impostor, genuine = sims[upper & ~same], sims[upper & same]
    thr = threshold_for_far(impostor, args.far)
    tar = float((genuine >= thr).mean())
    far = float((impostor >= thr).mean())
    print(f"threshold {thr:.4f} for FAR {args.far:g}: measured FAR {far:.2e} over {impostor.size} impostor pairs, "
          f"TAR {100 * tar:.2f} % over {genuine.size} genuine pairs (card default {rec.embedder.threshold})")
    print(f"use it with: --threshold {thr:.4f}")
    write_json(args.json, {"threshold": thr, "far_target": args.far, "far_measured": far, "tar": tar,
                           "impostor_pairs": int(impostor.size), "genuine_pairs": int(genuine.size),
                           "card_threshold": rec.embedder.threshold, **_model_info(rec, args)})
    return 0
