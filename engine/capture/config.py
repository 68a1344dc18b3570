"""Capture settings, states and statistics (plain data; the logic is in capture.py)."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from engine.capture.webcams import WebcamSettings
from engine.util.check import check

FPS_WINDOW_S = 2.0  # sliding window for the measured frame rate: steady, yet drops to 0 within 2 s of a stall


class CaptureState(str, Enum):
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    FAILED = "failed"


FINAL_STATES = (CaptureState.ENDED, CaptureState.FAILED)


def check_decode_threads(value) -> None:
    """ValueError unless ``value`` is a decoder thread count: an int in [0, 64] (0: FFmpeg's choice)."""
    check(isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 64,
          f"decode_threads must be an int in [0, 64], got {value!r}")


@dataclass(frozen=True)
class CaptureConfig:
    """Capture settings; times in seconds.

    realtime: play files at their native FPS (``default_fps`` if unknown, and for folders) and drop
    frames when the consumer is slow, like a camera; False reads files as fast as the consumer
    takes them, never dropping. Webcams and URLs always run on their own clock and drop.
    open_timeout_s / read_timeout_s: deadline of one open / one frame read (FFmpeg timeouts for
    URLs and the I/O-thread watchdog for every source). reconnect: retry URLs and webcams with
    backoff doubling from ``backoff_initial_s`` to ``backoff_max_s``, giving up (failed) once an
    outage lasts ``max_reconnect_s`` (None: never). loop: restart files at their end.
    max_frames: end after this many frames read from the source.
    webcam: the mode, pixel format and backend to open a webcam with (None: the OS's fast backend,
    the driver's default mode); see :mod:`engine.capture.webcams`.
    decode_threads: FFmpeg decoder threads for files and URLs (0: FFmpeg's choice, a thread per core;
    webcams decode in their backend and ignore it). Frame threading buys a single big stream its
    rate at a cost: 1280x720 25 fps decoded here in 2.9 ms of CPU a frame on two threads against
    2.2 ms on one (MJPG), 4.1 against 3.4 ms (H.264), and one frame of latency per extra thread.
    Several sources run side by side on the cores anyway: :mod:`engine.multi.presets` uses one.
    jpeg_packets: decode an MJPEG file or URL with libjpeg-turbo from FFmpeg's packets (2.3 against
    2.7 ms of CPU a 1280x720 frame with four sources; :mod:`engine.capture.jpeg_packets`); False lets
    FFmpeg decode.
    decode_on_demand: such an MJPEG source's packets are decoded on the capture thread to a small
    grey preview only, and to the full frame when a stage first reads ``Frame.image`` (a frame the
    detector gate skips never is: 0.7 instead of 1.9 ms a 1280x720 frame); False decodes every
    frame in full at once, for consumers that show or write every frame (the GUI, ``--out``) or
    detect on every frame (``GateConfig(mode="every-frame")``): the preview would only add to it.
    """

    realtime: bool = True
    open_timeout_s: float = 5.0
    read_timeout_s: float = 5.0
    reconnect: bool = True
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    max_reconnect_s: float | None = 60.0
    loop: bool = False
    max_frames: int | None = None
    default_fps: float = 25.0
    webcam: WebcamSettings | None = None
    decode_threads: int = 0
    jpeg_packets: bool = True
    decode_on_demand: bool = True

    def __post_init__(self) -> None:
        for key in ("open_timeout_s", "read_timeout_s", "backoff_initial_s", "default_fps"):
            check(getattr(self, key) > 0, f"{key} must be > 0, got {getattr(self, key)}")
        check(self.backoff_max_s >= self.backoff_initial_s,
               f"backoff_max_s ({self.backoff_max_s}) must be >= backoff_initial_s ({self.backoff_initial_s})")
        check(self.max_reconnect_s is None or self.max_reconnect_s >= 0,
               f"max_reconnect_s must be >= 0 or None, got {self.max_reconnect_s}")
        check(self.max_frames is None or self.max_frames >= 1,
              f"max_frames must be >= 1 or None, got {self.max_frames}")
        check_decode_threads(self.decode_threads)


@dataclass(frozen=True)
class CaptureStats:
    """captured = frames read from the source = delivered + dropped (+1 while one waits unread).
    fps: capture rate over the last 2 s. reconnects: reopen attempts after a failure."""

    state: CaptureState
    reason: str
    captured: int
    delivered: int
    dropped: int
    fps: float
    reconnects: int
