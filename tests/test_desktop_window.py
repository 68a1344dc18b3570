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
    assert result["faces_seen"] and result["named_on_screen"] and result["in_gallery_panel"], result
    assert result["monitor_samples"] > 10 and result["monitor_redraws"] >= 1, result
