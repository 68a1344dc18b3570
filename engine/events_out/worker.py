"""A bounded queue drained by one daemon thread: the part every sink shares.

``put`` never blocks: when the queue holds ``maxsize`` items the oldest is dropped and counted
(for a live camera the newest events matter most). ``close`` gives the thread ``drain_s`` seconds
to send what is queued (none when the sink is failing: a dead endpoint does not hold up the exit),
then stops it; what is left is counted as dropped.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class SinkStats:
    """Counters of one sink: ``queued`` now waiting, ``sent`` delivered, ``dropped`` pushed out of a
    full queue or left at close, ``failed`` given up after the retries."""

    queued: int = 0
    sent: int = 0
    dropped: int = 0
    failed: int = 0


class QueueWorker:
    """Subclasses implement :meth:`handle` (one item, on the worker thread; may block, retry, sleep
    through :meth:`wait`) and may override :meth:`on_close`."""

    name = "sink"

    def __init__(self, maxsize: int = 1000) -> None:
        if maxsize < 1:
            raise ValueError(f"queue size must be >= 1, got {maxsize}")
        self._q: deque = deque()
        self._maxsize = maxsize
        self._cv = threading.Condition()
        self._stopping = threading.Event()
        self.stats = SinkStats()
        self._thread = threading.Thread(target=self._loop, name=f"facescope-{self.name}", daemon=True)
        self._started = False
        self._busy = False  # an item popped and still being handled

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def put(self, item) -> None:
        """Queue ``item``; O(1), never blocks on the sink."""
        with self._cv:
            if len(self._q) >= self._maxsize:
                self._q.popleft()
                self.stats.dropped += 1
            self._q.append(item)
            self.stats.queued = len(self._q)
            self._cv.notify()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` on the worker thread; True when the sink is being closed."""
        return self._stopping.wait(seconds)

    @property
    def healthy(self) -> bool:
        """False while the destination is known to fail (close() then does not wait to drain)."""
        return True

    @property
    def closing(self) -> bool:
        return self._stopping.is_set()

    def handle(self, item) -> bool:  # pragma: no cover - abstract
        """Deliver one item; True when sent, False when given up."""
        raise NotImplementedError

    def on_close(self) -> None:
        """Release the connection (worker thread stopped)."""

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._q and not self._stopping.is_set():
                    self._cv.wait()
                if self._stopping.is_set():  # closing: what is left is counted as dropped by close()
                    return
                item = self._q.popleft()
                self.stats.queued = len(self._q)
                self._busy = True
            try:
                ok = self.handle(item)
            except Exception:  # a bug in one sink must not kill the thread silently; the item is lost
                log.exception("%s: event not delivered", self.name)
                ok = False
            with self._cv:
                self._busy = False
                if ok:
                    self.stats.sent += 1
                else:
                    self.stats.failed += 1

    def close(self, drain_s: float = 5.0) -> SinkStats:
        """Send what is queued for up to ``drain_s`` seconds, then stop; returns the final counters."""
        if self._started:
            # let the thread drain, then stop it (a retry sleeping in wait() wakes up and gives up)
            self._drain_deadline(max(drain_s, 0.0))
        with self._cv:
            self.stats.dropped += len(self._q)
            self._q.clear()
            self.stats.queued = 0
        self.on_close()
        return self.stats

    def _drain_deadline(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            with self._cv:
                if not self._q and not self._busy:
                    break
            if not self.healthy:  # a dead broker or endpoint: waiting would only delay the exit
                break
            time.sleep(0.01)
        self._stopping.set()
        with self._cv:
            self._cv.notify_all()
        self._thread.join(timeout=max(end - time.monotonic(), 0.0) + 2.0)
