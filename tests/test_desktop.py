"""Desktop app (P3): the real window on the demo clip, click-to-enrol, start/stop cycles, errors."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtWidgets import QDialog  # noqa: E402

from engine.capture import CaptureConfig  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo" / "megamind.avi"
WAIT_MS = 20000


@pytest.fixture(scope="module")
def recognizer():
    from desktop.main_window import default_recognizer

    try:
        return default_recognizer()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"models unavailable: {exc}")


@pytest.fixture
def window(qtbot, tmp_path, recognizer):
    from desktop.main_window import MainWindow

    win = MainWindow(gallery_path=tmp_path / "gallery.db", recognizer=recognizer,
                     capture_config=CaptureConfig(realtime=True, loop=True))
    qtbot.addWidget(win)
    win.resize(900, 600)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.controller.stop()
    win.close()


def _engine_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("facescope-")]


def test_live_view_geometry_and_clicks(qtbot):
    from engine.records import Faces
    from desktop.live_view import LiveView

    view = LiveView()
    qtbot.addWidget(view)
    view.resize(400, 400)  # a 200x100 image is drawn 400x200, centred: y offset 100
    faces = Faces(boxes=np.array([[20, 10, 60, 50]], np.float32), scores=np.ones(1, np.float32),
                  track_ids=np.array([7]), names=("Ada",), similarities=np.array([0.8], np.float32))
    image = np.zeros((100, 200, 3), np.uint8)
    view.set_frame(image, faces)
    p = view.widget_to_image(QPoint(80, 160))
    assert (p.x(), p.y()) == pytest.approx((40.0, 30.0))
    assert view.widget_to_image(QPoint(10, 10)) is None  # letterbox
    with qtbot.waitSignal(view.face_clicked, timeout=1000) as blocker:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(80, 160))
    assert blocker.args == [7]
    with qtbot.assertNotEmitted(view.face_clicked, wait=50):
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(300, 280))
    img = view.annotated_image()
    assert (img.width(), img.height()) == (200, 100)
    # the box edge is drawn green (known) at image resolution
    c = img.pixelColor(20, 30)
    assert c.green() > 150 and c.red() < 120


def test_start_click_enrol_and_name_appears(qtbot, window, tmp_path, monkeypatch):
    from desktop.enrol_dialog import EnrolDialog

    shown = []
    window.result_ready.connect(shown.append)
    assert window.start(str(DEMO))
    qtbot.waitUntil(lambda: window.latest is not None and len(window.latest.faces) > 0
                    and (window.latest.faces.track_ids >= 0).any(), timeout=WAIT_MS)
    assert "live" in window.state_label.text()
    assert shown and "FPS" in window.fps_label.text()

    r = window.latest
    view = window.view
    i = int(np.flatnonzero(r.faces.track_ids >= 0)[0])
    tid = int(r.faces.track_ids[i])
    x1, y1, x2, y2 = r.faces.boxes[i]
    centre = view.image_to_widget(((x1 + x2) / 2, (y1 + y2) / 2)).toPoint()

    seen = {}

    def fake_exec(dlg):
        seen["crop"] = dlg.image.pixmap() is not None and not dlg.image.pixmap().isNull()
        seen["title"] = dlg.windowTitle()
        dlg.set_name("Megamind Test")
        dlg.accept()
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(EnrolDialog, "exec", fake_exec)
    window.controller.pause()  # keep this frame (and the clicked box) on screen while clicking
    with qtbot.waitSignal(window.gallery_changed, timeout=WAIT_MS):
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=centre)
    window.controller.resume()
    assert seen == {"crop": True, "title": f"Enrol face #{tid}"}
    assert [p.name for p in window.gallery.persons()] == ["Megamind Test"]

    qtbot.waitUntil(lambda: window.latest is not r and "Megamind Test" in (view.faces.names if view.faces else ()),
                    timeout=WAIT_MS)
    out = tmp_path / "snap.png"
    assert window.save_snapshot(str(out)) == str(out) and out.stat().st_size > 1000

    window.stop()
    gallery_file = window.gallery_path
    window.close()  # closes the gallery; the person is in the file
    from engine.gallery import Gallery

    emb = window.recognizer.embedder
    with Gallery.open(gallery_file, emb.id, emb.dim, create=False) as g:
        assert [(p.name, p.face_count) for p in g.persons()] == [("Megamind Test", 1)]


def test_start_stop_cycles_leave_no_threads(qtbot, window):
    before = {t.ident for t in threading.enumerate()}
    threads = []
    for _ in range(3):
        assert window.start(str(DEMO))
        threads.append(window.controller._thread)
        qtbot.waitUntil(lambda: window.latest is not None, timeout=WAIT_MS)
        window.stop()
        assert not window.controller.running
    # restart while running: the old worker is stopped first
    window.start(str(DEMO))
    qtbot.waitUntil(lambda: window.latest is not None, timeout=WAIT_MS)
    window.start(str(DEMO))
    qtbot.waitUntil(lambda: window.latest is not None, timeout=WAIT_MS)
    window.stop()
    deadline = time.monotonic() + 10
    while _engine_threads() and time.monotonic() < deadline:
        qtbot.wait(50)
    assert _engine_threads() == []
    qtbot.wait(100)
    extra = [t for t in threading.enumerate() if t.ident not in before and not t.name.startswith("Dummy")]
    assert extra == []
    assert "stopped" in window.state_label.text()


def test_bad_source_shows_error_and_window_stays_usable(qtbot, window, tmp_path):
    missing = tmp_path / "missing.mp4"
    assert not window.start(str(missing))
    assert "error" in window.state_label.text() and "missing.mp4" in window.state_label.text()
    assert window.isVisible()
    # a file that exists but is no video: the worker/capture reports it, nothing crashes
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    window.start(str(junk))
    qtbot.waitUntil(lambda: "error" in window.state_label.text() or "failed" in window.state_label.text(),
                    timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window.controller.running, timeout=WAIT_MS)
    # still responsive: a good source plays afterwards
    assert window.start(str(DEMO))
    qtbot.waitUntil(lambda: window.latest is not None, timeout=WAIT_MS)
    window.stop()


def test_app_default_gallery_and_args(qtbot):
    from desktop.app import build_parser, default_gallery_path

    path = default_gallery_path()
    assert path.name == "gallery.db" and path.parent.name == "facescope"
    args = build_parser().parse_args(["--source", "0", "--gallery", "g.db"])
    assert (args.source, args.gallery) == ("0", "g.db")
