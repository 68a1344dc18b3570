"""``facescope sightings list|export|purge|search``: the history of who was seen, when and where.

Sightings are recorded by ``facescope run --gallery`` and by the desktop app (schema v3). Times
are UTC; ``--since``/``--until``/``--before`` take ISO 8601 (``2026-12-01``, ``2026-12-01T08:00``,
UTC unless an offset is given), epoch seconds, or an age (``90m``, ``12h``, ``7d``).
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from engine.cli.common import add_model_args, build_recognizer
from engine.errors import FacescopeError

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_FIELDS = ("id", "person_id", "name", "group_id", "source", "first_seen", "last_seen", "first_seen_utc",
           "last_seen_utc", "frames", "quality", "similarity")


def parse_time(text: str, now: float | None = None) -> float:
    """ISO 8601 (UTC unless it has an offset), epoch seconds, or an age like ``7d`` -> epoch seconds."""
    now = time.time() if now is None else now
    if m := _AGE.match(text):
        return now - float(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"cannot read time {text!r}: use ISO 8601 (2026-12-01T08:00), epoch seconds "
                         "or an age (90m, 12h, 7d)") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def utc_text(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sightings", help="history of faces seen: list, export, purge, search by photo")
    g = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help: str, func, filters: bool = True) -> argparse.ArgumentParser:
        a = g.add_parser(name, help=help)
        a.add_argument("--gallery", required=True, help="gallery file")
        if filters:
            a.add_argument("--since", help="only sightings last seen at or after this time (or age: 7d)")
            a.add_argument("--until", help="only sightings first seen at or before this time")
            who = a.add_mutually_exclusive_group()
            who.add_argument("--person", help="only this person's sightings (name, case-insensitive)")
            who.add_argument("--unknown", action="store_true", help="only unknown faces")
            a.add_argument("--source", help="only sources containing this text")
        a.set_defaults(func=func)
        return a

    a = action("list", "newest sightings first", run_list)
    a.add_argument("--limit", type=int, default=50, help="at most this many (0 = all; default 50)")
    a.add_argument("--format", choices=("table", "csv", "json"), default="table")
    a = action("export", "write sightings as CSV or JSON (optionally their crops as JPEG files)", run_export)
    a.add_argument("--out", required=True, help="output file (- for stdout)")
    a.add_argument("--format", choices=("csv", "json"), default=None, help="default: from --out's extension")
    a.add_argument("--crops", metavar="DIR", help="also write each sighting's best crop as DIR/<id>.jpg")
    a = action("purge", "delete sightings past retention (defaults: unknown 30 d, named 90 d, 20000 rows), "
                        "or all / older ones; erased bytes are scrubbed", run_purge, filters=False)
    a.add_argument("--unknown-days", type=float, default=None)
    a.add_argument("--named-days", type=float, default=None)
    a.add_argument("--max-rows", type=int, default=None)
    a.add_argument("--before", help="delete every sighting last seen before this time instead")
    a.add_argument("--all", action="store_true", help="delete every sighting instead")
    a = action("search", "sightings most similar to the largest face of a photo", run_search, filters=False)
    a.add_argument("--image", required=True, help="photo with the face to look for")
    a.add_argument("--top", type=int, default=10, help="how many (default 10)")
    a.add_argument("--format", choices=("table", "json"), default="table")
    add_model_args(a)


def _meta(path: str):
    from engine.gallery import Gallery

    meta = Gallery.inspect(path)
    return meta


def _open(path: str):
    from engine.gallery import Gallery

    meta = _meta(path)
    return Gallery.open(path, meta.embedder_id, meta.embedding_dim, create=False, frontend="cli")


def _rows(args: argparse.Namespace, limit: int | None):
    from engine.sightings.store import list_sightings

    since = parse_time(args.since) if args.since else None
    until = parse_time(args.until) if args.until else None
    with _open(args.gallery) as g:  # opens (and migrates an older gallery) like every command
        if args.person is not None:
            g._person(args.person)  # KeyError naming the unknown person, rather than an empty list
        return list_sightings(g.db.conn, since, until, args.person, args.unknown, args.source, limit or None)


def _dicts(rows) -> list[dict]:
    out = []
    for r in rows:
        d = r.to_json()
        d["first_seen_utc"], d["last_seen_utc"] = utc_text(r.first_seen), utc_text(r.last_seen)
        out.append({k: d[k] for k in _FIELDS})
    return out


def _write(rows: list[dict], fmt: str, stream) -> None:
    if fmt == "json":
        json.dump(rows, stream, indent=1)
        stream.write("\n")
        return
    w = csv.DictWriter(stream, fieldnames=_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)


def run_list(args: argparse.Namespace) -> int:
    rows = _dicts(_rows(args, args.limit))
    if args.format != "table":
        _write(rows, args.format, sys.stdout)
        return 0
    if not rows:
        print("no sightings")
        return 0
    print(f"{'id':>6}  {'last seen (UTC)':<25} {'for':>6} {'frames':>6}  {'who':<24} source")
    for r in rows:
        who = r["name"] or (f"unknown (group {r['group_id']})" if r["group_id"] else "unknown")
        print(f"{r['id']:>6}  {r['last_seen_utc']:<25} {r['last_seen'] - r['first_seen']:>5.0f}s {r['frames']:>6}  "
              f"{who:<24} {r['source']}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    fmt = args.format or ("json" if args.out.lower().endswith(".json") else "csv")
    rows = _dicts(_rows(args, None))
    if args.crops:
        from engine.sightings.store import crop_jpeg

        folder = Path(args.crops)
        folder.mkdir(parents=True, exist_ok=True)
        with _open(args.gallery) as g:
            for r in rows:
                (folder / f"{r['id']}.jpg").write_bytes(crop_jpeg(g.db.conn, r["id"]))
    if args.out == "-":
        _write(rows, fmt, sys.stdout)
    else:
        with open(args.out, "w", newline="", encoding="utf-8") as f:
            _write(rows, fmt, f)
        print(f"exported {len(rows)} sightings to {args.out}" + (f" (crops in {args.crops})" if args.crops else ""))
    return 0


def run_purge(args: argparse.Namespace) -> int:
    from engine.sightings import RetentionConfig, store

    with _open(args.gallery) as g:
        if args.all:
            n = store.delete(g)
        elif args.before:
            n = store.delete(g, before=parse_time(args.before))
        else:
            d = RetentionConfig()
            ret = RetentionConfig(unknown_days=args.unknown_days or d.unknown_days,
                                  named_days=args.named_days or d.named_days, max_rows=args.max_rows or d.max_rows)
            n = store.purge(g, ret)
    print(f"purged {n} sightings from {args.gallery}")
    return 0


def run_search(args: argparse.Namespace) -> int:
    from engine.imageio import read_image
    from engine.sightings import store

    image = read_image(args.image)  # a bad photo is refused before the gallery is even looked at
    meta = _meta(args.gallery)
    rec = build_recognizer(args)
    if (rec.embedder.id, rec.embedder.dim) != (meta.embedder_id, meta.embedding_dim):
        raise FacescopeError(f"{args.gallery} was made with embedder {meta.embedder_id} ({meta.embedding_dim}-d); "
                             f"pick it with --embedder (this run uses {rec.embedder.id})")
    faces = rec.largest(image)
    if len(faces) == 0:
        raise FacescopeError(f"no face found in {args.image}")
    with _open(args.gallery) as g:
        hits = store.search(g.db.conn, faces.embeddings[0], g.dim, args.top)
        rows = {r.id: r for r in store.list_sightings(g.db.conn)} if hits else {}
    out = []
    for sid, sim in hits:
        d = _dicts([rows[sid]])[0]
        d["cosine"] = round(sim, 4)
        out.append(d)
    if args.format == "json":
        json.dump(out, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    if not out:
        print("no sightings")
    for d in out:
        who = d["name"] or "unknown"
        print(f"{d['cosine']:.3f}  sighting {d['id']:>6}  {d['last_seen_utc']}  {who}  {d['source']}")
    return 0
