"""``facescope cameras``: the webcams this machine has, by device name, with the index to use."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cameras", help="list webcams by device name, with the index to pass as --source",
                       description="List the cameras the OS reports (V4L2 on Linux, MSMF/DirectShow on Windows, "
                                   "AVFoundation on macOS) by device name, index, backend and USB id.")
    p.add_argument("--backend", default="auto",
                   help="auto (the OS's fast backend), v4l2, gstreamer, msmf, dshow or avfoundation")
    p.add_argument("--json", metavar="PATH", help="also write the list as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from engine.capture.webcams import format_cameras, list_cameras
    from engine.cli.common import write_json

    entries = list_cameras(args.backend)
    print(format_cameras(entries))
    write_json(args.json, {"cameras": [asdict(e) for e in entries]})
    return 0
