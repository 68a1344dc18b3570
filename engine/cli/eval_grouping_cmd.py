"""``facescope eval grouping``: the unknown-people lane measured end to end on synthetic clips."""
from __future__ import annotations

import argparse
import time

from engine.cli.common import write_json


def register(ev: argparse._SubParsersAction) -> None:
    p = ev.add_parser("grouping", help="group strangers seen on synthetic clips, keep their ids, name them",
                      description="Per seed: clips of LFW people (some enrolled, some strangers) run through the "
                                  "real-time pipeline with a gallery and the sightings collector; the unknown "
                                  "sightings are grouped and scored (groups per stranger, purity, coverage); more "
                                  "clips of the same people must keep the group ids; then each group is named and "
                                  "those clips run again (identification rate of the formerly unknown people).")
    p.add_argument("--lfw", required=True, help="LFW folder (with lfw-deepfunneled/)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--enrolled", type=int, default=2, help="enrolled people per clip (default 2)")
    p.add_argument("--strangers", type=int, default=3, help="strangers per clip (default 3)")
    p.add_argument("--visits", type=int, default=3, help="clips per pass (default 3)")
    p.add_argument("--frames", type=int, default=300, help="frames per clip (default 300, 12 s)")
    p.add_argument("--size", default="960x540", help="clip size WxH (default 960x540)")
    p.add_argument("--max-distance", type=float, default=None, help="grouping distance (default: GroupingConfig's)")
    p.add_argument("--min-samples", type=int, default=None, help="grouping core size (default: GroupingConfig's)")
    p.add_argument("--sweep", default="", metavar="D,D,...",
                   help="also score these grouping distances on the same sightings (e.g. 0.35,0.45,0.5)")
    p.add_argument("--keep", metavar="DIR", help="keep the clips and galleries here (default: a temporary folder)")
    p.add_argument("--json", metavar="PATH", help="write results as one JSON object")
    p.set_defaults(func=run)


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def _num(v, fmt: str = ".2f") -> str:
    return "-" if v is None else format(v, fmt)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from engine.bench.grouping import GroupingEvalConfig, eval_grouping
    from engine.sightings.grouping import GroupingConfig

    w, _, h = args.size.lower().partition("x")
    g = GroupingConfig()
    g = replace(g, **{k: v for k, v in (("max_distance", args.max_distance), ("min_samples", args.min_samples))
                      if v is not None})
    cfg = GroupingEvalConfig(enrolled=args.enrolled, strangers=args.strangers, visits=args.visits,
                             frames=args.frames, size=(int(w), int(h)), grouping=g,
                             sweep=tuple(float(d) for d in args.sweep.split(",") if d.strip()))
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    t0 = time.perf_counter()
    res = eval_grouping(args.lfw, seeds, cfg, workdir=args.keep, progress=lambda m: print(m, flush=True))
    res["seconds"] = time.perf_counter() - t0
    print(f"grouping d = {g.max_distance}, k = {g.min_samples}, quality >= {g.min_quality}; per seed "
          f"{cfg.enrolled} enrolled + {cfg.strangers} strangers, 2 passes of {cfg.visits} clips x {cfg.frames} frames")
    print(f"{'seed':>4} {'pass':>4} {'covered':>8} {'groups/str':>10} {'purity':>8} {'mixed':>5} {'grouped':>8} "
          f"{'other':>5} {'kept ids':>8} {'ident before':>12} {'ident after':>11} {'new clips':>9}")
    for r in res["seeds"]:
        for k, name in ((1, "pass1"), (2, "pass2")):
            s = r[name]
            extra = (f" {r['persistence']['persisted']:>4}/{r['persistence']['strangers']:<3} "
                     f"{_pct(r['identified_before_naming']):>12} {_pct(r['identified_after_naming']):>11} "
                     f"{_pct(r['identified_pass3']):>9}"
                     if k == 2 else "")
            print(f"{r['seed']:>4} {k:>4} {s['covered']:>4}/{s['strangers']:<3} {_num(s['groups_per_stranger']):>10} "
                  f"{_num(s['purity'], '.3f'):>8} {s['mixed_groups']:>5} {_pct(s['grouped']):>8} "
                  f"{s['other_groups']:>5}{extra}")
    s = res["summary"]
    for p in ("pass1", "pass2"):
        x = s[p]
        print(f"all seeds, {p}: {x['covered']}/{x['strangers']} strangers grouped, {_num(x['groups_per_stranger'])} "
              f"groups per stranger (target <= 1.2), purity >= {_num(x['purity_min'], '.3f')} (target >= 0.95), "
              f"{x['mixed_groups']} mixed groups, {_pct(x['grouped'])} of their sightings grouped")
    print(f"ids kept for {s['persisted']}/{s['persistence_checked']} strangers grouped in pass 1; formerly unknown "
          f"people identified on the second clips {_pct(s['identified_after_naming'])} of their visible frames after "
          f"naming ({_pct(s['identified_before_naming'])} before; wrong name {_pct(s['wrong_after_naming'])}), on new "
          f"clips {_pct(s['identified_pass3'])} (wrong {_pct(s['wrong_pass3'])}); enrolled people "
          f"{_pct(s['enrolled_identified'])} before, {_pct(s['enrolled_identified_after_naming'])} after; "
          f"{res['seconds']:.0f} s")
    for p, rows in s.get("sweep", {}).items():
        for d, x in rows.items():
            print(f"sweep {p} d = {d}: {x['covered']}/{x['strangers']} strangers grouped, "
                  f"{_num(x['groups_per_stranger'])} groups per stranger, purity >= {_num(x['purity_min'], '.3f')}, "
                  f"{x['mixed_groups']} mixed groups, {_pct(x['grouped'])} of their sightings grouped")
    write_json(args.json, res)
    return 0
