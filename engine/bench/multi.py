"""``facescope bench --source A --source B ...``: several video files paced like cameras, one engine.

Every file plays at its native rate on its own capture thread (a frame exists from its due time
on; a frame not taken before the next one is dropped, as a camera's would be), and one
:class:`engine.multi.MultiSource` processes them all: one recognizer, one gallery (the enrolled
people of every clip's truth), embeddings batched across sources. Per source: frames processed
per second of the run, end-to-end latency (capture to result) p50/p95, frames dropped,
identification accuracy and id switches against the clip's truth (``SOURCE.json``, the
:class:`~engine.bench.pipeline.Scorer` of the single-source bench), time-to-first-name and
missed faces (:func:`engine.bench.timing_metrics.truth_metrics`).

CPU: ``cores_total`` = process CPU seconds / wall seconds (every thread; the benchmark's own
scoring, ``bench_scoring_cpu_s``, is measured apart and left out of the per-source shares). Per source,
``cores`` = (CPU of its own capture and I/O threads, which decode its video + its share of the
engine's CPU) / wall, the engine's CPU (everything not a capture thread: the engine loop and
ONNX Runtime's pool threads) being shared in proportion to the engine seconds the runner spent
on each source (its begin/finish plus its share, by faces, of the batched embedder calls).
Per-thread CPU is sampled with psutil every ``SAMPLE_S`` (a thread's CPU after its last sample,
when a capture thread ends, is at most ``SAMPLE_S`` of CPU lost from its source and counted
as engine CPU instead).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from engine.bench.pipeline import Scorer
from engine.capture import CaptureConfig
from engine.multi import MultiSource, SourceSettings
from engine.pipeline import STAGES, Pipeline, PipelineConfig
from engine.recognizer import Recognizer
from engine.util.video import native_fps

SAMPLE_S = 0.2
_CAPTURE_PREFIXES = ("facescope-capture[", "facescope-capture-io[")


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class ThreadCpu:
    """Samples every thread's CPU seconds (psutil) on a background thread; remembers threads
    that have ended at their last sample. ``by_name()``: {thread name: CPU seconds} for the
    Python-named threads (others are pooled under ""), ``process()``: process CPU seconds."""

    def __init__(self, period_s: float = SAMPLE_S) -> None:
        import psutil

        self._proc = psutil.Process()
        self._period = period_s
        self._cpu: dict[int, float] = {}
        self._names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="facescope-cpu-sampler", daemon=True)
        self.cpu0 = self._process_cpu()

    def _process_cpu(self) -> float:
        t = self._proc.cpu_times()
        return t.user + t.system

    def sample(self) -> None:
        names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
        for th in self._proc.threads():
            self._cpu[th.id] = th.user_time + th.system_time
            if th.id not in self._names:
                self._names[th.id] = names.get(th.id, "")

    def _loop(self) -> None:
        while not self._stop.wait(self._period):
            self.sample()

    def __enter__(self) -> ThreadCpu:
        self.sample()
        self._base = dict(self._cpu)  # CPU each thread had used before the run
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def by_name(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for tid, cpu in self._cpu.items():
            name = self._names.get(tid, "")
            out[name] = out.get(name, 0.0) + cpu - self._base.get(tid, 0.0)
        return out

    def process(self) -> float:
        return self._process_cpu() - self.cpu0


def _warm_up(recognizer: Recognizer, gallery_index, source: str) -> None:
    """The recognizer's warm-up, then one frame through a throwaway pipeline: model sessions and
    kernels pay their first-use cost here, outside the measured run."""
    import cv2

    from engine.capture import Frame

    recognizer.warm_up()
    cap = cv2.VideoCapture(str(source))
    ok, image = cap.read()
    cap.release()
    if ok:
        Pipeline(recognizer, gallery_index).process(Frame(image, 0, time.perf_counter(), 0.0))


def bench_multi(recognizer: Recognizer, sources: list[str | Path], gallery_index=None,
                truths: list[dict | None] | None = None, frames: int = 0, config: PipelineConfig | None = None,
                names: list[str] | None = None, paced: bool = True, on_demand: bool = True) -> dict:
    """Run ``sources`` together, paced like cameras; one JSON-able dict (module docstring).
    ``paced=False`` reads the files as fast as the engine takes them (every frame, none dropped:
    accuracy and CPU per frame free of how busy the machine is, but no camera-like latency).
    ``on_demand``: MJPEG frames decoded in full only where a stage needs them (``--decode``)."""
    from engine.bench.timing_metrics import FrameLog, truth_metrics

    truths = truths or [None] * len(sources)
    names = names or [None] * len(sources)
    settings = [SourceSettings(str(s), n) for s, n in zip(sources, names, strict=True)]
    _warm_up(recognizer, gallery_index, str(sources[0]))
    capture = CaptureConfig(realtime=paced, decode_on_demand=on_demand)
    runner = MultiSource(recognizer, settings, gallery_index, config, capture, frames or None)
    names = runner.names
    display = {runner.spec(n).display: n for n in names}
    truth_of = dict(zip(names, truths, strict=True))
    scorers = {n: Scorer(truth_of[n]) for n in names}
    logs = {n: FrameLog() for n in names}
    e2e: dict[str, list[float]] = {n: [] for n in names}
    stages: dict[str, dict[str, list[float]]] = {n: {s: [] for s in STAGES} for n in names}
    faces_n: dict[str, list[int]] = {n: [] for n in names}
    ended_at: dict[str, float] = {}
    batch_sizes, sources_per_round = [], []
    with runner, ThreadCpu() as cpu:
        runner.wait_started()
        t0 = time.perf_counter()
        score_cpu = 0.0  # the benchmark's own bookkeeping (truth matching) on the engine thread: not the engine's
        for rnd in runner.rounds():
            c0 = time.thread_time()
            sources_per_round.append(len(rnd.results))
            if rnd.embed_calls:
                batch_sizes.append(rnd.embedded)
            for sr in rnd.results:
                r, n = sr.result, sr.source
                e2e[n].append(r.e2e_ms)
                for s in STAGES:
                    stages[n][s].append(r.timings_ms[s])
                faces_n[n].append(len(r.faces))
                scorers[n].add(r.frame.index, r.faces.boxes, r.faces.names, r.faces.track_ids)
                logs[n].add(r.frame.index, r.faces.boxes, r.faces.names, r.e2e_ms / 1000.0 if paced else None)
            now = time.perf_counter()
            for n, st in runner.status().items():
                if st.state in ("ended", "failed", "error") and n not in ended_at:
                    ended_at[n] = now
            score_cpu += time.thread_time() - c0
        wall = time.perf_counter() - t0
        status = runner.status()
    threads = cpu.by_name()
    total_cpu = cpu.process()
    capture_cpu = {n: 0.0 for n in names}
    for tname, sec in threads.items():
        for prefix in _CAPTURE_PREFIXES:
            if tname.startswith(prefix) and tname.endswith("]"):
                n = display.get(tname[len(prefix):-1])
                if n is not None:
                    capture_cpu[n] += sec
    engine_cpu = max(total_cpu - sum(capture_cpu.values()) - score_cpu, 0.0)
    engine_s = {n: status[n].engine_s for n in names}
    engine_total = sum(engine_s.values()) or 1.0
    per = {}
    for n in names:
        k = len(e2e[n])
        span = ended_at.get(n, t0 + wall) - t0
        sc, truth = scorers[n], truth_of[n]
        share = engine_cpu * engine_s[n] / engine_total  # this source's part of the engine's CPU seconds
        cores = (capture_cpu[n] + share) / wall if wall > 0 else float("nan")
        native = float(truth["fps"]) if truth else native_fps(runner.spec(n))
        # what the source would cost with every frame processed at its native rate (a busy machine
        # drops frames, which lowers `cores` without making a frame any cheaper)
        at_native = (capture_cpu[n] / wall + share / k * native) if k and wall > 0 and native else None
        per[n] = {
            "source": runner.spec(n).display, "state": status[n].state, "reason": status[n].reason,
            "frames": k, "fps": k / span if span > 0 else float("nan"), "dropped": status[n].dropped,
            "e2e_p50_ms": _pct(e2e[n], 50), "e2e_p95_ms": _pct(e2e[n], 95),
            "stages": {s: {"p50_ms": _pct(v, 50), "p95_ms": _pct(v, 95)} for s, v in stages[n].items()},
            "faces_per_frame": float(np.mean(faces_n[n])) if k else 0.0,
            "embeddings_per_frame": status[n].embedded / k if k else 0.0,
            "ident_accuracy": sc.accuracy, "id_switches": sc.switches if truth else None,
            "id_switches_at_occlusion": sc.switches_at_occlusion if truth else None,
            "cores": cores, "capture_cores": capture_cpu[n] / wall if wall > 0 else float("nan"),
            "cpu_ms_per_frame": 1000.0 * (capture_cpu[n] + share) / k if k else None,
            "cores_at_native_fps": at_native, "native_fps": native,
            "engine_s": engine_s[n],
            # the detector gate's verdicts: frames detected per reason, and skipped (engine.track.gating)
            "detector_calls": runner.pipeline(n).gate.detections,
            "gate": dict(sorted(runner.pipeline(n).gate.counts.items())),
            "timing": truth_metrics(logs[n], truth) if truth else None,
        }
    runtime = getattr(getattr(recognizer, "config", None), "runtime", None)
    return {
        "sources": per, "paced": paced, "decode": "on-demand" if on_demand else "full", "wall_s": wall,
        "cpu_s": total_cpu,
        "cores_total": total_cpu / wall if wall > 0 else None,
        "engine_cores": engine_cpu / wall if wall > 0 else None,
        "bench_scoring_cpu_s": score_cpu, "rounds": runner.rounds_done, "embed_calls": runner.embed_calls,
        "sources_per_round": float(np.mean(sources_per_round)) if sources_per_round else 0.0,
        "faces_per_embed_call": float(np.mean(batch_sizes)) if batch_sizes else 0.0,
        "threads_cpu_s": {k or "(unnamed: ONNX Runtime pool, others)": round(v, 3) for k, v in threads.items()
                          if v > 0.005},
        # what ran: ONNX Runtime intra-op threads of the per-frame models and of the embedder (0 = all cores)
        "ort_threads": {"models": runtime.threads, "embedder": runtime.for_embedder().threads} if runtime else None,
    }


def _f(v, digits: int = 1) -> str:
    return "?" if v is None else f"{v:.{digits}f}"


def format_multi(r: dict) -> str:
    """The printed report of :func:`bench_multi`."""
    how = "paced like cameras" if r["paced"] else "read as fast as processed (not paced)"
    lines = [f"{len(r['sources'])} sources {how}, one engine: {r['wall_s']:.1f} s, "
             f"{r['cores_total']:.2f} cores in all ({r['engine_cores']:.2f} engine, the rest decoding), "
             f"{r['rounds']} rounds ({r['sources_per_round']:.2f} sources a round), {r['embed_calls']} embedder calls "
             f"({r['faces_per_embed_call']:.2f} faces a call)"]
    for n, s in r["sources"].items():
        acc = s["ident_accuracy"]
        acc_s = (f", accuracy {100 * acc:.2f} %, id switches {s['id_switches']} (+{s['id_switches_at_occlusion']} "
                 "at occlusion)") if acc is not None else ""
        tm = s.get("timing") or {}
        ttfn = tm.get("named_within_s")
        ttfn_s = f", named within {tm['within_s']:g} s: {ttfn} of {tm['named_of']}" if ttfn is not None else ""
        if tm.get("named_on_screen_within_s") is not None:
            ttfn_s += f" ({tm['named_on_screen_within_s']} of {tm['named_of']} on screen, latency included)"
        lines.append(f"  {n}: {s['frames']} frames, {s['fps']:.1f} FPS, e2e p50 {s['e2e_p50_ms']:.1f} / p95 "
                     f"{s['e2e_p95_ms']:.1f} ms, {s['dropped']} dropped, {s['faces_per_frame']:.2f} faces/frame, "
                     f"{s['cores']:.3f} cores ({s['capture_cores']:.3f} decoding), {_f(s['cpu_ms_per_frame'])} ms CPU "
                     f"a frame, {_f(s['cores_at_native_fps'], 3)} cores at {_f(s['native_fps'], 0)} fps, "
                     f"detector on {s['detector_calls']} frames{acc_s}{ttfn_s}; {s['state']}")
    return "\n".join(lines)
