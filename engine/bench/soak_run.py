"""The headless soak: ``facescope run --realtime``'s assembly on looping sources, sampled over time.

Per source, a worker thread runs what ``run`` runs per frame: a :class:`~engine.capture.Capture`
paced at the file's own rate (``realtime=True``, frames dropped when the pipeline is slower, a
file restarted at its end: ``loop=True``), the :class:`~engine.pipeline.Pipeline`, the sightings
collector and the event log. The calling thread owns the gallery (SQLite stays on one thread): it
writes the finished sightings every ``flush_every_s`` and samples the process
(:class:`~engine.bench.soak.Sampler`). Measurement and threads are the same for one source or
several; several sources share one recognizer (ONNX Runtime sessions are safe to run from
several threads), as the window's sources do.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from engine.bench.soak import Sampler, SoakConfig, samples_json, summarize
from engine.capture import Capture, CaptureConfig, SourceSpec
from engine.events import EventLog
from engine.pipeline import Pipeline, PipelineConfig

log = logging.getLogger(__name__)
JOIN_S = 120.0  # how long the end waits for each worker to finish its frame


class _Worker(threading.Thread):
    """One source: capture → pipeline → collector + event log, until ``stop`` or the source fails."""

    def __init__(self, spec: SourceSpec, rec, index, collector, stop: threading.Event) -> None:
        super().__init__(name=f"facescope-soak[{spec.display}]", daemon=True)
        self.spec, self.rec, self.index, self.collector, self.stop_event = spec, rec, index, collector, stop
        self.frames = 0
        self.events = 0
        self.error: str | None = None
        self.end_reason = ""

    def run(self) -> None:
        try:
            with Capture(self.spec, CaptureConfig(realtime=True, loop=True)) as capture:
                pipeline = Pipeline(self.rec, self.index, PipelineConfig())
                events = EventLog()
                for result in pipeline.run(capture):
                    if self.collector is not None:
                        self.collector.observe(result)
                    frame = result.frame
                    self.events += len(events.update(result.faces, frame.index, frame.timestamp, frame.pts_s,
                                                     result.alive))
                    self.frames += 1
                    if self.stop_event.is_set():
                        break
                stats = capture.stats()
                if not self.stop_event.is_set():  # the source ended or failed on its own
                    self.end_reason = f"{stats.state.value}: {stats.reason}"
        except Exception as e:  # reported in the result (errors) and ends the soak: never swallowed
            log.exception("soak worker for %s crashed", self.spec.display)
            self.error = f"{type(e).__name__}: {e}"


def soak(rec, specs: Sequence[SourceSpec], config: SoakConfig, gallery=None, sightings: bool = True,
         progress=None) -> dict:
    """Run ``specs`` for ``config.minutes`` and return :func:`~engine.bench.soak.summarize`'s
    figures plus ``samples`` (every :class:`~engine.bench.soak.Sample`), ``minutes``,
    ``every_s``, ``sightings_recorded``, ``events`` and ``stopped_early`` (a source that failed,
    or a worker error: the run stops at once and says why in ``errors``).
    ``gallery``: an open Gallery to match against and record sightings in (``sightings``), or None.
    ``progress(sample)``: called after every sample (printing)."""
    from engine.sightings import SightingCollector, SightingConfig
    from engine.sightings import store as sighting_store

    scfg = SightingConfig()
    record = gallery is not None and sightings
    index = gallery.index if gallery is not None else None
    stop = threading.Event()
    workers = [_Worker(spec, rec, index, SightingCollector(spec.display, scfg) if record else None, stop)
               for spec in specs]
    recorded = 0

    def flush() -> None:
        nonlocal recorded
        for w in workers:
            if w.collector is not None:
                recorded += len(sighting_store.record(gallery, w.collector.take()))

    sampler = Sampler(config.period_s)
    sampler.take([0] * len(workers))
    for w in workers:
        w.start()
    next_flush = time.monotonic() + scfg.flush_every_s
    stopped_early = False
    try:
        while sampler.elapsed() < config.duration_s:
            time.sleep(min(sampler.wait_s(), 0.25, max(0.0, config.duration_s - sampler.elapsed())))
            if record and time.monotonic() >= next_flush:
                flush()
                next_flush = time.monotonic() + scfg.flush_every_s
            if sampler.due():
                s = sampler.take([w.frames for w in workers])
                if progress is not None:
                    progress(s)
            if any(not w.is_alive() for w in workers):
                stopped_early = True
                break
        sampler.take([w.frames for w in workers], final=True)
    finally:
        stop.set()
        for w in workers:  # a worker stops after its current frame (the first may still be JIT-compiling)
            w.join(JOIN_S)
            if w.is_alive() and not w.error:
                w.error = f"still running {JOIN_S:g} s after the stop"
        if record:
            for w in workers:
                w.collector.end_all()
            flush()
    names = [w.spec.display for w in workers]
    errors = [f"{w.spec.display}: {w.error or w.end_reason}" for w in workers if w.error or w.end_reason]
    result = {"minutes": config.minutes, "every_s": config.period_s, "stopped_early": stopped_early,
              "errors": errors, "sightings_recorded": recorded, "events": sum(w.events for w in workers)}
    if not stopped_early:
        result.update(summarize(sampler.samples, config.warmup, names))
    else:
        result["sources"] = [{"source": n, "frames": w.frames} for n, w in zip(names, workers, strict=True)]
    result["samples"] = samples_json(sampler.samples)
    return result
