"""The JSON payload every sink sends for one event (MQTT and webhooks alike)."""
from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from pathlib import PurePath
from urllib.parse import urlsplit

from engine.events import iso_utc

_PLAIN = re.compile(r"[0-9a-z]+( [0-9a-z]+)*")  # a name that reads as its slug (no "_": "Ann_Lee" is not "Ann Lee")


def slug(text: str | None, default: str = "unknown", *, exact: bool = True) -> str:
    """A topic/id-safe form of a name: lowercase ASCII letters, digits and ``_`` (MQTT wildcards
    ``+ #`` and the level separator ``/`` must not come from a person's or a source's name);
    ``default`` for None or an empty name.

    ``exact`` (people): one slug per name. A name of plain letters, digits and single spaces reads as
    itself (``"Roxanne Ritchi"`` -> ``roxanne_ritchi``); any other (accents, punctuation, another
    script, or ``default`` itself) gets its letters folded to ASCII plus 6 hex digits of its hash, so
    two people never share a topic: ``"José"`` -> ``jose_<hash>``, ``"Ann-Lee"`` -> ``ann_lee_<hash>``
    (not Ann Lee's ``ann_lee``), ``"王伟"`` -> ``name_<hash>`` (not the unknown faces' topic).
    Case is folded: names that differ only in case share a slug (a gallery's names are unique
    regardless of case). ``exact=False`` (sources: file names and URLs, full of dots and slashes)
    keeps the folded form as it is (``door.mp4`` -> ``door_mp4``) and adds the hash only when
    nothing of it is left (a name in another script)."""
    if not text or not text.strip():
        return default
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    base = re.sub(r"[^0-9a-z]+", "_", folded).strip("_")
    if base and (not exact or (base != default and _PLAIN.fullmatch(text.lower()))):
        return base
    digest = hashlib.blake2s(text.casefold().encode(), digest_size=3).hexdigest()
    return f"{base or 'name'}_{digest}"


def source_slug(name: str | None) -> str:
    """A source's part of its MQTT event topic and its ``--out`` video's file name: ``slug`` of its
    name kept readable (``door.mp4`` -> ``door_mp4``); :func:`engine.multi.unique_names` keeps these
    unique across the sources of one run."""
    return slug(name, "source", exact=False)


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


def event_payload(event: dict, source: str, now: float | None = None, name: str | None = None) -> dict:
    """``event``: an ``engine.events.Event.to_json()`` dict (``kind``, ``track_id``, ``name``,
    ``similarity``, ``frame``, ``media_s``; optional ``epoch`` wall-clock seconds and ``crop`` /
    ``crop_path``). ``source`` must already be masked (``SourceSpec.display``). Wall-clock time is the
    event's own ``epoch`` when it has one, else ``now`` (default: the time of this call, made on the
    pipeline thread as the event happens). ``person`` is None for an unknown face. ``name``: the
    source's short name when it has one (several sources: the unique name given or derived by
    :func:`engine.multi.unique_names`, kept whole -- ``10.0.0.5/live`` and ``10.0.0.6/live`` are two
    cameras), else ``source_name`` is :func:`source_name` of ``source``."""
    epoch = event.get("epoch")
    if epoch is None:
        epoch = time.time() if now is None else now
    sim = event.get("similarity")
    return {
        "kind": event["kind"],
        "source": source,
        "source_name": name or source_name(source),
        "track_id": int(event["track_id"]),
        "person": event.get("name"),
        "similarity": None if sim is None else round(float(sim), 4),
        "time": iso_utc(round(float(epoch), 3)),
        "epoch": round(float(epoch), 3),
        "frame": event.get("frame"),
        "media_s": event.get("media_s"),
        "crop_path": event.get("crop_path", event.get("crop")),
    }
