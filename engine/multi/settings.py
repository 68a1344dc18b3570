"""Per-source settings of a several-sources run, and the sources file that lists them.

A sources file (JSON or TOML) holds a list of sources::

    # sources.toml                                   // sources.json
    [[source]]                                       {"sources": [
    name = "door"                                      {"name": "door", "source": "rtsp://cam/live",
    source = "rtsp://user:pw@10.0.0.5/live"             "roi": {"rects": [[0.2, 0.0, 0.8, 1.0]]}},
    det_size = "640x384"                               {"name": "desk", "source": "0",
    min_face = 24                                       "webcam": {"resolution": "1920x1080", "fps": 30}}
    roi = { rects = [[0.2, 0.0, 0.8, 1.0]] }         ]}

    [[source]]
    name = "desk"
    source = "0"
    webcam = { resolution = "1920x1080", fps = 30, fourcc = "MJPG" }

Keys: ``source`` (required: webcam index, URL, file or folder), ``name`` (default: derived from
the source, e.g. ``door.mp4``, ``webcam0``, ``10.0.0.5/live``; names must be unique), ``enabled``
(default true), ``det_size`` ("WxH", default: the shared recognizer's), ``min_face`` (pixels,
shorter box side), ``roi`` (:meth:`engine.multi.roi.Roi.from_dict`), ``webcam``
(:meth:`engine.capture.webcams.WebcamSettings.from_dict`), ``decode_threads`` (a file's or stream's
decoder threads, default 1; 0: FFmpeg's choice, e.g. for a 4K stream one thread cannot decode
at its rate). Unknown keys are an error.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from engine.capture.config import check_decode_threads
from engine.capture.source import mask_url
from engine.capture.webcams import WebcamSettings
from engine.multi.roi import Roi
from engine.util.check import check

KEYS = ("name", "source", "enabled", "det_size", "min_face", "roi", "webcam", "decode_threads")


def parse_size(text: str | tuple | list | None) -> tuple[int, int] | None:
    """``"640x384"`` or [640, 384] -> (640, 384); None stays None."""
    if text is None:
        return None
    if isinstance(text, str):
        w, _, h = text.lower().partition("x")
        try:
            return int(w), int(h or w)
        except ValueError:
            raise ValueError(f"det_size must be WxH (e.g. 640x384), got {text!r}") from None
    check(len(text) == 2, f"det_size must be [width, height], got {text!r}")
    return int(text[0]), int(text[1])


@dataclass(frozen=True)
class SourceSettings:
    """One source of a several-sources run.

    ``source``: what ``engine.capture.parse_source`` takes (webcam index, URL, file, folder);
    ``name``: the short unique name results, events and sightings carry (None: derived from the
    source by :func:`default_name`); ``enabled``: False keeps it in the list without opening it;
    ``det_size``: (width, height) detector input for this source (None: the shared recognizer's;
    a different size builds one more detector, the landmark and embedding models stay shared);
    ``min_face``: faces whose shorter box side is under this many source pixels are dropped;
    ``roi``: region of interest / mask (:class:`~engine.multi.roi.Roi`); ``webcam``: the mode a
    webcam is opened with (:class:`~engine.capture.webcams.WebcamSettings`); ``decode_threads``:
    FFmpeg decoder threads of a file or URL (None: :data:`engine.multi.presets.DECODE_THREADS`;
    0: FFmpeg's choice, a thread per core).
    """

    source: str
    name: str | None = None
    enabled: bool = True
    det_size: tuple[int, int] | None = None
    min_face: float = 0.0
    roi: Roi | None = None
    webcam: WebcamSettings | None = None
    decode_threads: int | None = None

    def __post_init__(self) -> None:
        check(isinstance(self.source, str) and bool(self.source.strip()), "a source needs a non-empty 'source'")
        check(self.name is None or (isinstance(self.name, str) and bool(self.name.strip())),
              f"a source name must be non-empty text, got {self.name!r}")
        check(isinstance(self.enabled, bool), f"enabled must be true or false, got {self.enabled!r}")
        if self.det_size is not None:
            check(len(self.det_size) == 2 and all(int(v) == v and 32 <= v <= 4096 for v in self.det_size),
                  f"det_size must be two integers in [32, 4096], got {self.det_size}")
        check(self.min_face >= 0, f"min_face must be >= 0, got {self.min_face}")
        if self.decode_threads is not None:
            check_decode_threads(self.decode_threads)

    @property
    def label(self) -> str:
        """The name (given or derived); never holds a URL password."""
        return self.name or default_name(self.source)

    @classmethod
    def from_dict(cls, d: dict) -> SourceSettings:
        check(isinstance(d, dict), f"each source must be a table/object, got {type(d).__name__}")
        unknown = set(d) - set(KEYS)
        check(not unknown, f"unknown source keys {sorted(unknown)}; known: {', '.join(KEYS)}")
        check("source" in d, f"a source entry needs 'source' (got keys {sorted(d)})")
        return cls(str(d["source"]), d.get("name"), d.get("enabled", True), parse_size(d.get("det_size")),
                   float(d.get("min_face", 0.0)), Roi.from_dict(d["roi"]) if d.get("roi") else None,
                   WebcamSettings.from_dict(d["webcam"]) if d.get("webcam") else None, d.get("decode_threads"))


def default_name(source: str) -> str:
    """A short name for a source: a file's name, ``webcam0``, a URL's host/path (no password)."""
    from engine.events_out.payload import source_name

    return source_name(mask_url(source.strip()))


def unique_names(settings: list[SourceSettings]) -> list[str]:
    """The names of ``settings`` in order: given names must be unique (ValueError otherwise);
    derived ones that collide get ``-2``, ``-3``... (two ``clip.mp4`` in different folders).

    Unique also as topics and file names: a source's MQTT topic and ``--out`` video are named by
    ``slug(name)`` (lowercase letters, digits and ``_``), so two given names that differ only in case or
    punctuation ("Front door", "front-door") are refused too, and a derived name is bumped past them."""
    from engine.events_out.payload import source_slug as key

    given = [s.name for s in settings if s.name]
    dup = {n for n in given if given.count(n) > 1}
    check(not dup, f"source names must be unique, repeated: {sorted(dup)}")
    by_key: dict[str, list[str]] = {}
    for n in given:
        by_key.setdefault(key(n), []).append(n)
    clash = sorted(" / ".join(repr(n) for n in names) for names in by_key.values() if len(names) > 1)
    check(not clash, "source names must differ in letters or digits, not only in case or punctuation "
                     f"(each source has its own MQTT topic and output file): {'; '.join(clash)}")
    taken, out = set(by_key), []
    for s in settings:
        name = s.name
        if not name:
            base = name = s.label
            k = 2
            while key(name) in taken:
                name, k = f"{base}-{k}", k + 1
        taken.add(key(name))
        out.append(name)
    return out


def load_sources(path: str | Path) -> list[SourceSettings]:
    """Read a sources file (``.json`` or ``.toml``, see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"cannot read sources file {path}: {e.strerror or e}") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {e}") from None
    if isinstance(data, dict):
        data = data.get("sources", data.get("source"))
    check(isinstance(data, list) and len(data) > 0,
          f"{path}: expected a list of sources ('sources' in JSON, [[source]] tables in TOML)")
    try:
        items = [SourceSettings.from_dict(d) for d in data]
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None
    unique_names(items)
    return items
