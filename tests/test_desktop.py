"""Desktop app (P3): the real window on the demo clip, click-to-enrol, start/stop cycles, errors."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QDialog

from engine.capture import CaptureConfig

DEMO = Path(__file__).resolve().parents[1] / "resources" / "demo" / "megamind.avi"
WAIT_MS = 20000


@pytest.fixture(scope="module")
def recognizer():
    from desktop.main_window import default_recognizer

    # The default models ship in the repository: a load failure is a bug and must fail, not skip.
    return default_recognizer()


@pytest.fixture
def window(qtbot, tmp_path, recognizer):
    from PySide6.QtCore import QSettings

    from desktop.main_window import MainWindow

    settings = QSettings(str(tmp_path / "facescope.ini"), QSettings.Format.IniFormat)
    win = MainWindow(gallery_path=tmp_path / "gallery.db", recognizer=recognizer,
                     capture_config=CaptureConfig(realtime=True, loop=True), settings=settings,
                     probe_webcams=False)
    qtbot.addWidget(win)
    win.resize(900, 600)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.controller.stop()
    win.close()


def _engine_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("facescope-")]


def test_live_view_draws_probable_names_dashed_in_their_own_colour(qtbot):
    from desktop.live_view import KNOWN, LiveView
    from engine.draw import COLOR_PROBABLE, rgb
    from engine.records import STATUS_CONFIRMED, STATUS_PROBABLE, Faces

    view = LiveView()
    qtbot.addWidget(view)
    faces = Faces(np.array([[20, 20, 90, 180], [110, 20, 180, 180]], np.float32), np.ones(2, np.float32),
                  track_ids=np.array([1, 2]), identities=[3, 4], names=("Ada", "Bob"), similarities=[0.47, 0.8],
                  status=[STATUS_PROBABLE, STATUS_CONFIRMED])
    view.set_frame(np.zeros((200, 200, 3), np.uint8), faces)
    assert view.face_color(faces, 0).getRgb()[:3] == rgb(COLOR_PROBABLE)
    assert view.face_color(faces, 1) == KNOWN
    img = view.annotated_image()
    row = lambda x0, x1: [img.pixelColor(x, 180).getRgb()[:3] for x in range(x0, x1)]  # noqa: E731 (bottom edges)
    near = lambda c, ref: max(abs(a - b) for a, b in zip(c, ref, strict=True)) < 40  # noqa: E731
    probable = [near(c, rgb(COLOR_PROBABLE)) for c in row(24, 86)]
    known = [near(c, KNOWN.getRgb()[:3]) for c in row(114, 176)]
    assert all(known)  # solid
    assert 0.3 < sum(probable) / len(probable) < 0.9  # dashed: strokes and gaps (a solid edge is 1.0)


def test_live_view_geometry_and_clicks(qtbot):
    from desktop.live_view import LiveView
    from engine.records import Faces

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
    assert (args.source, args.gallery) == (["0"], "g.db")
    assert build_parser().parse_args(["--source", "a.mp4", "--source", "b.mp4"]).source == ["a.mp4", "b.mp4"]


def test_probe_webcams_with_fake_open_capture(qtbot):
    from desktop.sources import WebcamProber, probe_webcams

    calls, released = [], []

    class Reader:
        def __init__(self, i):
            self.i = i

        def release(self):
            released.append(self.i)

    def fake_open(text, open_timeout_s, read_timeout_s):
        calls.append((text, open_timeout_s, read_timeout_s))
        if text in ("0", "2"):
            return Reader(int(text))
        raise RuntimeError(f"no camera {text}")

    assert probe_webcams(open_capture=fake_open) == [0, 2]
    assert [c[0] for c in calls] == ["0", "1", "2", "3", "4"] and all(c[1:] == (1.5, 1.5) for c in calls)
    assert released == [0, 2]
    # the prober runs it off the GUI thread and delivers the result on it
    gui = threading.get_ident()
    ran_on = []

    def slow_open(text, **kw):
        ran_on.append(threading.get_ident())
        return fake_open(text, **kw)

    prober = WebcamProber(open_capture=slow_open)
    with qtbot.waitSignal(prober.found, timeout=5000) as blocker:
        prober.start()
    assert blocker.args == [[0, 2]] and ran_on and gui not in ran_on


def test_recent_sources_persist_masked(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from desktop.sources import MAX_RECENT, RecentSources

    ini = tmp_path / "recent.ini"
    rec = RecentSources(QSettings(str(ini), QSettings.Format.IniFormat))
    url = "rtsp://admin:s3cretPW@10.0.0.5:554/stream1"
    shown = rec.add(url)
    assert shown == "rtsp://admin:***@10.0.0.5:554/stream1"
    assert rec.resolve(shown) == url  # the real URL, this session only
    rec.add(str(DEMO))
    rec.add("0")
    rec.add(str(DEMO))  # moves to the front, no duplicate
    assert rec.items() == [str(DEMO), "0", shown]
    text = ini.read_text()
    assert "s3cretPW" not in text and "***" in text
    again = RecentSources(QSettings(str(ini), QSettings.Format.IniFormat))
    assert again.items() == [str(DEMO), "0", shown]
    assert again.resolve(shown) == shown  # the password is not known to a new session
    for i in range(MAX_RECENT + 3):
        again.add(f"http://cam{i}.local/stream")
    assert len(again.items()) == MAX_RECENT


def test_window_source_combo_lists_recent_and_webcams(qtbot, window):
    url = "rtsp://admin:s3cretPW@127.0.0.1:9/none"
    window.recent.add(url)
    window._on_webcams([0])
    items = [window.source_combo.itemText(i) for i in range(window.source_combo.count())]
    assert items == ["0", "rtsp://admin:***@127.0.0.1:9/none"]
    assert window.recent.resolve(items[1]) == url
    window.source_edit.setText(str(DEMO))  # typing still works
    assert window.start()
    assert window.source_combo.itemText(1) == str(DEMO)
    window.stop()


def _wait_tracked(qtbot, window):
    qtbot.waitUntil(lambda: window.latest is not None and (window.latest.faces.track_ids >= 0).any(), timeout=WAIT_MS)
    r = window.latest
    i = int(np.flatnonzero(r.faces.track_ids >= 0)[0])
    return r, i, int(r.faces.track_ids[i])


def test_ctrl_e_enrols_selected_face(qtbot, window, monkeypatch):
    from desktop.enrol_dialog import EnrolDialog

    opened = []

    def fake_exec(dlg):
        opened.append(dlg.windowTitle())
        return QDialog.DialogCode.Rejected

    monkeypatch.setattr(EnrolDialog, "exec", fake_exec)
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)  # nothing selected, no frame
    assert opened == [] and "no face selected" in window.note_label.text()
    assert window.start(str(DEMO))
    r, i, tid = _wait_tracked(qtbot, window)
    window.controller.pause()
    qtbot.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert opened == []
    x1, y1, x2, y2 = r.faces.boxes[i]
    window.view.set_result(r)
    window.latest = r
    qtbot.mouseMove(window.view, window.view.image_to_widget(((x1 + x2) / 2, (y1 + y2) / 2)).toPoint())
    qtbot.waitUntil(lambda: window.view.selected_track == tid, timeout=2000)
    qtbot.keyClick(window, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert opened == [f"Enrol face #{tid}"]
    window.controller.resume()
    window.stop()


def test_best_k_collection_enrols_k_faces(qtbot, window, monkeypatch):
    from desktop.enrol_dialog import EnrolDialog

    calls = []

    def fake_exec(dlg):
        assert (dlg.k_spin.value(), dlg.seconds_spin.value()) == (5, 3.0)
        dlg.set_name("Best K")
        dlg.collect_check.setChecked(True)
        dlg.seconds_spin.setValue(2.0)
        dlg.accept()
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(EnrolDialog, "exec", fake_exec)
    assert window.start(str(DEMO))
    r, i, tid = _wait_tracked(qtbot, window)
    real_enroll = window.gallery.enroll

    def spy(name, embeddings, **kw):
        calls.append((name, len(embeddings)))
        return real_enroll(name, embeddings, **kw)

    monkeypatch.setattr(window.gallery, "enroll", spy)
    assert window.enrol_track(tid) == "Best K"
    assert tid in window.view.enrolling  # blue while collecting
    with qtbot.waitSignal(window.gallery_changed, timeout=WAIT_MS):
        pass
    assert tid not in window.view.enrolling
    assert len(calls) == 1 and calls[0][0] == "Best K" and 2 <= calls[0][1] <= 5
    persons = window.gallery.persons()
    assert [p.name for p in persons] == ["Best K"] and 2 <= persons[0].face_count <= 5
    window.stop()


def test_best_k_track_gone_shows_message(qtbot, window):
    assert window.start(str(DEMO))
    qtbot.waitUntil(lambda: window.latest is not None, timeout=WAIT_MS)
    window.collect_best(99999, "Nobody", 5, 0.3)
    qtbot.waitUntil(lambda: not window.session.enrolling, timeout=5000)
    assert "nothing enrolled" in (window.last_warning or "")
    assert window.last_error is None and not window.state_label.text().startswith("error")  # the engine is fine
    assert window.gallery.persons() == [] and 99999 not in window.view.enrolling
    window.stop()


def _colour_pixels(widget, colour, tol: int = 3) -> int:
    """How many pixels of ``widget`` as drawn now have ``colour`` (a QColor), within ``tol``."""
    from PySide6.QtGui import QImage

    img = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    arr = np.frombuffer(img.constBits(), np.uint8, bpl * h).reshape(h, bpl)[:, : 3 * w].reshape(h, w, 3)
    want = np.array([colour.red(), colour.green(), colour.blue()], np.int16)
    return int((np.abs(arr.astype(np.int16) - want).max(axis=2) <= tol).sum())


def test_status_bar_draws_one_text_at_a_time(qtbot, tmp_path):
    """At start the state label says "loading models…" itself; no temporary status message is
    painted over it, and the short-lived notes have their own place next to it."""
    from PySide6.QtCore import QSettings

    from desktop.main_window import MainWindow

    win = MainWindow(gallery_path=tmp_path / "g.db", settings=QSettings(str(tmp_path / "s.ini"),
                     QSettings.Format.IniFormat), probe_webcams=False,
                     capture_config=CaptureConfig(realtime=True, loop=True))
    qtbot.addWidget(win)
    seen = []
    win.state_label.setText = (lambda real: lambda text: (seen.append(text), real(text)))(win.state_label.setText)
    win.show()
    qtbot.waitExposed(win)
    assert win.start(str(DEMO))
    assert seen[:2] == ["loading models…", "idle"] and win.statusBar().currentMessage() == ""
    qtbot.waitUntil(lambda: "live" in win.state_label.text(), timeout=WAIT_MS)
    win.notify("a note", 0)
    assert win.statusBar().currentMessage() == ""  # QStatusBar's own message would overlap the label
    assert not win.state_label.geometry().intersects(win.note_label.geometry())
    assert win.state_label.isVisible() and win.note_label.isVisible() and win.note_label.text() == "a note"
    win.controller.stop()
    win.close()


def test_enrolling_on_the_frozen_last_frame_draws_it_known(qtbot, tmp_path, recognizer):
    """After the clip ends, enrolling the face on the frozen frame turns its box green at once
    (the session relabels the last result); a rename in the gallery shows too."""
    from PySide6.QtCore import QSettings

    from desktop.live_view import KNOWN
    from desktop.main_window import MainWindow

    win = MainWindow(gallery_path=tmp_path / "g.db", recognizer=recognizer, probe_webcams=False,
                     settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                     capture_config=CaptureConfig(realtime=False, loop=False, max_frames=25))
    qtbot.addWidget(win)
    win.resize(900, 600)
    win.show()
    qtbot.waitExposed(win)
    assert win.start(str(DEMO))
    # the window hears the worker stop through the thread's queued finished signal (Stop disabled then)
    qtbot.waitUntil(lambda: not win.controller.running and not win.stop_action.isEnabled()
                    and win.latest is not None, timeout=WAIT_MS)
    r = win.latest
    assert (r.faces.track_ids >= 0).any() and all(n is None for n in r.faces.names)
    tid = int(r.faces.track_ids[r.faces.track_ids >= 0][0])
    green_before = _colour_pixels(win.view, KNOWN)
    assert win.enrol_track(tid, name="Frozen Face") == "Frozen Face"
    i = int(np.flatnonzero(win.latest.faces.track_ids == tid)[0])
    assert win.latest.faces.names[i] == "Frozen Face" and win.view.faces.names[i] == "Frozen Face"
    qtbot.wait(50)
    assert _colour_pixels(win.view, KNOWN) > green_before + 100  # the box and its label are drawn green
    win.gallery.rename_person("Frozen Face", "Renamed")
    win.gallery_changed_elsewhere()  # what the gallery panel's rename signals
    assert win.view.faces.names[i] == "Renamed"
    win.close()


def test_void_qt_calls_keep_the_singletons_alive(qtbot):
    """PySide6 6.12.0 on Python 3.11 dropped a reference to None on every void Qt call, which
    aborted the window within a minute ("none_dealloc"); pyproject pins a release without it.
    On Python >= 3.12 the singletons are immortal and their count is meaningless, hence 0 drift
    is only required on 3.11."""
    import sys

    from PySide6.QtWidgets import QLabel

    label = QLabel()
    before = {name: sys.getrefcount(obj) for name, obj in (("None", None), ("True", True), ("False", False))}
    for _ in range(5000):
        label.setText("x")
        label.update()
        label.isVisible()
    after = {name: sys.getrefcount(obj) for name, obj in (("None", None), ("True", True), ("False", False))}
    if sys.version_info < (3, 12):
        assert all(abs(after[k] - before[k]) < 100 for k in before), (before, after)


def test_status_bar_names_the_backend_and_switches_after_a_background_plan_build(window, qtbot, tmp_path):
    """The status bar says which backend runs the models (per stage, with why, in the tooltip).
    Plans the runtime found missing are built on the builder's thread while the app keeps
    running, with progress in the label; when done, the window rebuilds its recognizer. No GPU
    exists here: the build step (the GPU-only part) is replaced by a function that reports
    TensorRT's phases and returns a path; everything around it is the real code."""
    from engine.backends.trt_plan import PlanRequest
    from engine.models import find_card, prepared_model_path

    win = window
    assert win.ensure_engine()
    label = win.backend_label
    assert label.text() == "onnxruntime"  # this machine: no GPU
    assert "embedder: onnxruntime" in label.toolTip() and "no NVIDIA GPU" in label.toolTip()
    card = find_card("sface")
    request = PlanRequest(prepared_model_path(card), card=card)
    seen = []
    label._progress.connect(seen.append)

    def build(req, progress, cancel):
        for step in ("prepare", "build", "parity"):
            progress(step, 1.0)
        return tmp_path / "sface.plan", {"cached": False}

    old = win.session.recognizer
    assert label.build_missing([request], build=build)
    qtbot.waitUntil(lambda: win.session.recognizer is not old and win.session.recognizer is not None, timeout=20000)
    assert seen[-1] == "TensorRT engine 1/1 (sface): parity 100%"
    assert "1 plan(s) built" in label.toolTip() and label.text() == "onnxruntime"
    win.close()
