"""The whole window with its side panels, in a child process (see desktop_window_check.py):
clicking a face enrols it, the name is drawn on later frames, the gallery panel lists the
person and the monitoring panel receives data."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")


def test_window_with_panels_enrols_by_click_and_monitors(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    script = REPO / "tests" / "desktop_window_check.py"
    clip = REPO / "resources" / "demo" / "megamind.avi"
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "g.db"), str(tmp_path / "s.ini"), str(clip)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["panel_bound_when_ready"], result  # panels made before the gallery opened bind to it then
    assert result["faces_seen"] and result["named_on_screen"] and result["in_gallery_panel"], result
    assert result["monitor_samples"] > 10 and result["monitor_redraws"] >= 1, result


def test_monitor_breaks_lines_over_gaps_and_ignores_warmup_in_y_range():
    """The monitor's lines break over a stop or a pause; the warm-up spike does not set the y range.

    What is drawn: no segment joins the frames before a stop (or a pause) to the frames after
    it, and the first frame's warm-up spike (700 ms) does not set the latency plots' y range.
    (Child process: a refreshed pyqtgraph panel aborts Python 3.11 at teardown.)
    """
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, str(REPO / "tests" / "desktop_window_check.py"), "monitor"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["samples"] == 150
    assert len(r["gaps"]) == 2 and r["finite_before_first_gap"], r  # one break per gap, none elsewhere
    assert r["first"] == 700.0  # the spike is drawn ...
    # ... but the live values fill the plots (e2e 10-12 ms, detect = e2e / 2)
    for (low, high), live_max in ((r["e2e_range"], 12.0), (r["stages_range"], 6.0)):
        assert low == 0.0 and live_max <= high < 4 * live_max, r
