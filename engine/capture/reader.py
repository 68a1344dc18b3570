"""Opening a source and reading raw frames from it, plus the I/O thread that owns a reader.

OpenCV's ``VideoCapture.open()``/``read()`` can block for ever (a camera unplugged mid-read,
a stream whose server vanished without closing TCP). FFmpeg's own timeouts cover most network
cases; :class:`IoThread` covers the rest: all blocking calls on one reader run on one daemon
thread, callers wait with a deadline and, when it passes, *abandon* the thread. It finishes its
call whenever the backend returns, then releases the reader and exits; nobody waits for it.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from engine.capture.jpeg_packets import JpegImage, JpegPackets, is_mjpeg
from engine.capture.source import SourceError, SourceSpec, list_images, parse_source, redact
from engine.errors import ImageError
from engine.imageio import read_image

log = logging.getLogger(__name__)
# image (H,W,3) uint8 BGR or an MJPEG packet decoded on demand, pts_s, perf_counter at read
RawFrame = tuple["np.ndarray | JpegImage", "float | None", float]


class SourceReader:
    """Blocking frame reader over one opened source. ``read()`` returns a RawFrame, or None at
    the end of a file or when a stream/camera stops delivering. ``fps``: native rate or None."""

    fps: float | None = None

    def read(self) -> RawFrame | None:
        raise NotImplementedError

    def release(self) -> None:
        pass


class CvReader(SourceReader):
    """A cv2.VideoCapture (webcam, URL, file). pts_s only for files."""

    def __init__(self, cap: cv2.VideoCapture, spec: SourceSpec, packets: JpegPackets | None = None):
        self._cap, self._file = cap, spec.kind == "file"
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if 0.5 <= fps <= 1000 else None  # 0 = unknown; some streams report 90000
        self._last_pts: float | None = None
        self.packets = packets  # an MJPEG source decoded by libjpeg-turbo (engine.capture.jpeg_packets)

    def read(self) -> RawFrame | None:
        if self.packets is not None:
            packet = self.packets.read()
            t = time.perf_counter()
            if packet is None:
                return None
            # decoded on demand: the packet travels in the Frame; else its BGR picture
            return packet if packet.preview is not None else packet.image, self._pts() if self._file else None, t
        ok, image = self._cap.read()
        t = time.perf_counter()
        if not ok or image is None or image.size == 0:
            return None
        if image.ndim == 2 or image.shape[2] != 3:  # a grey or BGRA camera mode
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_BGRA2BGR)
        return image, self._pts() if self._file else None, t

    def _pts(self) -> float | None:
        # FFmpeg reports the frame's container time, but some containers (AVI) give 0 for the last
        # flushed frame: keep media time increasing by stepping one frame period past the previous one.
        pts = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1.0 / self.fps if self.fps else None
        if pts is not None:
            self._last_pts = pts
        return pts

    def release(self) -> None:
        self._cap.release()


class FolderReader(SourceReader):
    """Images of a folder in natural order; unreadable ones are skipped with a warning."""

    def __init__(self, spec: SourceSpec):
        self._files, self._next = list_images(spec.value), 0
        if not self._files:
            raise SourceError(f"folder {spec.display} holds no images")

    def read(self) -> RawFrame | None:
        while self._next < len(self._files):
            path = self._files[self._next]
            self._next += 1
            try:
                return read_image(path), None, time.perf_counter()
            except ImageError as e:
                log.warning("skipping %s", e)
        return None


def open_reader(spec: SourceSpec, open_timeout_s: float, read_timeout_s: float, webcam=None,
                decode_threads: int = 0, jpeg_packets: bool = True, on_demand: bool = False) -> SourceReader:
    """Open ``spec``; blocks as long as the backend does (bounded by FFmpeg timeouts for URLs
    only). Raises SourceError saying why it failed. Prefer :func:`open_capture` (bounded).
    ``webcam``: :class:`~engine.capture.webcams.WebcamSettings` for a webcam (mode, format, backend);
    ``decode_threads``: decoder threads of a file or URL (0: the backend's choice; see
    :class:`~engine.capture.config.CaptureConfig`); ``jpeg_packets``: an MJPEG file or URL is
    decoded by libjpeg-turbo from FFmpeg's packets (:mod:`engine.capture.jpeg_packets`), to full
    frames only when a stage reads them when ``on_demand``."""
    if spec.kind == "folder":
        try:
            return FolderReader(spec)
        except OSError as e:  # e.g. the folder vanished since parse_source
            raise SourceError(f"cannot list folder {spec.display}: {e.strerror or e}") from None
    if spec.kind == "webcam":  # not every camera backend accepts timeout params (they would refuse to open)
        from engine.capture.webcams import open_webcam

        try:
            cap, negotiated = open_webcam(spec.value, webcam, display=spec.display)  # mode, format, OS backend
        except cv2.error as e:
            raise _open_error(spec, e) from None
        reader = CvReader(cap, spec)
        reader.negotiated = negotiated  # what the camera gave (Capture.negotiated)
        return reader
    cap = _open_video(spec, open_timeout_s, read_timeout_s, decode_threads)
    if jpeg_packets and is_mjpeg(cap):
        packets = JpegPackets(cap, on_demand)
        if packets.start():
            return CvReader(cap, spec, packets)
        # not JPEG packets of the stream's size: the capture read one in raw mode, start again
        log.info("%s: MJPEG packets not decodable as single JPEG frames, FFmpeg decodes them", spec.display)
        cap.release()
        cap = _open_video(spec, open_timeout_s, read_timeout_s, decode_threads)
    return CvReader(cap, spec)


def _open_video(spec: SourceSpec, open_timeout_s: float, read_timeout_s: float,
                decode_threads: int) -> cv2.VideoCapture:
    """An opened cv2.VideoCapture of a file or URL, or SourceError."""
    try:
        if spec.kind == "url":
            # Applied by OpenCV's FFmpeg interrupt callback to open and to every read.
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout_s * 1000),
                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout_s * 1000)]
            cap = cv2.VideoCapture(spec.value, cv2.CAP_FFMPEG, params + _threads(decode_threads))
        else:
            cap = cv2.VideoCapture(spec.value, cv2.CAP_ANY, _threads(decode_threads))
    except cv2.error as e:
        raise _open_error(spec, e) from None
    if not cap.isOpened():
        cap.release()
        raise SourceError(_why_not_opened(spec, open_timeout_s))
    return cap


def _open_error(spec: SourceSpec, e: cv2.error) -> SourceError:
    detail = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
    return SourceError(f"cannot open {spec.display}: {redact(detail, str(spec.value))}")


def _threads(decode_threads: int) -> list[int]:
    """VideoCapture open parameters fixing the decoder's thread count (none for 0)."""
    return [cv2.CAP_PROP_N_THREADS, int(decode_threads)] if decode_threads else []


