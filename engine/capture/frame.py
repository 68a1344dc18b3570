"""One captured video frame, the unit the capture layer hands to the pipeline."""
from __future__ import annotations

import numpy as np

from engine.capture.jpeg_packets import JpegImage


class Frame:
    """A frame and when it was captured. Immutable.

    image: (H, W, 3) uint8 BGR, read-only (several consumers, e.g. pipeline and preview, may
    hold the same frame; a copy is the consumer's job if it wants to draw on it). Given a
    :class:`~engine.capture.jpeg_packets.JpegImage` (an MJPEG packet decoded on demand), it is
    decoded the first time it is read; :attr:`shape` and :attr:`preview` never decode it.
    index: 0-based count of frames read from the source, dropped ones included, so gaps in
    ``index`` are frames the consumer never saw; for a file it is the frame number in the file
    (it keeps counting across ``loop`` restarts and reconnects).
    timestamp: ``time.perf_counter()`` seconds when the frame was captured (for paced files: when
    it became due), the start of end-to-end latency.
    pts_s: media time in seconds for files (container time as FFmpeg reports it), else None.
    """

    __slots__ = ("_image", "index", "pts_s", "timestamp")

    def __init__(self, image: np.ndarray | JpegImage, index: int, timestamp: float, pts_s: float | None = None):
        if not isinstance(image, JpegImage):
            _check_image(image)
            if image.flags.writeable:
                image.setflags(write=False)  # the capture made this array; nobody else holds it writable
        if index < 0:
            raise ValueError(f"Frame.index must be >= 0, got {index}")
        for key, value in (("_image", image), ("index", index), ("timestamp", timestamp), ("pts_s", pts_s)):
            object.__setattr__(self, key, value)

    def __setattr__(self, key, value) -> None:
        raise AttributeError(f"Frame is immutable: cannot set {key}")

    def __repr__(self) -> str:
        h, w = self.shape
        return f"Frame(index={self.index}, {w}x{h}, timestamp={self.timestamp:.3f}, pts_s={self.pts_s})"

    @property
    def image(self) -> np.ndarray:
        """(H, W, 3) uint8 BGR, read-only; an MJPEG packet is decoded here the first time."""
        image = self._image
        return image.image if isinstance(image, JpegImage) else image

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        image = self._image
        return image.shape if isinstance(image, JpegImage) else (image.shape[0], image.shape[1])

    @property
    def preview(self) -> np.ndarray | None:
        """A small grey picture of the frame decoded without the full one, (h, w) uint8 with
        h >= 144 where the frame is that high (:mod:`engine.capture.jpeg_packets`), or None:
        then make it from :attr:`image`."""
        image = self._image
        return image.preview if isinstance(image, JpegImage) else None


def _check_image(img) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        shape = getattr(img, "shape", None)
        got = f"{shape} {getattr(img, 'dtype', type(img))}"
        raise ValueError(f"Frame.image: expected (H, W, 3) uint8 BGR, got {got}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"Frame.image: empty image {img.shape}")
