"""``facescope gui`` (and ``facescope`` with no command): open the desktop window.

The engine never imports Qt; the window lives in the ``desktop`` package, loaded here by name
only when asked for, so the CLI and every other command work without PySide6 installed (the
``gui`` extra). ``desktop.app.main`` checks that Qt's platform plugin can start before it creates
the window; when it cannot it prints which system packages to install and returns 1.
"""
from __future__ import annotations

import argparse
import importlib

from engine.cli.extras import need_extra


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the desktop window (the default when no command is given; "
                                   "needs facescope[gui])")
    p.add_argument("--source", action="append",
                   help="start on this source: webcam index, URL, video file or folder; repeat it for several "
                        "sources in a grid (one engine for all)")
    p.add_argument("--gallery", help="gallery file (default: the app's own gallery)")
    p.add_argument("--quit-after", metavar="SECONDS",
                   help="close the window after this many seconds and exit 0 (CI, smoke tests)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    need_extra("gui", "gui" if getattr(args, "command", None) else "facescope")
    app = importlib.import_module("desktop.app")
    argv = []
    for source in getattr(args, "source", None) or []:
        argv += ["--source", str(source)]
    for option in ("gallery", "quit_after"):
        value = getattr(args, option, None)
        if value:
            argv += ["--" + option.replace("_", "-"), str(value)]
    return int(app.main(argv) or 0)
