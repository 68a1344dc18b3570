"""MJPEG files and streams decoded by libjpeg-turbo from FFmpeg's packets.

An MJPEG video (AVI recordings, many IP cameras' HTTP/RTSP MJPEG mode) is a sequence of whole JPEG
images. Through OpenCV's FFmpeg backend each is decoded by FFmpeg's mjpeg decoder to YUV planes,
converted to BGR by swscale and copied into the returned array. Asked for the raw packets instead
(``CAP_PROP_FORMAT = -1``: FFmpeg still demuxes, but does not decode), the same JPEG goes through
OpenCV's libjpeg-turbo, which writes the BGR frame in one pass as it upsamples. In the
several-cameras benchmark (four 1280x720 25 fps MJPEG sources, runs alternating with FFmpeg
decoding) the capture threads spent 2.3 instead of 2.7-2.8 ms of CPU a frame: 0.06 instead of
0.07 of a core a source. Timed alone, frame after frame, the two decoders are within each other's
noise (2.0-2.7 ms, depending on what ran just before): the saving shows where the caches are
shared with other sources and the models, presumably from the fewer passes over each frame.
The two decoders' pictures differ by 0.9 grey levels on average (how chroma is upsampled).

Only sources FFmpeg calls MJPEG qualify, and only without a rotation in the container (OpenCV
applies that to decoded frames, not to packets; EXIF orientation inside a frame is ignored,
as FFmpeg does). Raw mode cannot be undone on an open capture, so the first packet decides:
it must decode to a frame of the stream's size, else the caller reopens the source and lets
FFmpeg decode (an interlaced MJPEG, for one, holds two half-height fields per packet). A later
packet that is not a decodable JPEG is skipped, as FFmpeg's decoder skips it.
Webcams never come here: OpenCV's camera backends decode MJPEG themselves (V4L2 with libjpeg-turbo).
"""
from __future__ import annotations

import logging

import cv2
import numpy as np

from engine.capture.webcams import fourcc_text

log = logging.getLogger(__name__)

MJPEG_FOURCCS = frozenset({"MJPG", "JPEG"})  # how OpenCV names FFmpeg's mjpeg codec (AVI, MOV/HTTP)
FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
MAX_SKIPPED = 25  # undecodable packets in a row before the source counts as not delivering (1 s at 25 fps)


def is_mjpeg(cap: cv2.VideoCapture) -> bool:
    """True for an opened FFmpeg capture of an MJPEG stream without a container rotation."""
    try:
        backend = cap.getBackendName()
    except cv2.error:  # no backend (not opened)
        return False
    return (backend == "FFMPEG" and fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)).upper() in MJPEG_FOURCCS
            and not cap.get(cv2.CAP_PROP_ORIENTATION_META))


class JpegPackets:
    """Reads an opened MJPEG capture as packets and decodes them (see the module docstring).

    ``start()`` switches the capture to raw packets and decodes the first; True when it is a
    frame of the stream's size (kept for the first ``read()``). False: the capture is spent
    (one packet consumed in raw mode): release it and reopen without this class."""

    def __init__(self, cap: cv2.VideoCapture):
        self._cap = cap
        self._first: np.ndarray | None = None
        self.skipped = 0  # undecodable packets skipped in all

    def start(self) -> bool:
        size = (int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
        if not self._cap.set(cv2.CAP_PROP_FORMAT, -1):
            return False
        ok, packet = self._cap.read()
        image = _decode(packet) if ok else None
        if image is None or (min(size) > 0 and image.shape[:2] != size):
            return False
        self._first = image
        return True

    def read(self) -> np.ndarray | None:
        """The next frame (H, W, 3) uint8 BGR, or None at the end or when no packet of the next
        ``MAX_SKIPPED`` decodes."""
        if self._first is not None:
            image, self._first = self._first, None
            return image
        for _ in range(MAX_SKIPPED):
            ok, packet = self._cap.read()
            if not ok or packet is None or packet.size == 0:
                return None
            image = _decode(packet)
            if image is not None:
                return image
            self.skipped += 1
            if self.skipped == 1:
                log.warning("skipping an MJPEG packet that is not a decodable JPEG (more are counted, not logged)")
        return None


def _decode(packet: np.ndarray | None) -> np.ndarray | None:
    if packet is None or packet.size == 0:
        return None
    return cv2.imdecode(packet.reshape(-1), FLAGS)
