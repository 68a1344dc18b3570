"""The window's memory while a source runs: what the worker hands to the GUI thread is taken.

The engine worker queues every finished sighting (one visit of one face: a 112x112 crop and an
embedding) for the GUI thread, which owns the gallery. Before the fix only the people panels'
timer drained that queue, so a window without them (``facescope bench soak --gui`` without
panels, any embedding of MainWindow) kept every sighting of the run in memory: RSS grew
~2.9 MB/min on the synthetic LFW clip (see the report of the soak). Real window (offscreen),
real gallery SQLite file, real Sighting records; no models needed.
"""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import tracemalloc

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

N = 2000  # sightings queued by "the worker"; each holds a 37 KB crop + a 2 KB embedding



def test_window_without_panels_drains_and_writes_the_workers_sightings(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from desktop.main_window import SIGHTINGS_MS, MainWindow
    from engine.gallery import Gallery
    from engine.live import LiveSession
    from engine.sightings.collector import Sighting

    gallery = Gallery.open(tmp_path / "g.db", "test-embedder", 512, create=True)
    session = LiveSession(recognizer=object(), gallery=gallery)
    settings = QSettings(str(tmp_path / "facescope.ini"), QSettings.Format.IniFormat)
    win = MainWindow(session=session, settings=settings, probe_webcams=False)
    qtbot.addWidget(win)
    rng = np.random.default_rng(0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(N):  # what SightingCollector puts on the queue from the worker thread
            emb = rng.standard_normal(512).astype(np.float32)
            session._sightings_done.put(Sighting(-1, "clip.avi", 1000.0 + i, 1001.0 + i, 5,
                                                 rng.integers(0, 255, (112, 112, 3), dtype=np.uint8),
                                                 emb / np.linalg.norm(emb), 0.8))
        queued = (tracemalloc.get_traced_memory()[0] - before) / 1e6
        session._next_flush = 0.0  # due now (else the first write waits SightingConfig.flush_every_s)
        qtbot.wait(3 * SIGHTINGS_MS)  # the window's event loop runs, no panels attached
        held = (tracemalloc.get_traced_memory()[0] - before) / 1e6
    finally:
        tracemalloc.stop()
    print(f"{N} sightings queued: {queued:.1f} MB; held after {3 * SIGHTINGS_MS} ms: {held:.1f} MB")
    # before the fix: held == queued (~80 MB, nothing took them); after: written to the gallery
    assert queued > 50
    assert held < 0.1 * queued, f"the window kept {held:.1f} MB of the worker's sightings"
    assert session.sightings_written == N and session._sightings_done.empty()
    win.close()
