"""The gallery panel's edits (rename, merge, delete, export, import) and their dialogs.

A mixin of :class:`desktop.gallery_panel.GalleryPanel`: every gallery call goes through the
panel's ``_guard`` (errors shown, never raised); dialogs go through small overridable methods
(``_ask_text``, ``_ask_item``, ``_confirm``, ``_ask_open_path``, ``_ask_save_path``,
``_ask_import_mode``, ``_show_error``, ``_show_info``) so tests can replace them.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QMenu, QMessageBox

from desktop.guard import GuardedPanel

GALLERY_FILTER = "Facescope gallery (*.db *.sqlite *.facescope);;All files (*)"
FACE_ROLE = Qt.ItemDataRole.UserRole


class GalleryEditMixin(GuardedPanel):
    """Edit actions of the gallery panel (needs ``gallery``, ``refresh``, ``selected_name``,
    ``select_person``, ``person_names``, ``faces_list``, ``_guard``, ``gallery_changed``)."""

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
    def not_person_selected_face(self) -> bool:
        """"This face is not this person" (a wrong enrolment): the face leaves the person and is
        kept as a negative of them (:func:`engine.gallery.negatives.face_to_negative`), so faces
        like it stop matching the person."""
        from engine.gallery.negatives import face_to_negative

        item = self.faces_list.currentItem()
        name = self.selected_name()
        if item is None or name is None or self.gallery is None:
            return False
        fid = int(item.data(FACE_ROLE))
        if not self._confirm("Not this person", f"Face {fid} is not {name}: remove it from {name} and keep it "
                             f"as a negative example, so that faces like it stop matching {name}?"):
            return False
        if self._guard("Correcting the face", lambda: face_to_negative(self.gallery, fid)) is None:
            return False
        self._changed()
        return True

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
        menu.addAction(QAction(f"Not {self.selected_name()}…", menu, triggered=self.not_person_selected_face))
        menu.exec(self.faces_list.viewport().mapToGlobal(pos))

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


    def _show_info(self, title: str, text: str) -> None:
        QMessageBox.information(self, title, text)
