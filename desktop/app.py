"""``facescope gui`` / ``python -m desktop.app``: the desktop application's entry point.

``main(argv)`` parses ``--source`` (started at once), ``--gallery`` (default: the app data
folder's ``gallery.db``, via QStandardPaths) and ``--quit-after SECONDS``, checks in a child
process that Qt's platform plugin can start (else prints which system packages to install and
returns 1), creates the QApplication and the MainWindow and runs the event loop. The CLI wires
``facescope gui`` here with ``importlib.import_module("desktop.app").main(argv)``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def default_gallery_path() -> Path:
    """``<AppDataLocation>/gallery.db`` (e.g. ``~/.local/share/facescope/gallery.db``)."""
    from PySide6.QtCore import QCoreApplication, QStandardPaths

    # AppDataLocation depends on the application (and organisation) name: pin them to facescope
    # for the lookup, whoever created the QApplication (tests, an embedding app).
    old = QCoreApplication.applicationName(), QCoreApplication.organizationName()
    QCoreApplication.setApplicationName("facescope")
    QCoreApplication.setOrganizationName("")
    try:
        base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    finally:
        QCoreApplication.setApplicationName(old[0])
        QCoreApplication.setOrganizationName(old[1])
    return Path(base or Path.home() / ".local" / "share" / "facescope") / "gallery.db"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facescope gui", description="facescope desktop app: live face recognition")
    p.add_argument("--source", action="append",
                   help="start on this source: webcam index (0), rtsp://... / http://... URL or video file; "
                        "repeat it for several sources at once (a grid of tiles, one engine)")
    p.add_argument("--gallery", help="gallery file (default: the app data folder's gallery.db)")
    p.add_argument("--quit-after", type=_seconds, metavar="SECONDS",
                   help="close the window after this many seconds and exit 0 (CI, smoke tests)")
    return p


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        # Qt aborts the process when its platform plugin cannot load; find that out in a child
        # process first and say which system packages are missing (desktop/platform_check.py).
        from desktop.platform_check import platform_problem

        problem = platform_problem()
        if problem:
            print(problem, file=sys.stderr)
            return 1

    from desktop.main_window import MainWindow
    from desktop.panels import attach_panels, settings_recognizer_factory
    from desktop.settings import Settings

    owned = QApplication.instance() is None
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "facescope"])
    app.setApplicationName("facescope")
    app.setOrganizationName("")
    gallery = Path(args.gallery).expanduser() if args.gallery else default_gallery_path()
    settings = Settings.load()
    sources = args.source or []
    if len(sources) > 1:
        from desktop.grid_window import GridWindow

        win = GridWindow(sources, gallery, settings_recognizer_factory(settings, multi=True))
    else:
        win = MainWindow(gallery_path=gallery, recognizer_factory=settings_recognizer_factory(settings),
                         pipeline_config=settings.to_configs().pipeline)
        win.ensure_engine()  # models and gallery load before the panels bind to them
        attach_panels(win)
    win.show()
    if len(sources) == 1:
        win.start(sources[0])
    if args.quit_after:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(round(args.quit_after * 1000), app.quit)
    rc = app.exec()
    win.close()  # closeEvent stops the engine and closes the gallery, however the loop ended
    if isinstance(win, MainWindow):
        win.controller.stop()
    # Tear the widgets down while the interpreter is still whole: left to the final garbage
    # collection, PySide6 6.12 + pyqtgraph's plot items crash Python 3.11 at exit
    # ("bool_dealloc: deallocating True or False").
    import gc

    win.deleteLater()
    del win
    gc.collect()
    app.processEvents()
    if owned:
        # Even torn down, the plot panels can still trip that abort during finalisation; the
        # gallery is closed and every write committed by now, so end the process directly.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(rc))
    return int(rc)


if __name__ == "__main__":
    raise SystemExit(main())
