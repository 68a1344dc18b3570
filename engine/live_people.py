"""The people half of :class:`engine.live.LiveSession` (owner-thread methods): writing the
sightings the worker collected, purging and regrouping them, and "not this person" corrections.

A mixin so that live.py stays about the session's threads and enrolment; it uses the session's
``gallery``, ``sighting_config``, ``_sightings_done``, ``_pending``, ``_running``, ``sample``,
``pipeline``, ``_post`` and ``relabel_latest``.
"""
from __future__ import annotations

import logging
import time

log = logging.getLogger("engine.live")


class PeopleMixin:
    def not_person(self, track_id: int, name: str) -> str:
        """Owner thread: "face #track_id is not ``name``": its newest sample (crop + embedding)
        becomes a negative of ``name`` (:mod:`engine.gallery.negatives`), and the track starts
        over as unknown; from now on matching refuses ``name`` for faces closer to that example
        than to ``name``'s own faces. Returns a message; raises KeyError/ValueError on bad input."""
        from engine.gallery.negatives import add_negative
        from engine.records import NO_ID

        if self.gallery is None:
            raise ValueError("no gallery is open (start the app with --gallery)")
        tid = int(track_id)
        sample = self.sample(tid)
        if sample is None:
            raise ValueError(f"face #{tid} has no embedded frame yet (or has left): nothing to correct")
        add_negative(self.gallery, name, sample.embedding, sample.crop)

        def unassign() -> None:
            if self.pipeline is not None:
                self.pipeline.assign_identity(tid, NO_ID, float("nan"), sample.quality)
            if not self._running:
                self.relabel_latest()

        self._post(unassign)
        return f"face #{tid} is not {name}: remembered"

    def flush_sightings(self, force: bool = False) -> int:
        """Owner thread: write the sightings finished so far (every ``flush_every_s``, or now with
        ``force`` or when no source runs) and purge by retention when due; returns how many were
        written. A busy gallery keeps them for the next call (nothing is lost while the session lives)."""
        from engine.gallery.errors import GalleryBusyError, GalleryError
        from engine.sightings import store
        from engine.sightings.collector import drain

        cfg = self.sighting_config
        if cfg is None or self.gallery is None:
            return 0
        self._pending.extend(drain(self._sightings_done))
        now = time.monotonic()
        if now >= self._next_purge:
            self._purge_sightings()
        if not self._pending or (not force and self._running and now < self._next_flush):
            return 0
        try:
            n = len(store.record(self.gallery, self._pending))
        except GalleryBusyError as exc:
            log.warning("sightings not written yet (%s); retrying", exc)
            return 0
        except GalleryError as exc:  # e.g. a read-only gallery: recognition goes on without history
            log.error("%d sightings dropped: %s", len(self._pending), exc)
            self._pending.clear()
            return 0
        self._pending.clear()
        self._next_flush = now + cfg.flush_every_s
        self.sightings_written += n
        return n

    def _purge_sightings(self, regroup: bool = True) -> None:
        """Retention now; then regroup the unknowns (not at open: up to seconds at the size cap)."""
        from engine.gallery.errors import GalleryError
        from engine.sightings import store

        cfg = self.sighting_config
        if cfg is None or self.gallery is None:
            return
        self._next_purge = time.monotonic() + cfg.retention.purge_every_s
        try:
            n = store.purge(self.gallery, cfg.retention)
        except GalleryError as exc:  # busy, or a read-only gallery
            log.warning("sightings not purged (%s); next try in %.0f s", exc, cfg.retention.purge_every_s)
            return
        if n:
            log.info("purged %d sightings past retention", n)
        self.sightings_purged += n
        if regroup:
            self.regroup_unknowns()

    def regroup_unknowns(self) -> dict | None:
        """Owner thread: regroup the unknown sightings (with every purge, and on demand, e.g. when
        the unknowns panel opens); the counts, or None without a gallery or when it is busy."""
        from engine.gallery.errors import GalleryError
        from engine.sightings import unknowns

        if self.gallery is None:
            return None
        try:
            return unknowns.regroup(self.gallery)
        except GalleryError as exc:
            log.warning("unknown faces not regrouped (%s)", exc)
            return None
