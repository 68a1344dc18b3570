"""The several-sources window (desktop/grid_window.py): two real sources in one grid, one engine."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6", reason="the gui extra is not installed")

from engine.capture import CaptureConfig
from engine.multi import SourceSettings
from engine.resources import demo_dir

WAIT_MS = 60000


@pytest.fixture
def grid(qtbot, tmp_path):
    from desktop.grid_window import GridWindow
    from engine.live import realtime_recognizer

    demo = str(demo_dir() / "megamind.avi")
    win = GridWindow([SourceSettings(demo, name="door"), SourceSettings(demo, name="hall")],
                     tmp_path / "gallery.db", realtime_recognizer,
                     capture_config=CaptureConfig(realtime=True, loop=True))
    qtbot.addWidget(win)
    win.resize(900, 500)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def _faces(win, name: str):
    sr = win.runner.latest(name) if win.runner is not None else None
    return sr.result.faces if sr is not None else None


def test_two_sources_in_one_grid_enrol_from_a_tile(qtbot, grid):
    qtbot.waitUntil(lambda: grid.runner is not None, timeout=WAIT_MS)
    assert grid.last_error is None
    # both tiles show frames with faces from one shared engine
    qtbot.waitUntil(lambda: all((f := _faces(grid, n)) is not None and len(f) > 0 for n in ("door", "hall")),
                    timeout=WAIT_MS)
    assert set(grid.runner.names) == {"door", "hall"}
    assert grid.runner.pipeline("door").recognizer is grid.runner.pipeline("hall").recognizer
    qtbot.waitUntil(lambda: all(grid.grid.tiles[n].view.faces is not None for n in ("door", "hall")),
                    timeout=WAIT_MS)  # the 30 ms view timer shows them
    qtbot.waitUntil(lambda: "FPS" in grid.grid.tiles["hall"].header.text(), timeout=WAIT_MS)
    assert "live" in grid.totals.text() and "FPS in all" in grid.totals.text()

    # double click focuses one tile, again brings the grid back
    grid.grid.toggle_focus("hall")
    assert grid.grid.focused == "hall" and not grid.grid.tiles["door"].isVisible()
    grid.grid.toggle_focus("hall")
    assert grid.grid.focused == "" and grid.grid.tiles["door"].isVisible()

    # enrol a face clicked in the second tile: stored from that source's embedding, then named there
    faces = _faces(grid, "hall")
    tid = int(faces.track_ids[int(np.argmax(faces.boxes[:, 2] - faces.boxes[:, 0]))])
    assert grid.enrol_face("hall", tid, "Grid Person")
    qtbot.waitUntil(lambda: len(grid.gallery.index) > 0, timeout=WAIT_MS)
    assert "Grid Person" in [p.name for p in grid.gallery.persons()]

    def named() -> bool:
        f = _faces(grid, "hall")
        return f is not None and "Grid Person" in [f.names[i] for i in np.flatnonzero(f.track_ids == tid)]

    qtbot.waitUntil(named, timeout=WAIT_MS)

    # closing writes the open visits of both sources as sightings tagged with their names
    grid.stop()
    from engine.sightings import store as sighting_store

    assert grid.sightings_written > 0
    rows = sighting_store.list_sightings(grid.gallery.db.conn)
    assert {r.source for r in rows} == {"door", "hall"}
    assert any(r.name == "Grid Person" for r in rows if r.source == "hall")


def test_tile_settings_roi_and_disable(qtbot, grid):
    from PySide6.QtCore import QPoint

    qtbot.waitUntil(lambda: grid.runner is not None and grid.grid.tiles["door"].view.faces is not None
                    and len(grid.grid.tiles["door"].view.faces) > 0, timeout=WAIT_MS)
    tile = grid.grid.tiles["door"]
    # a region over the left tenth of the frame: the demo's faces are in the middle, so none is kept
    r = tile.view.image_rect()
    tile.start_drawing()
    with qtbot.waitSignal(tile.roi_drawn, timeout=2000) as blocker:
        tile.finish_drawing(QPoint(int(r.x()) + 1, int(r.y()) + 1),
                            QPoint(int(r.x() + r.width() * 0.1), int(r.y() + r.height() - 2)))
    x0, y0, x1, y1 = blocker.args[1]
    assert x0 < 0.02 and x1 == pytest.approx(0.1, abs=0.02) and y1 > 0.95
    start = grid.runner.latest("door").round
    qtbot.waitUntil(lambda: grid.runner.latest("door").round > start + 10, timeout=WAIT_MS)
    assert len(_faces(grid, "door")) == 0
    assert len(_faces(grid, "hall")) > 0  # the other source keeps its faces
    tile.roi_cleared.emit("door")
    qtbot.waitUntil(lambda: len(_faces(grid, "door")) > 0, timeout=WAIT_MS)

    # the header menu holds the settings; disabling one source leaves the other running
    actions = [a.text() for a in tile.settings_menu().actions()]
    assert actions == ["Enabled", "Draw region of interest", "Clear region of interest"]
    tile.set_enabled(False)
    qtbot.waitUntil(lambda: grid.runner.status()["door"].state == "disabled", timeout=WAIT_MS)
    hall = grid.runner.latest("hall").round
    qtbot.waitUntil(lambda: grid.runner.latest("hall").round > hall + 5, timeout=WAIT_MS)
    tile.set_enabled(True)
    qtbot.waitUntil(lambda: grid.runner.status()["door"].state == "live", timeout=WAIT_MS)


def test_gui_command_opens_the_grid_for_several_sources(tmp_path):
    """`facescope gui --source A --source B` opens the grid window, runs both, exits 0."""
    import subprocess
    import sys

    demo = str(demo_dir() / "megamind.avi")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path)}
    code = ("import sys; from desktop import app; from PySide6.QtCore import QTimer\n"
            "from PySide6.QtWidgets import QApplication\n"
            "qa = QApplication([])\n"
            "def poll():\n"
            "    w = next((w for w in qa.topLevelWidgets() if type(w).__name__ == 'GridWindow'), None)\n"
            "    shown = sorted(n for n, t in w.grid.tiles.items() if t.view.faces is not None) if w else []\n"
            "    if w is not None and (len(shown) == 2 or w.last_error):\n"
            "        rec = w.runner.recognizer if w.runner is not None else None\n"
            "        threads = (rec.detector.session.threads, rec.embedder.session.threads) if rec else None\n"
            "        print('TILES', sorted(w.grid.tiles), 'SHOWN', shown, 'ERROR', w.last_error, 'THREADS', threads,\n"
            "              flush=True)\n"
            "        qa.quit()\n"
            "    else:\n"
            "        QTimer.singleShot(250, poll)\n"
            "QTimer.singleShot(250, poll)\n"
            f"sys.exit(app.main(['--source', {demo!r}, '--source', {demo!r}, '--gallery', "
            f"{str(tmp_path / 'g.db')!r}, '--quit-after', '100']))\n")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert ("TILES ['megamind.avi', 'megamind.avi-2'] SHOWN ['megamind.avi', 'megamind.avi-2'] ERROR None"
            in r.stdout), r.stdout
    assert "THREADS (1, 0)" in r.stdout, r.stdout  # the grid's recognizer: engine.multi.multi_runtime


def test_a_person_erased_by_another_process_is_not_named_in_any_tile(qtbot, tmp_path):
    """``facescope gallery delete`` (another process) while the grid runs: within about a second
    no tile names that person any more; the others still are (engine.gallery.watch)."""
    import time

    from desktop.grid_window import GridWindow
    from engine.gallery import Gallery
    from engine.live import realtime_recognizer
    from tests.test_cli import facescope

    db = tmp_path / "gallery.db"
    facescope("demo", "--frames", "1", "--out", tmp_path, "--gallery", db)  # Roxanne and Bernard
    demo = str(demo_dir() / "megamind.avi")
    win = GridWindow([SourceSettings(demo, name="door"), SourceSettings(demo, name="hall")], db,
                     realtime_recognizer, capture_config=CaptureConfig(realtime=True, loop=True))
    qtbot.addWidget(win)
    win.show()
    try:
        def names() -> set:
            return {x for n in ("door", "hall") if (f := _faces(win, n)) is not None for x in f.names}

        qtbot.waitUntil(lambda: "Roxanne" in names(), timeout=WAIT_MS)
        with Gallery.open(db, win.gallery.embedder_id, win.gallery.dim, create=False) as other:
            other.delete_person("Roxanne")
        qtbot.waitUntil(lambda: win._watch is not None and win._watch.reloads == 1, timeout=WAIT_MS)
        assert "Roxanne" not in win.gallery.index.names.values()
        qtbot.wait(300)  # the engine's next round drops the votes
        seen, end = set(), time.monotonic() + 12  # a whole loop of the clip: she is on screen again
        while time.monotonic() < end:
            seen |= names()
            qtbot.wait(40)
        assert "Roxanne" not in seen and "Bernard" in seen, seen
    finally:
        win.close()
