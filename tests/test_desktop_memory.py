"""The window's memory while a source runs: what the worker hands to the GUI thread is taken.

The engine worker queues every finished sighting (one visit of one face: a 112x112 crop and an
embedding) for the GUI thread, which owns the gallery. Before the fix only the people panels'
timer drained that queue, so a window without them (``facescope bench soak --gui`` without
panels, any embedding of MainWindow) kept every sighting of the run in memory: RSS grew
~2.9 MB/min on the synthetic LFW clip (see the report of the soak). Real window (offscreen),
real gallery SQLite file, real Sighting records; no models needed.

The people panels' crops are decoded on Qt's pool: a finished task must not keep its JPEG bytes
(PySide6 keeps some finished QRunnables' wrappers alive; see the second test).
"""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import gc
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


def test_a_pool_task_keeps_no_payload_once_it_has_run(qtbot, lfw_dir):
    """The people panels decode their crops on Qt's global pool (``decode_in_pool`` ->
    ``run_in_pool``) after every regroup and every history refresh. PySide6 keeps some finished
    QRunnables' Python wrappers alive for good (most of a burst of short tasks; ~14% of the
    panels' decodes in the GUI soak), and each held its closure, i.e. the JPEG bytes it was
    given. Real LFW JPEGs (fresh bytes per task, as each refresh reads them from SQLite), the real
    pool; the bytes still held once every callback ran are measured."""
    from PySide6.QtCore import QCoreApplication, QEvent, QThreadPool

    from desktop.pool import run_in_pool

    files = sorted((lfw_dir / "lfw-deepfunneled").glob("*/*.jpg"))[:35]  # a regroup's 7 tiles x 5 crops
    jpegs = [f.read_bytes() for f in files]
    size = sum(len(b) for b in jpegs)
    calls, done, errors = 200, [], []
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(calls):  # back to back, as refreshes come while earlier tasks still run
            payload = [bytes(bytearray(b)) for b in jpegs]
            run_in_pool(lambda payload=payload: len(payload), done.append, errors.append)
        del payload
        QThreadPool.globalInstance().waitForDone()
        qtbot.waitUntil(lambda: len(done) + len(errors) == calls, timeout=10_000)
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        QCoreApplication.processEvents()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    print(f"{calls} tasks with {size / 1e3:.0f} KB of JPEG bytes each: {held / 1e3:.0f} KB still held")
    assert not errors and done == [len(jpegs)] * calls
    # before the fix: every kept wrapper held its 300 KB (tens of them: 5-50 MB); now the wrappers
    # alone (< 1 KB each) and tracemalloc's own noise (~0.15 MB)
    assert held < 2 * size, f"{held / size:.1f} tasks' worth of JPEG bytes kept after they ran"
