"""A long run sees gallery changes made by other processes: enrolments, deletions, imports.

``facescope run`` holds its gallery open for days; people are enrolled, deleted (erasure) or a
whole gallery imported (``gallery import --replace``, docs/scaling.md) by other processes
meanwhile. :class:`GalleryWatch` asks SQLite whether another connection committed (``PRAGMA
data_version``: no file read, microseconds) at most every ``every_s`` seconds and then reloads the
in-memory index (:meth:`Gallery.refresh`, one read transaction). So an erased person stops being
named within about a second, without a restart.

A reload can renumber people (an import with ``--replace`` makes the file a copy of another
one, ids included), so a track's vote for person 3 may now point at someone else:
:meth:`GalleryWatch.poll` returns the person ids whose votes no longer hold -- gone, or left with
none of the faces they had (renumbered; every face deleted) -- and the caller makes tracks
labelled with them start their identity over (``Pipeline.forget_people``). A rename keeps its
faces and its tracks (the name is looked up per frame), so it is not listed; nor is a person who
only gained faces. :meth:`GalleryWatch.diff` does the same comparison for changes made through
this process's own connection (an import from the desktop's gallery panel). ``names_gone`` holds
the names that the last diff found no longer in the gallery (erased, or renamed away), for what a
run published under them (retained MQTT topics: ``engine.events_out.mqtt``). A gallery that can
no longer be read the same way (another embedder's import, a damaged file) keeps the index
loaded before, and says why once.
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
        self._people = _faces_by_person(gallery.index)
        self._names = set(gallery.index.names.values())
        self.names_gone: set[str] = set()  # names the last diff found gone (erased or renamed)
        self.reloads = 0

    def poll(self) -> set[int] | None:
        """None when nothing was reloaded; else :meth:`diff` (empty when people were only added,
        renamed or given faces)."""
        now = self._clock()
        if now < self._next:
            return None
        self._next = now + self.every_s
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
        return self.diff()

    def diff(self) -> set[int]:
        """Person ids whose tracks' votes no longer hold since the last look: gone, or left with
        none of the faces (embeddings) they had then. O(faces). Also sets ``names_gone``."""
        index = self.gallery.index
        now = _faces_by_person(index)
        gone = {pid for pid, faces in self._people.items() if now.get(pid, frozenset()).isdisjoint(faces)}
        self._people = now
        names = set(index.names.values())
        self.names_gone, self._names = self._names - names, names
        return gone


def _faces_by_person(index) -> dict[int, frozenset[int]]:
    """``person_id -> {hash of each face's stored vector}`` of ``index``: a face is known by its
    embedding, not its id (an import with ``--replace`` brings the other file's face ids, which
    start at 1 in every gallery as much as here). ~0.1 s for 100,000 faces, at a reload only."""
    pids, vectors = index.person_ids, index.vectors()  # copies; the owner thread is the only writer
    n = min(len(pids), len(vectors))
    out: dict[int, set[int]] = {}
    for pid, key in zip(pids[:n].tolist(), (hash(row.tobytes()) for row in vectors[:n]), strict=True):
        out.setdefault(pid, set()).add(key)
    return {pid: frozenset(v) for pid, v in out.items()}
