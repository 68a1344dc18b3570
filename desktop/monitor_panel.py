"""Live performance monitor: per-stage latency, end-to-end latency (p50/p95), FPS, drops, faces.

``add_result`` only appends to ring buffers (cheap, called once per frame from the GUI thread);
a QTimer (5 Hz) redraws the plots and labels, and skips the plots while the panel is hidden.
Times are the frames' capture timestamps (``Frame.timestamp``, perf_counter seconds); the plots
show the last ``window_s`` seconds before the newest frame.

While no frames come (stopped, paused, a stalled source) the lines break instead of drawing a
straight segment across the gap: :meth:`MonitorPanel.mark_gap` (and any pause longer than
``GAP_S``) inserts a row of NaN, which ``connect="finite"`` does not join. The first
``WARMUP_FRAMES`` frames after a start or a gap (model warm-up: ~700 ms for the first frame)
are drawn but left out of the latency plots' y range, so they do not flatten the live values.
"""
from __future__ import annotations

from collections import deque

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Slot
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from engine.capture import CaptureStats
from engine.pipeline import FrameResult

STAGE_KEYS = ("detect", "track", "landmarks", "align", "embed", "match")
_COLUMNS = ("t", *STAGE_KEYS, "e2e", "capture_fps", "display_fps", "dropped", "faces", "embedded", "warm")
GAP_S = 1.0         # no frame for this long: the lines break
WARMUP_FRAMES = 3   # frames after a start/gap left out of the latency y range
_COLORS = {"detect": "#1f77b4", "track": "#ff7f0e", "landmarks": "#e377c2", "align": "#2ca02c", "embed": "#d62728",
           "match": "#9467bd",
           "e2e": "#17becf", "capture": "#1f77b4", "engine": "#d62728", "display": "#2ca02c",
           "faces": "#ff7f0e", "embedded": "#9467bd", "dropped": "#8c564b"}


