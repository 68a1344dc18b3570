"""The main window: source bar, live view, status bar, dock area for the side panels."""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
from dataclasses import dataclass, field

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QComboBox, QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QToolBar,
                               QWidget)

from desktop.enrol_dialog import EnrolDialog
from desktop.live_view import LiveView
from desktop.sources import RecentSources, WebcamProber
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


TRACK_LOST_S = 1.0  # a collecting track unseen this long has ended


@dataclass
class _Collection:
    """Best-K enrolment of one track: the top ``k`` (quality, crop, embedding, source) so far."""

    track_id: int
    name: str
    k: int
    deadline: float
    last_seen: float
    items: list = field(default_factory=list)


class MainWindow(QMainWindow):
    """``result_ready(object)``: every FrameResult shown, on the GUI thread (for side panels).
    ``gallery_changed()``: after an enrolment. Side panels go in with :meth:`add_dock`.

    Source picker: an editable combo with the webcams found by a background probe (indices 0..4)
    and the recent sources (``settings``, a QSettings; default the user's facescope settings).
    Recent URLs are persisted with their password masked; the real URL is kept in memory for
    this session only (see :mod:`desktop.sources`)."""

    result_ready = Signal(object)
    gallery_changed = Signal()

    def __init__(self, gallery_path: str | Path | None = None, recognizer=None,
                 recognizer_factory: Callable[[], object] = default_recognizer, capture_config=None,
                 pipeline_config=None, parent: QWidget | None = None, settings: QSettings | None = None,
                 probe_webcams: bool = True) -> None:
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
        self.settings = settings if settings is not None else QSettings("facescope", "facescope")
        self.recent = RecentSources(self.settings)
        self.webcams: list[int] = []
        self._collecting: dict[int, _Collection] = {}
        self._collect_timer = QTimer(self)
        self._collect_timer.setInterval(100)
        self._collect_timer.timeout.connect(self._check_collections)

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
        self._refresh_sources()
        self.prober = WebcamProber(self)
        self.prober.found.connect(self._on_webcams)
        if probe_webcams:
            self.prober.start()

    # -- construction ----------------------------------------------------------------------------
    def _build_actions(self) -> None:
        tb = QToolBar("Source", self)
        tb.setObjectName("source-toolbar")
        self.addToolBar(tb)
        self.source_combo = QComboBox(self)
        self.source_combo.setEditable(True)
        self.source_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.source_combo.setMinimumWidth(320)
        self.source_combo.setToolTip("webcams found on this machine and recent sources; or type a source")
        self.source_edit = self.source_combo.lineEdit()  # typing a source works as with a plain field
        self.source_edit.setPlaceholderText("webcam index (0), rtsp://… / http://… URL, or video file")
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
        self.enrol_action = act("Enrol selected face…", self.enrol_selected, "Ctrl+E")
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
        for a in (self.start_action, self.pause_action, self.stop_action, None, self.enrol_action, None,
                  self.fullscreen_action):
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
        shown = self.source_edit.text().strip()
        text = self.recent.resolve(shown)
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
        try:
            self.recent.add(text)
            self._refresh_sources(self.recent.items()[0])
        except Exception:  # noqa: BLE001 - the recent list must never stop a start
            log.exception("updating the recent sources failed")
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

    # -- sources ---------------------------------------------------------------------------------
    def _refresh_sources(self, current: str | None = None) -> None:
        """Fill the combo: found webcams, then recent sources (display texts, passwords masked)."""
        text = self.source_edit.text() if current is None else current
        combo = self.source_combo
        combo.blockSignals(True)
        combo.clear()
        seen = set()
        for i in self.webcams:
            combo.addItem(str(i))
            combo.setItemData(combo.count() - 1, f"webcam {i}", Qt.ItemDataRole.ToolTipRole)
            seen.add(str(i))
        for item in self.recent.items():
            if item not in seen:
                combo.addItem(item)
        combo.setCurrentIndex(-1)
        combo.setEditText(text)
        combo.blockSignals(False)

    def _on_webcams(self, indices: list) -> None:
        self.webcams = [int(i) for i in indices]
        self._refresh_sources()
        if self.webcams:
            self.statusBar().showMessage(f"webcams found: {', '.join(map(str, self.webcams))}", 4000)

    # -- enrolment -------------------------------------------------------------------------------
    def enrol_selected(self) -> str | None:
        """Ctrl+E: open the enrol dialog for the selected (last clicked / hovered) face."""
        tid = self.view.selected_track
        r = self.latest
        if tid is None or r is None or not (r.faces.track_ids == tid).any():
            self.statusBar().showMessage("no face selected: click or hover a face, then press Ctrl+E", 4000)
            return None
        return self.enrol_track(tid)

    def enrol_track(self, track_id: int, name: str | None = None,
                    collect: tuple[int, float] | None = None) -> str | None:
        """Enrol the face of ``track_id`` in the newest shown frame; asks for the name (and the
        best-K option) with the EnrolDialog unless ``name`` is given. ``collect=(k, seconds)``
        (or the dialog's option) enrols the best ``k`` frames of the track over the next
        ``seconds`` instead (see :meth:`collect_best`). Returns the name (None if cancelled)."""
        r = self.latest
        if r is None or self.recognizer is None:
            return None
        hit = np.flatnonzero(r.faces.track_ids == track_id)
        if hit.size == 0:
            self.statusBar().showMessage(f"face #{track_id} is no longer in view", 3000)
            return None
        if self.gallery is None:
            self.show_error("no gallery is open (start the app with --gallery)")
            return None
        i = int(hit[0])
        image = r.frame.image
        emb_model = self.recognizer.embedder
        try:
            kps = self._alignment_points(image, r.faces, i)
            crop = emb_model.aligned_crops(image, kps)[0]
            self.view.set_enrolling(self.view.enrolling | {track_id})
            if name is None:
                names = [p.name for p in self.gallery.persons()]
                choice = EnrolDialog.ask_choice(crop, names, self, track_id=track_id, suggestion=r.faces.names[i])
                if choice is None:
                    return None
                name = choice.name
                if choice.collect and collect is None:
                    collect = (choice.k, choice.seconds)
            if not name:
                return None
            if collect is not None:
                self.collect_best(track_id, name, *collect)
                return name
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
            if track_id not in self._collecting:
                self.view.set_enrolling(self.view.enrolling - {track_id})
        self._relabel(track_id, pid, found, sim, quality, r)
        self.statusBar().showMessage(f"enrolled face #{track_id} as {name}", 4000)
        self.gallery_changed.emit()
        return name

    def _relabel(self, track_id: int, pid: int, found, sim: float, quality: float, r) -> None:
        """Give the track its new identity in the worker's vote book (worker thread)."""
        if pid < 0 or not np.isfinite(sim):
            return
        clock = r.frame.pts_s if r.frame.pts_s is not None else r.frame.timestamp

        def relabel(pipeline, tid=int(track_id)):  # runs on the worker thread
            if pipeline is None:
                return
            pipeline.book.forget([tid])  # the unknown votes must not outweigh the new identity
            pipeline.book.vote(tid, pid, found, sim, quality, clock)

        self.controller.request(relabel)

    def collect_best(self, track_id: int, name: str, k: int = 5, seconds: float = 3.0) -> None:
        """Collect the ``k`` best faces (by ``face_quality``) of ``track_id`` in the results of
        the next ``seconds``, then enrol them in one ``gallery.enroll`` call. The track is drawn
        blue meanwhile. Embeddings are computed on the GUI thread, and only for a face whose
        quality enters the current top ``k`` (~12 ms each)."""
        now = time.monotonic()
        tid = int(track_id)
        self._collecting[tid] = _Collection(tid, name, max(1, int(k)), now + float(seconds), now)
        self.view.set_enrolling(self.view.enrolling | {tid})
        self.statusBar().showMessage(f"collecting the best {k} frames of face #{tid} for {seconds:g} s…")
        self._collect_timer.start()

    def _alignment_points(self, image: np.ndarray, faces, i: int) -> np.ndarray:
        """(1, 5, 2) points that align face ``i`` the way the engine aligns the faces it matches
        (the landmark model's when configured so, or for box-only detectors)."""
        return self.recognizer.ensure_keypoints(image, faces.select([i])).keypoints

    def _collect_from(self, r) -> None:
        from engine.track import face_quality

        faces = r.faces
        if len(faces) == 0:
            return
        qualities = None
        now = time.monotonic()
        for tid, c in list(self._collecting.items()):
            hit = np.flatnonzero(faces.track_ids == tid)
            if hit.size == 0:
                continue
            c.last_seen = now
            if qualities is None:
                qualities = face_quality(faces, r.frame.image.shape)
            i = int(hit[0])
            q = float(qualities[i])
            if len(c.items) >= c.k and q <= c.items[-1][0]:
                continue  # not in the top k: no embedding computed
            try:
                emb_model = self.recognizer.embedder
                kps = self._alignment_points(r.frame.image, faces, i)
                crop = emb_model.aligned_crops(r.frame.image, kps)[0]
                embedding = emb_model.embed_tensor(emb_model.align(r.frame.image, kps))[0]
            except Exception as exc:  # noqa: BLE001
                self._collecting.pop(tid, None)
                self.view.set_enrolling(self.view.enrolling - {tid})
                self.show_error(f"enrolment failed: {type(exc).__name__}: {exc}")
                continue
            source = f"{self.spec.display if self.spec else 'live'} frame {r.frame.index} track {tid}"
            c.items.append((q, crop, embedding, source, r))
            c.items.sort(key=lambda item: -item[0])
            del c.items[c.k:]

    def _check_collections(self) -> None:
        now = time.monotonic()
        for tid, c in list(self._collecting.items()):
            if now >= c.deadline or now - c.last_seen > TRACK_LOST_S or not self.controller.running:
                self._finish_collection(tid)
        if not self._collecting:
            self._collect_timer.stop()

    def _finish_collection(self, track_id: int) -> None:
        c = self._collecting.pop(track_id, None)
        self.view.set_enrolling(self.view.enrolling - {track_id})
        if c is None:
            return
        if not c.items:
            msg = f"face #{track_id} left the view before any frame was collected: nothing enrolled"
            self.statusBar().showMessage(msg, 5000)
            self.show_error(msg)
            return
        if self.gallery is None:
            self.show_error("no gallery is open (start the app with --gallery)")
            return
        try:
            embeddings = np.stack([item[2] for item in c.items]).astype(np.float32)
            self.gallery.enroll(c.name, embeddings, crops=[item[1] for item in c.items],
                                qualities=[float(np.clip(item[0], 0.0, 1.0)) for item in c.items],
                                sources=[item[3] for item in c.items])
            best = c.items[0]
            pids, names_found, sims = self.gallery.index.search(best[2][None, :])
            self._relabel(track_id, int(pids[0]), names_found[0], float(sims[0]), float(best[0]), best[4])
        except Exception as exc:  # noqa: BLE001
            self.show_error(f"enrolment failed: {type(exc).__name__}: {exc}")
            return
        self.statusBar().showMessage(f"enrolled {len(c.items)} frames of face #{track_id} as {c.name}", 4000)
        self.gallery_changed.emit()

    # -- slots -----------------------------------------------------------------------------------
    def _on_result(self, r) -> None:
        self.latest = r
        if self._collecting:
            self._collect_from(r)
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
        self.prober.stop()
        self._collect_timer.stop()
        self._collecting.clear()
        self.controller.stop()
        if self.gallery is not None:
            try:
                self.gallery.close()
            except Exception:  # noqa: BLE001
                log.exception("closing the gallery failed")
            self.gallery = None
        super().closeEvent(event)
