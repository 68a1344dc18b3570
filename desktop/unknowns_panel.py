"""Unknown people: one tile per group of unknown sightings, with one-click name / merge / ignore.

A view of the engine's unknown-people lane (:mod:`engine.sightings.unknowns`) through the
window's ``LiveSession``: **Name…** enrols the group's best K crops as a new or existing person
in one transaction and relabels the live tracks (``LiveSession.name_unknown_group``);
**Merge** joins the two ticked groups; **Ignore** hides a group for good (it stays as an anchor
so the same face does not form a new group); "is this X?" (a group just below X's match
threshold) is accepted with one click.

Threads: every SQLite read and write stays on the GUI thread, which owns the gallery
connection. When new sightings were written, :meth:`UnknownsPanel.poll` asks the session for a
background regroup (``LiveSession.request_regroup``: a snapshot read here, DBSCAN on a worker
thread, the result written by the session's next ``flush_sightings`` on this thread) and
shows the groups again once it is applied; the crops are decoded on a pool thread
(:mod:`desktop.people_common`).
"""
from __future__ import annotations

import logging
import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from desktop.group_tile import GroupTile
from desktop.guard import GuardedPanel
from desktop.people_common import ask_person, decode_in_pool

log = logging.getLogger(__name__)
SHOW_K = 5  # crops per tile
NAME_K = 5  # crops enrolled when a group is named
BUSY_SHARE = 50  # automatic regroups keep the GUI thread's share of their cost at ~1/50
PAGE = 24  # tiles built per page: ~5 ms each on a busy 2-core CPU, so thousands of groups never block


