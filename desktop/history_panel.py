"""History: recent sightings with their best crops, filtered by person, source and time range.

Open a sighting (select it; buttons or right-click) to **enrol** it as a person
(``LiveSession.enrol_sighting``), **correct** it ("not this person": its crop and embedding
become a negative of the person it was labelled, and it turns unknown,
:func:`engine.gallery.negatives.not_person_sighting`), or **find similar** sightings
(``LiveSession.similar_sightings``, one matrix product over the stored embeddings).

Threads: rows and JPEG bytes are read on the GUI thread (it owns the gallery connection;
at most ``LIMIT`` rows), the crops are decoded on a pool thread.
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.guard import GuardedPanel
from desktop.people_common import CROP, ask_person, decode_in_pool, short_source, thumb, when

log = logging.getLogger(__name__)
ID_ROLE = Qt.ItemDataRole.UserRole
LIMIT = 200  # rows shown at most (newest first)
ICON_CACHE = 2 * LIMIT  # decoded crops kept, least recently shown dropped first (56x56 pixmaps, ~13 KB each):
# a bound near what is shown, since new sightings arrive all day (2000 kept: +26 MB before the old clear-all)
ALL, UNKNOWN = "All people", "Unknown only"
RANGES = (("Last hour", 3600.0), ("Last 24 hours", 86400.0), ("Last 7 days", 7 * 86400.0),
          ("Last 30 days", 30 * 86400.0), ("Any time", None))


class HistoryPanel(GuardedPanel, QWidget):
    """``gallery_changed()`` after an enrolment or a correction made here; ``message(str)`` notes."""

    gallery_changed = Signal()
    message = Signal(str)

    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.rows: dict[int, Any] = {}  # sighting id -> SightingRow shown
        self.similar_to: int | None = None  # showing "similar to" this sighting instead of the filter
        self.last_refresh_ms = 0.0
        self._seen_written = -1
        self._icons: OrderedDict[tuple, QIcon] = OrderedDict()  # (sighting id, first_seen) -> its crop's icon
        self.person_combo = QComboBox()
        self.person_combo.addItems([ALL, UNKNOWN])
        self.source_edit = QLineEdit(placeholderText="Source contains…", clearButtonEnabled=True)
        self.range_combo = QComboBox()
        for text, _ in RANGES:
            self.range_combo.addItem(text)
        self.range_combo.setCurrentIndex(1)
        self.person_combo.currentIndexChanged.connect(lambda *_: self.show_filtered())
        self.range_combo.currentIndexChanged.connect(lambda *_: self.show_filtered())
        self.source_edit.editingFinished.connect(self.show_filtered)
        self.list = QListWidget()
        self.list.setIconSize(QSize(CROP, CROP))
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.list.itemDoubleClicked.connect(lambda *_: self.enrol_selected())
        self.enrol_button = QPushButton("Enrol as…")
        self.enrol_button.clicked.connect(lambda _=False: self.enrol_selected())
        self.not_button = QPushButton("Not this person")
        self.not_button.setToolTip("This sighting is not the person it was labelled: remember it as a negative")
        self.not_button.clicked.connect(lambda _=False: self.not_person_selected())
        self.similar_button = QPushButton("Find similar")
        self.similar_button.clicked.connect(lambda _=False: self.find_similar())
        self.back_button = QPushButton("Back to the filter")
        self.back_button.clicked.connect(lambda _=False: self.show_filtered())
        filters = QHBoxLayout()
        filters.addWidget(self.person_combo, 2)
        filters.addWidget(self.source_edit, 2)
        filters.addWidget(self.range_combo, 1)
        buttons = QHBoxLayout()
        for b in (self.enrol_button, self.not_button, self.similar_button, self.back_button):
            buttons.addWidget(b)
        self.status = QLabel("No gallery open")
        lay = QVBoxLayout(self)
        lay.addLayout(filters)
        lay.addWidget(self.list, 1)
        lay.addLayout(buttons)
        lay.addWidget(self.status)
        self._update_buttons()

    # ------------------------------------------------------------------ filters and reading
    def set_filter(self, person: str | None = None, source: str = "", range_s: float | None = None) -> None:
        """``person``: a name, ``UNKNOWN`` or None (everyone); ``range_s``: one of ``RANGES``' spans."""
        self._names()
        self.person_combo.blockSignals(True)
        self.person_combo.setCurrentText(person or ALL)
        self.person_combo.blockSignals(False)
        self.source_edit.setText(source)
        self.range_combo.blockSignals(True)
        self.range_combo.setCurrentIndex([r for _, r in RANGES].index(range_s))
        self.range_combo.blockSignals(False)
        self.show_filtered()

    def poll(self) -> bool:
        """Refresh when sightings were written since the last look (not while showing similar ones)."""
        if self.session.gallery is None or self.session.sightings_written == self._seen_written:
            return False
        if self.similar_to is None:
            self.show_filtered()
        return True

    def show_filtered(self) -> None:
        """The newest ``LIMIT`` sightings that pass the filters."""
        from engine.sightings import store

        self.similar_to = None
        self._seen_written = self.session.sightings_written
        person = self.person_combo.currentText()
        span = RANGES[self.range_combo.currentIndex()][1]
        kw = {"since": None if span is None else time.time() - span, "source": self.source_edit.text().strip() or None,
              "person": None if person in (ALL, UNKNOWN) else person, "unknown": person == UNKNOWN, "limit": LIMIT}
        self._show(lambda conn: [(r, None) for r in store.list_sightings(conn, **kw)])

    def find_similar(self, sighting_id: int | None = None, top: int = 12) -> None:
        """Show the sightings most similar to ``sighting_id`` (default: the selected one), best first."""
        from engine.sightings import store

        sid = self.selected_id() if sighting_id is None else int(sighting_id)
        if sid is None:
            return

        def read(conn):
            hits = self.session.similar_sightings(sid, top)
            rows = {r.id: r for r in store.list_sightings(conn, ids=[i for i, _ in hits])}
            return [(rows[i], s) for i, s in hits if i in rows]

        self.similar_to = sid
        if not self._show(read):
            self.similar_to = None
            self._update_buttons()

    def _show(self, read: Callable) -> bool:
        t0 = time.perf_counter()
        self.list.clear()
        self.rows = {}
        gallery = self.session.gallery
        if gallery is None:
            self.status.setText("No gallery open")
            self._update_buttons()
            return False
        self._names()
        got = self._guard("Reading the history", lambda: self._read(read, gallery.db.conn))
        rows, jpegs = got if got is not None else ([], {})
        for r, sim in rows:
            who = r.name or ("unknown" + (f" (group {r.group_id})" if r.group_id is not None else ""))
            score = f" · similarity {sim:.2f}" if sim is not None else ""
            item = QListWidgetItem(f"{who}{score}\n{when(r.first_seen)} – {when(r.last_seen, False)} · "
                                   f"{r.frames} frames · {short_source(r.source)}")
            item.setData(ID_ROLE, r.id)
            item.setToolTip(f"sighting {r.id}, quality {r.quality:.2f}\n{r.source}")
            if (r.id, r.first_seen) in self._icons:  # a crop never changes: decoded once per sighting
                self._icons.move_to_end((r.id, r.first_seen))
                item.setIcon(self._icons[r.id, r.first_seen])
            self.list.addItem(item)
            self.rows[r.id] = r
        self.last_refresh_ms = 1000.0 * (time.perf_counter() - t0)
        what = f"similar to sighting {self.similar_to}" if self.similar_to is not None else "shown"
        self.status.setText(f"{len(rows)} sighting(s) {what}" if got is not None else "history unavailable")
        if jpegs:
            decode_in_pool(jpegs, self._crops_ready,
                           lambda msg: log.warning("history crops not decoded: %s", msg))
        self._update_buttons()
        return got is not None

    def _read(self, read: Callable, conn) -> tuple[list, dict[int, bytes]]:
        from engine.sightings import store

        rows = read(conn)
        # keyed by (id, first_seen): an id freed by a purge may come back for another sighting
        return rows, {(r.id, r.first_seen): store.crop_jpeg(conn, r.id) for r, _ in rows
                      if (r.id, r.first_seen) not in self._icons}

    def _crops_ready(self, images: dict) -> None:
        self._icons.update((key, QIcon(thumb(img))) for key, img in images.items())
        while len(self._icons) > ICON_CACHE:
            self._icons.popitem(last=False)
        for i in range(self.list.count()):
            item = self.list.item(i)
            icon = self._icons.get((item.data(ID_ROLE), self.rows[item.data(ID_ROLE)].first_seen))
            if icon is not None:
                item.setIcon(icon)

    def _names(self) -> None:
        """The person filter lists the gallery's current names (the choice is kept)."""
        gallery = self.session.gallery
        names = [] if gallery is None else [p.name for p in self._guard("Reading the gallery", gallery.persons) or []]
        current = self.person_combo.currentText()
        self.person_combo.blockSignals(True)
        self.person_combo.clear()
        self.person_combo.addItems([ALL, UNKNOWN, *names])
        self.person_combo.setCurrentText(current if current in (ALL, UNKNOWN, *names) else ALL)
        self.person_combo.blockSignals(False)

    def sighting_ids(self) -> list[int]:
        return [self.list.item(i).data(ID_ROLE) for i in range(self.list.count())]

    def selected_id(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else int(item.data(ID_ROLE))

    def select(self, sighting_id: int) -> bool:
        for i in range(self.list.count()):
            if self.list.item(i).data(ID_ROLE) == sighting_id:
                self.list.setCurrentRow(i)
                return True
        return False

    def _update_buttons(self) -> None:
        row = self.rows.get(self.selected_id()) if self.selected_id() is not None else None
        self.enrol_button.setEnabled(row is not None)
        self.similar_button.setEnabled(row is not None)
        self.not_button.setEnabled(row is not None and row.name is not None)
        self.not_button.setText(f"Not {row.name}" if row is not None and row.name else "Not this person")
        self.back_button.setVisible(self.similar_to is not None)

    # ------------------------------------------------------------------ actions
    def enrol_selected(self, name: str | None = None) -> int | None:
        """Enrol the selected sighting's crop as ``name`` (asked for when None); the person id."""
        sid = self.selected_id()
        gallery = self.session.gallery
        if sid is None or gallery is None:
            return None
        row = self.rows[sid]
        if name is None:
            names = [p.name for p in self._guard("Reading the gallery", gallery.persons) or []]
            name = self._ask_name(f"Enrol sighting {sid}", "Enrol this face as (a new name or an existing "
                                  "person):", names, row.name or "")
            if not name:
                return None
        done = self._guard("Enrolling the sighting", lambda: self.session.enrol_sighting(sid, name))
        if done is None:
            return None
        self.message.emit(f"sighting {sid} enrolled as {name}")
        self.gallery_changed.emit()
        return done[0]

    def not_person_selected(self) -> bool:
        """"The selected sighting is not the person it is labelled": stored as a negative."""
        from engine.gallery.negatives import not_person_sighting

        sid = self.selected_id()
        row = self.rows.get(sid) if sid is not None else None
        gallery = self.session.gallery
        if row is None or row.name is None or gallery is None:
            return False
        if self._guard("Correcting the sighting", lambda: not_person_sighting(gallery, sid, row.name)) is None:
            return False
        self.message.emit(f"sighting {sid} is not {row.name}: remembered")
        self.gallery_changed.emit()
        if self.similar_to is None:
            self.show_filtered()
        return True

    def _menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        self.list.setCurrentItem(item)
        self.context_menu().exec(self.list.viewport().mapToGlobal(pos))

    def context_menu(self) -> QMenu:
        """The selected sighting's actions (the buttons' twins)."""
        menu = QMenu(self)
        for button, slot in ((self.enrol_button, self.enrol_selected), (self.not_button, self.not_person_selected),
                             (self.similar_button, self.find_similar)):
            act = QAction(button.text(), menu, triggered=lambda _=False, s=slot: s())
            act.setEnabled(button.isEnabled())
            menu.addAction(act)
        return menu

    # ------------------------------------------------------------------ dialogs (overridable in tests)

    def _ask_name(self, title: str, label: str, names: list[str], default: str) -> str | None:
        return ask_person(self, title, label, names, default)

