"""Fan one run's events out to its sinks (MQTT, webhooks), each on its own thread."""
from __future__ import annotations

import logging
from typing import Protocol

from engine.events_out.payload import event_payload
from engine.events_out.worker import SinkStats

log = logging.getLogger(__name__)


class Sink(Protocol):
    """What :class:`Publisher` needs of a sink: a non-blocking ``put`` of one payload dict, ``start``,
    ``close`` returning its counters, and a ``display`` (the destination with secrets masked)."""

    display: str

    def start(self) -> None: ...
    def put(self, item: dict) -> None: ...
    def erase(self, names) -> None: ...
    def close(self, drain_s: float = 5.0) -> SinkStats: ...


class Publisher:
    """``publish(event_dict)`` builds the payload once (on the caller's thread, which stamps the wall
    clock) and hands it to every sink; it never blocks on a sink. Use as a context manager: leaving
    it closes the sinks, each given ``drain_s`` seconds to send what is queued."""

    def __init__(self, sinks: list, source: str | None, drain_s: float = 5.0) -> None:
        self.sinks = list(sinks)
        self.source = source  # already masked (SourceSpec.display); None: each event names its own source
        self.drain_s = drain_s

    def __enter__(self) -> Publisher:
        for s in self.sinks:
            s.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def publish(self, event: dict) -> dict:
        if self.source is None:  # several sources: the event carries its source's unique name, kept whole
            payload = event_payload(event, event["source"], name=event["source"])
        else:
            payload = event_payload(event, self.source)
        for s in self.sinks:
            s.put(payload)
        return payload

    def erase(self, names) -> None:
        """People gone from the gallery (``GalleryWatch.names_gone``): each sink takes back what it
        keeps under their names (MQTT: retained state and Home Assistant sensor)."""
        if names:
            for s in self.sinks:
                s.erase(names)

    def close(self) -> dict[str, SinkStats]:
        out = {}
        for s in self.sinks:
            out[s.display] = s.close(self.drain_s)
        self.sinks = []
        return out
