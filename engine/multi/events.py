"""Track events of several sources, each tagged with its source's name.

Track ids are per source (see :mod:`engine.multi.runner`), so events are keyed by
``(source, track_id)``: one :class:`engine.events.EventLog` per source, and every event dict
(``Event.to_json()``) gains ``"source": name`` plus ``"epoch"`` (wall-clock seconds, so a
publisher stamps the time the frame was captured, not when it was handed on).
"""
from __future__ import annotations

import time

from engine.events import EventLog


class MultiEventLog:
    """``update(source_result)`` -> the event dicts of that frame (pure bookkeeping, no I/O)."""

    def __init__(self) -> None:
        self._logs: dict[str, EventLog] = {}
        self._epoch = time.time() - time.perf_counter()  # frame timestamps are perf_counter seconds

    def update(self, sr) -> list[dict]:
        log = self._logs.setdefault(sr.source, EventLog())
        r, f = sr.result, sr.result.frame
        out = []
        for ev in log.update(r.faces, f.index, f.timestamp, f.pts_s, r.alive):
            d = ev.to_json()
            d["source"] = sr.source
            d["epoch"] = round(self._epoch + f.timestamp, 3)
            out.append(d)
        return out
