"""The main window: source bar, live view, status bar, dock area for the side panels."""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QLineEdit, QMainWindow, QMessageBox, QToolBar,
                               QWidget)

from desktop.enrol_dialog import EnrolDialog
from desktop.live_view import LiveView
from desktop.worker import Controller

log = logging.getLogger(__name__)
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mkv *.mov *.webm *.m4v);;All files (*)"


def default_recognizer():
    """The real-time recognizer the CLI's ``run`` builds (yunet 640x384 keeping low-score
    detections for the tracker, sface)."""
    from engine.config import DetectorConfig
    from engine.recognizer import Recognizer
    from engine.track import TrackerConfig

    return Recognizer.create(DetectorConfig(input_size=(640, 384), score_threshold=TrackerConfig().low_thresh))


class MainWindow(QMainWindow):
    """``result_ready(object)``: every FrameResult shown, on the GUI thread (for side panels).
    ``gallery_changed()``: after an enrolment. Side panels go in with :meth:`add_dock`."""

    result_ready = Signal(object)
    gallery_changed = Signal()

    def __init__(self, gallery_path: str | Path | None = None, recognizer=None,
                 recognizer_factory: Callable[[], object] = default_recognizer, capture_config=None,
                 pipeline_config=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("facescope")
        self.resize(1100, 700)
        self.gallery_path = Path(gallery_path) if gallery_path else None
        self.recognizer = recognizer
        self._recognizer_factory = recognizer_factory
        self.capture_config = capture_config
        self.pipeline_config = pipeline_config
        self.gallery = None
        self.spec = None
        self.latest = None  # newest FrameResult shown
        self.last_error: str | None = None
        self._times: deque[float] = deque(maxlen=60)
        self._state = ("idle", "")
        self._error_box: QMessageBox | None = None

        self.controller = Controller(self)
        self.controller.result.connect(self._on_result)
        self.controller.state.connect(self._on_state)
        self.controller.error.connect(self.show_error)
        self.controller.running_changed.connect(self._on_running)

        self.view = LiveView(self)
        self.view.face_clicked.connect(self.enrol_track)
        self.setCentralWidget(self.view)
        self.setDockNestingEnabled(True)
        self._build_actions()
        self._build_status()
        self._update_actions()

    # -- construction ----------------------------------------------------------------------------
    def _build_actions(self) -> None:
        tb = QToolBar("Source", self)
        tb.setObjectName("source-toolbar")
        self.addToolBar(tb)
        self.source_edit = QLineEdit(self)
        self.source_edit.setPlaceholderText("webcam index (0), rtsp://… / http://… URL, or video file")
        self.source_edit.setMinimumWidth(320)
        self.source_edit.returnPressed.connect(lambda: self.start())

        def act(text, slot, shortcut=None, checkable=False):
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
                a.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            a.setCheckable(checkable)
            a.triggered.connect(slot)
            self.addAction(a)
            return a

        self.open_action = act("Open file…", self.open_file, QKeySequence.StandardKey.Open)
        self.start_action = act("Start", lambda: self.start())
        self.pause_action = act("Pause", self.toggle_pause, Qt.Key.Key_Space, checkable=True)
        self.stop_action = act("Stop", self.stop)
        self.fullscreen_action = act("Full screen", self.toggle_fullscreen, Qt.Key.Key_F, checkable=True)
        self.snapshot_action = act("Snapshot…", self.save_snapshot, "Ctrl+S")
        self.quit_action = act("Quit", self.close, QKeySequence.StandardKey.Quit)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        tb.addWidget(QLabel(" Source: "))
        tb.addWidget(self.source_edit)
        for a in (self.open_action, self.start_action, self.pause_action, self.stop_action, None,
                  self.snapshot_action, self.fullscreen_action):
            tb.addSeparator() if a is None else tb.addAction(a)

        menu = self.menuBar().addMenu("&File")
        for a in (self.open_action, self.snapshot_action, None, self.quit_action):
            menu.addSeparator() if a is None else menu.addAction(a)
        menu = self.menuBar().addMenu("&Video")
        for a in (self.start_action, self.pause_action, self.stop_action, None, self.fullscreen_action):
            menu.addSeparator() if a is None else menu.addAction(a)
        self.panels_menu = self.menuBar().addMenu("&Panels")

    def _build_status(self) -> None:
        sb = self.statusBar()
        self.state_label = QLabel("idle")
        self.fps_label = QLabel("– FPS")
        self.faces_label = QLabel("0 faces")
        sb.addWidget(self.state_label, 1)
        sb.addPermanentWidget(self.fps_label)
        sb.addPermanentWidget(self.faces_label)

    def add_dock(self, widget: QWidget, title: str, area=Qt.DockWidgetArea.RightDockWidgetArea) -> QDockWidget:
        """Put a side panel in the (right) dock area; its toggle goes in the Panels menu."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.panels_menu.addAction(dock.toggleViewAction())
        return dock

    # -- engine ----------------------------------------------------------------------------------
    def ensure_engine(self) -> bool:
        """Build the recognizer and open the gallery (once); False (error shown) on failure."""
        try:
            if self.recognizer is None:
                self.statusBar().showMessage("loading models…")
                self.recognizer = self._recognizer_factory()
            if self.gallery is None and self.gallery_path is not None:
                from engine.gallery import Gallery

                self.gallery_path.parent.mkdir(parents=True, exist_ok=True)
                emb = self.recognizer.embedder
                self.gallery = Gallery.open(self.gallery_path, emb.id, emb.dim, create=True)
            return True
        except Exception as exc:  # noqa: BLE001
            self.show_error(f"cannot start the engine: {type(exc).__name__}: {exc}")
            return False

    def start(self, source: str | int | None = None) -> bool:
        """Start (or restart) on ``source`` (default: the source field's text)."""
        from engine.capture import parse_source

        if source is not None:
            self.source_edit.setText(str(source))
        text = self.source_edit.text().strip()
        if not text:
            self.show_error("enter a source: a webcam index, a stream URL or a video file")
            return False
        try:
            spec = parse_source(text)
        except Exception as exc:  # noqa: BLE001
            self.show_error(f"bad source: {exc}")
            return False
        if not self.ensure_engine():
            return False
        self.last_error = None
        self.spec = spec
        self._times.clear()
        self.pause_action.setChecked(False)
        self.view.clear(f"connecting to {spec.display}…")
        self.latest = None
        self._set_state("connecting", "")
        self.controller.start(spec, self.recognizer, self.gallery.index if self.gallery else None,
                              self.capture_config, self.pipeline_config)
        return True

    def stop(self) -> None:
        self.controller.stop()
        self.pause_action.setChecked(False)
        if self._state[0] not in ("ended", "failed", "error"):
            self._set_state("stopped", "")

    def toggle_pause(self, checked: bool | None = None) -> None:
        if not self.controller.running:
            self.pause_action.setChecked(False)
            return
        paused = self.pause_action.isChecked() if checked is None or isinstance(checked, bool) else bool(checked)
        (self.controller.pause if paused else self.controller.resume)()
        self._set_state("paused" if paused else self._state[0], self._state[1])

    def open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video", "", VIDEO_FILTER)
        if path:
            self.start(path)

    def toggle_fullscreen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()
        self.fullscreen_action.setChecked(self.isFullScreen())

    def save_snapshot(self, path: str | None = None) -> str | None:
        if self.view.image_size is None:
            self.statusBar().showMessage("nothing to save yet", 3000)
            return None
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Save snapshot", "facescope.png", "PNG (*.png)")
        if path and self.view.snapshot(path):
            self.statusBar().showMessage(f"saved {path}", 3000)
            return path
        return None

    # -- enrolment -------------------------------------------------------------------------------
    def enrol_track(self, track_id: int, name: str | None = None) -> str | None:
        """Enrol the face of ``track_id`` in the newest shown frame; asks for the name with the
        EnrolDialog unless ``name`` is given. Returns the enrolled name (None if cancelled)."""
        r = self.latest
        if r is None or self.recognizer is None:
            return None
        hit = np.flatnonzero(r.faces.track_ids == track_id)
        if hit.size == 0 or r.faces.keypoints is None:
            self.statusBar().showMessage(f"face #{track_id} is no longer in view", 3000)
            return None
        if self.gallery is None:
            self.show_error("no gallery is open (start the app with --gallery)")
            return None
        i = int(hit[0])
        image = r.frame.image
        kps = r.faces.keypoints[i : i + 1]
        emb_model = self.recognizer.embedder
        try:
            crop = emb_model.aligned_crops(image, kps)[0]
            self.view.set_enrolling(self.view.enrolling | {track_id})
            if name is None:
                names = [p.name for p in self.gallery.persons()]
                name = EnrolDialog.ask(crop, names, self, track_id=track_id, suggestion=r.faces.names[i])
            if not name:
                return None
            embedding = emb_model.embed_tensor(emb_model.align(image, kps))
            quality = float(np.clip(r.faces.scores[i], 0.0, 1.0))
            source = f"{self.spec.display if self.spec else 'live'} frame {r.frame.index} track {track_id}"
            self.gallery.enroll(name, embedding, crops=[crop], qualities=[quality], sources=[source])
            pids, names_found, sims = self.gallery.index.search(embedding)
            pid, found, sim = int(pids[0]), names_found[0], float(sims[0])
        except Exception as exc:  # noqa: BLE001
            self.show_error(f"enrolment failed: {type(exc).__name__}: {exc}")
            return None
        finally:
            self.view.set_enrolling(self.view.enrolling - {track_id})
        if pid >= 0 and np.isfinite(sim):
            clock = r.frame.pts_s if r.frame.pts_s is not None else r.frame.timestamp

            def relabel(pipeline, tid=int(track_id)):  # runs on the worker thread
                if pipeline is None:
                    return
                pipeline.book.forget([tid])  # the unknown votes must not outweigh the new identity
                pipeline.book.vote(tid, pid, found, sim, quality, clock)

            self.controller.request(relabel)
        self.statusBar().showMessage(f"enrolled face #{track_id} as {name}", 4000)
        self.gallery_changed.emit()
        return name

    # -- slots -----------------------------------------------------------------------------------
    def _on_result(self, r) -> None:
        self.latest = r
        self.view.set_result(r)
        now = time.perf_counter()
        self._times.append(now)
        while self._times and now - self._times[0] > 2.0:
            self._times.popleft()
        if len(self._times) >= 2:
            fps = (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-6)
            self.fps_label.setText(f"{fps:.1f} FPS")
        n = len(r.faces)
        named = sum(x is not None for x in r.faces.names)
        self.faces_label.setText(f"{n} face{'s' if n != 1 else ''} ({named} named)")
        self.result_ready.emit(r)

    def _on_state(self, state: str, reason: str) -> None:
        if state == "live" and self.pause_action.isChecked():
            state = "paused"
        self._set_state(state, reason)

    def _on_running(self, running: bool) -> None:
        self._update_actions()
        if not running:
            self.fps_label.setText("– FPS")

    def _set_state(self, state: str, reason: str) -> None:
        self._state = (state, reason)
        src = f" {self.spec.display}" if self.spec else ""
        self.state_label.setText(f"{state}{src}" + (f": {reason}" if reason else ""))
        self._update_actions()

    def _update_actions(self) -> None:
        running = self.controller.running
        self.stop_action.setEnabled(running)
        self.pause_action.setEnabled(running)

    def show_error(self, message: str) -> None:
        """Status bar + a non-modal message box; never raises."""
        self.last_error = message
        log.warning("%s", message)
        src = f" {self.spec.display}" if self.spec else ""
        self._state = ("error", message)
        self.state_label.setText(f"error{src}: {message}")
        if self._error_box is None:
            box = QMessageBox(QMessageBox.Icon.Warning, "facescope", message, QMessageBox.StandardButton.Ok, self)
            box.setWindowModality(Qt.WindowModality.NonModal)
            self._error_box = box
        self._error_box.setText(message)
        self._error_box.show()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.controller.stop()
        if self.gallery is not None:
            try:
                self.gallery.close()
            except Exception:  # noqa: BLE001
                log.exception("closing the gallery failed")
            self.gallery = None
        super().closeEvent(event)
