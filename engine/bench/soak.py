"""``facescope bench soak``: the real-time pipeline for minutes, with the process sampled over time.

A camera runs for days, so what matters is what grows: memory (RSS, and its anonymous part, the
heap and arenas as opposed to mapped library files), threads, open file descriptors, and the
frame rate that must not drift down. :func:`soak` runs the assembly of ``facescope run
--realtime`` (recognizer, gallery index, pipeline, sightings collector flushed every few seconds,
event log) on sources paced like a camera, a video file restarting at its end, and reads
``/proc/self`` every few seconds (:class:`Sampler`). :func:`summarize` fits least-squares lines
to the samples taken after a warm-up (model loading, JIT and allocator arenas reaching their
working size, the first sightings flush): the slopes per minute are the leak figures.

Each source runs on its own worker thread (its own capture and pipeline, one shared recognizer,
as the window does); the calling thread samples and writes sightings, as ``run`` does between
frames. Linux only (``/proc``).
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from engine.errors import FacescopeError
from engine.util.check import check

_MB = 1024.0 * 1024.0
SLOPE_TARGET_MB_PER_MIN = 1.0  # the acceptance bar: RSS may not grow faster after the warm-up


@dataclass(frozen=True)
class Sample:
    """The process at one instant. ``t_s``: seconds since the sampler started; memory in MB
    (``rss_mb`` resident, ``anon_mb`` its anonymous part, ``hwm_mb`` the peak resident so far);
    ``cpu_s``: user + system CPU seconds of the whole process (every thread); ``frames``:
    results produced so far, per source."""

    t_s: float
    rss_mb: float
    anon_mb: float
    hwm_mb: float
    threads: int
    fds: int
    cpu_s: float
    frames: tuple[int, ...]


def read_process() -> dict:
    """This process now: ``rss_mb``, ``anon_mb``, ``hwm_mb``, ``threads``, ``fds``, ``cpu_s``.
    Raises FacescopeError without ``/proc`` (not Linux)."""
    try:
        with open("/proc/self/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        fds = len(os.listdir("/proc/self/fd")) - 1  # minus the descriptor listdir itself holds
    except OSError as e:
        raise FacescopeError(f"the soak benchmark reads /proc/self (Linux only): {e}") from None

    def kb(key: str) -> float:
        return float(status[key].split()[0]) / 1024.0  # "123456 kB"

    t = os.times()
    return {"rss_mb": kb("VmRSS"), "anon_mb": kb("RssAnon"), "hwm_mb": kb("VmHWM"),
            "threads": int(status["Threads"]), "fds": fds, "cpu_s": t.user + t.system}


class Sampler:
    """Takes a :class:`Sample` when one is due (every ``every_s`` seconds from creation)."""

    def __init__(self, every_s: float) -> None:
        check(every_s > 0, f"every_s must be > 0, got {every_s}")
        self.every_s = float(every_s)
        self.t0 = time.monotonic()
        self.samples: list[Sample] = []
        self._next = self.t0

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def wait_s(self) -> float:
        """Seconds until the next sample is due (0 when it is)."""
        return max(0.0, self._next - time.monotonic())

    def take(self, frames: Sequence[int], final: bool = False) -> Sample:
        """Sample now. ``final``: the closing sample, skipped (the last one returned) when the
        previous one is under a tenth of a period old, so that no interval is ~0 s long."""
        now = time.monotonic()
        if final and self.samples and now - self.t0 - self.samples[-1].t_s < 0.1 * self.every_s:
            return self.samples[-1]
        s = Sample(round(now - self.t0, 3), frames=tuple(int(f) for f in frames), **read_process())
        self.samples.append(s)
        while self._next <= now:
            self._next += self.every_s
        return s


@dataclass(frozen=True)
class SoakConfig:
    """``minutes``: how long to run. ``every_s``: sampling period (default: 5 s, less for short
    runs so that they still get ~30 samples, never under 0.5 s). ``warmup_s``: samples before
    this are left out of the slopes (default: 20 % of the run, at most 60 s)."""

    minutes: float
    every_s: float | None = None
    warmup_s: float | None = None

    def __post_init__(self) -> None:
        check(self.minutes > 0, f"minutes must be > 0, got {self.minutes}")
        check(self.every_s is None or self.every_s > 0, f"every_s must be > 0, got {self.every_s}")
        check(self.warmup_s is None or 0 <= self.warmup_s < self.duration_s,
              f"warmup_s must be >= 0 and shorter than the run ({self.duration_s:g} s), got {self.warmup_s}")

    @property
    def duration_s(self) -> float:
        return 60.0 * self.minutes

    @property
    def period_s(self) -> float:
        return self.every_s if self.every_s is not None else min(5.0, max(0.5, self.duration_s / 30.0))

    @property
    def warmup(self) -> float:
        return self.warmup_s if self.warmup_s is not None else min(60.0, 0.2 * self.duration_s)


def _slope_per_min(t_s: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of ``y`` against time, per minute."""
    return float(np.polyfit(t_s / 60.0, y.astype(float), 1)[0])


