"""``facescope unknowns list|name|merge|ignore``: groups of unknown faces from the sightings.

``list`` regroups first (DBSCAN on the unknown sightings, ids kept stable; see
engine/sightings/grouping.py). Every change is one transaction with its audit entry.
"""
from __future__ import annotations

import argparse
import json
import sys

from engine.cli.common import add_threshold_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("unknowns", help="groups of unknown faces seen: list, name, merge, ignore")
    g = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help: str, func) -> argparse.ArgumentParser:
        a = g.add_parser(name, help=help)
        a.add_argument("--gallery", required=True, help="gallery file")
        a.set_defaults(func=func)
        return a

    a = action("list", "regroup the unknown sightings and list the groups (newest first)", run_list)
    a.add_argument("--all", action="store_true", help="also list ignored groups")
    a.add_argument("--no-regroup", action="store_true", help="list the stored groups as they are")
    a.add_argument("--format", choices=("table", "json"), default="table")
    a.add_argument("--embedder", default="sface", help="embedder whose model-card threshold the 'is this X?' "
                                                       "hints use (default: sface)")
    add_threshold_arg(a)
    a = action("name", "enrol a group's best crops as a person (new or existing) and label its sightings", run_name)
    a.add_argument("group", type=int)
    a.add_argument("name")
    a.add_argument("--k", type=int, default=5, help="how many of its best crops to enrol (default 5)")
    a = action("merge", "merge group OTHER into group KEEP", run_merge)
    a.add_argument("keep", type=int)
    a.add_argument("other", type=int)
    a = action("ignore", "never show this group again (it stays as an anchor so it does not re-form)", run_ignore)
    a.add_argument("group", type=int)


def _open(path: str):
    from engine.cli.sightings_cmd import _open as open_gallery

    return open_gallery(path)


def _threshold(args: argparse.Namespace, gallery) -> float | None:
    if args.threshold is not None:
        return args.threshold
    from engine.recognizer import make_embedder

    emb = make_embedder(args.embedder)
    return emb.threshold if (emb.id, emb.dim) == (gallery.embedder_id, gallery.dim) else None


def run_list(args: argparse.Namespace) -> int:
    from engine.sightings import unknowns

    with _open(args.gallery) as g:
        if not args.no_regroup:
            unknowns.regroup(g)
        found = unknowns.groups(g, _threshold(args, g), include_ignored=args.all)
    if args.format == "json":
        json.dump([x.to_json() for x in found], sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    if not found:
        print("no groups of unknown faces")
    from engine.cli.sightings_cmd import utc_text

    for x in found:
        seen = f"{utc_text(x.first_seen)} .. {utc_text(x.last_seen)}" if x.last_seen else "no sightings left"
        hint = f"  is this {x.suggestion[0]}? ({x.suggestion[1]:.2f})" if x.suggestion else ""
        flag = " [ignored]" if x.status == "ignored" else ""
        print(f"group {x.id}{flag}: {x.sightings} sightings, {seen}, {', '.join(x.sources)}; best "
              f"sightings {', '.join(map(str, x.best))}{hint}")
    return 0


def run_name(args: argparse.Namespace) -> int:
    from engine.sightings import unknowns

    with _open(args.gallery) as g:
        pid, fids = unknowns.name_group(g, args.group, args.name, args.k)
    print(f"group {args.group} is now {args.name!r} (person {pid}): {len(fids)} face(s) enrolled")
    return 0


def run_merge(args: argparse.Namespace) -> int:
    from engine.sightings import unknowns

    with _open(args.gallery) as g:
        n = unknowns.merge_groups(g, args.keep, args.other)
    print(f"merged group {args.other} into {args.keep} ({n} sightings moved)")
    return 0


def run_ignore(args: argparse.Namespace) -> int:
    from engine.sightings import unknowns

    with _open(args.gallery) as g:
        unknowns.ignore_group(g, args.group)
    print(f"group {args.group} is ignored")
    return 0
