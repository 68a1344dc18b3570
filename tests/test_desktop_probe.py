"""The GUI responsiveness probe (desktop/probe.py) on the bundled demo clip, offscreen.

Only the shape and sanity of the result are checked; the latency itself is a benchmark number
(``python -m desktop.probe`` / ``facescope bench gui``), never asserted. The probe runs in a
child process through its CLI: after the monitor panel (pyqtgraph) has run for a few seconds,
PySide6 6.12 aborts at interpreter teardown ("bool_dealloc"), which would otherwise kill pytest.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("pyqtgraph")

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "resources" / "demo" / "megamind.avi"
KEYS = {"event_loop_p50_ms", "event_loop_p95_ms", "event_loop_max_ms", "ticks", "display_fps", "seconds",
        "source"}


@pytest.fixture(scope="module")
def probe_result(tmp_path_factory) -> dict:
    if not DEMO.exists():
        pytest.skip(f"demo clip missing: {DEMO}")
    out = tmp_path_factory.mktemp("probe") / "probe.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-m", "desktop.probe", "--source", str(DEMO), "--seconds", "4",
                           "--json", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"probe failed (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert "event loop p50" in proc.stdout and "p95" in proc.stdout
    return json.loads(out.read_text())


def test_probe_result_keys_and_sanity(probe_result):
    r = probe_result
    assert r.keys() >= KEYS
    json.dumps(r)  # JSON-able
    assert r["source"].endswith("megamind.avi")
    assert r["error"] is None
    assert 3.5 <= r["seconds"] <= 6.0
    assert r["ticks"] > 100
    assert r["display_fps"] > 5
    for k in ("event_loop_p50_ms", "event_loop_p95_ms", "event_loop_max_ms"):
        assert math.isfinite(r[k]) and r[k] >= 0.0
    assert r["event_loop_p50_ms"] <= r["event_loop_p95_ms"] <= r["event_loop_max_ms"]
    # the second case: the same window while the largest face is enrolled with best-K, again and again
    e = r["cases"]["enrol_best_k"]
    assert {"event_loop_p95_ms", "ticks", "enrolments"} <= e.keys() and e["ticks"] > 50 and e["enrolments"] >= 1
    assert r["cases"]["view"]["event_loop_p95_ms"] == r["event_loop_p95_ms"]


def test_probe_masks_a_url_password():
    from desktop.probe import _shown, summary_line

    url = "rtsp://admin:s3cretPW@10.0.0.5:554/stream1"
    assert "s3cretPW" not in _shown(url) and _shown(url).startswith("rtsp://admin:")
    assert _shown("clip.avi") == "clip.avi"
    line = summary_line({"source": _shown(url), "event_loop_p50_ms": 1.0, "event_loop_p95_ms": 2.0,
                         "event_loop_max_ms": 3.0, "ticks": 10, "seconds": 1.0, "display_fps": 25.0})
    assert "s3cretPW" not in line


def test_summary_line_and_parser():
    from desktop.probe import build_parser, summary_line

    args = build_parser().parse_args(["--source", "x.avi", "--seconds", "3", "--json", "o.json"])
    got = (args.source, args.seconds, args.json, args.interval_ms, args.no_panels)
    assert got == ("x.avi", 3.0, "o.json", 10, False)
    line = summary_line({"source": "x.avi", "event_loop_p50_ms": 1.0, "event_loop_p95_ms": 40.0,
                         "event_loop_max_ms": 80.0, "ticks": 500, "seconds": 5.0, "display_fps": 20.0})
    assert "p95 40.0 ms" in line and "ABOVE TARGET" in line
