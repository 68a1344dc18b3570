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

Decoding on demand (``JpegPackets(cap, on_demand=True)``, the default of headless runs): most live
frames never need their full picture. With the detector gated (:mod:`engine.track.gating`) about
four frames in five are only compared with the last detected one, on a grey picture 144 px high.
libjpeg-turbo decodes a JPEG at 1/2, 1/4 or 1/8 of its size in the DCT domain (the Huffman
decoding of every coefficient stays, the inverse transforms and colour conversion shrink): a
1280x720 frame decodes in 0.7 ms to 320x180 grey against 1.9 ms to full BGR here. So each packet
is decoded on the capture thread to that small grey :attr:`JpegImage.preview` only (which also
tells a corrupt packet from a good one), and to full BGR the first time a stage asks for
:attr:`Frame.image <engine.capture.Frame.image>` (a detected frame, an aligned face, a drawn one).
A consumer that needs every frame's pixels (the GUI shows each one) asks for ``on_demand=False``:
the preview would then cost 0.7 ms a frame on top of the full decode.
"""
from __future__ import annotations

import logging

import cv2
import numpy as np

from engine.capture.webcams import fourcc_text

log = logging.getLogger(__name__)

MJPEG_FOURCCS = frozenset({"MJPG", "JPEG"})  # how OpenCV names FFmpeg's mjpeg codec (AVI, MOV/HTTP)
FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
PREVIEW_MIN_HEIGHT = 144  # the detector gate's default motion_height (engine.track.gate_config)
_REDUCED_GREY = {8: cv2.IMREAD_REDUCED_GRAYSCALE_8, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
                 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 1: cv2.IMREAD_GRAYSCALE}
MAX_SKIPPED = 25  # undecodable packets in a row before the source counts as not delivering (1 s at 25 fps)


def is_mjpeg(cap: cv2.VideoCapture) -> bool:
    """True for an opened FFmpeg capture of an MJPEG stream without a container rotation."""
    try:
        backend = cap.getBackendName()
    except cv2.error:  # no backend (not opened)
        return False
    return (backend == "FFMPEG" and fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)).upper() in MJPEG_FOURCCS
            and not cap.get(cv2.CAP_PROP_ORIENTATION_META))


class JpegImage:
    """One frame's JPEG packet, decoded to BGR when first asked (:attr:`image`).

    ``shape``: (H, W) of the full picture; ``preview``: (ceil(H/s), ceil(W/s)) uint8 grey decoded
    at 1/s scale (s in 1, 2, 4, 8: the smallest picture at least ``PREVIEW_MIN_HEIGHT`` high), or
    None (decoded in full from the start). Read-only arrays. Two threads asking for :attr:`image`
    at once may both decode it (the same picture; one is kept): cheaper than a lock per frame.
    """

    __slots__ = ("_image", "_packet", "preview", "shape")

    def __init__(self, packet: np.ndarray | None, shape: tuple[int, int], preview: np.ndarray | None = None,
                 image: np.ndarray | None = None) -> None:
        self._packet, self.shape, self.preview, self._image = packet, shape, preview, image
        for a in (preview, image):
            if a is not None:
                a.setflags(write=False)

    @property
    def decoded(self) -> bool:
        return self._image is not None

    @property
    def image(self) -> np.ndarray:
        """(H, W, 3) uint8 BGR, read-only."""
        image = self._image
        if image is None:
            image = _decode(self._packet)
            if image is None or image.shape[:2] != self.shape:
                # The preview of the same packet decoded: libjpeg-turbo Huffman-decodes every
                # coefficient either way, so this is not expected; the frame is kept, blurred.
                log.warning("an MJPEG packet whose preview decoded did not decode in full: shown from its preview")
                image = cv2.cvtColor(cv2.resize(self.preview, self.shape[::-1]), cv2.COLOR_GRAY2BGR)
            image.setflags(write=False)
            self._image = image  # the packet stays (~40 KB at 720p): a thread decoding it meanwhile still can
        return image


def preview_scale(shape: tuple[int, int]) -> int:
    """The DCT scale 1/s of a preview of a (H, W) frame: the largest s of 8, 4, 2, 1 that keeps it
    ``PREVIEW_MIN_HEIGHT`` px high (720p: 4 -> 180 px, 1080p: 4 -> 270, 2160p: 8 -> 270)."""
    return next((s for s in (8, 4, 2) if preview_shape(shape, s)[0] >= PREVIEW_MIN_HEIGHT), 1)


def preview_shape(shape: tuple[int, int], scale: int) -> tuple[int, int]:
    """(h, w) of a (H, W) JPEG decoded at 1/``scale``: libjpeg rounds up (ceil(H/s), ceil(W/s))."""
    return -(-shape[0] // scale), -(-shape[1] // scale)


class JpegPackets:
    """Reads an opened MJPEG capture as packets and decodes them (see the module docstring).

    ``start()`` switches the capture to raw packets and decodes the first; True when it is a
    frame of the stream's size (kept for the first ``read()``). False: the capture is spent
    (one packet consumed in raw mode): release it and reopen without this class.
    ``on_demand``: :meth:`read` decodes each packet to its preview only; else in full."""

    def __init__(self, cap: cv2.VideoCapture, on_demand: bool = False):
        self._cap = cap
        self._first: JpegImage | None = None
        self.on_demand = on_demand
        self.shape = (0, 0)
        self._scale = 1
        self.skipped = 0  # undecodable packets skipped in all

    def start(self) -> bool:
        size = (int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
        if not self._cap.set(cv2.CAP_PROP_FORMAT, -1):
            return False
        ok, packet = self._cap.read()
        image = _decode(packet) if ok else None
        if image is None or (min(size) > 0 and image.shape[:2] != size):
            return False
        self.shape = image.shape[:2]
        self._scale = preview_scale(self.shape)
        preview = self._preview(packet) if self.on_demand else None
        if self.on_demand and preview is None:
            return False
        self._first = JpegImage(None, self.shape, preview, image)
        return True

    def read(self) -> JpegImage | None:
        """The next frame, or None at the end or when no packet of the next ``MAX_SKIPPED``
        decodes. A packet of another size than the first (a camera that changed its mode) is
        decoded in full at once (its preview's scale and its shape follow)."""
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        for _ in range(MAX_SKIPPED):
            ok, packet = self._cap.read()
            if not ok or packet is None or packet.size == 0:
                return None
            frame = self._frame(packet)
            if frame is not None:
                return frame
            self.skipped += 1
            if self.skipped == 1:
                log.warning("skipping an MJPEG packet that is not a decodable JPEG (more are counted, not logged)")
        return None

    def _frame(self, packet: np.ndarray) -> JpegImage | None:
        if not self.on_demand:
            image = _decode(packet)
            return None if image is None else JpegImage(None, image.shape[:2], None, image)
        preview = self._preview(packet)
        if preview is None:
            return None
        if preview.shape != preview_shape(self.shape, self._scale):  # another frame size: learn it from a full decode
            image = _decode(packet)
            if image is None:
                return None
            self.shape, self._scale = image.shape[:2], preview_scale(image.shape[:2])
            return JpegImage(None, self.shape, self._preview(packet), image)
        return JpegImage(packet.reshape(-1), self.shape, preview)  # the binding hands over its own copy

    def _preview(self, packet: np.ndarray) -> np.ndarray | None:
        return cv2.imdecode(packet.reshape(-1), _REDUCED_GREY[self._scale] | cv2.IMREAD_IGNORE_ORIENTATION)


def _decode(packet: np.ndarray | None) -> np.ndarray | None:
    if packet is None or packet.size == 0:
        return None
    return cv2.imdecode(packet.reshape(-1), FLAGS)
