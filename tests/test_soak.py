"""``facescope bench soak``: the process sampler, the least-squares figures and a real short soak.

The end-to-end tests run the command for real (models, video decoding, the demo clip looping,
a temporary gallery recording sightings) for a few seconds and check the JSON's fields and their
consistency with the samples it holds; speed is never asserted (the figures are benchmarks).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.bench.soak import Sample, Sampler, SoakConfig, read_process, summarize
from engine.errors import FacescopeError

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "resources" / "demo" / "megamind.avi"
pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="the soak reads /proc (Linux)")


def _samples(t_s, rss=None, anon=None, threads=None, fds=None, cpu=None, frames=None) -> list[Sample]:
    t = np.asarray(t_s, dtype=float)

    def col(v, default):
        return np.broadcast_to(np.asarray(default if v is None else v, dtype=float), t.shape)

    rss, anon = col(rss, 400.0), col(anon, 250.0)
    threads, fds, cpu, frames = col(threads, 12), col(fds, 10), col(cpu, 0.5 * t), col(frames, 25.0 * t)
    return [Sample(float(t[i]), float(rss[i]), float(anon[i]), float(rss[: i + 1].max()), int(threads[i]),
                   int(fds[i]), float(cpu[i]), (int(frames[i]),)) for i in range(len(t))]


def test_summary_recovers_a_known_leak_rate_cpu_and_fps():
    t = np.arange(0.0, 601.0, 5.0)  # 10 minutes, a sample every 5 s
    r = summarize(_samples(t, rss=400 + 2.0 * t / 60, anon=250 + 1.5 * t / 60), warmup_s=60, sources=["clip"])
    assert r["n_samples"] == len(t) and r["samples_after_warmup"] == int((600 - 60) / 5) + 1
    assert r["rss_slope_mb_per_min"] == pytest.approx(2.0, abs=1e-3)
    assert r["anon_slope_mb_per_min"] == pytest.approx(1.5, abs=1e-3)
    assert r["rss_slope_ok"] is False  # 2 MB/min is over the 1 MB/min bar
    assert r["threads_slope_per_min"] == pytest.approx(0.0, abs=1e-9) and r["threads_ok"] and r["fds_ok"]
    assert r["cpu_cores"] == pytest.approx(0.5, abs=1e-3) and r["cpu_cores_per_source"] == r["cpu_cores"]
    s = r["sources"][0]
    assert s["fps"] == pytest.approx(25.0, abs=0.01) and s["fps_drift_pct"] == pytest.approx(0.0, abs=0.01)
    assert r["peak_rss_mb"] == pytest.approx(420.0, abs=0.1)
    assert r["cpu_ms_per_frame"] == {"first_quarter": 20.0, "last_quarter": 20.0, "drift_pct": 0.0}
    json.dumps(r)


def test_summary_leaves_the_warmup_out_but_keeps_its_peak():
    t = np.arange(0.0, 301.0, 5.0)
    rss = np.where(t < 30, 300 + 5 * t, 380.0)  # grows while models and arenas warm up, then flat
    rss[2] = 700.0  # a transient peak during the warm-up
    r = summarize(_samples(t, rss=rss), warmup_s=30, sources=["a"])
    assert r["rss_slope_mb_per_min"] == pytest.approx(0.0, abs=1e-6) and r["rss_slope_ok"]
    assert r["peak_rss_mb"] == 700.0
    with_warmup = summarize(_samples(t, rss=rss), warmup_s=0, sources=["a"])
    assert with_warmup["rss_slope_mb_per_min"] != pytest.approx(0.0, abs=0.1)


def test_summary_sees_thread_and_fd_growth_and_fps_drift():
    t = np.arange(0.0, 241.0, 2.0)
    frames = np.where(t <= 120, 25 * t, 25 * 120 + 20 * (t - 120))  # 25 FPS, then 20 FPS
    r = summarize(_samples(t, threads=12 + (t > 120), fds=10 + (t // 60), frames=frames, cpu=t),
                  warmup_s=0, sources=["a"])
    assert r["threads_growth"] > 0 and not r["threads_ok"]
    assert r["fds_growth"] > 0 and not r["fds_ok"] and r["fds_slope_per_min"] == pytest.approx(1.0, abs=0.1)
    s = r["sources"][0]
    assert s["fps_first_quarter"] == pytest.approx(25.0, abs=0.01)
    assert s["fps_last_quarter"] == pytest.approx(20.0, abs=0.01)
    assert s["fps_drift_pct"] == pytest.approx(-20.0, abs=0.1) and s["fps_slope_per_min"] < 0
    assert r["cpu_cores"] == pytest.approx(1.0, abs=1e-3)
    # one CPU second per second: 40 ms a frame at 25 FPS, 50 ms at 20 FPS (the pipeline got slower)
    assert r["cpu_ms_per_frame"] == {"first_quarter": 40.0, "last_quarter": 50.0, "drift_pct": 25.0}


def test_summary_refuses_too_few_samples():
    with pytest.raises(FacescopeError, match="samples after"):
        summarize(_samples([0.0, 1.0, 2.0, 3.0]), warmup_s=2.5, sources=["a"])


def test_config_fails_loudly_and_scales_sampling_to_short_runs():
    for bad in (dict(minutes=0), dict(minutes=1, every_s=0), dict(minutes=1, warmup_s=60),
                dict(minutes=1, warmup_s=-1)):
        with pytest.raises(ValueError):
            SoakConfig(**bad)
    assert SoakConfig(10).period_s == 5.0 and SoakConfig(10).warmup == 60.0
    short = SoakConfig(0.3)
    assert short.period_s == pytest.approx(0.6) and short.warmup == pytest.approx(3.6)


def test_read_process_counts_this_process_fds_and_threads():
    before = read_process()
    assert before["rss_mb"] >= before["anon_mb"] > 0 and before["hwm_mb"] >= before["rss_mb"]
    files = [open(__file__, "rb") for _ in range(7)]  # noqa: SIM115 - held open on purpose
    stop = threading.Event()
    threads = [threading.Thread(target=stop.wait) for _ in range(3)]
    for th in threads:
        th.start()
    try:
        during = read_process()
    finally:
        stop.set()
        for th in threads:
            th.join()
        for f in files:
            f.close()
    assert during["fds"] - before["fds"] == 7
    assert during["threads"] - before["threads"] == 3
    assert during["cpu_s"] >= before["cpu_s"]
    sampler = Sampler(10.0)
    first = sampler.take([0])
    assert sampler.take([1], final=True) is first  # a closing sample right after another is not taken twice
    assert not sampler.due() and 9.0 < sampler.wait_s() <= 10.0


def _run(args: list[str], timeout: int = 280) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli.main", "bench", "soak", *args], cwd=REPO,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen"), capture_output=True, text=True,
                          timeout=timeout)


def test_bad_numbers_fail_in_one_line_before_loading_models():
    proc = _run(["--source", str(DEMO), "--minutes", "0"], timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["facescope: error: minutes must be > 0, got 0.0"]


def _check_soak_json(r: dict, frames_key: str = "frames") -> None:
    samples = r["samples"]
    assert r["stopped_early"] is False and r["errors"] == []
    assert r["n_samples"] == len(samples) >= 15 and r["samples_after_warmup"] >= 8
    for s in samples:
        assert s["rss_mb"] >= s["anon_mb"] > 0 and s["hwm_mb"] >= s["rss_mb"]
        assert s["threads"] >= 3 and s["fds"] >= 3  # main + capture + its I/O thread; stdin/out/err
    assert r["peak_rss_mb"] >= max(s["rss_mb"] for s in samples) - 0.1
    after = [s for s in samples if s["t_s"] >= r["warmup_s"]]
    t = np.array([s["t_s"] for s in after]) / 60.0
    for key, name in (("rss_mb", "rss_slope_mb_per_min"), ("threads", "threads_slope_per_min"),
                      ("fds", "fds_slope_per_min")):
        expect = np.polyfit(t, np.array([s[key] for s in after], float), 1)[0]
        assert math.isfinite(r[name]) and r[name] == pytest.approx(expect, abs=1e-3)
    assert isinstance(r["rss_slope_ok"], bool) and isinstance(r["threads_ok"], bool) and isinstance(r["fds_ok"], bool)
    assert 0 < r["cpu_cores"] <= (os.cpu_count() or 1) + 0.5
    (source,) = r["sources"]
    assert source[frames_key] == samples[-1]["frames"][0] > 0 and source["fps"] > 0
    assert math.isfinite(source["fps_drift_pct"])
    cpf = r["cpu_ms_per_frame"]
    assert cpf["first_quarter"] > 0 and cpf["last_quarter"] > 0 and math.isfinite(cpf["drift_pct"])


@pytest.mark.timeout(400)
def test_headless_soak_runs_the_pipeline_and_reports(tmp_path):
    out = tmp_path / "soak.json"
    proc = _run(["--source", str(DEMO), "--minutes", "0.3", "--every", "0.5", "--json", str(out)], timeout=380)
    assert proc.returncode == 0, f"soak failed (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert "soak 0.3 min" in proc.stdout and "MB/min" in proc.stdout and "per source" in proc.stdout
    r = json.loads(out.read_text())
    _check_soak_json(r)
    assert r["minutes"] == 0.3 and r["every_s"] == 0.5 and r["warmup_s"] == pytest.approx(3.6)
    assert r["events"] > 0  # the event log saw faces appear
    assert r["sightings_recorded"] >= 0


@pytest.mark.timeout(400)
def test_gui_soak_samples_the_real_window(tmp_path):
    pytest.importorskip("PySide6")
    pytest.importorskip("pyqtgraph")
    out = tmp_path / "gui_soak.json"
    proc = _run(["--gui", "--source", str(DEMO), "--minutes", "0.25", "--every", "0.5", "--json", str(out)],
                timeout=380)
    assert proc.returncode == 0, f"GUI soak failed (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
    r = json.loads(out.read_text())
    assert r["gui"] is True
    _check_soak_json(r)


def test_a_short_lived_thread_is_not_growth():
    t = np.arange(0.0, 121.0, 5.0)
    threads = np.full(t.shape, 14)
    threads[-3] = 15  # e.g. a file's next I/O thread starting while the old one exits
    r = summarize(_samples(t, threads=threads), warmup_s=0, sources=["a"])
    assert r["threads_growth"] == 0 and r["threads_ok"] and r["threads"]["max"] == 15
