"""The people half of :class:`engine.live.LiveSession` (owner-thread methods): writing the
sightings the worker collected, purging and regrouping them, "not this person" corrections, and
following gallery changes made by other processes (:meth:`PeopleMixin.watch_gallery`).

A mixin so that live.py stays about the session's threads and enrolment; it uses the session's
``gallery``, ``sighting_config``, ``_sightings_done``, ``_pending``, ``_running``, ``sample``,
``pipeline``, ``_post`` and ``relabel_latest``.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("engine.live")


def _compute(snap, pairs):
    """The regroup worker's job: the plan, then the C heap's free pages back to the OS. Its
    arrays (snapshot, similarity blocks of up to 41 MB, pairs) grow with the stored sightings;
    once glibc has raised its mmap threshold they come from the heap and, freed, stay resident:
    the window's memory rose ~15 KB per stored unknown sighting with every regroup, ~5 with the
    trim (measured with the panels driven by synthetic sightings)."""
    from engine.sightings import regrouping
    from engine.util.heap import release_free_heap

    plan = regrouping.compute(snap, None, pairs)
    release_free_heap()
    return plan


class PeopleMixin:
    _regroup_job = None  # (gallery, snapshot seconds, Future of a regrouping.Plan) while one computes
    last_regroup: dict | None = None  # the counts of the last regroup applied (any way)
    regroup_blocked_s = 0.0           # owner-thread time of the last background regroup (snapshot + apply)
    _pairs = None  # (gallery, regrouping.PairCache) of the last applied background regroup

    _watch = None  # engine.gallery.watch.GalleryWatch of the open gallery

    def watch_gallery(self) -> set[int] | None:
        """Owner thread, on a timer: reload the gallery when another process (the CLI, another
        window) committed to it, at most every ``engine.gallery.watch.POLL_S``. Tracks
        labelled with a person it removed or renumbered start their identity over, on the worker
        between two frames. Returns those person ids (empty: people only added or renamed), None
        when nothing was reloaded -- then the views have nothing to redraw."""
        watch = self._watcher()
        return None if watch is None else self._restart_tracks(watch.poll())

    def gallery_edited(self) -> set[int]:
        """Owner thread, after an edit through this session's own connection (the gallery panel's
        import with ``--replace`` renumbers people): as :meth:`watch_gallery` for what it changed."""
        watch = self._watcher()
        return set() if watch is None else self._restart_tracks(watch.diff())

    def _watcher(self):
        from engine.gallery.watch import GalleryWatch

        if self.gallery is None:
            return None
        if self._watch is None or self._watch.gallery is not self.gallery:
            self._watch = GalleryWatch(self.gallery)
        return self._watch

    def _restart_tracks(self, gone: set[int] | None) -> set[int] | None:
        if gone and self.pipeline is not None:
            pipeline = self.pipeline
            self._post(lambda: pipeline.forget_people(gone))
        if gone is not None:
            self.relabel_latest()  # stopped: the frozen frame shows the names as they are now
        return gone

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
        ``force`` or when no source runs), purge by retention when due, and apply a background
        regroup that has finished (:meth:`request_regroup`); returns how many sightings were
        written. A busy gallery keeps them for the next call (nothing is lost while the session lives)."""
        from engine.gallery.errors import GalleryBusyError, GalleryError
        from engine.sightings import store
        from engine.sightings.collector import drain

        self._finish_regroup()
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
        """Retention now; then regroup the unknowns in the background (not at open)."""
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
            self.request_regroup(full=True)

    def request_regroup(self, full: bool = False) -> bool:
        """Owner thread: regroup the unknown sightings in the background (with every purge, and on
        demand, e.g. when the unknowns panel opens). Here only a snapshot is read (0.2-0.5 s at the
        20,000-row cap on a busy 2-core CPU); DBSCAN runs on a worker thread; :meth:`poll` (``flush_sightings``) writes
        the result in one short transaction and sets :attr:`last_regroup`. A result made stale by
        an edit meanwhile (a group named, merged, ignored) is dropped and computed again. After
        the first, a regroup only compares the new sightings with the others (the last one's
        neighbour pairs are kept; same result, e.g. 0.4 s instead of 4.4 s at 20,000 on a busy
        CPU); ``full`` computes every pair again (the hourly purge does). Returns False (nothing
        started) without a gallery, when the gallery is busy, or while one runs."""
        from engine.gallery.errors import GalleryError
        from engine.sightings import regrouping

        if self.gallery is None or self._regroup_job is not None:
            return False
        t0 = time.perf_counter()
        try:
            snap = regrouping.snapshot(self.gallery)
        except GalleryError as exc:
            log.warning("unknown faces not regrouped (%s)", exc)
            return False
        pool = ThreadPoolExecutor(1, thread_name_prefix="facescope-regroup")
        pairs = None if full or self._pairs is None or self._pairs[0] is not self.gallery else self._pairs[1]
        self._regroup_job = (self.gallery, time.perf_counter() - t0, pool.submit(_compute, snap, pairs))
        pool.shutdown(wait=False)  # the thread ends with its one job
        return True

    @property
    def regrouping(self) -> bool:
        """A background regroup is computing (its result is applied by the next :meth:`poll`)."""
        return self._regroup_job is not None

    def _finish_regroup(self) -> None:
        """Owner thread: apply a finished background regroup (a stale one starts over)."""
        from engine.gallery.errors import GalleryError
        from engine.sightings import regrouping

        if self._regroup_job is None or not self._regroup_job[2].done():
            return
        (gallery, snap_s, job), self._regroup_job = self._regroup_job, None
        if self.gallery is None or self.gallery is not gallery:  # closed (or another one opened) meanwhile
            return
        try:
            plan = job.result()
        except Exception:
            log.exception("regrouping the unknown faces failed")
            return
        t0 = time.perf_counter()
        try:
            summary = regrouping.apply(self.gallery, plan)
        except GalleryError as exc:
            log.warning("unknown faces not regrouped (%s)", exc)
            return
        self.regroup_blocked_s = snap_s + time.perf_counter() - t0
        if summary is None:  # the groups were edited while it computed
            self.request_regroup()
            return
        self._pairs = (gallery, plan.pairs)
        self.last_regroup = summary

    def wait_regroup(self, timeout: float | None = None) -> dict | None:
        """Owner thread (scripts, tests): wait for the background regroup and apply it; its counts."""
        while self._regroup_job is not None:
            self._regroup_job[2].exception(timeout)  # waits; raises TimeoutError after ``timeout``
            self._finish_regroup()
        return self.last_regroup

    def regroup_unknowns(self) -> dict | None:
        """Owner thread: regroup the unknown sightings now, on this thread (scripts and the CLI;
        at the 20,000-row cap this blocks for seconds: a window uses :meth:`request_regroup`);
        the counts, or None without a gallery or when it is busy."""
        from engine.gallery.errors import GalleryError
        from engine.sightings import unknowns

        if self.gallery is None:
            return None
        try:
            self.last_regroup = unknowns.regroup(self.gallery)
        except GalleryError as exc:
            log.warning("unknown faces not regrouped (%s)", exc)
            return None
        return self.last_regroup

    # -- naming and correcting from the people panels (owner thread) ----------------------------
    def name_unknown_group(self, group_id: int, name: str, k: int = 5) -> tuple[int, list[int], list[int]]:
        """Enrol unknown group ``group_id``'s best ``k`` crops as ``name`` (new or existing
        person) in one transaction (:func:`engine.sightings.unknowns.name_group`); live tracks
        whose newest sample now matches that person take the name on the next frame instead
        of at their next re-embedding (up to ``PolicyConfig.refresh_s`` later).
        Returns (person id, new face ids, relabelled track ids)."""
        from engine.sightings import unknowns

        self._need_gallery()
        pid, fids = unknowns.name_group(self.gallery, group_id, name, k)
        return pid, fids, self._adopt_live_tracks(pid)

    def enrol_sighting(self, sighting_id: int, name: str) -> tuple[int, int, list[int]]:
        """Enrol a stored sighting's best crop and embedding as ``name`` (one transaction);
        returns (person id, face id, relabelled track ids). KeyError for an unknown sighting."""
        emb, crop, quality = self._sighting_sample(sighting_id)
        fid = self.gallery.enroll(name, emb[None, :], crops=[crop], qualities=[quality],
                                  sources=[f"sighting {int(sighting_id)}"])[0]
        pid = int(self.gallery.index.person_ids[self.gallery.index.face_ids == fid][0])
        return pid, int(fid), self._adopt_live_tracks(pid)

    def similar_sightings(self, sighting_id: int, top: int = 12) -> list[tuple[int, float]]:
        """The ``top`` stored sightings most similar to ``sighting_id`` (itself first, 1.0):
        [(sighting id, cosine)], best first (:func:`engine.sightings.store.search`)."""
        from engine.sightings import store

        emb, _, _ = self._sighting_sample(sighting_id)
        return store.search(self.gallery.db.conn, emb, self.gallery.dim, top)

    def _need_gallery(self) -> None:
        if self.gallery is None:
            raise ValueError("no gallery is open (start the app with --gallery)")

    def _sighting_sample(self, sighting_id: int):
        """(embedding (D,) float32, crop (112, 112, 3) uint8 BGR, quality) of a stored sighting."""
        from engine.sightings import store

        self._need_gallery()
        conn, sid = self.gallery.db.conn, int(sighting_id)
        ids, emb = store.embeddings(conn, self.gallery.dim, "id = ?", [sid])
        if not len(ids):
            raise KeyError(f"no sighting with id {sid}")
        row = conn.execute("SELECT quality FROM sightings WHERE id = ?", [sid]).fetchone()
        return emb[0], store.crop(conn, sid), float(row[0])

    def _adopt_live_tracks(self, person_id: int) -> list[int]:
        """Live tracks whose newest sample now matches ``person_id`` (the one open-set decision,
        :func:`engine.gallery.index.decide`) are assigned to it between two frames (now, when no
        source runs, with the frozen frame relabelled); returns their ids. One gallery search of
        the live samples (a matrix product, no model)."""
        import numpy as np

        from engine.gallery.index import decide

        with self._lock:
            samples = dict(self._samples)
        if not samples or self.recognizer is None or self.gallery is None:
            return []
        tids = list(samples)
        found = self.gallery.index.search(np.stack([samples[t].embedding for t in tids]).astype(np.float32))
        pids = decide(found[0], found[2], self.recognizer.threshold, found.negative)
        hits = [(t, float(found[2][i]), samples[t].quality) for i, t in enumerate(tids) if pids[i] == person_id]

        def assign() -> None:
            if self.pipeline is not None:
                for tid, sim, quality in hits:
                    self.pipeline.assign_identity(tid, person_id, sim, quality)
            if not self._running:
                self.relabel_latest()

        if hits:
            self._post(assign)
        return [t for t, _, _ in hits]