class MonitorPanel(QWidget):
    """Plots over the last ``window_s`` seconds; ``stats()`` gives the current numbers."""

    def __init__(self, parent: QWidget | None = None, *, window_s: float = 60.0, refresh_hz: float = 5.0,
                 max_samples: int = 60 * 200) -> None:
        super().__init__(parent)
        self.window_s = float(window_s)
        self._buf: dict[str, deque] = {k: deque(maxlen=max_samples) for k in _COLUMNS}
        self._last_stats: CaptureStats | None = None
        self._last_display_fps: float | None = None
        self._dirty = False
        self._gap = True  # the next frame starts a segment (and a warm-up)
        self._since_gap = 0
        self._ytop: dict[int, float] = {}  # y range top per latency plot
        self.redraws = 0  # plot redraws done (tests; cheap diagnostics)

        self.glw = pg.GraphicsLayoutWidget()
        # 2 x 2 grid with a floor on height: stacked in a narrow dock the plot areas collapsed.
        self.glw.setMinimumHeight(360)
        self.p_stages = self._plot("Stage latency (ms)", 0, 0)
        self.p_e2e = self._plot("End-to-end latency (ms)", 0, 1)
        self.p_fps = self._plot("FPS", 1, 0)
        self.p_counts = self._plot("Faces / embeddings per frame, dropped frames", 1, 1)
        self.curves = {k: self.p_stages.plot(pen=pg.mkPen(_COLORS[k], width=1), name=k) for k in STAGE_KEYS}
        self.curves["e2e"] = self.p_e2e.plot(pen=pg.mkPen(_COLORS["e2e"], width=1), name="e2e")
        self.curves["capture_fps"] = self.p_fps.plot(pen=pg.mkPen(_COLORS["capture"]), name="capture")
        self.curves["engine_fps"] = self.p_fps.plot(pen=pg.mkPen(_COLORS["engine"]), name="engine")
        self.curves["display_fps"] = self.p_fps.plot(pen=pg.mkPen(_COLORS["display"]), name="display")
        self.curves["faces"] = self.p_counts.plot(pen=pg.mkPen(_COLORS["faces"]), name="faces")
        self.curves["embedded"] = self.p_counts.plot(pen=pg.mkPen(_COLORS["embedded"]), name="embeddings")
        self.curves["dropped"] = self.p_counts.plot(pen=pg.mkPen(_COLORS["dropped"]), name="dropped (in window)")
        for curve in self.curves.values():
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")

        self.labels: dict[str, QLabel] = {}
        grid = QGridLayout()
        names = [("e2e", "E2E"), ("stages", "Stages"), ("fps", "FPS"), ("counts", "Frame")]
        for row, (key, title) in enumerate(names):
            grid.addWidget(QLabel(f"<b>{title}</b>"), row, 0)
            self.labels[key] = QLabel("–")
            self.labels[key].setTextInteractionFlags(self.labels[key].textInteractionFlags())
            grid.addWidget(self.labels[key], row, 1)
        grid.setColumnStretch(1, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(grid)
        lay.addWidget(self.glw, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(max(1, int(1000 / refresh_hz)))
        self.timer.timeout.connect(self.refresh)
        self.timer.start()

    def _plot(self, title: str, row: int, col: int) -> pg.PlotItem:
        p = self.glw.addPlot(row=row, col=col, title=title)
        p.addLegend(offset=(5, 5), labelTextSize="7pt")
        p.showGrid(x=True, y=True, alpha=0.2)
        p.setLabel("bottom", "s")
        p.setXRange(-self.window_s, 0, padding=0)
        p.setMouseEnabled(x=False, y=True)
        return p

    # ------------------------------------------------------------------ data in
    @Slot(object)
    def add_result(self, result: FrameResult, capture_stats: CaptureStats | None = None,
                   display_fps: float | None = None) -> None:
        """Append one frame's numbers (no drawing)."""
        b, tm = self._buf, result.timings_ms
        t = float(result.frame.timestamp)
        if b["t"] and (self._gap or t - b["t"][-1] > GAP_S):
            for k, d in b.items():  # a break in every line, at the previous frame's time
                d.append(b["t"][-1] if k == "t" else np.nan)
            self._gap = True
        if self._gap:
            self._gap, self._since_gap = False, 0
        self._since_gap += 1
        b["warm"].append(1.0 if self._since_gap <= WARMUP_FRAMES else 0.0)
        b["t"].append(t)
        for k in STAGE_KEYS:
            b[k].append(float(tm.get(k, np.nan)))
        b["e2e"].append(float(result.e2e_ms))
        if capture_stats is not None:
            self._last_stats = capture_stats
        if display_fps is not None:
            self._last_display_fps = float(display_fps)
        cs = self._last_stats
        b["capture_fps"].append(float(cs.fps) if cs is not None else np.nan)
        b["dropped"].append(float(cs.dropped) if cs is not None else np.nan)
        b["display_fps"].append(self._last_display_fps if self._last_display_fps is not None else np.nan)
        b["faces"].append(float(len(result.faces)))
        b["embedded"].append(float(result.embedded))
        self._dirty = True

    @Slot()
    def mark_gap(self) -> None:
        """The source stopped: the next frame starts a new line segment."""
        self._gap = True

    @Slot()
    def clear(self) -> None:
        """Forget everything (e.g. a new source was opened)."""
        for d in self._buf.values():
            d.clear()
        self._last_stats, self._last_display_fps, self._dirty = None, None, True

    # ------------------------------------------------------------------ numbers
    def _window(self) -> dict[str, np.ndarray]:
        t = np.fromiter(self._buf["t"], float, len(self._buf["t"]))
        if t.size == 0:
            return {k: np.zeros(0) for k in _COLUMNS}
        keep = t >= t[-1] - self.window_s
        return {k: np.fromiter(d, float, len(d))[keep] for k, d in self._buf.items()}

    @staticmethod
    def _engine_fps(t: np.ndarray, span_s: float = 2.0) -> np.ndarray:
        """Results per second over the trailing ``span_s`` at every sample (what the engine delivers)."""
        if t.size < 2:
            return np.full(t.size, np.nan)
        start = np.searchsorted(t, t - span_s, side="left")
        n = np.arange(t.size) - start
        dt = t - t[start]
        with np.errstate(divide="ignore", invalid="ignore"):
            fps = np.where(dt > 0, n / dt, np.nan)
        return fps

    def stats(self) -> dict[str, float | int | None]:
        """Current numbers over the window: e2e p50/p95/last, mean stage ms, FPS, drops, faces."""
        w = self._window()
        n = int(w["t"].size)
        nan = float("nan")

        def finite(a: np.ndarray) -> np.ndarray:
            return a[np.isfinite(a)]

        e2e = finite(w["e2e"])
        out: dict[str, float | int | None] = {
            "samples": int(np.isfinite(w["warm"]).sum()),  # frames, not the NaN rows of gaps
            "e2e_ms": float(e2e[-1]) if e2e.size else nan,
            "e2e_p50_ms": float(np.percentile(e2e, 50)) if e2e.size else nan,
            "e2e_p95_ms": float(np.percentile(e2e, 95)) if e2e.size else nan,
        }
        for k in STAGE_KEYS:
            a = finite(w[k])
            out[f"{k}_ms"] = float(a.mean()) if a.size else nan
        engine = self._engine_fps(w["t"])
        out["engine_fps"] = float(engine[-1]) if n >= 2 and np.isfinite(engine[-1]) else nan
        cs = self._last_stats
        out["capture_fps"] = float(cs.fps) if cs is not None else nan
        out["display_fps"] = self._last_display_fps if self._last_display_fps is not None else nan
        out["dropped"] = int(cs.dropped) if cs is not None else None
        dropped = finite(w["dropped"])
        out["dropped_window"] = int(dropped[-1] - dropped[0]) if dropped.size else None
        out["faces"] = int(w["faces"][-1]) if n else 0
        out["embedded"] = int(w["embedded"][-1]) if n else 0
        out["embedded_window"] = int(np.nansum(w["embedded"])) if n else 0
        return out

    # ------------------------------------------------------------------ drawing
    @Slot()
    def refresh(self) -> None:
        """Redraw labels and plots if new results arrived since the last redraw (skipped while hidden)."""
        if not self._dirty or not self.isVisible():
            return  # hidden: nothing drawn; showEvent marks it dirty again
        self._dirty = False
        s = self.stats()
        f = lambda v, fmt="{:.1f}": "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else fmt.format(v)  # noqa: E731
        self.labels["e2e"].setText(f"now {f(s['e2e_ms'])} ms · p50 {f(s['e2e_p50_ms'])} ms · "
                                   f"p95 {f(s['e2e_p95_ms'])} ms")
        self.labels["stages"].setText(" · ".join(f"{k} {f(s[f'{k}_ms'])}" for k in STAGE_KEYS) + " ms (mean)")
        self.labels["fps"].setText(f"capture {f(s['capture_fps'])} · engine {f(s['engine_fps'])} · "
                                   f"display {f(s['display_fps'])}")
        self.labels["counts"].setText(f"faces {s['faces']} · embedded {s['embedded']} "
                                      f"({s['embedded_window']} in {self.window_s:.0f} s) · "
                                      f"dropped {f(s['dropped'], '{}')} ({f(s['dropped_window'], '{}')} in window)")
        w = self._window()
        if w["t"].size == 0:
            for c in self.curves.values():
                c.setData([], [])
            self.redraws += 1
            return
        x = w["t"] - w["t"][-1]
        for k in (*STAGE_KEYS, "e2e", "capture_fps", "display_fps", "faces", "embedded"):
            self.curves[k].setData(x, w[k], connect="finite")
        engine = self._engine_fps(w["t"])
        engine[np.isnan(w["warm"])] = np.nan  # break at the gap rows
        self.curves["engine_fps"].setData(x, engine, connect="finite")
        dropped = w["dropped"]
        first = dropped[np.isfinite(dropped)][:1]
        self.curves["dropped"].setData(x, dropped - (first[0] if first.size else 0), connect="finite")
        live = w["warm"] == 0  # NaN rows (gaps) and warm-up frames stay out of the y range
        for plot, keys in ((self.p_stages, STAGE_KEYS), (self.p_e2e, ("e2e",))):
            top = max((float(np.nanmax(w[k][live])) for k in keys if np.isfinite(w[k][live]).any()), default=None)
            if top is None:
                plot.enableAutoRange(y=True)
                self._ytop.pop(id(plot), None)
                continue
            top = max(top, 1.0) * 1.1
            old = self._ytop.get(id(plot))
            if old is None or not 0.8 * old <= top <= old:  # re-range on growth or a clear fall only
                plot.setYRange(0.0, top, padding=0)
                self._ytop[id(plot)] = top
        self.redraws += 1

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        self._dirty = True