def _why_not_opened(spec: SourceSpec, open_timeout_s: float) -> str:
    if spec.kind == "webcam":
        return (f"cannot open {spec.display}: no camera with index {spec.value} "
                "(or it is in use by another program, or access is not permitted)")
    if spec.kind == "url":
        return (f"cannot open stream {spec.display}: connection refused, no answer within {open_timeout_s:g} s, "
                "or not a stream (check host, port, path and credentials)")
    return f"cannot decode video file {spec.display} (not a video, or a codec this OpenCV build lacks)"


class Hung(Exception):  # noqa: N818 - a control-flow signal inside capture, never shown to users
    """An IoThread call passed its deadline; the thread has been abandoned."""


class Stopped(Exception):  # noqa: N818 - a control-flow signal inside capture, never shown to users
    """The stop event was set while waiting for an IoThread call."""


class IoThread:
    """One daemon thread that runs blocking calls on one reader, one call at a time, and
    releases the reader when it exits. Only this thread touches the reader."""

    def __init__(self, name: str):
        self._cond = threading.Condition()
        self._job: Callable[[], Any] | None = None
        self._result: tuple[Any, BaseException | None] | None = None
        self._quit = False
        self.reader: SourceReader | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def open(self, opener: Callable[[], SourceReader], timeout: float, stop: threading.Event) -> SourceReader:
        def job() -> SourceReader:
            self.reader = opener()  # stored before returning: an abandoned thread still releases it
            return self.reader
        return self.call(job, timeout, stop)

    def call(self, fn: Callable[[], Any], timeout: float, stop: threading.Event) -> Any:
        """Run ``fn`` on the thread; raise Hung after ``timeout`` s, Stopped when ``stop`` is set
        (checked every 50 ms), or whatever ``fn`` raised."""
        deadline = time.perf_counter() + timeout
        with self._cond:
            self._job, self._result = fn, None
            self._cond.notify_all()
            while self._result is None:
                if stop.is_set():
                    raise Stopped
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise Hung
                self._cond.wait(min(left, 0.05))
            value, error = self._result
        if error is not None:
            raise error
        return value

    def close(self, wait_s: float) -> bool:
        """Ask the thread to release the reader and exit; wait up to ``wait_s`` (0 for a thread
        stuck in a call). True if it has exited."""
        with self._cond:
            self._quit, self._job = True, None
            self._cond.notify_all()
        if wait_s > 0 and self._thread is not threading.current_thread():
            self._thread.join(wait_s)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        try:
            while True:
                with self._cond:
                    while self._job is None and not self._quit:
                        self._cond.wait()
                    if self._quit:
                        return
                    job, self._job = self._job, None
                try:
                    result: tuple[Any, BaseException | None] = (job(), None)
                except Exception as e:  # noqa: BLE001 - handed to the caller, who decides what it means
                    result = (None, e)
                with self._cond:
                    self._result = result
                    self._cond.notify_all()
        finally:
            if self.reader is not None:
                try:
                    self.reader.release()
                except Exception:  # a dying camera may fail to close; nothing more to do
                    log.debug("release failed", exc_info=True)


def open_capture(spec: SourceSpec | str, open_timeout_s: float = 5.0, read_timeout_s: float = 5.0) -> SourceReader:
    """Open ``spec`` (or source text) and return its reader, or raise SourceError within ``open_timeout_s``
    (a backend that hangs is left behind on a daemon thread, which releases it if it ever
    returns). Use for one-shot reads; reads on the returned reader are not watchdogged."""
    if not isinstance(spec, SourceSpec):
        spec = parse_source(spec)
    io = IoThread(f"facescope-open[{spec.display}]")
    try:
        reader = io.open(lambda: open_reader(spec, open_timeout_s, read_timeout_s), open_timeout_s,
                         threading.Event())
    except Hung:
        io.close(0)
        raise SourceError(f"cannot open {spec.display}: no answer within {open_timeout_s:g} s") from None
    except BaseException:
        io.close(1.0)
        raise
    io.reader = None  # hand ownership to the caller: the thread must not release it on exit
    io.close(1.0)
    return reader
