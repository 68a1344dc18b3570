"""Track events for logs and the UI: a face appears, is identified (or renamed), is lost."""
from __future__ import annotations

from dataclasses import asdict, dataclass

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


class EventLog:
    """Turns consecutive tracked ``Faces`` into events (pure bookkeeping, no I/O)."""

    def __init__(self) -> None:
        self._names: dict[int, str | None] = {}

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
        keep = set(seen) | (set(alive) if alive is not None else set())
        for tid in [t_ for t_ in self._names if t_ not in keep]:
            events.append(Event("lost", tid, frame, t, media_s, self._names.pop(tid)))
        return events
