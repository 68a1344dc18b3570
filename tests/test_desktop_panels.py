"""Gallery panel, monitor panel and settings (pytest-qt, offscreen)."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import math
import shutil

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent

from engine.capture import CaptureState, CaptureStats, Frame
from engine.config import DetectorConfig, EmbedderConfig, LandmarkConfig, MatchConfig, RuntimeConfig
from engine.pipeline import FrameResult, PipelineConfig
from engine.records import Faces
from tests.conftest import shared_path

PEOPLE = ("Aaron_Peirsol", "Abdullah_Gul", "Adrien_Brody")


# ---------------------------------------------------------------------------------------------- gallery
@pytest.fixture(scope="module")
def lfw():
    return shared_path("data", "lfw", "lfw-deepfunneled")


@pytest.fixture(scope="module")
def recognizer(lfw):
    from engine.config import RecognizerConfig
    from engine.recognizer import Recognizer
    return Recognizer.from_config(RecognizerConfig())


@pytest.fixture(scope="module")
def enrolled(lfw, recognizer, tmp_path_factory):
    """A gallery file with three people (2, 2, 1 faces), built once; tests get a copy."""
    from engine.gallery import Gallery
    from engine.live import enrol_image_files

    path = tmp_path_factory.mktemp("gal") / "base.db"
    with Gallery.open(path, recognizer.embedder.id, recognizer.embedder.dim) as g:
        for person, k in zip(PEOPLE, (2, 2, 1), strict=True):
            n, problems = enrol_image_files(g, recognizer, sorted((lfw / person).glob("*.jpg"))[:k],
                                            person.replace("_", " "))
            assert (n, problems) == (k, [])
    return path


@pytest.fixture
def gallery(enrolled, recognizer, tmp_path):
    from engine.gallery import Gallery
    path = tmp_path / "people.db"
    shutil.copy(enrolled, path)
    g = Gallery.open(path, recognizer.embedder.id, recognizer.embedder.dim, create=False)
    yield g
    g.close()


@pytest.fixture
def panel(qtbot, gallery, monkeypatch):
    from desktop.gallery_panel import GalleryPanel
    p = GalleryPanel(gallery)
    qtbot.addWidget(p)
    errors: list[tuple[str, str]] = []
    monkeypatch.setattr(p, "_show_error", lambda title, text: errors.append((title, text)))
    monkeypatch.setattr(p, "_show_info", lambda title, text: None)
    monkeypatch.setattr(p, "_confirm", lambda title, text: True)
    p.errors = errors
    return p


def _reopen(gallery, recognizer):
    from engine.gallery import Gallery
    with Gallery.open(gallery.path, recognizer.embedder.id, recognizer.embedder.dim, create=False) as g:
        return {p.name: p.face_count for p in g.persons()}


def test_lists_persons_with_counts_and_thumbnails_and_search(panel):
    assert panel.person_names() == ["Aaron Peirsol", "Abdullah Gul", "Adrien Brody"]
    item = panel.item_for("Abdullah Gul")
    assert "2 faces" in item.text() and not item.icon().isNull()
    assert item.icon().pixmap(64, 64).size().width() == 64
    panel.search.setText("ab")
    assert panel.person_names(visible_only=True) == ["Abdullah Gul"]
    panel.search.setText("")
    assert len(panel.person_names(visible_only=True)) == 3
    assert panel.select_person("Aaron Peirsol")
    assert len(panel.face_ids()) == 2 and panel.faces_list.item(0).icon().isNull() is False


def test_rename_merge_delete_update_view_and_file(panel, gallery, recognizer, monkeypatch):
    changed = []
    panel.gallery_changed.connect(lambda: changed.append(1))
    panel.select_person("Adrien Brody")
    monkeypatch.setattr(panel, "_ask_text", lambda *a: "Adrien B")
    panel.rename_selected()
    assert "Adrien B" in panel.person_names() and panel.selected_name() == "Adrien B"
    assert "Adrien B" in _reopen(gallery, recognizer)

    monkeypatch.setattr(panel, "_ask_item", lambda title, label, items: "Aaron Peirsol")
    panel.merge_selected()
    assert panel.person_names() == ["Aaron Peirsol", "Abdullah Gul"]
    assert "3 faces" in panel.item_for("Aaron Peirsol").text()
    assert _reopen(gallery, recognizer) == {"Aaron Peirsol": 3, "Abdullah Gul": 2}

    panel.select_person("Abdullah Gul")
    panel.delete_selected()
    assert panel.person_names() == ["Aaron Peirsol"]

    panel.select_person("Aaron Peirsol")
    panel.faces_list.setCurrentRow(0)
    panel.delete_selected_face()
    assert "2 faces" in panel.item_for("Aaron Peirsol").text() and len(panel.face_ids()) == 2
    assert _reopen(gallery, recognizer) == {"Aaron Peirsol": 2}
    assert len(changed) == 4 and panel.errors == []


def test_declined_confirmation_changes_nothing(panel, gallery, monkeypatch):
    monkeypatch.setattr(panel, "_confirm", lambda title, text: False)
    panel.select_person("Abdullah Gul")
    panel.delete_selected()
    assert len(panel.person_names()) == 3 and len(gallery.persons()) == 3


def test_gallery_error_is_shown_not_raised(panel, gallery, monkeypatch):
    panel.select_person("Adrien Brody")
    monkeypatch.setattr(panel, "_ask_text", lambda *a: "abdullah gul")  # clashes (case-insensitively)
    panel.rename_selected()
    assert len(panel.errors) == 1 and "already exists" in panel.errors[0][1]
    assert panel.person_names() == ["Aaron Peirsol", "Abdullah Gul", "Adrien Brody"]
    # The person vanished behind the panel's back: an error message, no exception.
    gallery.delete_person("Abdullah Gul")
    panel.persons_list.blockSignals(True)
    panel.select_person("Abdullah Gul")
    panel.persons_list.blockSignals(False)
    panel.delete_selected()
    assert len(panel.errors) == 2 and "no person" in panel.errors[1][1]


def test_refresh_after_external_enrol_and_enrol_problems(panel, gallery, recognizer, lfw, tmp_path):
    import cv2

    from engine.live import enrol_image_files

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 127, np.uint8))
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    good = sorted((lfw / "Ai_Sugiyama").glob("*.jpg"))[0]
    n, problems = enrol_image_files(gallery, recognizer, [good, blank, junk], "Ai Sugiyama")
    assert n == 1 and len(problems) == 2
    assert "no face" in problems[0] and "junk.jpg" in problems[1]
    assert enrol_image_files(gallery, recognizer, [blank], "Nobody") == (0, [f"{blank}: no face found"])
    assert "Ai Sugiyama" not in panel.person_names()
    panel.refresh()
    assert "Ai Sugiyama" in panel.person_names() and "1 face" in panel.item_for("Ai Sugiyama").text()


def test_export_import_and_drop(panel, gallery, recognizer, tmp_path, monkeypatch, qtbot):
    out = tmp_path / "export.db"
    monkeypatch.setattr(panel, "_ask_save_path", lambda *a: str(out))
    panel.export_gallery()
    assert out.is_file() and panel.errors == []
    gallery.delete_person("Aaron Peirsol")
    panel.refresh()
    assert len(panel.person_names()) == 2
    monkeypatch.setattr(panel, "_ask_open_path", lambda *a: str(out))
    monkeypatch.setattr(panel, "_ask_import_mode", lambda path: "merge")
    panel.import_gallery()
    assert panel.person_names() == ["Aaron Peirsol", "Abdullah Gul", "Adrien Brody"] and panel.errors == []
    # A bad file is reported, not raised.
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"garbage" * 100)
    monkeypatch.setattr(panel, "_ask_open_path", lambda *a: str(bad))
    panel.import_gallery()
    assert len(panel.errors) == 1

    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(p) for p in ("/tmp/a.jpg", "/tmp/notes.txt", "/tmp/b.PNG")])
    event = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, md, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(panel.enrol_files_requested, timeout=1000) as sig:
        panel.dropEvent(event)
    assert sig.args == [["/tmp/a.jpg", "/tmp/b.PNG"]]


def test_panel_without_gallery(qtbot):
    from desktop.gallery_panel import GalleryPanel
    p = GalleryPanel()
    qtbot.addWidget(p)
    assert p.person_names() == [] and not p.export_button.isEnabled()
    p.rename_selected(), p.delete_selected(), p.export_gallery()  # no-ops, no dialogs


# ---------------------------------------------------------------------------------------------- monitor
def _result(i: int, t0: float, n_faces: int) -> FrameResult:
    img = np.zeros((8, 8, 3), np.uint8)
    boxes = np.tile(np.array([[0, 0, 4, 4]], np.float32), (n_faces, 1))
    faces = Faces(boxes=boxes, scores=np.full(n_faces, 0.9, np.float32))
    timings = {"capture_wait": 1.0, "detect": 10.0 + i % 5, "track": 0.5, "align": 0.3,
               "embed": 12.0 if i % 4 == 0 else 0.0,
               "match": 0.1, "total": 30.0}
    return FrameResult(Frame(img, i, t0 + i * 0.04), faces, timings, e2e_ms=float(i + 1), embedded=int(i % 4 == 0))


def test_monitor_stats_and_timer_refresh(qtbot):
    from desktop.monitor_panel import MonitorPanel
    m = MonitorPanel(refresh_hz=20)
    qtbot.addWidget(m)
    m.show()
    qtbot.waitExposed(m)
    assert math.isnan(m.stats()["e2e_p50_ms"])
    before = m.redraws
    for i in range(100):  # 25 fps for 4 s; e2e = 1..100 ms
        stats = CaptureStats(CaptureState.LIVE, "", i + 3, i + 1, 2 if i >= 50 else 0, 25.0, 0)
        m.add_result(_result(i, 1000.0, i % 3), stats, display_fps=24.0)
    assert m.redraws == before  # adding never draws
    s = m.stats()
    assert s["samples"] == 100
    assert s["e2e_p50_ms"] == pytest.approx(np.percentile(np.arange(1, 101), 50))
    assert s["e2e_p95_ms"] == pytest.approx(np.percentile(np.arange(1, 101), 95))
    assert s["e2e_ms"] == 100.0
    assert s["engine_fps"] == pytest.approx(25.0, rel=0.05)
    assert s["capture_fps"] == 25.0 and s["display_fps"] == 24.0
    assert s["dropped"] == 2 and s["dropped_window"] == 2
    assert s["detect_ms"] == pytest.approx(12.0) and s["faces"] == 99 % 3 and s["embedded_window"] == 25
    qtbot.waitUntil(lambda: m.redraws > before, timeout=2000)
    assert "p95" in m.labels["e2e"].text() and "95.0" in m.labels["e2e"].text()
    x, y = m.curves["e2e"].getData()
    assert len(x) == 100 and x[-1] == 0.0 and y[-1] == 100.0
    # Only the last 60 s count: a result 100 s later leaves one sample in the window.
    m.add_result(_result(2600, 1000.0, 1))
    assert m.stats()["samples"] == 1
    # Hidden: no redraws.
    m.hide()
    n = m.redraws
    m.add_result(_result(2601, 1000.0, 1))
    qtbot.wait(150)
    assert m.redraws == n


# ---------------------------------------------------------------------------------------------- settings
@pytest.fixture
def ini(tmp_path):
    return QSettings(str(tmp_path / "facescope.ini"), QSettings.Format.IniFormat)


def test_settings_round_trip(ini):
    from desktop.settings import Settings
    assert Settings.load(ini) == Settings()
    s = Settings(detector_input_size=(320, 240), detector_threshold=0.7, recognition_threshold=0.4, refresh_s=3.5,
                 detector="yolo", landmarks="none", align="auto")
    s.save(ini)
    back = Settings.load(QSettings(ini.fileName(), QSettings.Format.IniFormat))
    assert back == s and back.problems == ()
    Settings(detector_input_size=None).save(ini)
    assert Settings.load(ini).detector_input_size is None


def test_invalid_settings_fall_back_with_a_warning(ini, caplog):
    from desktop.settings import Settings
    for key, value in {"detector": "nope", "detector_input_size": "12x99999", "detector_threshold": "1.7",
                       "recognition_threshold": "abc", "embedder": "no-such-embedder", "backend": "tensorrt?",
                       "refresh_s": "-1", "landmarks": "no-such-model", "align": "sideways"}.items():
        ini.setValue(f"engine/{key}", value)
    with caplog.at_level("WARNING"):
        s = Settings.load(ini)
    assert s == Settings() and len(s.problems) == 9
    assert "detector_threshold" in caplog.text and "refresh_s" in caplog.text
    ini.setValue("engine/refresh_s", "5")  # good values survive next to bad ones
    assert Settings.load(ini).refresh_s == 5.0


def test_to_configs():
    from desktop.settings import Settings
    c = Settings(detector_input_size=(320, 320), detector_threshold=0.8, recognition_threshold=0.3,
                 refresh_s=1.5).to_configs()
    assert c.detector == DetectorConfig(input_size=(320, 320), score_threshold=0.8)
    assert c.embedder == EmbedderConfig() and c.runtime == RuntimeConfig() and c.match == MatchConfig(0.3)
    assert isinstance(c.pipeline, PipelineConfig) and c.pipeline.policy.refresh_s == 1.5
    assert c.pipeline.policy.max_per_frame == PipelineConfig().policy.max_per_frame
    assert c.landmarks == LandmarkConfig() and Settings(landmarks="none").to_configs().landmarks.model is None
    with pytest.raises(ValueError):
        Settings(refresh_s=-1).to_configs()


def test_settings_dialog_emits_changed_on_ok(qtbot, monkeypatch):
    from desktop.settings import Settings
    from desktop.settings_dialog import SettingsDialog
    d = SettingsDialog(Settings(recognition_threshold=0.5))
    qtbot.addWidget(d)
    assert d.recognition_threshold.value() == 0.5 and d.detector_threshold.value() is None
    d.input_size.setText("480x360")
    d.detector_threshold.set_value(0.75)
    d.refresh.setValue(4.0)
    with qtbot.waitSignal(d.changed, timeout=1000) as sig:
        d.buttons.button(d.buttons.StandardButton.Ok).click()
    s = sig.args[0]
    assert s == Settings(detector_input_size=(480, 360), detector_threshold=0.75, recognition_threshold=0.5,
                         refresh_s=4.0)
    assert d.result() == d.DialogCode.Accepted
    # Invalid input: a message, no signal, the dialog stays open.
    d2 = SettingsDialog()
    qtbot.addWidget(d2)
    errors = []
    monkeypatch.setattr(d2, "_show_error", errors.append)
    d2.input_size.setText("10x10")
    emitted = []
    d2.changed.connect(emitted.append)
    d2.accept()
    assert emitted == [] and len(errors) == 1 and d2.result() != d2.DialogCode.Accepted


def test_gallery_panel_refresh_with_many_people_loads_thumbnails_lazily(qtbot, tmp_path, recognizer):
    """A refresh lists names only; thumbnails of the rows in view arrive from the event loop in
    small slices, and rows never scrolled to are never decoded."""
    import time

    from desktop.gallery_panel import GalleryPanel
    from engine.gallery import Gallery

    emb = recognizer.embedder
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
    with Gallery.open(tmp_path / "many.db", emb.id, emb.dim) as g:
        for k in range(400):
            g.enroll(f"person {k:04d}", rng.normal(size=(1, emb.dim)).astype(np.float32), crops=[crop])
        panel = GalleryPanel(None)
        qtbot.addWidget(panel)
        panel.resize(300, 400)
        panel.show()
        qtbot.waitExposed(panel)
        t = time.perf_counter()
        panel.set_gallery(g)
        took = time.perf_counter() - t
        assert panel.persons_list.count() == 400 and panel.thumbnails_loaded() == 0  # nothing decoded yet
        assert took < 0.5, took
        qtbot.waitUntil(lambda: panel.thumbnails_loaded() > 0, timeout=3000)
        qtbot.wait(200)
        visible = panel.thumbnails_loaded()
        assert 0 < visible < 40  # the rows in view (+1), not all 400
        assert not panel.persons_list.item(0).icon().isNull()
        panel.persons_list.scrollToBottom()
        qtbot.waitUntil(lambda: not panel.persons_list.item(399).icon().isNull(), timeout=3000)
        assert panel.thumbnails_loaded() < 80
        panel.set_gallery(None)


def test_run_in_pool_delivers_on_the_gui_thread_and_turns_errors_into_messages(qtbot):
    """Model work for the window (drop-to-enrol) runs on a pool thread; its result or its error
    comes back on the GUI thread, so a worker's exception never reaches Qt."""
    import threading

    from desktop.pool import run_in_pool

    gui = threading.get_ident()
    seen: dict[str, object] = {}

    def work():
        seen["worker"] = threading.get_ident()
        return 42

    run_in_pool(work, lambda r: seen.update(result=r, done_on=threading.get_ident()), lambda m: seen.update(err=m))
    qtbot.waitUntil(lambda: "result" in seen, timeout=5000)
    assert seen["result"] == 42 and seen["done_on"] == gui and seen["worker"] != gui

    def boom():
        raise ValueError("no face in x.jpg")

    run_in_pool(boom, lambda r: seen.update(bad=r), lambda m: seen.update(err=m, err_on=threading.get_ident()))
    qtbot.waitUntil(lambda: "err" in seen, timeout=5000)
    assert seen["err"] == "ValueError: no face in x.jpg" and seen["err_on"] == gui and "bad" not in seen
