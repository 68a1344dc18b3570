"""Run a function off the GUI thread and hand its result back to the GUI thread.

Qt's global thread pool runs the function; a small QObject living on the GUI thread relays the
result (or the error text) through a queued signal, so callbacks always run on the GUI thread
and a worker's exception becomes a message instead of a crash. For model work the window needs
outside the live pipeline (enrolling dropped photos); the live pipeline has its own worker.
"""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QThreadPool, Signal

_alive: set[QObject] = set()  # relays waiting for their task (Qt does not keep Python objects alive)


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(str)


def run_in_pool(fn: Callable[[], object], on_done: Callable[[object], None],
                on_error: Callable[[str], None]) -> None:
    """Call ``fn()`` on a pool thread; then ``on_done(result)`` or ``on_error(message)`` on the
    GUI thread (the thread that called this, which must run a Qt event loop)."""
    relay = _Relay()
    _alive.add(relay)

    def finish() -> None:
        _alive.discard(relay)
        relay.deleteLater()

    relay.done.connect(on_done)
    relay.failed.connect(on_error)
    relay.done.connect(finish)
    relay.failed.connect(finish)

    def job() -> None:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - any worker error is shown by the GUI, never raised into Qt
            relay.failed.emit(f"{type(exc).__name__}: {exc}")
        else:
            relay.done.emit(result)

    # A plain callable, not a QRunnable subclass: PySide6 6.11 keeps the Python wrappers of some
    # finished QRunnable subclasses alive for good (~14 % of the people panels' crop decodes in a
    # GUI soak), each with its function and so its payload (a decode's JPEG bytes); a callable
    # handed to start() is released after its run (measured: 0 kept in 2,000 tasks)
    QThreadPool.globalInstance().start(job)
