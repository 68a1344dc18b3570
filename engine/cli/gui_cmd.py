"""``facescope gui`` (and ``facescope`` with no command): open the desktop window.

The engine never imports Qt; the window lives in the ``desktop`` package, loaded here by name
only when asked for, so the CLI and every other command work without PySide6 installed.
"""
from __future__ import annotations

import argparse
import importlib

from engine.errors import FacescopeError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the desktop window (the default when no command is given)")
    p.add_argument("--source", help="start on this source: webcam index, URL, video file or folder")
    p.add_argument("--gallery", help="gallery file (default: the app's own gallery)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        app = importlib.import_module("desktop.app")
    except ImportError as exc:
        raise FacescopeError(f"the desktop app needs PySide6 and pyqtgraph: pip install -e '.[gui]' ({exc})") from None
    argv = []
    if getattr(args, "source", None):
        argv += ["--source", args.source]
    if getattr(args, "gallery", None):
        argv += ["--gallery", args.gallery]
    return int(app.main(argv) or 0)
