"""The window's soak: the real desktop window runs a source for minutes while the process is sampled.

``facescope bench soak --gui --source CLIP --minutes N`` (:func:`soak_window`): the same window as
the responsiveness probe (:mod:`desktop.probe`: models loaded, side panels attached, shown;
offscreen unless a display platform is set), playing ``source`` in real time, a file looping.
A timer on the GUI thread samples RSS, anonymous memory, threads, open file descriptors, CPU time
and the results shown (:class:`engine.bench.soak.Sampler`), and the figures are those of the
headless soak (:func:`engine.bench.soak.summarize`): slopes per minute after the warm-up, FPS
drift (of the results shown), peak RSS, CPU cores. The window records sightings in its gallery
as the app does (a temporary one unless ``gallery_path``).
"""
from __future__ import annotations

from desktop.probe import _shown, close_window, open_window, start_engine

TICK_MS = 200  # how often the GUI-thread timer checks whether a sample is due


def soak_window(source: str, config, gallery_path: str | None = None, with_panels: bool = True) -> dict:
    """Run ``source`` in the window for ``config.minutes`` (a :class:`engine.bench.soak.SoakConfig`)
    and return the soak figures (JSON-able; ``gui`` True, ``sources`` of one, ``errors`` holds
    the window's last error if any, ``stopped_early`` when no result was ever shown)."""
    from PySide6.QtCore import QEventLoop, QTimer

    from engine.bench.soak import Sampler, samples_json, summarize

    app, win, tmp = open_window(gallery_path)
    try:
        start_engine(app, win, with_panels)  # model loading happens before the first sample
        shown = {"results": 0}
        win.result_ready.connect(lambda _r: shown.__setitem__("results", shown["results"] + 1))
        sampler = Sampler(config.period_s)
        sampler.take([0])
        loop = QEventLoop()

        def on_tick() -> None:
            if sampler.due():
                sampler.take([shown["results"]])
            if sampler.elapsed() >= config.duration_s:
                loop.quit()

        timer = QTimer()
        timer.setInterval(TICK_MS)
        timer.timeout.connect(on_tick)
        if not win.start(str(source)):
            raise RuntimeError(win.last_error or f"cannot start {_shown(source)}")
        timer.start()
        loop.exec()
        timer.stop()
        sampler.take([shown["results"]], final=True)
        stopped = shown["results"] == 0
        result = {"minutes": config.minutes, "every_s": config.period_s, "gui": True, "stopped_early": stopped,
                  "errors": [win.last_error] if win.last_error else ([] if not stopped else ["no result shown"])}
        if not stopped:
            result.update(summarize(sampler.samples, config.warmup, [_shown(source)]))
        result["samples"] = samples_json(sampler.samples)
        return result
    finally:
        close_window(app, win, tmp)
