"""A long run sees gallery changes made by other processes: enrolments, deletions, imports.

``facescope run`` holds its gallery open for days; people are enrolled, deleted (erasure) or a
whole gallery imported (``gallery import --replace``, docs/scaling.md) by other processes
meanwhile. :class:`GalleryWatch` asks SQLite whether another connection committed (``PRAGMA
data_version``: no file read, microseconds) at most every ``every_s`` seconds and then reloads the
in-memory index (:meth:`Gallery.refresh`, one read transaction). So an erased person stops being
named within about a second, without a restart.

A reload can renumber people (an import with ``--replace`` rebuilds the persons table), so a
track's vote for person 3 may now point at someone else: :meth:`GalleryWatch.poll` returns the
person ids whose name changed or vanished, and the caller makes tracks labelled with them start
their identity over (``Pipeline.forget_people``). A gallery that can no longer be read the same
way (another embedder's import, a damaged file) keeps the index loaded before, and says why once.
"""
from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

from engine.gallery.errors import GalleryError

log = logging.getLogger(__name__)
POLL_S = 1.0  # default poll interval: an erasure made elsewhere applies within about a second


class GalleryWatch:
    """``poll()`` once per loop turn on the thread that owns ``gallery`` (its SQLite connection)."""

    def __init__(self, gallery, every_s: float | None = None, say: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        every_s = POLL_S if every_s is None else every_s
        if not every_s > 0:
            raise ValueError(f"gallery poll interval must be > 0 s, got {every_s}")
        self.gallery, self.every_s, self._clock = gallery, float(every_s), clock
        self._say = say or log.warning
        self._next = clock()  # the first poll looks at once
        self._last_error: str | None = None
        self.reloads = 0

    def poll(self) -> set[int] | None:
        """None when nothing was reloaded; else the person ids whose name changed or vanished
        (empty when people were only added or faces changed)."""
        now = self._clock()
        if now < self._next:
            return None
        self._next = now + self.every_s
        before = self.gallery.index.names
        try:
            changed = self.gallery.refresh()
        except (GalleryError, sqlite3.Error) as exc:  # the old index stays: recognition goes on
            text = f"gallery not reloaded, still using the people loaded before: {exc}"
            if text != self._last_error:
                self._say(text)
                self._last_error = text
            return None
        self._last_error = None
        if not changed:
            return None
        self.reloads += 1
        after = self.gallery.index.names
        return {pid for pid, name in before.items() if after.get(pid) != name}
