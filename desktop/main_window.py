"""The main window: actions, signals and layout around a :class:`engine.live.LiveSession`.

The session owns the engine (recognizer, gallery, pipeline, enrolment); the window shows its
results, turns clicks into its calls and runs it on a worker thread (:mod:`desktop.worker`).
No model runs on the GUI thread.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QWidget

from desktop.engine_status import BackendStatus
from desktop.enrolment import EnrolmentController
from desktop.gallery_file import GalleryFileMixin
from desktop.live_view import LiveView
from desktop.source_bar import SourceBar, build_actions
from desktop.worker import Controller
from engine.capture import CaptureConfig
from engine.gallery.errors import GalleryError
from engine.live import LiveSession, realtime_recognizer
from engine.util.rate import RateMeter

log = logging.getLogger(__name__)
SIGHTINGS_MS = 1000  # how often the finished sightings are taken from the worker's queue
default_recognizer = realtime_recognizer  # the real-time preset (tests and older callers use this name)


class MainWindow(GalleryFileMixin, QMainWindow):
    """``result_ready(object)``: every FrameResult shown, on the GUI thread (for side panels).
    ``gallery_changed()``: after an enrolment. Side panels go in with :meth:`add_dock`.

    Source picker: see :class:`desktop.source_bar.SourceBar` (webcams found by a background
    probe + recent sources in ``settings``, URLs persisted with their password masked). Gallery
    file (open another, create one, a gallery that cannot be opened): :mod:`desktop.gallery_file`."""

    result_ready = Signal(object)
    gallery_changed = Signal()
    engine_ready = Signal()  # models loaded and the gallery open (again): panels re-bind to the session

    def __init__(self, gallery_path: str | Path | None = None, recognizer=None,
                 recognizer_factory: Callable[[], object] = realtime_recognizer, capture_config=None,
                 pipeline_config=None, parent: QWidget | None = None, settings: QSettings | None = None,
                 probe_webcams: bool = True, session: LiveSession | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("facescope")
        self.resize(1100, 700)
        # every frame is shown: decoded in full on the capture thread (CaptureConfig.decode_on_demand)
        capture_config = capture_config or CaptureConfig(realtime=True, decode_on_demand=False)
        self.session = session or LiveSession(gallery_path, recognizer, recognizer_factory, capture_config,
                                              pipeline_config)
        self.latest = None  # newest FrameResult shown
        self.last_error: str | None = None  # the engine's last error
        self.last_warning: str | None = None  # the last request that did not happen (enrolment)
        self._fps = RateMeter(window_s=2.0)
        self._state = ("idle", "")
        self._error_box: QMessageBox | None = None
        self.settings = settings if settings is not None else QSettings("facescope", "facescope")

        self.controller = Controller(self)
        self.controller.result.connect(self._on_result)
        self.controller.state.connect(self._on_state)
        self.controller.error.connect(self.show_error)
        self.controller.running_changed.connect(self._on_running)
        self.enrolment = EnrolmentController(self)
        self.gallery_changed.connect(self._relabel_frozen)

        self.view = LiveView(self)
        self.view.face_clicked.connect(self.enrol_track)
        self.setCentralWidget(self.view)
        self.setDockNestingEnabled(True)
        self.source_bar = SourceBar(self, self.settings, probe_webcams)
        build_actions(self)
        self._build_gallery_actions()
        self._gallery_box: QMessageBox | None = None
        self._build_status()
        self._update_actions()

    # -- delegates kept for panels, scripts and tests ------------------------------------------
    gallery_path = property(lambda self: self.session.gallery_path)
    gallery = property(lambda self: self.session.gallery)
    recognizer = property(lambda self: self.session.recognizer)
    spec = property(lambda self: self.session.spec)
    source_combo = property(lambda self: self.source_bar.combo)
    source_edit = property(lambda self: self.source_bar.edit)
    recent = property(lambda self: self.source_bar.recent)
    webcams = property(lambda self: self.source_bar.webcams)

    def _on_webcams(self, indices: list) -> None:
        self.source_bar.on_webcams(indices)

    def _build_status(self) -> None:
        # One text per place: the state label says what the engine does (loading models,
        # connecting, live...), the note label shows short-lived messages. QStatusBar's own
        # showMessage() is not used: it paints over the state label instead of replacing it.
        sb = self.statusBar()
        self.state_label = QLabel("idle")
        self.note_label = QLabel("")
        self.fps_label = QLabel("– FPS")
        self.faces_label = QLabel("0 faces")
        self.backend_label = BackendStatus(self)  # which backend runs the models; TensorRT builds
        self.backend_label.plans_ready.connect(self._reload_models)
        sb.addWidget(self.state_label, 1)
        sb.addWidget(self.note_label, 1)
        sb.addPermanentWidget(self.backend_label)
        sb.addPermanentWidget(self.fps_label)
        sb.addPermanentWidget(self.faces_label)
        self._note_timer = QTimer(self, singleShot=True, timeout=lambda: self.note_label.setText(""))
        # The worker queues every finished sighting for this thread; the window drains and writes
        # them itself when no people panel does (else the queue grows for as long as a source runs),
        # and follows gallery changes made by other processes (LiveSession.watch_gallery).
        self._sightings_timer = QTimer(self, interval=SIGHTINGS_MS, timeout=self._flush_sightings)
        self._sightings_timer.start()

    def _flush_sightings(self) -> None:
        if self.session.gallery is None:
            return
        # with the people panels attached, their timer (people_docks) writes them: left to it
        if getattr(self, "people_timer", None) is None:
            self.session.flush_sightings()  # written every SightingConfig.flush_every_s; cheap otherwise
        if self.session.watch_gallery() is not None:  # changed by another process (CLI, another window)
            self.gallery_changed.emit()  # every view follows: names, gallery panel, history

    def notify(self, message: str, timeout_ms: int = 0) -> None:
        """A short message next to the state (cleared after ``timeout_ms``; 0 = until the next one)."""
        self.note_label.setText(message)
        self._note_timer.stop()
        if timeout_ms > 0:
            self._note_timer.start(timeout_ms)

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
        if self.session.recognizer is not None and (self.session.gallery or not self.session.gallery_path):
            return True
        self._set_state("loading models…", "")
        self.state_label.repaint()  # shown while the models load (this call blocks the loop)
        try:
            self.session.open()
        except (GalleryError, OSError) as exc:
            if self.session.recognizer is None:  # the models failed (a missing model file): not the gallery
                self.show_error(f"cannot start the engine: {type(exc).__name__}: {exc}")
                return False
            self._gallery_failed(exc)
            return False
        except Exception as exc:  # noqa: BLE001 - shown to the user, the window stays usable
            self.show_error(f"cannot start the engine: {type(exc).__name__}: {exc}")
            return False
        self._set_state("idle", "")
        self.engine_ready.emit()
        self.backend_label.show_recognizer(self.session.recognizer)
        self.backend_label.build_missing()  # TensorRT plans not built yet: built meanwhile, on a thread
        return True

    def _reload_models(self) -> None:
        """TensorRT plans were built in the background: rebuild the recognizer (its stages now
        open on them) and restart a running source on it."""
        running = self.controller.running
        if running:
            self.stop()
        self.session.configure(self.session.recognizer_factory, self.session.pipeline_config)
        if self.ensure_engine() and running:
            self.start()
        self.notify("models reloaded on the TensorRT plans built meanwhile", 5000)

    def start(self, source: str | int | None = None) -> bool:
        """Start (or restart) on ``source`` (default: the source field's text)."""
        spec = self.source_bar.take_spec(source)
        if spec is None or not self.ensure_engine():
            return False
        self.last_error = None
        self._fps.reset()
        self.pause_action.setChecked(False)
        self.view.clear(f"connecting to {spec.display}…")
        self.latest = None
        self.session.spec = spec
        self._set_state("connecting", "")
        self.controller.start(spec, self.session)
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
        path, _ = QFileDialog.getOpenFileName(self, "Open video", "", SourceBar.VIDEO_FILTER)
        if path:
            self.start(path)

    def toggle_fullscreen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()
        self.fullscreen_action.setChecked(self.isFullScreen())

    def save_snapshot(self, path: str | None = None) -> str | None:
        if self.view.image_size is None:
            self.notify("nothing to save yet", 3000)
            return None
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Save snapshot", "facescope.png", "PNG (*.png)")
        if path and self.view.snapshot(path):
            self.notify(f"saved {path}", 3000)
            return path
        return None

    # -- enrolment (the logic is the session's: desktop.enrolment asks for the name) ------------
    def enrol_selected(self) -> str | None:
        """Ctrl+E: open the enrol dialog for the selected (last clicked / hovered) face."""
        tid, r = self.view.selected_track, self.latest
        if tid is None or r is None or not (r.faces.track_ids == tid).any():
            self.notify("no face selected: click or hover a face, then press Ctrl+E", 4000)
            return None
        return self.enrol_track(tid)

    def enrol_track(self, track_id: int, name: str | None = None,
                    collect: tuple[int, float] | None = None) -> str | None:
        return self.enrolment.enrol_track(track_id, name, collect)

    def collect_best(self, track_id: int, name: str, k: int = 5, seconds: float = 3.0) -> None:
        self.enrolment.collect_best(track_id, name, k, seconds)

    def gallery_changed_elsewhere(self) -> None:
        """A rename/merge/delete/import in the gallery panel: running, the next frame shows it
        (names are looked up per frame; tracks of people an import renumbered start over);
        stopped, the frozen frame is relabelled now."""
        self.session.gallery_edited()
        self._relabel_frozen()

    def _relabel_frozen(self) -> None:
        """A gallery change while no source runs: the frozen frame shows the new names."""
        if not self.controller.running and (r := self.session.relabel_latest()) is not None:
            self.show_result(r)

    # -- slots -----------------------------------------------------------------------------------
    def show_result(self, r) -> None:
        """Show ``r`` (a FrameResult) and tell the side panels."""
        self.latest = r
        self.view.set_result(r)
        n = len(r.faces)
        named = sum(x is not None for x in r.faces.names)
        self.faces_label.setText(f"{n} face{'s' if n != 1 else ''} ({named} named)")
        self.result_ready.emit(r)

    def _on_result(self, r) -> None:
        self._fps.tick()
        if len(self._fps) >= 2:
            self.fps_label.setText(f"{self._fps.rate():.1f} FPS")
        self.show_result(r)

    def _on_state(self, state: str, reason: str) -> None:
        if state == "live" and self.pause_action.isChecked():
            state = "paused"
        self._set_state(state, reason)

    def _on_running(self, running: bool) -> None:
        self._update_actions()
        if not running:
            self.fps_label.setText("– FPS")
            self.enrolment.poll()  # collections the ended source finished

    def _set_state(self, state: str, reason: str) -> None:
        self._state = (state, reason)
        spec = self.session.spec
        src = f" {spec.display}" if spec and not state.startswith("loading") else ""
        self.state_label.setText(f"{state}{src}" + (f": {reason}" if reason else ""))
        self._update_actions()

    def _update_actions(self) -> None:
        running = self.controller.running
        self.stop_action.setEnabled(running)
        self.pause_action.setEnabled(running)

    def show_error(self, message: str) -> None:
        """An engine error: the state label + a non-modal message box; never raises."""
        self.last_error = message
        log.warning("%s", message)
        spec = self.session.spec
        self._state = ("error", message)
        self.state_label.setText(f"error{' ' + spec.display if spec else ''}: {message}")
        self._message_box(message)

    def show_warning(self, message: str) -> None:
        """Something the user asked for did not happen (an enrolment whose face left): a non-modal
        message box; the engine's state (live, ended...) is left as it is."""
        self.last_warning = message
        log.warning("%s", message)
        self._message_box(message)

    def _message_box(self, message: str) -> None:
        if self._error_box is None:
            box = QMessageBox(QMessageBox.Icon.Warning, "facescope", message, QMessageBox.StandardButton.Ok, self)
            box.setWindowModality(Qt.WindowModality.NonModal)
            self._error_box = box
        self._error_box.setText(message)
        self._error_box.show()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.source_bar.prober.stop()
        self.backend_label.stop()
        self.enrolment.stop()
        self.controller.stop()
        try:
            self.session.close()
        except Exception:
            log.exception("closing the gallery failed")
        super().closeEvent(event)
