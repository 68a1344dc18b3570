"""Source picker helpers: webcam probing (off the GUI thread) and the recent-sources list.

Passwords: the recent list is persisted with QSettings, but a URL's password is NEVER written
there. Only the masked form (``SourceSpec.display``, ``rtsp://user:***@host/...``) is stored;
the real URL (with its password) is kept in memory for the current session only, so picking a
recent URL in a later session needs the password typed again.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable

from PySide6.QtCore import QObject, QSettings, Signal

log = logging.getLogger(__name__)

RECENT_KEY = "sources/recent"
MAX_RECENT = 8
PROBE_INDICES = range(5)


def _quiet_opencv() -> None:
    """Missing camera indices are the normal case here: keep OpenCV's per-index warnings off stderr."""
    try:
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except (ImportError, AttributeError):
        pass


def probe_webcams(indices: Iterable[int] = PROBE_INDICES, open_capture: Callable | None = None,
                  open_timeout_s: float = 1.5, read_timeout_s: float = 1.5,
                  stop: threading.Event | None = None) -> list[int]:
    """Webcam indices that open (each try bounded by ``open_timeout_s``; the reader is released
    at once). Blocking: call it off the GUI thread (see :class:`WebcamProber`)."""
    if open_capture is None:
        from engine.capture import open_capture
    _quiet_opencv()
    found = []
    for i in indices:
        if stop is not None and stop.is_set():
            break
        try:
            reader = open_capture(str(int(i)), open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s)
        except Exception as exc:  # noqa: BLE001 - no camera there
            log.debug("webcam %s: %s", i, exc)
            continue
        found.append(int(i))
        try:
            reader.release()
        except Exception:
            log.debug("release of webcam %s failed", i, exc_info=True)
    return found


class WebcamProber(QObject):
    """Runs :func:`probe_webcams` on a daemon thread; ``found(list)`` is delivered (queued) on
    the GUI thread with the indices that opened (possibly empty)."""

    found = Signal(list)

    def __init__(self, parent: QObject | None = None, **probe_kw) -> None:
        super().__init__(parent)
        self._kw = probe_kw
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        self._stop.clear()
        self.thread = threading.Thread(target=self._run, name="webcam-probe", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        try:
            cams = probe_webcams(stop=self._stop, **self._kw)
        except Exception:
            log.exception("webcam probe failed")
            cams = []
        if self._stop.is_set():
            return
        with contextlib.suppress(RuntimeError):  # the prober was deleted meanwhile
            self.found.emit(cams)


def source_spec(text: str):
    from engine.capture import parse_source

    return parse_source(text)


class RecentSources:
    """The last ``MAX_RECENT`` sources, newest first, persisted in ``settings`` under
    ``sources/recent``. Entries are display texts: URLs masked (``SourceSpec.display``), other
    sources as typed. Real URLs with passwords live only in :attr:`_secrets` (this session)."""

    def __init__(self, settings: QSettings, limit: int = MAX_RECENT) -> None:
        self.settings = settings
        self.limit = limit
        self._secrets: dict[str, str] = {}  # masked display -> real URL, memory only
        raw = settings.value(RECENT_KEY, [])
        if isinstance(raw, str):
            raw = [raw]
        self._items: list[str] = [str(x) for x in (raw or []) if str(x).strip()][:limit]

    def items(self) -> list[str]:
        return list(self._items)

    def add(self, text: str) -> str:
        """Record ``text`` (a valid source); returns its display text."""
        text = text.strip()
        spec = source_spec(text)
        shown = spec.display if spec.kind == "url" else text
        if shown != text:
            self._secrets[shown] = text
        self._items = [shown] + [x for x in self._items if x != shown]
        del self._items[self.limit:]
        self.settings.setValue(RECENT_KEY, self._items)
        self.settings.sync()
        return shown

    def resolve(self, shown: str) -> str:
        """The source text for a display text: the real URL if known this session, else itself."""
        return self._secrets.get(shown, shown)
