"""Enrolment from the live view: click (or Ctrl+E) -> dialog -> ``LiveSession.enrol``.

The Qt half of enrolment only: the dialog shows the crop the pipeline already made for the
track (``session.sample``); the session collects the pipeline's crops and embeddings on the
worker thread, and a 100 ms timer calls ``session.poll()``, which writes finished enrolments to the gallery (GUI
thread: the SQLite connection lives here) and relabels the track. No model runs here.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from desktop.enrol_dialog import EnrolDialog

POLL_MS = 100


class EnrolmentController(QObject):
    """Asks for a name and hands the request to the window's session.

    ``finished(object)``: an ``engine.live.Enrolment`` that is done or failed (GUI thread).
    """

    finished = Signal(object)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.poll)

    @property
    def session(self):
        return self.window.session

    def enrol_track(self, track_id: int, name: str | None = None,
                    collect: tuple[int, float] | None = None) -> str | None:
        """Enrol the face of ``track_id`` in the newest shown frame; asks for the name (and the
        best-K option) unless ``name`` is given. ``collect=(k, seconds)`` enrols the best ``k``
        frames of the track over the next ``seconds``. Returns the name (None if cancelled)."""
        win, r = self.window, self.window.latest
        if r is None or self.session.recognizer is None:
            return None
        hit = (r.faces.track_ids == track_id).nonzero()[0]
        if hit.size == 0:
            win.notify(f"face #{track_id} is no longer in view", 3000)
            return None
        if self.session.gallery is None:
            win.show_error("no gallery is open (start the app with --gallery)")
            return None
        if name is None:
            sample = self.session.sample(track_id)
            names = [p.name for p in self.session.gallery.persons()]
            self._show_enrolling({track_id})
            choice = EnrolDialog.ask_choice(None if sample is None else sample.crop, names, win,
                                            track_id=track_id, suggestion=r.faces.names[int(hit[0])])
            self._show_enrolling()
            if choice is None or not choice.name:
                return None
            name = choice.name
            if choice.collect and collect is None:
                collect = (choice.k, choice.seconds)
        if not name:
            return None
        k, seconds = collect if collect is not None else (1, 0.0)
        self.collect_best(track_id, name, k, seconds)
        return name

    def collect_best(self, track_id: int, name: str, k: int = 1, seconds: float = 0.0) -> None:
        """Enrol the best ``k`` faces of ``track_id`` over ``seconds`` (drawn blue meanwhile)."""
        self.session.enrol(track_id, name, k, seconds)
        if seconds > 0:
            self.window.notify(f"collecting the best {k} frames of face #{track_id} for {seconds:g} s…")
        self._show_enrolling()
        self._timer.start()
        self.poll()  # no source running: it is already finished

    def poll(self) -> None:
        win = self.window
        for job in self.session.poll():
            if job.status == "done":
                win.notify(job.message, 4000)
                if job.result is not None:  # the frozen last frame, relabelled
                    win.show_result(job.result)
                win.gallery_changed.emit()
            else:  # the engine is fine (e.g. the face left): a warning, not an engine error
                win.notify(job.message, 5000)
                win.show_warning(job.message)
            self.finished.emit(job)
        self._show_enrolling()
        if not self.session.enrolling:
            self._timer.stop()

    def _show_enrolling(self, extra: set[int] = frozenset()) -> None:
        self.window.view.set_enrolling(set(self.session.enrolling) | set(extra))

    def stop(self) -> None:
        self._timer.stop()
