"""Gallery browser/editor: persons with thumbnails, search, rename/merge/delete, faces, export/import.

Bound to an open ``engine.gallery.Gallery`` (``set_gallery``). Every gallery error is shown in a
message box, never raised. Dialogs go through small overridable methods (``_ask_text``,
``_ask_item``, ``_confirm``, ``_ask_open_path``, ``_ask_save_path``, ``_ask_import_mode``,
``_show_error``, ``_show_info``) so tests can replace them. Image files dropped on the panel are
not enrolled here: ``enrol_files_requested(list[str])`` asks the main window, which owns the
engine; ``enrol_image_files`` is the helper it can use.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QAction, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QInputDialog, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem, QMenu, QMessageBox, QPushButton, QSplitter, QVBoxLayout, QWidget)

from engine.errors import FacescopeError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jp2", ".pgm", ".ppm"})
GALLERY_FILTER = "Facescope gallery (*.db *.sqlite *.facescope);;All files (*)"
THUMB = 64
NAME_ROLE = Qt.ItemDataRole.UserRole
FACE_ROLE = Qt.ItemDataRole.UserRole


def bgr_to_qimage(image: np.ndarray) -> QImage:
    """(H, W, 3) uint8 BGR -> a QImage that owns its pixels."""
    img = np.ascontiguousarray(image, dtype=np.uint8)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8 BGR, got {img.shape}")
    h, w = img.shape[:2]
    return QImage(img.data, w, h, 3 * w, QImage.Format.Format_BGR888).copy()


def enrol_image_files(gallery, recognizer, paths: Sequence[str | Path], name: str) -> tuple[int, list[str]]:
    """Enrol the largest face of each image as ``name`` in one transaction.

    Returns (faces enrolled, problems): unreadable images and images without a face are
    reported and skipped; a gallery error (e.g. an invalid name) enrols nothing and is reported.
    """
    from engine.enrolment import prepare_enrolment

    batch = prepare_enrolment(recognizer, paths)
    if not len(batch):
        return 0, batch.problems
    try:
        ids = batch.enroll_into(gallery, name)
    except (FacescopeError, ValueError) as exc:
        return 0, [*batch.problems, f"nothing enrolled: {exc}"]
    return len(ids), batch.problems


def _image_paths(urls) -> list[str]:
    return [u.toLocalFile() for u in urls
            if u.isLocalFile() and Path(u.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES]


class GalleryPanel(QWidget):
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
            icon = self._thumbnail(p.name)
            if icon is not None:
                item.setIcon(icon)
            self.persons_list.addItem(item)
            if current is not None and p.name.casefold() == current.casefold():
                self.persons_list.setCurrentItem(item)
        self.persons_list.blockSignals(False)
        self._apply_filter(self.search.text())
        total = sum(p.face_count for p in persons)
        self.status.setText("No gallery open" if self.gallery is None else
                            f"{len(persons)} person(s), {total} face(s) · {Path(str(self.gallery.path)).name}")
        self._selection_changed()

    def _read_persons(self):
        try:  # pick up commits made by other processes (CLI) since; our own edits are already in
            self.gallery.refresh()
        except AttributeError:
            pass
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
                crop = self._guard("Reading a face", lambda f=face: self.gallery.face_crop(f.id) if f.has_crop else None)
                if crop is not None:
                    item.setIcon(QIcon(QPixmap.fromImage(bgr_to_qimage(crop))))
                self.faces_list.addItem(item)
        self.delete_face_button.setEnabled(self.faces_list.count() > 0)

    # ------------------------------------------------------------------ actions
    def _guard(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run a gallery call; show any engine/IO error in a message box and return None."""
        try:
            return fn()
        except (FacescopeError, ValueError, KeyError, OSError) as exc:
            log.warning("%s failed: %s", what, exc)
            self._show_error(f"{what} failed", str(exc))
            return None

    def _changed(self) -> None:
        self.refresh()
        self.gallery_changed.emit()

    @Slot()
    def rename_selected(self) -> None:
        name = self.selected_name()
        if name is None or self.gallery is None:
            return
        new = self._ask_text("Rename person", f"New name for {name}:", name)
        if new is None or not new.strip() or new.strip() == name:
            return
        ok = self._guard("Renaming", lambda: self.gallery.rename_person(name, new.strip()) or True)
        if ok:
            self.refresh()
            self.select_person(new.strip())
            self.gallery_changed.emit()

    @Slot()
    def merge_selected(self) -> None:
        name = self.selected_name()
        if name is None or self.gallery is None:
            return
        targets = [n for n in self.person_names() if n != name]
        if not targets:
            self._show_info("Merge", "There is nobody else to merge into.")
            return
        dst = self._ask_item("Merge person", f"Move all faces of {name} to:", targets)
        if dst is None:
            return
        if not self._confirm("Merge persons", f"Move all faces of {name} to {dst} and delete {name}?"):
            return
        if self._guard("Merging", lambda: self.gallery.merge_persons(name, dst)) is not None:
            self.refresh()
            self.select_person(dst)
            self.gallery_changed.emit()

    @Slot()
    def delete_selected(self) -> None:
        name = self.selected_name()
        if name is None or self.gallery is None:
            return
        if not self._confirm("Delete person", f"Delete {name} and all their faces? This cannot be undone."):
            return
        if self._guard("Deleting", lambda: self.gallery.delete_person(name)) is not None:
            self._changed()

    @Slot()
    def delete_selected_face(self) -> None:
        item = self.faces_list.currentItem()
        if item is None or self.gallery is None:
            return
        fid = int(item.data(FACE_ROLE))
        if not self._confirm("Delete face", f"Delete face {fid} of {self.selected_name()}?"):
            return
        if self._guard("Deleting the face", lambda: self.gallery.delete_face(fid) or True):
            self._changed()

    @Slot()
    def export_gallery(self) -> None:
        if self.gallery is None:
            return
        path = self._ask_save_path("Export gallery", GALLERY_FILTER)
        if not path:
            return
        overwrite = Path(path).exists()  # the file dialog already asked about overwriting
        if self._guard("Exporting", lambda: self.gallery.export(path, overwrite=overwrite) or True):
            self._show_info("Export", f"Gallery exported to {path}")

    @Slot()
    def import_gallery(self) -> None:
        if self.gallery is None:
            return
        path = self._ask_open_path("Import gallery", GALLERY_FILTER)
        if not path:
            return
        mode = self._ask_import_mode(path)
        if mode is None:
            return
        summary = self._guard("Importing", lambda: self.gallery.import_from(path, mode=mode))
        if summary is not None:
            self._changed()
            self._show_info("Import", f"Imported {path} ({mode}): {summary}")

    # ------------------------------------------------------------------ context menus
    def _person_menu(self, pos) -> None:
        item = self.persons_list.itemAt(pos)
        menu = QMenu(self)
        if item is not None:
            self.persons_list.setCurrentItem(item)
            for text, slot in (("Rename…", self.rename_selected), ("Merge into…", self.merge_selected),
                               ("Delete…", self.delete_selected)):
                menu.addAction(QAction(text, menu, triggered=slot))
            menu.addSeparator()
        for text, slot in (("Export gallery…", self.export_gallery), ("Import gallery…", self.import_gallery),
                           ("Refresh", self.refresh)):
            act = QAction(text, menu, triggered=slot)
            act.setEnabled(self.gallery is not None)
            menu.addAction(act)
        menu.exec(self.persons_list.viewport().mapToGlobal(pos))

    def _face_menu(self, pos) -> None:
        item = self.faces_list.itemAt(pos)
        if item is None:
            return
        self.faces_list.setCurrentItem(item)
        menu = QMenu(self)
        menu.addAction(QAction("Delete face…", menu, triggered=self.delete_selected_face))
        menu.exec(self.faces_list.viewport().mapToGlobal(pos))

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

    # ------------------------------------------------------------------ dialogs (overridable in tests)
    def _ask_text(self, title: str, label: str, text: str = "") -> str | None:
        value, ok = QInputDialog.getText(self, title, label, QLineEdit.EchoMode.Normal, text)
        return value if ok else None

    def _ask_item(self, title: str, label: str, items: list[str]) -> str | None:
        value, ok = QInputDialog.getItem(self, title, label, items, 0, False)
        return value if ok else None

    def _confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def _ask_open_path(self, title: str, filter_: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, title, "", filter_)
        return path or None

    def _ask_save_path(self, title: str, filter_: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self, title, "gallery-export.db", filter_)
        return path or None

    def _ask_import_mode(self, path: str) -> str | None:
        box = QMessageBox(QMessageBox.Icon.Question, "Import gallery",
                          f"Import {Path(path).name}:\n\nMerge — add its people and faces to this gallery.\n"
                          "Replace — this gallery becomes a copy of it (everything here is lost).", parent=self)
        merge = box.addButton("Merge", QMessageBox.ButtonRole.AcceptRole)
        replace = box.addButton("Replace", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(merge)
        box.exec()
        clicked = box.clickedButton()
        return "merge" if clicked is merge else "replace" if clicked is replace else None

    def _show_error(self, title: str, text: str) -> None:
        QMessageBox.warning(self, title, text)

    def _show_info(self, title: str, text: str) -> None:
        QMessageBox.information(self, title, text)