class UnknownsPanel(GuardedPanel, QWidget):
    """Tiles of the session's unknown groups. ``gallery_changed()`` after a group was named (a
    person was created or got faces); ``message(str)`` short notes for the status bar."""

    gallery_changed = Signal()
    message = Signal(str)

    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.tiles: dict[int, GroupTile] = {}
        self.last_refresh_ms = 0.0  # GUI-thread time of the last refresh (regroup included)
        self.shown = PAGE  # tiles shown at most (newest activity first); "Show more" adds a page
        self.threshold: float | None = None  # "is this X?" is measured against this; None: the recognizer's
        self._seen_written = -1
        self._seen_regroup = None  # the session's last_regroup shown
        self._want_regroup = False
        self._next_regroup = 0.0  # monotonic time before which poll() starts no regroup
        self.merge_button = QPushButton("Merge ticked")
        self.merge_button.setToolTip("Join the two ticked groups into one")
        self.merge_button.clicked.connect(lambda _=False: self.merge_selected())
        self.refresh_button = QPushButton("Regroup")
        self.refresh_button.setToolTip("Regroup the unknown sightings now")
        self.refresh_button.clicked.connect(lambda _=False: self.regroup())
        self.status = QLabel("No gallery open")
        bar = QHBoxLayout()
        bar.addWidget(self.merge_button)
        bar.addWidget(self.refresh_button)
        bar.addStretch(1)
        self._box = QWidget()
        self._tiles_layout = QVBoxLayout(self._box)
        self._tiles_layout.setContentsMargins(0, 0, 0, 0)
        self.more_button = QPushButton()
        self.more_button.clicked.connect(lambda _=False: self.show_more())
        self.more_button.setVisible(False)
        self._tiles_layout.addWidget(self.more_button)
        self._tiles_layout.addStretch(1)
        self._box.setStyleSheet("QLabel#crop { background: #222; }")  # one sheet, not one per label
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._box)
        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(scroll, 1)
        lay.addWidget(self.status)
        self._update_buttons()

    # ------------------------------------------------------------------ reading
    def poll(self) -> bool:
        """Timer (GUI thread): new sightings written -> ask for a background regroup; a regroup
        applied since the last look -> show the groups again (True)."""
        s = self.session
        if s.gallery is None:
            return False
        if s.sightings_written != self._seen_written:
            self._seen_written = s.sightings_written
            self._want_regroup = True
        shown = False
        # the applied regroup is shown before the next one starts: the other way round, with
        # sightings written at every tick, a regroup was always running and the tiles never refreshed
        if s.last_regroup is not self._seen_regroup and not s.regrouping:
            self.refresh()
            # what this cycle held the GUI thread (snapshot + apply + refresh) sets the pause before
            # the next automatic one: at most 1/BUSY_SHARE of the GUI thread (20,000 sightings: ~1 min)
            held = getattr(s, "regroup_blocked_s", 0.0) + self.last_refresh_ms / 1000.0
            self._next_regroup = time.monotonic() + held * BUSY_SHARE
            shown = True
        if self._want_regroup and not s.regrouping and time.monotonic() >= self._next_regroup:
            self.regroup()
        return shown

    def regroup(self) -> bool:
        """Ask the session for a background regroup (the groups show again when it is applied)."""
        started = self.session.request_regroup()
        if started:
            self._want_regroup = False
            self.status.setText(self.status.text().split(" · ")[0] + " · regrouping…")
        return started

    def refresh(self) -> None:
        """Show the newest ``shown`` groups as stored: a tile whose group did not change is kept;
        new tiles' crops are read here (JPEG bytes) and decoded on a pool thread."""
        t0 = time.perf_counter()
        gallery = self.session.gallery
        self._seen_regroup = self.session.last_regroup
        infos = []
        if gallery is not None:
            infos = self._guard("Reading the unknown groups", lambda: self._read(gallery)) or []
        created = self._rebuild(infos)
        jpegs = {}
        if created and gallery is not None:
            jpegs = self._guard("Reading the crops", lambda: self._jpegs(gallery, created)) or {}
        self.last_refresh_ms = 1000.0 * (time.perf_counter() - t0)
        n = sum(i.sightings for i in infos)
        hidden = len(infos) - len(self.tiles)
        self.status.setText("No gallery open" if gallery is None else f"{len(infos)} unknown group(s), {n} "
                            f"sighting(s)" + (f" · newest {len(self.tiles)} shown" if hidden > 0 else ""))
        self.more_button.setVisible(hidden > 0)
        self.more_button.setText(f"Show {min(PAGE, hidden)} more of {hidden} older group(s)")
        if jpegs:
            decode_in_pool(jpegs, lambda images: self._crops_ready(created, images),
                           lambda msg: log.warning("group crops not decoded: %s", msg))

    def show_more(self) -> None:
        self.shown += PAGE
        self.refresh()

    def _read(self, gallery) -> list:
        from engine.sightings import unknowns

        rec = self.session.recognizer
        threshold = self.threshold if self.threshold is not None else None if rec is None else rec.threshold
        return unknowns.groups(gallery, threshold, best_k=SHOW_K)

    @staticmethod
    def _jpegs(gallery, tiles: list[GroupTile]) -> dict[int, bytes]:
        from engine.sightings import store

        conn = gallery.db.conn
        return {sid: store.crop_jpeg(conn, sid) for t in tiles for sid in t.info.best}

    def _rebuild(self, infos: list) -> list[GroupTile]:
        """Tiles for the first ``shown`` groups, in order; returns the tiles made new."""
        old, self.tiles, created = self.tiles, {}, []
        for tile in old.values():
            self._tiles_layout.removeWidget(tile)
        for i, info in enumerate(infos[:self.shown]):
            tile = old.pop(info.id, None)
            if tile is None or tile.info != info:
                ticked = tile is not None and tile.check.isChecked()
                if tile is not None:
                    tile.deleteLater()
                tile = GroupTile(info, self)
                tile.check.setChecked(ticked)
                created.append(tile)
            self._tiles_layout.insertWidget(i, tile)
            self.tiles[info.id] = tile
        for tile in old.values():  # groups gone (named, merged, ignored, regrouped away) or paged out
            tile.deleteLater()
        self._update_buttons()
        return created

    def _crops_ready(self, tiles: list[GroupTile], images: dict) -> None:
        for tile in tiles:
            if self.tiles.get(tile.info.id) is tile:  # still shown (not replaced by a newer refresh)
                tile.set_crops(images)

    @property
    def crops_shown(self) -> int:
        return sum(t.crops_set for t in self.tiles.values())

    def group_ids(self) -> list[int]:
        """Group ids shown, in order (newest activity first)."""
        return list(self.tiles)

    def selected_groups(self) -> list[int]:
        return [gid for gid, t in self.tiles.items() if t.check.isChecked()]

    def _update_buttons(self) -> None:
        self.merge_button.setEnabled(len(self.selected_groups()) == 2)

    # ------------------------------------------------------------------ actions
    def name_group(self, group_id: int, name: str | None = None) -> int | None:
        """Enrol the group as ``name`` (asked for when None); the person id, or None."""
        gallery = self.session.gallery
        if gallery is None or group_id not in self.tiles:
            return None
        if name is None:
            info = self.tiles[group_id].info
            names = self._guard("Reading the gallery", lambda: [p.name for p in gallery.persons()]) or []
            name = self._ask_name(f"Name group {group_id}", f"Who are the {info.sightings} sighting(s) of "
                                  f"group {group_id}? (a new name or an existing person)", names,
                                  info.suggestion[0] if info.suggestion else "")
            if not name:
                return None
        done = self._guard("Naming the group", lambda: self.session.name_unknown_group(group_id, name, NAME_K))
        if done is None:
            return None
        pid, fids, tracks = done
        live = f"; {len(tracks)} live face(s) relabelled" if tracks else ""
        self.message.emit(f"group {group_id} enrolled as {name} ({len(fids)} face(s)){live}")
        self.refresh()
        self.gallery_changed.emit()
        return pid

    def accept_suggestion(self, group_id: int) -> int | None:
        tile = self.tiles.get(group_id)
        if tile is None or tile.info.suggestion is None:
            return None
        return self.name_group(group_id, tile.info.suggestion[0])

    def merge_selected(self) -> int | None:
        """Merge the two ticked groups (into the one with more sightings); sightings moved, or None."""
        from engine.sightings import unknowns

        ids = self.selected_groups()
        gallery = self.session.gallery
        if len(ids) != 2 or gallery is None:
            return None
        keep, other = sorted(ids, key=lambda g: (-self.tiles[g].info.sightings, g))
        moved = self._guard("Merging the groups", lambda: unknowns.merge_groups(gallery, keep, other))
        if moved is not None:
            self.message.emit(f"group {other} merged into group {keep} ({moved} sighting(s))")
            self.refresh()
        return moved

    def ignore_group(self, group_id: int) -> bool:
        from engine.sightings import unknowns

        gallery = self.session.gallery
        if gallery is None:
            return False
        ok = self._guard("Ignoring the group", lambda: unknowns.ignore_group(gallery, group_id) or True)
        if ok:
            self.message.emit(f"group {group_id} ignored: it will not be shown again")
            self.refresh()
        return bool(ok)

    # ------------------------------------------------------------------ dialogs (overridable in tests)

    def _ask_name(self, title: str, label: str, names: list[str], default: str) -> str | None:
        return ask_person(self, title, label, names, default)


