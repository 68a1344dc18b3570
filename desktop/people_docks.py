"""Wires the people features into the main window: the unknowns and history panels (tabbed
with the gallery panel) and "Not NAME" on a labelled face of the live view.

Every action goes through the window's ``LiveSession`` or the engine's gallery functions; the
panels tell each other (and the window, whose frozen frame is relabelled) when the gallery
changed.
"""
from __future__ import annotations

from PySide6.QtCore import QTimer

from desktop.history_panel import HistoryPanel
from desktop.unknowns_panel import UnknownsPanel
from engine.errors import FacescopeError

POLL_MS = 1000  # sightings written (every SightingConfig.flush_every_s), regroups applied, panels told


def attach_people_panels(win, gallery_panel, gallery_dock=None) -> tuple[UnknownsPanel, HistoryPanel]:
    """Add the two docks (tabbed with ``gallery_dock`` when given) and connect them; returns them
    (also kept as ``win.unknowns_panel`` and ``win.history_panel``)."""
    session = win.session
    unknowns = UnknownsPanel(session, win)
    history = HistoryPanel(session, win)
    docks = [win.add_dock(unknowns, "Unknown people"), win.add_dock(history, "History")]
    if gallery_dock is not None:
        for dock in docks:
            win.tabifyDockWidget(gallery_dock, dock)
        gallery_dock.raise_()
    win.unknowns_panel, win.history_panel = unknowns, history

    def people_changed() -> None:  # a person got faces, or a correction: every view follows
        gallery_panel.refresh()
        win.gallery_changed_elsewhere()
        if history.similar_to is None:
            history.show_filtered()

    for panel in (unknowns, history):
        panel.message.connect(lambda text: win.notify(text, 5000))
        panel.gallery_changed.connect(people_changed)
    history.gallery_changed.connect(lambda: unknowns.refresh())  # an enrolled unknown may empty a group
    gallery_panel.gallery_changed.connect(history.show_filtered)  # renames, deletes
    win.gallery_changed.connect(history.show_filtered)  # enrolments from the live view

    def engine_ready() -> None:  # the groups as stored (a regroup follows the next written sightings)
        unknowns.refresh()
        history.show_filtered()

    win.engine_ready.connect(engine_ready)
    if session.gallery is not None:  # a session opened before the window
        engine_ready()

    def not_person(track_id: int, name: str) -> None:
        try:
            text = session.not_person(track_id, name)
        except (FacescopeError, ValueError, KeyError) as exc:
            win.show_warning(f"not remembered: {exc}")
            return
        win.notify(text, 5000)
        win.gallery_changed_elsewhere()  # stopped: the frozen frame loses the name now

    win.view.not_person_requested.connect(not_person)

    def tick() -> None:  # the session writes its sightings (batched) and applies a finished regroup here
        if session.gallery is None:
            return
        session.flush_sightings()
        unknowns.poll()
        history.poll()

    win.people_timer = QTimer(win, interval=POLL_MS, timeout=tick)
    win.people_timer.start()
    return unknowns, history
