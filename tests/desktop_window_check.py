"""Child-process check of the whole window with its panels (see tests/test_desktop_window.py).

Runs the real MainWindow + gallery and monitor panels on the demo clip, clicks a face by its
on-screen position, enrols it, and prints one JSON line of what the panels show. Ends with
os._exit: PySide6 6.12 + pyqtgraph abort Python 3.11 during interpreter teardown.
"""
from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPoint, QPointF, QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def wait(app, cond, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        app.processEvents()
        if cond():
            return True
        time.sleep(0.01)
    return False


def main(gallery: str, ini: str, clip: str) -> dict:
    from desktop import enrol_dialog
    from desktop.main_window import MainWindow
    from desktop.panels import attach_panels
    from engine.capture import CaptureConfig

    app = QApplication.instance() or QApplication([])
    win = MainWindow(gallery_path=gallery, capture_config=CaptureConfig(realtime=True, loop=True),
                     settings=QSettings(ini, QSettings.Format.IniFormat), probe_webcams=False)
    win.ensure_engine()
    gallery_panel, monitor = attach_panels(win)
    win.resize(1280, 800)
    win.show()
    win.start(clip)
    out = {"faces_seen": wait(app, lambda: win.latest is not None and len(win.latest.faces) > 0, 30)}
    r = win.latest
    k = int(r.faces.areas.argmax())
    tid = int(r.faces.track_ids[k])
    x1, y1, x2, y2 = r.faces.boxes[k]
    centre = win.view.image_to_widget(QPointF((x1 + x2) / 2, (y1 + y2) / 2))
    # the dialog's answer, as if typed and confirmed
    enrol_dialog.EnrolDialog.ask_choice = classmethod(lambda cls, *a, **kw: enrol_dialog.EnrolChoice("Clicked Person"))
    QTest.mouseClick(win.view, Qt.MouseButton.LeftButton, pos=QPoint(int(centre.x()), int(centre.y())))
    out["named_on_screen"] = wait(app, lambda: win.latest is not None and "Clicked Person" in win.latest.faces.names, 10)
    out["in_gallery_panel"] = wait(app, lambda: "Clicked Person" in gallery_panel.person_names(), 5)
    wait(app, lambda: False, 1.5)  # let the monitor timer draw
    stats = monitor.stats()
    out.update(monitor_samples=stats["samples"], monitor_e2e_p95_ms=stats["e2e_p95_ms"],
               monitor_redraws=monitor.redraws, track=tid)
    win.close()
    return out


if __name__ == "__main__":
    result = main(*sys.argv[1:4])
    print(json.dumps(result), flush=True)
    os._exit(0)
