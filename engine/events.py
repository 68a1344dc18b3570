"""Track events for logs and the UI: a face appears, is identified (or renamed), is lost.

:class:`EventLog` turns tracked frames into :class:`Event` s (pure bookkeeping); :func:`event_line`
is the one JSON record of an event that every consumer gets (the ``--events`` JSON-lines file,
MQTT and webhooks): the event's fields plus ``epoch`` (wall-clock seconds) and ``time`` (ISO 8601
UTC), both of the moment the frame was captured (:class:`WallClock`), not of when it was written.
"""
from __future__ import annotations

import time as _time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from engine.records import Faces


@dataclass(frozen=True)
class Event:
    """``kind`` is "appear", "identified" or "lost"; times are seconds (``t`` = capture clock,
    ``media_s`` = position in a video file when known); ``name`` None means unknown."""

    kind: str
    track_id: int
    frame: int
    t: float
    media_s: float | None
    name: str | None = None
    similarity: float | None = None

    def to_json(self) -> dict:
        return asdict(self)


def iso_utc(epoch: float) -> str:
    """ISO 8601 UTC with milliseconds, e.g. ``2026-12-06T08:02:37.123Z`` (``epoch`` rounded to the
    millisecond in integers: an epoch already rounded to 3 decimals is shown as that millisecond,
    where ``datetime``'s float microseconds could truncate to the one before)."""
    seconds, ms = divmod(round(float(epoch) * 1000), 1000)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms:03d}Z"


class WallClock:
    """Capture clock (``time.perf_counter()`` seconds, ``Frame.timestamp``) -> wall-clock epoch
    seconds. The offset is taken once: wall time stays monotonic within a run even if the system
    clock is stepped (NTP), at the price of drifting from it by what such a step was."""

    def __init__(self) -> None:
        self._offset = _time.time() - _time.perf_counter()

    def epoch(self, perf_s: float) -> float:
        return self._offset + float(perf_s)


def event_line(event: Event, epoch: float, source: str | None = None) -> dict:
    """The JSON record of ``event``: its fields, ``source`` (a source's name or masked display
    text, when given), ``epoch`` (wall-clock seconds, ms precision) and ``time`` (ISO 8601 UTC)."""
    d = event.to_json()
    if source is not None:
        d["source"] = source
    d["epoch"] = round(float(epoch), 3)
    d["time"] = iso_utc(d["epoch"])  # the same millisecond as "epoch"
    return d


class EventLog:
    """Turns consecutive tracked ``Faces`` into events (pure bookkeeping, no I/O)."""

    def __init__(self) -> None:
        self._names: dict[int, str | None] = {}
        self._forgotten: set[int] = set()

    def forget(self, track_ids) -> None:
        """The people of ``track_ids`` were erased or renumbered (``Pipeline.forget_people``): at
        the next :meth:`update` each of these tracks that still carries a name gets an
        "identified" event with no name, also when it is hidden at that moment -- its later
        "lost" event (or a consumer's presence state) must not name someone who is gone."""
        self._forgotten.update(int(t) for t in track_ids)

    def update(self, faces: Faces, frame: int, t: float, media_s: float | None = None,
               alive: set[int] | frozenset[int] | None = None) -> list[Event]:
        """Events for one frame. ``alive``: ids the tracker still keeps (a face hidden for a
        few frames is not lost); None means only the faces in this frame are alive."""
        events: list[Event] = []
        seen: dict[int, tuple[str | None, float]] = {}
        for tid, name, sim in zip(faces.track_ids, faces.names, faces.similarities, strict=True):
            if tid >= 0:
                seen[int(tid)] = (name, float(sim))
        for tid, (name, sim) in seen.items():
            simv = sim if sim == sim else None  # NaN -> None
            if tid not in self._names:
                events.append(Event("appear", tid, frame, t, media_s, name, simv))
                if name is not None:
                    events.append(Event("identified", tid, frame, t, media_s, name, simv))
            elif name != self._names[tid]:
                events.append(Event("identified", tid, frame, t, media_s, name, simv))
            self._names[tid] = name
        for tid in sorted(self._forgotten - set(seen)):  # hidden now: no frame would say it
            if self._names.get(tid) is not None:
                events.append(Event("identified", tid, frame, t, media_s, None, None))
                self._names[tid] = None
        self._forgotten.clear()
        keep = set(seen) | (set(alive) if alive is not None else set())
        for tid in [t_ for t_ in self._names if t_ not in keep]:
            events.append(Event("lost", tid, frame, t, media_s, self._names.pop(tid)))
        return events
