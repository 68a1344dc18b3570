"""Gallery browser/editor: persons with thumbnails, search, rename/merge/delete, faces, export/import.

Bound to an open ``engine.gallery.Gallery`` (``set_gallery``). Every gallery error is shown in a
message box, never raised; the edits and their dialogs are in :mod:`desktop.gallery_edit`.
Image files dropped on the panel are not enrolled here: ``enrol_files_requested(list[str])``
asks the window, whose session owns the engine (``LiveSession.enrol_images``).

Thumbnails load lazily: a refresh lists names and counts only (2,000 people in a few ms);
the crops of the rows in view are read and decoded in small slices from the event loop as the
list scrolls, so no refresh blocks the GUI thread for long.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.gallery_edit import FACE_ROLE, GALLERY_FILTER, GalleryEditMixin
from desktop.live_view import bgr_qimage
from engine.errors import FacescopeError
from engine.util.imagefiles import is_image_path

log = logging.getLogger(__name__)

THUMB = 64
NAME_ROLE = Qt.ItemDataRole.UserRole
THUMB_ROLE = Qt.ItemDataRole.UserRole + 1  # True once the row's thumbnail was looked for
THUMBS_PER_SLICE = 4  # thumbnails read + decoded per event-loop turn (~0.2 ms each unloaded)
__all__ = ["GALLERY_FILTER", "GalleryPanel", "bgr_to_qimage"]


def bgr_to_qimage(image: np.ndarray) -> QImage:
    """(H, W, 3) uint8 BGR -> a QImage that owns its pixels."""
    view, _ = bgr_qimage(image)
    return view.copy()


def _image_paths(urls) -> list[str]:
    return [u.toLocalFile() for u in urls
            if u.isLocalFile() and is_image_path(u.toLocalFile())]


class GalleryPanel(GalleryEditMixin, QWidget):
    """Persons list (thumbnail, name, face count) + faces of the selected person + actions."""

    enrol_files_requested = Signal(list)  # list[str] of dropped image paths
    gallery_changed = Signal()  # after any edit made here (rename/merge/delete/import)

    def __init__(self, gallery=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.gallery = None
        self.setAcceptDrops(True)

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search names…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._apply_filter)

        self.persons_list = QListWidget()
        self.persons_list.setIconSize(QSize(THUMB, THUMB))
        self.persons_list.setSelectionMode(QListWidget.SelectionMode.SingleSelection)
        self.persons_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.persons_list.customContextMenuRequested.connect(self._person_menu)
        self.persons_list.currentItemChanged.connect(lambda *_: self._selection_changed())
        self._thumb_timer = QTimer(self, singleShot=True, interval=0, timeout=self._load_visible_thumbnails)
        self.persons_list.verticalScrollBar().valueChanged.connect(lambda *_: self._thumb_timer.start())

        self.faces_label = QLabel("Faces")
        self.faces_list = QListWidget()
        self.faces_list.setViewMode(QListWidget.ViewMode.IconMode)
        self.faces_list.setIconSize(QSize(THUMB, THUMB))
        self.faces_list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.faces_list.setMovement(QListWidget.Movement.Static)
        self.faces_list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.faces_list.customContextMenuRequested.connect(self._face_menu)

        def button(text: str, slot: Callable[[], Any], tip: str) -> QPushButton:
            b = QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(lambda _=False: slot())
            return b

        self.rename_button = button("Rename…", self.rename_selected, "Rename the selected person")
        self.merge_button = button("Merge into…", self.merge_selected, "Move the person's faces to another person")
        self.delete_button = button("Delete", self.delete_selected, "Delete the person and all their faces")
        self.delete_face_button = button("Delete face", self.delete_selected_face, "Delete the selected face")
        self.export_button = button("Export…", self.export_gallery, "Save the whole gallery to a file")
        self.import_button = button("Import…", self.import_gallery, "Merge in or replace with a gallery file")
        self.refresh_button = button("Refresh", self.refresh, "Reload from the gallery file")

        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.search)
        tl.addWidget(self.persons_list, 1)
        row1 = QHBoxLayout()
        for b in (self.rename_button, self.merge_button, self.delete_button):
            row1.addWidget(b)
        tl.addLayout(row1)
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.faces_label)
        bl.addWidget(self.faces_list, 1)
        bl.addWidget(self.delete_face_button)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        row2 = QHBoxLayout()
        for b in (self.export_button, self.import_button, self.refresh_button):
            row2.addWidget(b)
        self.status = QLabel("No gallery open")
        lay = QVBoxLayout(self)
        lay.addWidget(splitter, 1)
        lay.addLayout(row2)
        lay.addWidget(self.status)
        self.set_gallery(gallery)

    # ------------------------------------------------------------------ binding
    def set_gallery(self, gallery) -> None:
        """Bind to an open Gallery (or None) and show it."""
        self.gallery = gallery
        self.refresh()

    @Slot()
    def refresh(self) -> None:
        """Reload persons (and the selected person's faces) from the gallery; keeps the selection."""
        current = self.selected_name()
        self.persons_list.blockSignals(True)
        self.persons_list.clear()
        persons = []
        if self.gallery is not None:
            persons = self._guard("Reading the gallery", self._read_persons) or []
        for p in persons:
            item = QListWidgetItem(f"{p.name}\n{p.face_count} face{'s' if p.face_count != 1 else ''}")
            item.setData(NAME_ROLE, p.name)
            item.setToolTip(f"{p.name}: {p.face_count} face(s); updated {p.updated_at}")
            item.setSizeHint(QSize(THUMB + 8, THUMB + 8))  # row height fixed before the icon arrives
            self.persons_list.addItem(item)
            if current is not None and p.name.casefold() == current.casefold():
                self.persons_list.setCurrentItem(item)
        self.persons_list.blockSignals(False)
        self._apply_filter(self.search.text())
        total = sum(p.face_count for p in persons)
        self.status.setText("No gallery open" if self.gallery is None else
                            f"{len(persons)} person(s), {total} face(s) · {Path(str(self.gallery.path)).name}")
        self._selection_changed()
        self._thumb_timer.start()

    def _visible_rows(self) -> range:
        lst = self.persons_list
        if lst.count() == 0:
            return range(0)
        top = lst.indexAt(lst.viewport().rect().topLeft()).row()
        bottom = lst.indexAt(lst.viewport().rect().bottomLeft()).row()
        top = max(top, 0)
        bottom = lst.count() - 1 if bottom < 0 else bottom
        return range(top, min(bottom + 2, lst.count()))  # one row of look-ahead

    @Slot()
    def _load_visible_thumbnails(self) -> None:
        """Decode up to THUMBS_PER_SLICE missing thumbnails of the rows in view, then yield to
        the event loop and continue (hidden rows are never decoded)."""
        if self.gallery is None:
            return
        done = 0
        for row in self._visible_rows():
            item = self.persons_list.item(row)
            if item is None or item.isHidden() or item.data(THUMB_ROLE):
                continue
            item.setData(THUMB_ROLE, True)
            icon = self._thumbnail(item.data(NAME_ROLE))
            if icon is not None:
                item.setIcon(icon)
            done += 1
            if done >= THUMBS_PER_SLICE:
                self._thumb_timer.start()  # more to do: after the pending events
                return

    def thumbnails_loaded(self) -> int:
        """Rows whose thumbnail was looked for (tests, probe)."""
        return sum(bool(self.persons_list.item(i).data(THUMB_ROLE)) for i in range(self.persons_list.count()))

    def _read_persons(self):
        self.gallery.refresh()  # pick up commits made by other processes (CLI) since; our own edits are already in
        return self.gallery.persons()

    def _thumbnail(self, name: str) -> QIcon | None:
        try:
            for face in self.gallery.faces(name):
                if face.has_crop:
                    crop = self.gallery.face_crop(face.id)
                    if crop is not None:
                        return QIcon(QPixmap.fromImage(bgr_to_qimage(crop)))
        except (FacescopeError, ValueError) as exc:
            log.warning("no thumbnail for %r: %s", name, exc)
        return None

    # ------------------------------------------------------------------ view state
    def person_names(self, visible_only: bool = False) -> list[str]:
        """Names in the list (in order); ``visible_only`` = those the search does not hide."""
        items = (self.persons_list.item(i) for i in range(self.persons_list.count()))
        return [it.data(NAME_ROLE) for it in items if not (visible_only and it.isHidden())]

    def item_for(self, name: str) -> QListWidgetItem | None:
        for i in range(self.persons_list.count()):
            it = self.persons_list.item(i)
            if it.data(NAME_ROLE).casefold() == name.casefold():
                return it
        return None

    def select_person(self, name: str) -> bool:
        item = self.item_for(name)
        if item is not None:
            self.persons_list.setCurrentItem(item)
        return item is not None

    def selected_name(self) -> str | None:
        item = self.persons_list.currentItem()
        return None if item is None else item.data(NAME_ROLE)

    def face_ids(self) -> list[int]:
        """Face ids shown for the selected person."""
        return [self.faces_list.item(i).data(FACE_ROLE) for i in range(self.faces_list.count())]

    @Slot(str)
    def _apply_filter(self, text: str) -> None:
        needle = text.strip().casefold()
        for i in range(self.persons_list.count()):
            it = self.persons_list.item(i)
            it.setHidden(bool(needle) and needle not in it.data(NAME_ROLE).casefold())
        self._thumb_timer.start()  # rows that came into view

    def _selection_changed(self) -> None:
        name = self.selected_name()
        has_person, has_gallery = name is not None, self.gallery is not None
        for b in (self.rename_button, self.merge_button, self.delete_button):
            b.setEnabled(has_person)
        for b in (self.export_button, self.import_button, self.refresh_button):
            b.setEnabled(has_gallery)
        self._show_faces(name)

    def _show_faces(self, name: str | None) -> None:
        self.faces_list.clear()
        self.faces_label.setText("Faces" if name is None else f"Faces of {name}")
        if name is not None and self.gallery is not None:
            for face in self._guard("Reading faces", lambda: self.gallery.faces(name)) or []:
                tip = f"face {face.id}, quality {face.quality if face.quality is not None else '?'}"
                item = QListWidgetItem(str(face.id))
                item.setData(FACE_ROLE, face.id)
                item.setToolTip(f"{tip}\n{face.source or ''}\n{face.created_at}")
                crop = self._guard("Reading a face",
                                   lambda f=face: self.gallery.face_crop(f.id) if f.has_crop else None)
                if crop is not None:
                    item.setIcon(QIcon(QPixmap.fromImage(bgr_to_qimage(crop))))
                self.faces_list.addItem(item)
        self.delete_face_button.setEnabled(self.faces_list.count() > 0)

    # ------------------------------------------------------------------ actions

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt override)
        md = event.mimeData()
        if md.hasUrls() and _image_paths(md.urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        md = event.mimeData()
        paths = _image_paths(md.urls()) if md.hasUrls() else []
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.enrol_files_requested.emit(paths)
