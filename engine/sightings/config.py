"""Settings of sighting recording and retention (typed, validated on construction)."""
from __future__ import annotations

import math
from dataclasses import dataclass

DAY_S = 86400.0


@dataclass(frozen=True)
class RetentionConfig:
    """How long sightings are kept: unknown ones ``unknown_days``, named ones ``named_days``,
    and never more than ``max_rows`` in all (the oldest go first). The live session purges on
    open and every ``purge_every_s``; ``facescope sightings purge`` does it on demand."""

    unknown_days: float = 30.0
    named_days: float = 90.0
    max_rows: int = 20_000
    purge_every_s: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("unknown_days", "named_days", "purge_every_s"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"RetentionConfig.{name} must be a positive number, got {v!r}")
        if not isinstance(self.max_rows, int) or self.max_rows < 1:
            raise ValueError(f"RetentionConfig.max_rows must be an int >= 1, got {self.max_rows!r}")


@dataclass(frozen=True)
class SightingConfig:
    """When a track becomes a sighting.

    ``min_frames``: tracks seen on fewer frames are dropped (a one-frame false detection is no
    visit). ``max_span_s``: a longer track is written every this many seconds as consecutive
    sightings, so a person standing in view for an hour shows up in the history before they
    leave. ``flush_every_s``: finished sightings are written in one transaction (one audit
    entry) at most this often, so a crowded scene does not commit per track.
    """

    min_frames: int = 3
    max_span_s: float = 300.0
    flush_every_s: float = 5.0
    retention: RetentionConfig = RetentionConfig()

    def __post_init__(self) -> None:
        if not isinstance(self.min_frames, int) or self.min_frames < 1:
            raise ValueError(f"SightingConfig.min_frames must be an int >= 1, got {self.min_frames!r}")
        for name in ("max_span_s", "flush_every_s"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or (name == "max_span_s" and v == 0):
                raise ValueError(f"SightingConfig.{name} must be a finite number > 0 (flush >= 0), got {v!r}")
        if not isinstance(self.retention, RetentionConfig):
            raise ValueError("SightingConfig.retention must be a RetentionConfig")
