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

from PySide6.QtCore import QPoint, QPointF, QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication


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
    gallery_panel, monitor = attach_panels(win)  # before the engine: the panel binds when it is ready
    unbound = gallery_panel.gallery is None
    win.ensure_engine()
    bound = unbound and win.session.gallery is not None and gallery_panel.gallery is win.session.gallery
    win.resize(1280, 800)
    win.show()
    win.start(clip)
    out = {"panel_bound_when_ready": bound,
           "faces_seen": wait(app, lambda: win.latest is not None and len(win.latest.faces) > 0, 30)}
    r = win.latest
    k = int(r.faces.areas.argmax())
    tid = int(r.faces.track_ids[k])
    x1, y1, x2, y2 = r.faces.boxes[k]
    centre = win.view.image_to_widget(QPointF((x1 + x2) / 2, (y1 + y2) / 2))
    # the dialog's answer, as if typed and confirmed
    enrol_dialog.EnrolDialog.ask_choice = classmethod(lambda cls, *a, **kw: enrol_dialog.EnrolChoice("Clicked Person"))
    QTest.mouseClick(win.view, Qt.MouseButton.LeftButton, pos=QPoint(int(centre.x()), int(centre.y())))
    out["named_on_screen"] = wait(
        app, lambda: win.latest is not None and "Clicked Person" in win.latest.faces.names, 10)
    out["in_gallery_panel"] = wait(app, lambda: "Clicked Person" in gallery_panel.person_names(), 5)
    wait(app, lambda: False, 1.5)  # let the monitor timer draw
    stats = monitor.stats()
    out.update(monitor_samples=stats["samples"], monitor_e2e_p95_ms=stats["e2e_p95_ms"],
               monitor_redraws=monitor.redraws, track=tid)
    win.close()
    return out


def monitor_check() -> dict:
    """What the monitor panel draws over a stop and a pause, after a warm-up spike: the e2e
    curve's NaN breaks, its first value, and the y ranges of the latency plots."""
    import numpy as np

    from desktop.monitor_panel import MonitorPanel
    from engine.capture import Frame
    from engine.pipeline import FrameResult
    from engine.records import Faces

    app = QApplication.instance() or QApplication([])
    m = MonitorPanel(refresh_hz=50)
    m.show()
    faces = Faces(np.array([[0, 0, 4, 4]], np.float32), np.array([0.9], np.float32))

    def add(i: int, t0: float, e2e: float) -> None:
        timings = {"detect": e2e / 2, "track": 0.5, "align": 0.3, "embed": 0.0, "match": 0.1, "total": e2e}
        m.add_result(FrameResult(Frame(np.zeros((8, 8, 3), np.uint8), i, t0 + i * 0.04), faces, timings,
                                 e2e_ms=e2e, embedded=0))

    add(0, 1000.0, 700.0)  # warm-up: the first frame after a start
    for i in range(1, 50):
        add(i, 1000.0, 10.0 + i % 3)
    m.mark_gap()  # the source stopped; it starts again 20 s later
    for i in range(50):
        add(i, 1022.0, 12.0)
    for i in range(50):  # a pause of 5 s without mark_gap also breaks the line
        add(i, 1030.0, 11.0)
    before = m.redraws
    wait(app, lambda: m.redraws > before, 3)
    x, y = m.curves["e2e"].getData()
    gaps = np.flatnonzero(np.isnan(y))
    return {"samples": m.stats()["samples"], "gaps": gaps.tolist(), "finite_before_first_gap":
            bool(np.isfinite(y[: gaps[0]]).all()) if gaps.size else None, "first": float(y[0]),
            "e2e_range": [float(v) for v in m.p_e2e.viewRange()[1]],
            "stages_range": [float(v) for v in m.p_stages.viewRange()[1]]}


if __name__ == "__main__":
    result = monitor_check() if sys.argv[1:2] == ["monitor"] else main(*sys.argv[1:4])
    print(json.dumps(result), flush=True)
    os._exit(0)
