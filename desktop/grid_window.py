"""The several-sources window: a grid of tiles over one :class:`engine.multi.MultiSource`.

``facescope gui --source A --source B`` opens it. The runner owns the work: one capture thread per
source and one engine thread (shared models, embeddings of all sources batched per round). This
window only views it (napari's model/view split): a 30 ms timer takes each source's newest result
(older ones are dropped, never queued), a 0.5 s timer its status (state, FPS, latency) for the
tile headers and the status bar's totals. Models load on a pool thread; nothing here runs a model.

Sightings: each source has a collector fed by the engine thread (``on_result``); finished visits
are written every 5 s in one transaction on the GUI thread, tagged with the source's name.

Enrolling: a click on a face in any tile asks for a name, then asks that source's pipeline to
embed the track (``want_embedding``, on the engine thread); the first result of that source which
carries the track's embedding is stored in the gallery here, on the GUI thread that owns the
gallery connection, and the track is assigned its person on the engine thread (``runner.post``).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QInputDialog, QLabel, QMainWindow, QMessageBox, QWidget

from desktop.grid_view import SourceGrid
from desktop.pool import run_in_pool
from engine.capture import CaptureConfig
from engine.live_enrolment import store_samples
from engine.multi import MultiSource, Roi, SourceSettings, multi_pipeline_config, unique_names
from engine.sightings import SightingCollector, SightingConfig
from engine.sightings import store as sighting_store

log = logging.getLogger(__name__)
ENROL_WAIT_S = 3.0  # a clicked face not embedded within this long (it left the view) is not enrolled


class GridWindow(QMainWindow):
    """Tiles for ``sources`` (:class:`SourceSettings` or source texts), one gallery.

    ``recognizer_factory``: builds the shared real-time recognizer (called on a pool thread).
    ``gallery_path``: the gallery to identify against and enrol into (created if missing);
    ``capture_config``: default ``CaptureConfig(realtime=True, decode_on_demand=False)`` (files
    play at their own rate, like cameras; every frame is shown, so decoded in full on its capture thread)."""

    def __init__(self, sources: list, gallery_path: str | Path | None,
                 recognizer_factory: Callable[[], object], capture_config: CaptureConfig | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        settings = [s if isinstance(s, SourceSettings) else SourceSettings(str(s)) for s in sources]
        self.sources = [dataclasses.replace(s, name=n) for s, n in zip(settings, unique_names(settings), strict=True)]
        self.names = [s.name for s in self.sources]
        self.gallery_path = Path(gallery_path) if gallery_path else None
        self.capture_config = capture_config or CaptureConfig(realtime=True, decode_on_demand=False)
        self.gallery = None
        self.runner: MultiSource | None = None
        self.last_error: str | None = None
        self._shown: dict[str, int] = {}     # name -> round of the result shown
        self._enrolling: dict[tuple[str, int], tuple[str, float]] = {}  # (source, track) -> (name, deadline)
        self._watch = None  # engine.gallery.watch.GalleryWatch, once the gallery is open
        self.setWindowTitle(f"facescope — {len(self.names)} sources")
        self.resize(1280, 760)
        self.grid = SourceGrid(self.names, self)
        self.grid.face_clicked.connect(self.enrol_face)
        self.grid.enabled_toggled.connect(self.set_enabled)
        self.grid.roi_drawn.connect(lambda name, box: self.set_roi(name, box))
        self.grid.roi_cleared.connect(lambda name: self.set_roi(name, None))
        self.setCentralWidget(self.grid)
        self.totals = QLabel("loading models…", self)
        self.statusBar().addPermanentWidget(self.totals)
        self._frames = QTimer(self, interval=30, timeout=self._show_latest)
        self._status = QTimer(self, interval=500, timeout=self._show_status)
        self.sighting_config = SightingConfig()
        self._collectors: dict[str, SightingCollector] = {}  # engine thread observes, GUI thread takes
        self.sightings_written = 0
        self._sightings = QTimer(self, interval=int(1000 * self.sighting_config.flush_every_s),
                                 timeout=self.write_sightings)
        run_in_pool(recognizer_factory, self._start, self._failed)

    # -- start / stop ------------------------------------------------------------------------
    def _start(self, recognizer) -> None:
        try:
            if self.gallery_path is not None:
                from engine.gallery import Gallery

                emb = recognizer.embedder
                self.gallery = Gallery.open(self.gallery_path, emb.id, emb.dim, create=True)
            index = self.gallery.index if self.gallery is not None else None
            self.runner = MultiSource(recognizer, self.sources, index, pipeline_config=multi_pipeline_config(),
                                      capture_config=self.capture_config)
            if self.gallery is not None:
                sighting_store.purge(self.gallery, self.sighting_config.retention)
                self._collectors = {n: SightingCollector(n, self.sighting_config) for n in self.runner.names}
            self.runner.start(on_result=self._observe)
        except Exception as exc:  # noqa: BLE001 - shown in the window, which stays open
            self._failed(f"{type(exc).__name__}: {exc}")
            return
        self._frames.start()
        self._status.start()
        self._sightings.start()

    def _failed(self, message: str) -> None:
        self.last_error = message
        self.totals.setText("not running")
        QMessageBox.warning(self, "facescope", f"could not start the sources: {message}")

    def stop(self) -> None:
        self._frames.stop()
        self._status.stop()
        self._sightings.stop()
        if self.runner is not None:
            self.runner.stop()
        for c in self._collectors.values():  # the engine thread is over: visits still open end here
            c.end_all()
        self.write_sightings()

    def _observe(self, sr) -> None:
        """Engine thread: every result of every source feeds that source's sighting collector."""
        c = self._collectors.get(sr.source)
        if c is not None:
            c.observe(sr.result)

    def write_sightings(self) -> int:
        """Write the finished sightings of every source in one transaction (GUI thread: it owns
        the gallery connection); returns how many."""
        if self.gallery is None:
            return 0
        done = [x for c in self._collectors.values() for x in c.take()]
        n = len(sighting_store.record(self.gallery, done)) if done else 0
        self.sightings_written += n
        return n

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.stop()
        if self.gallery is not None:
            self.gallery.close()
        super().closeEvent(event)

    # -- views -----------------------------------------------------------------------------
    def _show_latest(self) -> None:
        runner = self.runner
        if runner is None:
            return
        for name in self.names:
            sr = runner.latest(name)
            if sr is None or self._shown.get(name) == sr.round:
                continue
            self._shown[name] = sr.round
            tile = self.grid.tiles[name]
            tile.view.set_enrolling([t for (n, t) in self._enrolling if n == name])
            tile.view.set_result(sr.result)
            self._collect(name, sr.result)

    def watch_gallery(self) -> set[int] | None:
        """GUI thread (the status timer): follow what other processes change in the gallery
        (engine.gallery.watch: an erased person is not named any more); tracks of people removed
        or renumbered start their identity over, on the engine thread. As ``LiveSession.watch_gallery``."""
        from engine.gallery.watch import GalleryWatch

        if self.gallery is None or self.runner is None:
            return None
        if self._watch is None:
            self._watch = GalleryWatch(self.gallery)
        gone = self._watch.poll()
        if gone:
            runner = self.runner
            runner.post(lambda: [runner.pipeline(n).forget_people(gone) for n in runner.names])
        return gone

    def _show_status(self) -> None:
        if self.runner is None:
            return
        self.watch_gallery()
        status = self.runner.status()
        fps = e2e = 0.0
        for name, st in status.items():
            self.grid.tiles[name].set_status(st.state, st.reason, st.fps, st.e2e_ms)
            fps += st.fps
            e2e = max(e2e, st.e2e_ms) if math.isfinite(st.e2e_ms) else e2e
        live = sum(st.state == "live" for st in status.values())
        self.totals.setText(f"{live}/{len(status)} live · {fps:.1f} FPS in all · worst e2e {e2e:.0f} ms")

    # -- per-source settings -----------------------------------------------------------------
    def set_enabled(self, name: str, on: bool) -> None:
        """Stop (disabled) or reopen one source; the others go on."""
        if self.runner is not None:
            self.runner.set_enabled(name, on)
        if not on:
            self.grid.tiles[name].view.clear("disabled")

    def set_roi(self, name: str, box: tuple | None) -> None:
        """Region of interest of one source, (x0, y0, x1, y1) in [0, 1] (None: the whole frame)."""
        if self.runner is not None:
            self.runner.set_roi(name, Roi.rect(*box) if box is not None else None)
        self.statusBar().showMessage(f"{name}: region of interest {'set' if box else 'cleared'}", 3000)

    # -- enrolment -------------------------------------------------------------------------
    def enrol_face(self, source: str, track_id: int, name: str | None = None) -> bool:
        """Ask for a name (unless given) and enrol ``track_id`` of ``source`` from its next embedding."""
        if self.runner is None or self.gallery is None:
            self.statusBar().showMessage("no gallery is open: nothing to enrol into", 5000)
            return False
        if name is None:
            name, ok = QInputDialog.getText(self, "Enrol", f"Name for face #{track_id} on {source}:")
            if not ok:
                return False
        name = name.strip()
        if not name:
            return False
        self._enrolling[(source, int(track_id))] = (name, time.monotonic() + ENROL_WAIT_S)
        pipeline = self.runner.pipeline(source)
        self.runner.post(lambda: pipeline.want_embedding(int(track_id)))
        self.statusBar().showMessage(f"enrolling face #{track_id} on {source} as {name}…", 3000)
        return True

    def _collect(self, source: str, result) -> None:
        """Store a waiting track's embedding when ``result`` carries it; drop waits that expired."""
        now = time.monotonic()
        for key, (name, deadline) in list(self._enrolling.items()):
            if key[0] != source:
                continue
            found = _embedded(result, key[1])
            if found is None:
                if now > deadline:
                    del self._enrolling[key]
                    self.statusBar().showMessage(f"face #{key[1]} on {source} left before it was embedded: "
                                                 "nothing enrolled", 5000)
                continue
            del self._enrolling[key]
            emb, crop, quality = found
            try:
                pid, sim = store_samples(self.gallery, name, emb[None, :], [crop], [quality], [source])
            except Exception as exc:  # noqa: BLE001 - a failed enrolment is a message, not a crash
                QMessageBox.warning(self, "Enrol", f"enrolment failed: {type(exc).__name__}: {exc}")
                continue
            pipeline = self.runner.pipeline(source)
            self.runner.post(lambda pl=pipeline, t=key[1], p=pid, s=sim, q=quality: pl.assign_identity(t, p, s, q))
            self.statusBar().showMessage(f"enrolled face #{key[1]} on {source} as {name}", 5000)


def _embedded(result, track_id: int):
    """(embedding, crop, quality) of ``track_id`` in ``result.embedded_faces``, or None."""
    ef = result.embedded_faces
    if ef is None:
        return None
    hits = np.flatnonzero(np.asarray(ef.faces.track_ids) == track_id)
    if hits.size == 0:
        return None
    i = int(hits[0])
    return np.asarray(ef.faces.embeddings[i], np.float32), ef.crops[i], float(ef.qualities[i])
