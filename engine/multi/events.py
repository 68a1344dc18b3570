"""Track events of several sources, each tagged with its source's name.

Track ids are per source (see :mod:`engine.multi.runner`), so events are keyed by
``(source, track_id)``: one :class:`engine.events.EventLog` per source, and every event dict
is :func:`engine.events.event_line` with ``"source": name`` (and ``epoch`` / ``time``: the wall-clock
time the frame was captured, so a publisher stamps that, not when it was handed on).
"""
from __future__ import annotations

from engine.events import EventLog, WallClock, event_line


class MultiEventLog:
    """``update(source_result)`` -> the event dicts of that frame (pure bookkeeping, no I/O)."""

    def __init__(self) -> None:
        self._logs: dict[str, EventLog] = {}
        self._clock = WallClock()  # frame timestamps are perf_counter seconds

    def forget(self, source: str, track_ids) -> None:
        """:meth:`engine.events.EventLog.forget` for one source's tracks."""
        self._logs.setdefault(source, EventLog()).forget(track_ids)

    def update(self, sr) -> list[dict]:
        log = self._logs.setdefault(sr.source, EventLog())
        r, f = sr.result, sr.result.frame
        epoch = self._clock.epoch(f.timestamp)
        return [event_line(ev, epoch, sr.source) for ev in log.update(r.faces, f.index, f.timestamp, f.pts_s, r.alive)]
