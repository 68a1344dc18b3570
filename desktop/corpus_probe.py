"""``python -m desktop.corpus_probe --cases CASES.json --json OUT.json``: the window's open paths
for the bad-input corpus (:mod:`engine.bench.corpus_run` starts it, offscreen).

Each case is ``{"kind": "gallery"|"image"|"video", "path", "valid", "gallery"}``:

* gallery: a window started on that gallery file (what ``facescope gui --gallery PATH`` does);
* image: dropped on the gallery panel to enrol (the ``enrol_files_requested`` signal a drop
  emits, then the real pool-thread detection and GUI-thread write of ``desktop.panels``);
* video: opened as the window's source (``MainWindow.start``, what Ctrl+O does).

The two modal Qt calls on the drop path (``QInputDialog.getText`` for the name and the static
``QMessageBox.warning``) are replaced by recorders: offscreen, nobody clicks them. Everything
else is the real window, models and gallery. Per case it reports the messages the user saw
(message boxes), whether the window is still alive, whether the input was accepted (gallery
opened / faces enrolled / frames shown) and whether a log record carried a traceback.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.tracebacks = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.levelno >= logging.WARNING and (record.exc_info or "Traceback (most recent call last)" in text):
            self.tracebacks += 1


def _wait(app, done, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        if done():
            return True
        time.sleep(0.02)
    return done()


def _boxes(app) -> list[str]:
    from PySide6.QtWidgets import QMessageBox

    return [w.text() for w in app.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m desktop.corpus_probe")
    p.add_argument("--cases", required=True)
    p.add_argument("--json", required=True)
    args = p.parse_args(argv)
    cases = json.loads(Path(args.cases).read_text())

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QInputDialog, QMessageBox

    from desktop.gallery_panel import GalleryPanel
    from desktop.main_window import MainWindow
    from desktop.panels import attach_panels
    from engine.live import realtime_recognizer

    app = QApplication.instance() or QApplication(["facescope-corpus"])
    records = _Records()
    logging.getLogger().addHandler(records)
    logging.getLogger().setLevel(logging.DEBUG)
    warnings: list[str] = []
    QInputDialog.getText = staticmethod(lambda *a, **k: ("Corpus", True))

    def warn(parent, title, text, *a, **k):
        warnings.append(text)
        return QMessageBox.StandardButton.Ok

    QMessageBox.warning = staticmethod(warn)
    settings = QSettings(str(Path(tempfile.mkdtemp(prefix="facescope-corpus-")) / "settings.ini"),
                         QSettings.Format.IniFormat)
    rec = realtime_recognizer()  # one set of models for every window
    reports = []
    for case in cases:
        warnings.clear()
        before = records.tracebacks
        path = case["path"]
        gallery = path if case["kind"] == "gallery" else case["gallery"]
        win = MainWindow(gallery_path=gallery, recognizer=rec, settings=settings, probe_webcams=False)
        win.show()
        opened = win.ensure_engine()
        attach_panels(win)
        app.processEvents()
        accepted = False
        if case["kind"] == "gallery":
            accepted = opened and win.session.gallery is not None
        elif case["kind"] == "image":
            panel = win.findChild(GalleryPanel)
            win.notify("")
            panel.enrol_files_requested.emit([path])
            _wait(app, lambda w=win: warnings or w.note_label.text().startswith("enrolled"), 120)
            accepted = win.note_label.text().startswith("enrolled") and not win.note_label.text().startswith(
                "enrolled 0") and not warnings
        else:
            win.start(path)
            _wait(app, lambda w=win: w.latest is not None or w.last_error is not None
                  or w._state[0] in ("ended", "failed"), 120)
            accepted = win.latest is not None and win.last_error is None
            win.stop()
        app.processEvents()
        messages = [*_boxes(app), *warnings]
        alive = win.isVisible()
        for w in app.topLevelWidgets():
            if isinstance(w, QMessageBox):
                w.hide()
        win.close()
        app.processEvents()
        reports.append({"messages": messages, "window_alive": alive, "accepted": bool(accepted),
                        "traceback": records.tracebacks > before})
        win.deleteLater()
    Path(args.json).write_text(json.dumps(reports, indent=1))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # PySide6 + pyqtgraph can abort at interpreter teardown (see desktop.app.main)


if __name__ == "__main__":
    raise SystemExit(main())
