"""The engine worker: a :class:`engine.live.LiveSession` run on a QThread, newest result only.

Threads: the GUI thread owns the window, the gallery (SQLite) and the ``Controller``; the
worker thread iterates ``session.run(spec)`` (capture + pipeline; the session runs its own
requests, e.g. enrolment, between two frames); the capture has its own threads inside the
engine. Results never queue up: the worker keeps ONE pending result behind a lock and emits
``result`` only when the GUI has taken the previous one, so a slow GUI sees the newest frame,
never a backlog. Stopping is cooperative (an Event checked every iteration +
``session.interrupt()``); threads are never terminated.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import traceback

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

log = logging.getLogger(__name__)

_STOP_WAIT_MS = 15000  # Controller.stop(): worst case = one frame + capture.stop()'s own 5 s bound


class EngineWorker(QObject):
    """Iterates ``session.run(spec)`` for one source.

    Signals (emitted on the worker thread,
    delivered queued to GUI-thread receivers):

    ``result(object)``: a new FrameResult is pending; receivers call :meth:`take_latest` for the
    newest one (it may be newer than the payload). Not emitted again until it was taken.
    ``state(str, str)``: capture state (connecting/live/reconnecting/ended/failed) and reason.
    ``error(str)``: any exception in the worker (the loop then ends). ``stopped()``: always last.
    """

    result = Signal(object)
    state = Signal(str, str)
    error = Signal(str)
    stopped = Signal()

    def __init__(self, spec, session) -> None:
        super().__init__()
        self.spec = spec
        self.session = session
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()  # set = not paused
        self._lock = threading.Lock()
        self._pending = None
        self._notified = False
        self.frames = 0

    # -- any thread ----------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to end (returns at once; ``stopped`` follows)."""
        self._stop.set()
        self._running.set()
        try:
            self.session.interrupt()  # wakes a blocked read; the worker joins the capture at the end
        except Exception:
            log.exception("capture.stop failed")

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def take_latest(self):
        """The newest pending FrameResult (or None) and re-arm the ``result`` signal."""
        with self._lock:
            r, self._pending, self._notified = self._pending, None, False
        return r

    def capture_stats(self):
        return self.session.capture_stats()

    # -- worker thread -------------------------------------------------------------------------
    @Slot()
    def run(self) -> None:
        results = None
        try:
            if self._stop.is_set():
                return
            results = self.session.run(self.spec, on_state=self._on_state)
            while not self._stop.is_set():
                if not self._running.is_set():
                    self.session.drain()  # enrolment requests also run while paused
                    self._running.wait(0.1)
                    continue
                r = next(results, None)
                if r is None:
                    break
                self.frames += 1
                if self._stop.is_set():
                    break
                self._publish(r)
        except Exception as exc:  # noqa: BLE001 - reported to the GUI, the app stays usable
            if self._stop.is_set() and isinstance(exc, RuntimeError):
                return  # stop() raced capture.start(): not an error
            log.debug("worker failed\n%s", traceback.format_exc())
            self.error.emit(f"{type(exc).__name__}: {exc}")
        finally:
            if results is not None:
                try:
                    results.close()  # the session stops the capture and ends its collections
                except Exception:
                    log.exception("stopping the session failed")
            self.stopped.emit()

    def _publish(self, r) -> None:
        with self._lock:
            self._pending = r
            notify = not self._notified
            self._notified = True
        if notify:
            self.result.emit(r)

    def _on_state(self, state, reason: str) -> None:  # capture thread
        value = getattr(state, "value", str(state))
        self.state.emit(value, reason or "")
        if value == "failed":
            self.error.emit(f"{self.spec.display}: {reason or 'source failed'}")


class Controller(QObject):
    """Start / stop / restart engine workers from the GUI thread without leaking threads.

    Signals are all delivered on the GUI thread: ``result(object)`` the newest FrameResult,
    ``state(str, str)``, ``error(str)``, ``running_changed(bool)``.
    """

    result = Signal(object)
    state = Signal(str, str)
    error = Signal(str)
    running_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: EngineWorker | None = None
        self._lingering: list[tuple[EngineWorker, QThread]] = []

    @property
    def worker(self) -> EngineWorker | None:
        return self._worker

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def start(self, spec, session) -> EngineWorker:
        """Stop any running worker, then run ``session`` on ``spec`` (a SourceSpec)."""
        self.stop()
        worker = EngineWorker(spec, session)
        thread = QThread()
        thread.setObjectName(f"facescope-engine {spec.display}")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.stopped.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        worker.result.connect(self._on_result)  # queued: the worker lives in another thread
        worker.state.connect(self._on_state)
        worker.error.connect(self._on_error)
        thread.finished.connect(self._on_finished)
        self._worker, self._thread = worker, thread
        thread.start()
        self.running_changed.emit(True)
        return worker

    def stop(self, wait_ms: int = _STOP_WAIT_MS) -> bool:
        """Stop the worker and wait for its thread (True when it ended)."""
        worker, thread = self._worker, self._thread
        if worker is None or thread is None:
            return True
        worker.stop()
        ok = thread.wait(wait_ms)
        if not ok:  # never terminate(): leave it to finish on its own, but forget it
            log.warning("engine thread did not stop within %d ms", wait_ms)
        self._release(worker, thread)
        return ok

    def pause(self) -> None:
        if self._worker is not None:
            self._worker.pause()

    def resume(self) -> None:
        if self._worker is not None:
            self._worker.resume()

    # -- GUI thread slots ----------------------------------------------------------------------
    def _on_result(self, payload) -> None:
        worker = self._current_sender()
        if worker is None:
            return
        r = worker.take_latest()
        if r is not None:
            self.result.emit(r)

    def _on_state(self, state: str, reason: str) -> None:
        if self._current_sender() is not None:
            self.state.emit(state, reason)

    def _on_error(self, message: str) -> None:
        if self._current_sender() is not None:
            self.error.emit(message)

    def _current_sender(self) -> EngineWorker | None:
        """The running worker when it sent the signal being handled (late signals of a worker
        that was already stopped are ignored)."""
        sender = self.sender()
        return sender if sender is not None and sender is self._worker else None

    def _on_finished(self) -> None:
        thread = self.sender()
        if thread is self._thread and self._worker is not None:
            self._release(self._worker, thread)

    def _release(self, worker: EngineWorker, thread: QThread) -> None:
        if self._worker is worker:
            self._worker, self._thread = None, None
            self.running_changed.emit(False)
        for sig in (worker.result, worker.state, worker.error):
            with contextlib.suppress(RuntimeError, TypeError):  # nothing connected / already deleted
                sig.disconnect()
        if thread.isFinished():
            thread.deleteLater()
            self._lingering = [(w, t) for w, t in self._lingering if not _finished(t)]
        else:  # still stopping (hung source): keep both alive until it ends by itself
            thread.finished.connect(thread.deleteLater)
            self._lingering.append((worker, thread))


def _finished(thread: QThread) -> bool:
    try:
        return thread.isFinished()
    except RuntimeError:  # already deleted by Qt
        return True
