"""The records the real-time pipeline hands out (:mod:`engine.pipeline` re-exports them): a
processed frame, the faces embedded for it, and a frame between ``begin`` and ``finish``."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.capture import Frame
from engine.records import Faces
from engine.util.stages import StageTimer


@dataclass(frozen=True)
class EmbeddedFaces:
    """The K faces embedded in one frame, as the pipeline made them (enrolment reuses them).

    ``faces``: those K faces (track ids, keypoints, embeddings (K, D) unit vectors);
    ``crops``: (K, h, w, 3) uint8 BGR aligned crops (what a gallery stores); ``qualities``:
    (K,) ``face_quality`` in [0, 1] at embedding time.
    """

    faces: Faces
    crops: np.ndarray
    qualities: np.ndarray


@dataclass(frozen=True)
class FrameResult:
    """One processed frame.

    ``faces``: tracked faces with track ids, identities, names and similarities.
    ``timings_ms``: per-stage wall time in ms (keys ``STAGES``); ``e2e_ms``: from the frame's
    capture timestamp to this result. ``embedded``: embeddings computed for this frame (with
    the embedder on its own thread, :mod:`engine.multi.embedding`: those that came back since
    this source's previous result, faces and crops from the frame they were chosen on).
    ``alive``: ids of all tracks the tracker keeps, including faces hidden this frame.
    ``embedded_faces``: those faces with their crops (None when none).
    """

    frame: Frame
    faces: Faces
    timings_ms: dict[str, float]
    e2e_ms: float
    embedded: int
    alive: frozenset[int] = frozenset()
    embedded_faces: EmbeddedFaces | None = None


@dataclass(frozen=True)
class PendingFrame:
    """A frame between :meth:`Pipeline.begin` and :meth:`Pipeline.finish`.

    ``tensor``: (K, 3, h, w) float32 embedder input of the K faces chosen for an embedding this
    frame (None when K = 0); ``crops``: their (K, h, w, 3) uint8 aligned crops; ``sub``: those K
    faces (landmarks located), ``q``: their (K,) qualities; ``faces``: every tracked face;
    ``quality``: (N,) quality of every tracked face; ``idx``: positions of the K in ``faces``;
    ``timer``: the frame's stage timer (the embed stage is timed by whoever runs the embedder).
    """

    frame: Frame
    capture_wait_ms: float
    timer: StageTimer
    clock: float
    faces: Faces
    quality: np.ndarray
    idx: np.ndarray
    sub: Faces | None
    q: np.ndarray | None
    tensor: np.ndarray | None
    crops: np.ndarray | None
    epoch: int = 0  # the pipeline's reset count at begin: a deferred embedding from before a reset is dropped

    @property
    def to_embed(self) -> int:
        """K, the faces waiting for an embedding."""
        return int(self.idx.size)
