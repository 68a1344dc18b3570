"""``facescope synth-clip``: a synthetic multi-face test clip with ground truth (test tooling)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth-clip",
                       help="compose real LFW faces moving and crossing into a test clip with ground truth",
                       description="Writes VIDEO and VIDEO.json (per-frame identities and boxes). Benchmarks "
                                   "(`facescope bench --source VIDEO`) pick the truth up and score identification.")
    p.add_argument("--lfw", required=True, help="LFW folder (with lfw-deepfunneled/)")
    p.add_argument("--out", required=True, help="output video (.avi)")
    p.add_argument("--faces", type=int, default=6, help="enrolled people on screen (default 6)")
    p.add_argument("--unknown", type=int, default=1, help="extra people who are not enrolled (default 1)")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--size", default="1280x720", help="WxH (default 1280x720)")
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--face-px", type=_pair, default=None, metavar="MIN,MAX",
                   help="face-box height range in pixels, e.g. 32,48 for small faces (default: 90..220 "
                        "scaled to the frame height)")
    p.add_argument("--cuts", type=int, default=0,
                   help="shot cuts, evenly spaced: the scene changes at once and other people take the "
                        "faces' places (default 0)")
    p.add_argument("--events", default="occlude,cross,exit", metavar="KINDS",
                   help="scripted events in turn, comma-separated from occlude, cross, exit, swap (two faces "
                        "passing close enough to swap ids), meet (two faces meeting and going back); "
                        "default occlude,cross,exit")
    p.set_defaults(func=run)


def _pair(text: str) -> tuple[float, float]:
    """'MIN,MAX' -> (min, max) floats; argparse turns the ValueError into a usage error."""
    lo, sep, hi = text.partition(",")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX, got {text!r}")
    try:
        return float(lo), float(hi)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX numbers, got {text!r}") from exc


def run(args: argparse.Namespace) -> int:
    from engine.synth import make_clip

    w, _, h = args.size.lower().partition("x")
    info = make_clip(args.out, args.lfw, faces=args.faces, unknown_faces=args.unknown, frames=args.frames,
                     size=(int(w), int(h)), fps=args.fps, seed=args.seed, face_px=args.face_px,
                     cuts=args.cuts, event_kinds=tuple(k.strip() for k in args.events.split(",") if k.strip()))
    print(f"wrote {info.path} ({info.frames} frames, {info.size[0]}x{info.size[1]} @ {info.fps:g} fps) "
          f"and ground truth {info.truth_path}")
    for person in info.identities:
        print(f"  {person['name']:<28} {'enrolled' if person['enrolled'] else 'not enrolled (impostor)'}")
    return 0
