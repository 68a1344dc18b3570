"""One captured video frame, the unit the capture layer hands to the pipeline."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    """A frame and when it was captured.

    image: (H, W, 3) uint8 BGR, read-only (several consumers, e.g. pipeline and preview, may
    hold the same frame; a copy is the consumer's job if it wants to draw on it).
    index: 0-based count of frames read from the source, dropped ones included, so gaps in
    ``index`` are frames the consumer never saw; for a file it is the frame number in the file
    (it keeps counting across ``loop`` restarts and reconnects).
    timestamp: ``time.perf_counter()`` seconds when the frame was captured (for paced files: when
    it became due), the start of end-to-end latency.
    pts_s: media time in seconds for files (container time as FFmpeg reports it), else None.
    """

    image: np.ndarray
    index: int
    timestamp: float
    pts_s: float | None = None

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            shape = getattr(img, "shape", None)
            got = f"{shape} {getattr(img, 'dtype', type(img))}"
            raise ValueError(f"Frame.image: expected (H, W, 3) uint8 BGR, got {got}")
        if img.shape[0] == 0 or img.shape[1] == 0:
            raise ValueError(f"Frame.image: empty image {img.shape}")
        if img.flags.writeable:
            img.setflags(write=False)  # the capture made this array; nobody else holds it writable
        if self.index < 0:
            raise ValueError(f"Frame.index must be >= 0, got {self.index}")

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return self.image.shape[0], self.image.shape[1]
