"""``facescope bench warp|search``: micro-benchmarks that print and write JSON."""
from __future__ import annotations

import argparse

from engine.cli.common import write_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="micro-benchmarks (alignment warp, gallery search)")
    bench = p.add_subparsers(dest="bench", metavar="BENCH", required=True)

    w = bench.add_parser("warp", help="fused Numba warp vs cv2.warpAffine + numpy, same inputs, same run")
    w.add_argument("--batch", type=int, default=16, help="faces per frame (default 16)")
    w.add_argument("--repeats", type=int, default=200)
    w.add_argument("--json", metavar="PATH")
    w.set_defaults(func=run_warp)

    s = bench.add_parser("search", help="gallery search latency over N stored embeddings")
    s.add_argument("--size", type=int, default=100_000, help="stored embeddings (default 100000)")
    s.add_argument("--dim", type=int, default=128)
    s.add_argument("--queries", type=int, default=500)
    s.add_argument("--json", metavar="PATH")
    s.set_defaults(func=run_search)


def _report(title: str, result: dict, path: str | None) -> None:
    print(title)
    for key, value in result.items():
        print(f"  {key:>24}: {value:.4g}" if isinstance(value, float) else f"  {key:>24}: {value}")
    write_json(path, result)


def run_warp(args: argparse.Namespace) -> int:
    from engine.bench.warp import bench_warp

    if args.batch < 1 or args.repeats < 1:
        raise ValueError("--batch and --repeats must be >= 1")
    _report(f"warp benchmark (batch {args.batch})", bench_warp(batch=args.batch, repeats=args.repeats), args.json)
    return 0


def run_search(args: argparse.Namespace) -> int:
    from engine.bench.search import bench_search

    if args.size < 1 or args.dim < 1 or args.queries < 1:
        raise ValueError("--size, --dim and --queries must be >= 1")
    result = bench_search(size=args.size, dim=args.dim, queries=args.queries)
    _report(f"search benchmark ({args.size} embeddings x {args.dim})", result, args.json)
    return 0

