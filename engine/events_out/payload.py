"""The JSON payload every sink sends for one event (MQTT and webhooks alike)."""
from __future__ import annotations

import re
import time
from pathlib import PurePath
from urllib.parse import urlsplit

from engine.events import iso_utc


def slug(text: str | None, default: str = "unknown") -> str:
    """A topic/id-safe form of a name: lowercase letters, digits and ``_`` (MQTT wildcards ``+ #``
    and the level separator ``/`` must not come from a person's or a source's name)."""
    s = re.sub(r"[^0-9a-z]+", "_", (text or "").lower()).strip("_")
    return s or default


def source_name(source: str) -> str:
    """A short name for a (masked) source, for topics: a URL's host and path (no user, no query), a
    file's or folder's last part, a webcam's index: ``rtsp://cam:***@10.0.0.5/live`` -> ``10.0.0.5/live``,
    ``/videos/door.mp4`` -> ``door.mp4``."""
    if "://" in source:
        parts = urlsplit(source)
        return f"{parts.hostname or ''}{parts.path}".rstrip("/") or source
    if source.isdigit():
        return f"webcam{source}"
    return PurePath(source).name or source


def event_payload(event: dict, source: str, now: float | None = None) -> dict:
    """``event``: an ``engine.events.Event.to_json()`` dict (``kind``, ``track_id``, ``name``,
    ``similarity``, ``frame``, ``media_s``; optional ``epoch`` wall-clock seconds and ``crop`` /
    ``crop_path``). ``source`` must already be masked (``SourceSpec.display``). Wall-clock time is the
    event's own ``epoch`` when it has one, else ``now`` (default: the time of this call, made on the
    pipeline thread as the event happens). ``person`` is None for an unknown face."""
    epoch = event.get("epoch")
    if epoch is None:
        epoch = time.time() if now is None else now
    sim = event.get("similarity")
    return {
        "kind": event["kind"],
        "source": source,
        "source_name": source_name(source),
        "track_id": int(event["track_id"]),
        "person": event.get("name"),
        "similarity": None if sim is None else round(float(sim), 4),
        "time": iso_utc(round(float(epoch), 3)),
        "epoch": round(float(epoch), 3),
        "frame": event.get("frame"),
        "media_s": event.get("media_s"),
        "crop_path": event.get("crop_path", event.get("crop")),
    }
