"""What the several-sources runner hands out: a source's result, a round, a source's status."""
from __future__ import annotations

from dataclasses import dataclass

from engine.pipeline import FrameResult


@dataclass(frozen=True)
class SourceResult:
    """One processed frame of one source: ``source`` (its name), ``result`` (the pipeline's
    FrameResult; ``result.faces.track_ids`` are this source's ids), ``round`` (engine round)."""

    source: str
    result: FrameResult
    round: int

    @property
    def faces(self):
        return self.result.faces

    @property
    def frame(self):
        return self.result.frame


@dataclass(frozen=True)
class Round:
    """What one engine round did: its results (at most one per source), the faces embedded in
    its single embedder call (``embedded``; ``embed_calls`` is 0 or 1) and that call's time."""

    index: int
    results: tuple[SourceResult, ...]
    embedded: int
    embed_calls: int
    embed_ms: float


@dataclass(frozen=True)
class SourceStatus:
    """A source's figures for a status panel. ``state``: a CaptureState value, ``disabled`` or
    ``error``; ``fps``: frames processed per second over the last 2 s; ``capture_fps``: frames
    the source delivered per second; ``e2e_ms``: the newest frame's capture-to-result latency;
    ``engine_s``: engine-thread seconds spent on this source (its begin/finish plus its share,
    by faces, of the batched embedder calls); ``negotiated``: a webcam's mode as it opened."""

    name: str
    display: str
    state: str
    reason: str
    frames: int
    fps: float
    capture_fps: float
    dropped: int
    e2e_ms: float
    embedded: int
    engine_s: float
    negotiated: object = None
