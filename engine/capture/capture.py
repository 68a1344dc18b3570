"""A capture thread per source that always holds the newest frame, and survives dead sources.

The consumer (pipeline) is usually slower than a camera. Queuing frames would make latency grow
without bound, so there is one slot: a new frame replaces an unread one (counted as dropped)
and ``read()`` returns the newest. Video files are the exception when ``realtime=False``
(benchmarks): the capture thread then waits for the consumer, so every frame is seen.

Threads: the capture thread supervises (state, pacing, backoff); the blocking OpenCV calls run
on its I/O thread (:class:`~engine.capture.reader.IoThread`) under a deadline, so a read that
never returns turns into ``reconnecting`` instead of a frozen app. States::

    connecting ─► live ─► ended                 (file/folder end, max_frames, stop())
         │          └──► reconnecting ─► live   (url/webcam read failed or hung; backoff 0.5→8 s)
         └──────────────────┴──────────► failed (cannot open; gave up after max_reconnect_s)

A webcam that does not open at start fails at once (a wrong index is not worth retrying); one
that dies after being live is retried, as is a URL whether or not it ever opened.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable

from engine.capture.config import FINAL_STATES, FPS_WINDOW_S, CaptureConfig, CaptureState, CaptureStats
from engine.capture.frame import Frame
from engine.capture.reader import Hung, IoThread, RawFrame, Stopped, open_reader
from engine.capture.source import SourceError, SourceSpec, parse_source, redact
from engine.util.rate import RateMeter

log = logging.getLogger(__name__)
_IO_JOIN_S = 1.0  # how long shutdown waits for a (non-hung) I/O thread to release its source


class _SessionError(Exception):
    """This connection to the source is over; the message says why (user-facing). ``hung``: its
    I/O thread is stuck in a backend call and must be abandoned, not waited for."""

    def __init__(self, message: str, hung: bool = False):
        super().__init__(message)
        self.hung = hung


class Capture:
    """Capture of one source; see the module docstring. ``on_state(state, reason)`` is called on
    the capture thread at every change (keep it short; exceptions are logged and ignored);
    ``on_frame()`` after every frame published (keep it shorter: e.g. ``Event.set``, so that a
    consumer of several captures sleeps until one has a frame instead of polling them).
    Meant for one consumer; ``read`` and ``stop`` are safe from any thread."""

    def __init__(self, source: SourceSpec | str | int, config: CaptureConfig = CaptureConfig(),
                 on_state: Callable[[CaptureState, str], None] | None = None,
                 on_frame: Callable[[], None] | None = None):
        self.spec = source if isinstance(source, SourceSpec) else parse_source(source)
        self.config, self._on_state, self._on_frame = config, on_state, on_frame
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._slot: Frame | None = None
        self._state, self._reason = CaptureState.CONNECTING, ""
        self._captured = self._delivered = self._dropped = self._reconnects = 0
        self._rate = RateMeter(FPS_WINDOW_S)  # frames captured per second; guarded by _cond
        self._thread: threading.Thread | None = None
        self._io: IoThread | None = None
        self._went_live = False  # this connection delivered a frame (resets the reconnect backoff)
        self.negotiated = None  # a webcam's mode as read back after opening (webcams.Negotiated)

    # ---- consumer API
    def start(self) -> Capture:
        """Start the capture thread (no-op if running; a stopped Capture cannot restart)."""
        if self._stop.is_set():
            raise RuntimeError("this Capture was stopped; create a new one")
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"facescope-capture[{self.spec.display}]",
                                            daemon=True)
            self._thread.start()
        return self

    def read(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not returned yet, waiting up to ``timeout`` s (None: until one comes or
        the capture finishes). None on timeout or when finished: ``state``/``reason`` say why."""
        if self._thread is None and not self._stop.is_set():
            raise RuntimeError("Capture.read() before start()")
        with self._cond:
            self._cond.wait_for(lambda: self._slot is not None or self._over(), timeout)
            frame, self._slot = self._slot, None
            if frame is not None:
                self._delivered += 1
                self._cond.notify_all()  # a non-realtime file reader waits for the slot to empty
            return frame

    def stop(self, timeout: float = 5.0) -> None:
        """Stop capturing and release the source; idempotent. Waits up to ``timeout`` s for the
        capture thread (which never waits on a hung I/O call)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        thread = self._thread
        if thread is None:
            self._set_state(CaptureState.ENDED, "stopped")
        elif thread is not threading.current_thread():  # stop() from on_state must not join itself
            thread.join(timeout)

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def state(self) -> CaptureState:
        return self._state

    @property
    def reason(self) -> str:
        return self._reason

    @property
    def finished(self) -> bool:
        """Ended or failed, and no frame left to read."""
        with self._cond:
            return self._state in FINAL_STATES and self._slot is None

    def stats(self) -> CaptureStats:
        with self._cond:
            return CaptureStats(self._state, self._reason, self._captured, self._delivered, self._dropped,
                                self._rate.rate(), self._reconnects)

    # ---- capture thread
    def _over(self) -> bool:
        return self._stop.is_set() or self._state in FINAL_STATES

    def _set_state(self, state: CaptureState, reason: str = "") -> None:
        with self._cond:
            if (state, reason) == (self._state, self._reason) or self._state in FINAL_STATES:
                return
            self._state, self._reason = state, reason
            self._cond.notify_all()
        # FAILED is the caller's to report (the CLI's error line, the window's message): not a second line here
        log.log(logging.WARNING if state is CaptureState.RECONNECTING else logging.INFO,
                "%s: %s%s", self.spec.display, state.value, f" ({reason})" if reason else "")
        if self._on_state is not None:
            try:
                self._on_state(state, reason)
            except Exception:
                log.exception("on_state callback raised")

    def _run(self) -> None:
        try:
            self._supervise()
        except Exception as e:  # noqa: BLE001 - a bug must not leave consumers waiting on a silent thread
            # the traceback, redacted: an exception message may quote the URL with its password
            trace = redact("".join(traceback.format_exception(e)), str(self.spec.value))
            log.error("capture thread crashed\n%s", trace)
            self._set_state(CaptureState.FAILED,
                            f"internal error capturing {self.spec.display}: {redact(repr(e), str(self.spec.value))}")
        finally:
            self._close_io(_IO_JOIN_S)
            self._set_state(CaptureState.ENDED, "stopped")  # no-op if it already ended or failed

    def _close_io(self, wait_s: float) -> None:
        if self._io is not None:
            self._io.close(wait_s)
            self._io = None

    def _supervise(self) -> None:
        cfg, spec = self.config, self.spec
        backoff, outage_since = cfg.backoff_initial_s, None
        while not self._stop.is_set():
            self._went_live = False
            try:
                if self._session() == "max_frames":
                    return self._set_state(CaptureState.ENDED, f"max_frames={cfg.max_frames} reached")
                self._close_io(_IO_JOIN_S)
                if cfg.loop and self._captured > 0:  # (an empty file must not spin)
                    continue
                return self._set_state(CaptureState.ENDED, f"end of {spec.kind} {spec.display}")
            except Stopped:
                return
            except _SessionError as e:
                reason, hung = str(e), e.hung
            # A hung I/O thread is left behind; an idle one is waited for, because a webcam cannot
            # be reopened before the old handle is released.
            self._close_io(0 if hung else _IO_JOIN_S)
            retry = cfg.reconnect and (spec.kind == "url" or (spec.kind == "webcam" and self._captured > 0))
            if not retry:
                return self._set_state(CaptureState.FAILED, reason)
            now = time.perf_counter()
            if self._went_live or outage_since is None:
                backoff, outage_since = cfg.backoff_initial_s, now
            if cfg.max_reconnect_s is not None and now - outage_since + backoff > cfg.max_reconnect_s:
                return self._set_state(CaptureState.FAILED, f"gave up after {now - outage_since:.0f} s of "
                                                            f"reconnecting: {reason}")
            self._set_state(CaptureState.RECONNECTING, f"{reason}; retrying in {backoff:g} s")
            if self._stop.wait(backoff):
                return
            with self._cond:
                self._reconnects += 1
            backoff = min(2 * backoff, cfg.backoff_max_s)

    def _session(self) -> str:
        """One open-and-read connection. Returns "end" (file/folder over) or "max_frames";
        raises _SessionError when the connection is lost, Stopped on stop()."""
        cfg, spec = self.config, self.spec
        self._io = io = IoThread(f"facescope-capture-io[{spec.display}]")
        try:
            reader = io.open(lambda: open_reader(spec, cfg.open_timeout_s, cfg.read_timeout_s, cfg.webcam,
                                                 cfg.decode_threads, cfg.jpeg_packets,
                                                 cfg.decode_on_demand),
                             cfg.open_timeout_s, self._stop)
        except Hung:
            raise _SessionError(f"cannot open {spec.display}: no answer within {cfg.open_timeout_s:g} s",
                                hung=True) from None
        except SourceError as e:
            raise _SessionError(str(e)) from None
        self.negotiated = getattr(reader, "negotiated", None)
        pace = cfg.realtime and not spec.is_live
        period = 1.0 / (reader.fps or cfg.default_fps)
        due = None
        while True:
            if cfg.max_frames is not None and self._captured >= cfg.max_frames:
                return "max_frames"
            try:
                raw: RawFrame | None = io.call(reader.read, cfg.read_timeout_s, self._stop)
            except Hung:
                raise _SessionError(f"{spec.display} sent no frame for {cfg.read_timeout_s:g} s", hung=True) from None
            except Stopped:
                raise
            except Exception as e:  # noqa: BLE001 - a backend error on one read is a lost connection, not a crash
                log.debug("read failed\n%s", redact("".join(traceback.format_exception(e)), str(spec.value)))
                raise _SessionError(f"reading {spec.display} failed: {redact(str(e), str(spec.value))}") from None
            if raw is None:
                if spec.is_live:
                    raise _SessionError(f"{spec.display} stopped sending frames (stream ended or read failed)")
                return "end"
            image, pts, t = raw
            if pace:  # behave like a camera: a frame exists only from its due time on
                now = time.perf_counter()
                due = now if due is None else due + period
                if now - due > period:  # decoding fell behind: resync rather than burst to catch up
                    due = now
                if due > now and self._stop.wait(due - now):
                    raise Stopped
                t = time.perf_counter()
            self._publish(image, pts, t, wait=not cfg.realtime and not spec.is_live)
            if not self._went_live:
                self._went_live = True
                self._set_state(CaptureState.LIVE)

    def _publish(self, image, pts: float | None, t: float, wait: bool) -> None:
        with self._cond:
            if wait:
                self._cond.wait_for(lambda: self._slot is None or self._stop.is_set())
            if self._stop.is_set():
                raise Stopped
            if self._slot is not None:
                self._dropped += 1
            self._slot = Frame(image, self._captured, t, pts)
            self._captured += 1
            self._rate.tick(t)
            self._cond.notify_all()
        if self._on_frame is not None:
            self._on_frame()