def _quarters(y: np.ndarray, stat=np.mean) -> tuple[float, float]:
    """``stat`` (mean) of the first and of the last quarter (at least one value each)."""
    n = max(1, len(y) // 4)
    return float(stat(y[:n])), float(stat(y[-n:]))


def _cpu_per_frame(after: Sequence[Sample]) -> dict:
    """CPU ms per frame (every source's frames) over the first and the last quarter of the
    sampling intervals, as ratios of sums; None where a quarter had no frame."""
    frames = np.diff([sum(s.frames) for s in after]).astype(float)
    cpu = np.diff([s.cpu_s for s in after])
    n = max(1, len(frames) // 4)

    def ms(sl: slice) -> float | None:
        f = float(frames[sl].sum())
        return round(1000.0 * float(cpu[sl].sum()) / f, 2) if f > 0 else None

    first, last = ms(slice(0, n)), ms(slice(len(frames) - n, None))
    drift = round(100.0 * (last - first) / first, 2) if first and last is not None else None
    return {"first_quarter": first, "last_quarter": last, "drift_pct": drift}


def summarize(samples: Sequence[Sample], warmup_s: float, sources: Sequence[str]) -> dict:
    """The soak figures from ``samples`` (JSON-able): ``n_samples``, ``samples_after_warmup``,
    ``warmup_s``, ``span_s`` (first to last sample after the warm-up), and, over the samples at
    or after ``warmup_s`` (at least 3 are needed, else FacescopeError):
    ``rss_slope_mb_per_min`` / ``anon_slope_mb_per_min`` / ``threads_slope_per_min`` /
    ``fds_slope_per_min`` (least squares), ``threads`` / ``fds`` as first/last/min/max,
    ``threads_growth`` / ``fds_growth`` (median of the last quarter minus the first: a thread
    that lives a few seconds, e.g. between a file's end and its restart, does not count), per source
    ``fps`` (frames / s over the span), ``fps_first_quarter``, ``fps_last_quarter``,
    ``fps_drift_pct`` (last vs first quarter; None if the first had none) and
    ``fps_slope_per_min``; ``cpu_cores`` (CPU seconds per second of the whole process) and
    ``cpu_cores_per_source``; ``cpu_ms_per_frame``: the process's CPU time per frame (all
    sources) over the first and the last quarter and its ``drift_pct``. When the pipeline keeps
    up, it stays put whatever else runs on the machine, so a rise means the pipeline itself got
    slower (growing per-track state); when the process gets too little CPU to keep up, it rises
    too (paced frames that are dropped are still decoded, and tracks lost between far-apart
    frames are embedded again). ``peak_rss_mb`` is the process's peak over the whole run,
    warm-up included."""
    after = [s for s in samples if s.t_s >= warmup_s]
    if len(after) < 3:
        raise FacescopeError(f"only {len(after)} samples after the {warmup_s:g} s warm-up: run longer or sample "
                             f"more often (--every)")
    t = np.array([s.t_s for s in after])
    span = float(t[-1] - t[0])
    out: dict = {"n_samples": len(samples), "samples_after_warmup": len(after), "warmup_s": warmup_s,
                 "span_s": round(span, 2), "peak_rss_mb": round(max(s.hwm_mb for s in samples), 1)}
    for key in ("rss_mb", "anon_mb", "threads", "fds"):
        y = np.array([getattr(s, key) for s in after], dtype=float)
        name = key.removesuffix("_mb")
        out[f"{name}_slope_{'mb_' if key.endswith('_mb') else ''}per_min"] = round(_slope_per_min(t, y), 4)
        first_q, last_q = _quarters(y, np.median)
        rounded = (lambda v: round(float(v), 1)) if key.endswith("_mb") else int
        out[name] = {"first": rounded(y[0]), "last": rounded(y[-1]), "min": rounded(y.min()), "max": rounded(y.max())}
        if key in ("threads", "fds"):
            out[f"{name}_growth"] = round(last_q - first_q, 2)
    cpu = after[-1].cpu_s - after[0].cpu_s
    out["cpu_cores"] = round(cpu / span, 3)  # span > 0: three samples, each at least 0.1 period apart
    out["cpu_cores_per_source"] = round(out["cpu_cores"] / max(1, len(sources)), 3)
    per_source = []
    for k, name in enumerate(sources):
        frames = np.array([s.frames[k] for s in after], dtype=float)
        rates = np.diff(frames) / np.diff(t)  # FPS over each sampling interval
        first_q, last_q = _quarters(rates)
        per_source.append({
            "source": name, "frames": int(samples[-1].frames[k]),
            "fps": round(float((frames[-1] - frames[0]) / span), 2),
            "fps_first_quarter": round(first_q, 2), "fps_last_quarter": round(last_q, 2),
            "fps_drift_pct": round(100.0 * (last_q - first_q) / first_q, 2) if first_q > 0 else None,
            "fps_slope_per_min": round(_slope_per_min(t[1:], rates), 3),
        })
    out["sources"] = per_source
    out["cpu_ms_per_frame"] = _cpu_per_frame(after)
    out["rss_slope_ok"] = bool(out["rss_slope_mb_per_min"] <= SLOPE_TARGET_MB_PER_MIN)
    out["threads_ok"] = bool(out["threads_growth"] <= 0)
    out["fds_ok"] = bool(out["fds_growth"] <= 0)
    return out


def samples_json(samples: Sequence[Sample]) -> list[dict]:
    return [{**asdict(s), "frames": list(s.frames)} for s in samples]
