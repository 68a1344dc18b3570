"""``facescope eval openset`` and ``facescope eval corrections``: the open-set decision on people
and strangers (engine.metrics.openset / corrections), on an identity-per-folder set such as LFW."""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import numpy as np

from engine.cli.common import add_model_args, add_threshold_arg, build_recognizer, write_json
from engine.errors import FacescopeError


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip()) or (0,)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="identity-per-folder images (the LFW folder)")
    p.add_argument("--gallery-size", type=int, default=200, help="people enrolled (default 200)")
    p.add_argument("--photos", type=int, default=3, help="photos enrolled per person (default 3)")
    p.add_argument("--seeds", type=_ints, default=(0,), metavar="N[,N...]",
                   help="who is enrolled and which photos: one run per seed (default 0)")
    p.add_argument("--min-photos", type=int, default=5,
                   help="people with at least this many photos are enrolled or multi-photo strangers (default 5)")
    p.add_argument("--max-photos", type=int, default=8, help="photos used per person at most (default 8)")
    p.add_argument("--singles", type=int, default=2000,
                   help="strangers with fewer photos: the first photo of this many of them (default 2000)")
    p.add_argument("--cache", metavar="NPZ", default=None,
                   help="keep the photos' embeddings in this file and reuse them (default: embed every run)")
    add_threshold_arg(p)  # the decision under test
    p.add_argument("--json", metavar="PATH")
    add_model_args(p)


def register(ev: argparse._SubParsersAction) -> None:
    o = ev.add_parser("openset", help="TPR at stranger FPR 1e-3/1e-2 with a gallery of people, with and without "
                                      "the margin rule; the thresholds that reach them")
    _common(o)
    o.add_argument("--fprs", type=_floats, default=(1e-3, 1e-2), help="target stranger FPRs (default 1e-3,1e-2)")
    o.add_argument("--margins", type=_floats, default=(0.0, 0.02, 0.05, 0.1),
                   help="margins to the second-best person (default 0,0.02,0.05,0.1; 0 = no margin rule)")
    o.set_defaults(func=run_openset)
    c = ev.add_parser("corrections", help="'not X' on strangers' photos: their other photos stop matching X, "
                                          "the enrolled people keep their names")
    _common(c)
    c.add_argument("--corrections", type=int, default=1, help="'not X' corrections per stranger (default 1)")
    c.set_defaults(func=run_corrections)


def _prepare(args: argparse.Namespace):
    """(recognizer, [(seed, split, embeddings)], seconds spent embedding)."""
    from engine.embed_cache import embed_cached
    from engine.metrics import identity_root, list_identity_folder
    from engine.metrics.openset import split_people

    root = identity_root(args.data)
    try:
        paths, labels, names = list_identity_folder(root)
    except FileNotFoundError as exc:
        raise FacescopeError(str(exc)) from None
    splits = [(seed, split_people(paths, labels, names, args.gallery_size, args.photos, seed, args.min_photos,
                                  args.max_photos, args.singles)) for seed in args.seeds]
    rec = build_recognizer(args)
    t0 = time.perf_counter()
    union = sorted({p for _, s in splits for p in s.paths})
    embedded = embed_cached(rec, union, root, args.cache, desc="photos")
    where = {p: i for i, p in enumerate(union)}
    runs = [(seed, s, embedded.embeddings[[where[p] for p in s.paths]]) for seed, s in splits]
    print(f"{len(union)} photos embedded ({int((~embedded.detected).sum())} without a detection: median keypoints), "
          f"{time.perf_counter() - t0:.0f} s")
    return rec, runs


def _header(seed: int, split) -> str:
    c = split.counts()
    return (f"seed {seed}: gallery {c['gallery_people']} people ({c['enrolled_photos']} photos), "
            f"{c['genuine_probes']} genuine probes, {c['stranger_probes']} stranger probes "
            f"({c['stranger_people']} people never enrolled)")


def _decision(rec) -> dict:
    return dataclasses.asdict(rec.decision)


