"""Events per second over a sliding time window (capture FPS, engine FPS, display FPS)."""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RateMeter:
    """Rate of :meth:`tick` calls over the last ``window_s`` seconds of a monotonic clock.

    ``rate()`` is ``(n - 1) / (t_last - t_first)`` over the ``n`` ticks inside the window
    ending *now*: steady at a constant rate, and it falls to 0.0 within ``window_s`` of a
    stall instead of freezing at the last value. Fewer than two ticks in the window -> 0.0.
    Trade-off: a longer window is steadier but reacts more slowly to a change of rate.

    ``clock`` is :func:`time.perf_counter` (monotonic, the clock frame timestamps use);
    ``tick(t)`` / ``rate(now)`` take explicit times from that clock, e.g. a frame's capture
    time. At most ``max_events`` ticks are kept (bounds memory at very high rates).
    Not thread-safe: a meter shared by threads must be guarded by the owner's lock.
    """

    def __init__(self, window_s: float = 2.0, *, max_events: int = 1024,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        if max_events < 2:
            raise ValueError(f"max_events must be >= 2, got {max_events}")
        self.window_s = float(window_s)
        self._clock = clock
        self._times: deque[float] = deque(maxlen=int(max_events))

    def tick(self, t: float | None = None) -> None:
        """Record one event at time ``t`` (default: now)."""
        t = self._clock() if t is None else float(t)
        self._times.append(t)
        self._drop_before(t - self.window_s)

    def rate(self, now: float | None = None) -> float:
        """Events per second in the window ending at ``now`` (default: the clock's now)."""
        now = self._clock() if now is None else float(now)
        self._drop_before(now - self.window_s)
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def reset(self) -> None:
        """Forget every tick (e.g. when a source restarts)."""
        self._times.clear()

    def __len__(self) -> int:
        """Ticks currently held (inside the window as of the last tick or rate call)."""
        return len(self._times)

    def _drop_before(self, start: float) -> None:
        while self._times and self._times[0] < start:
            self._times.popleft()