def run_openset(args: argparse.Namespace) -> int:
    from engine.metrics import format_table
    from engine.metrics.openset import ENROL, GENUINE, STRANGER, operating_point, sweep, top_two_people

    rec, runs = _prepare(args)
    d = rec.decision
    per_seed, table = [], {}
    for seed, split, emb in runs:
        enrol = split.role == ENROL
        g_rows, s_rows = split.role == GENUINE, split.role == STRANGER
        genuine = top_two_people(emb[enrol], split.person[enrol], emb[g_rows])
        strangers = top_two_people(emb[enrol], split.person[enrol], emb[s_rows])
        truth = split.person[g_rows]
        points = sweep(genuine, truth, strangers, args.fprs, args.margins)
        named = operating_point(genuine, truth, strangers, d.unknown, 0.0)
        confirmed = operating_point(genuine, truth, strangers, d.confirmed, d.margin)
        card = operating_point(genuine, truth, strangers, rec.embedder.threshold, 0.0)
        print(_header(seed, split))
        print(format_table([{"margin": p.margin, "FPR target": p.fpr_target, "threshold": p.threshold,
                             "TPR %": 100 * p.tpr, "FPR measured": p.fpr, "wrong name %": 100 * p.wrong}
                            for p in points]))
        print(f"  decision {d.unknown:.3f} / {d.confirmed:.3f} / margin {d.margin:g}: named (probable or confirmed) "
              f"TPR {100 * named.tpr:.2f} % at stranger FPR {named.fpr:.2e}; confirmed TPR {100 * confirmed.tpr:.2f} % "
              f"at FPR {confirmed.fpr:.2e}")
        print(f"  model-card threshold {rec.embedder.threshold:g} (a 1:1 verification point): TPR "
              f"{100 * card.tpr:.2f} %, strangers named {100 * card.fpr:.1f} %")
        for p in points:
            table.setdefault((p.margin, p.fpr_target), []).append(p)
        per_seed.append({"seed": seed, **split.counts(), "points": [p.to_json() for p in points],
                         "decision_named": named.to_json(), "decision_confirmed": confirmed.to_json(),
                         "card": card.to_json()})
    # the median: one look-alike stranger among the 3 accepted at FPR 1e-3 can lift one seed's threshold a lot
    summary = [{"margin": m, "fpr_target": f, "threshold_median": float(np.median([p.threshold for p in ps])),
                "threshold_mean": float(np.mean([p.threshold for p in ps])),
                "tpr_median": float(np.median([p.tpr for p in ps])), "tpr_mean": float(np.mean([p.tpr for p in ps])),
                "tpr_min": float(np.min([p.tpr for p in ps]))} for (m, f), ps in table.items()]
    if len(runs) > 1:
        print(f"over seeds {','.join(map(str, args.seeds))}:")
        print(format_table([{"margin": s["margin"], "FPR target": s["fpr_target"],
                             "median threshold": s["threshold_median"], "mean threshold": s["threshold_mean"],
                             "median TPR %": 100 * s["tpr_median"], "mean TPR %": 100 * s["tpr_mean"],
                             "min TPR %": 100 * s["tpr_min"]} for s in summary]))
    write_json(args.json, {"seeds": per_seed, "summary": summary, "decision": _decision(rec),
                           "card_threshold": rec.embedder.threshold, "embedder": rec.embedder.id,
                           "gallery_size": args.gallery_size, "photos": args.photos})
    return 0


def run_corrections(args: argparse.Namespace) -> int:
    from engine.gallery.decision import DecisionConfig
    from engine.metrics.corrections import run_corrections as measure

    rec, runs = _prepare(args)
    rules = {"decision": rec.decision, "card": DecisionConfig.single(rec.embedder.threshold)}
    out = []
    worst = 0.0
    for seed, split, emb in runs:
        print(_header(seed, split))
        for label, rule in rules.items():
            with tempfile.TemporaryDirectory(prefix="facescope-corrections-") as folder:
                r = measure(split, emb, rule, folder, rec.embedder.id, args.corrections)
            worst = max(worst, abs(r.genuine_change_points))
            print(f"  {label} (unknown below {rule.unknown:.3f}): {r.strangers_corrected} strangers corrected "
                  f"({r.negatives} 'not X'), their {r.other_photos} other photos named as the same X "
                  f"{r.other_as_x[0]} -> {r.other_as_x[1]}, as anyone {r.other_named[0]} -> {r.other_named[1]}; "
                  f"all {r.stranger_photos} stranger photos named {r.stranger_named[0]} -> {r.stranger_named[1]}; "
                  f"genuine named right {100 * r.genuine_rate[0]:.2f} % -> {100 * r.genuine_rate[1]:.2f} % "
                  f"({r.genuine_change_points:+.2f} points)")
            out.append({"seed": seed, "rule_name": label, **split.counts(), **r.to_json()})
    print(f"largest change of the genuine rate: {worst:.2f} points (bar: 0.2) -> {'PASS' if worst <= 0.2 else 'FAIL'}")
    write_json(args.json, {"runs": out, "worst_genuine_change_points": worst, "decision": _decision(rec),
                           "card_threshold": rec.embedder.threshold, "embedder": rec.embedder.id,
                           "corrections": args.corrections})
    return 0
