"""The window's gallery file: File > Open gallery… / New gallery…, and what happens when the
gallery cannot be opened (damaged, another application's database, a newer version's, a missing
key): the file is left untouched, one message names it and offers to open another gallery or
create a new one, and the window goes on without a gallery meanwhile (sources still play).

A mixin of :class:`desktop.main_window.MainWindow` (uses its ``session``, ``state_label``,
``notify``, ``stop``, ``ensure_engine`` and ``controller``).
"""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMessageBox, QPushButton

log = logging.getLogger("desktop.main_window")


class GalleryFileMixin:
    """Gallery-file actions of the main window (see the module docstring)."""

    _gallery_box: QMessageBox | None = None

    def _build_gallery_actions(self) -> None:
        """File menu: Open gallery… / New gallery… (also offered when the gallery cannot be opened)."""
        self.open_gallery_action = QAction("Open gallery…", self)
        self.open_gallery_action.triggered.connect(lambda: self.choose_gallery(create=False))
        self.new_gallery_action = QAction("New gallery…", self)
        self.new_gallery_action.triggered.connect(lambda: self.choose_gallery(create=True))
        menus = [a.menu() for a in self.menuBar().actions() if a.menu() is not None]
        if menus:  # the File menu (desktop.source_bar.build_actions): after "Open file…"
            file_menu = menus[0]
            first = file_menu.actions()
            before = first[1] if len(first) > 1 else None
            file_menu.insertActions(before, [self.open_gallery_action, self.new_gallery_action])

    def _gallery_failed(self, exc: BaseException) -> None:
        """The gallery file cannot be opened (damaged, another application's database, a newer
        version's, a missing key...): the file is left untouched and forgotten for this run
        (the window goes on without a gallery, nothing retries it), and a non-modal message
        offers to open another gallery or create a new one."""
        bad = self.session.gallery_path
        self.session.gallery_path = None
        message = f"cannot open the gallery: {exc}".replace("\n", " ")
        self.last_error = message
        log.warning("%s", message)
        self._state = ("error", message)
        self.state_label.setText(f"no gallery: {message}")
        if self._gallery_box is None:
            box = QMessageBox(QMessageBox.Icon.Warning, "facescope", message, QMessageBox.StandardButton.Close, self)
            box.setWindowModality(Qt.WindowModality.NonModal)
            box.open_button = box.addButton("Open another gallery…", QMessageBox.ButtonRole.ActionRole)
            box.new_button = box.addButton("New gallery…", QMessageBox.ButtonRole.ActionRole)
            box.buttonClicked.connect(self._gallery_box_clicked)
            self._gallery_box = box
        self._gallery_box.setText(message)
        self._gallery_box.setInformativeText(
            f"{bad} was not changed. Pick another gallery, create a new one, or go on without one "
            "(File > Open gallery… later).")
        self._gallery_box.show()

    def _gallery_box_clicked(self, button: QPushButton) -> None:
        box = self._gallery_box
        if box is not None and button in (box.open_button, box.new_button):
            self.choose_gallery(create=button is box.new_button)

    def choose_gallery(self, create: bool = False) -> bool:
        """Ask for a gallery file (an existing one, or a new file's name) and open it."""
        if create:
            path, _ = QFileDialog.getSaveFileName(self, "New gallery", "gallery.db", "Gallery (*.db)")
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Open gallery", "", "Gallery (*.db);;All files (*)")
        return bool(path) and self.open_gallery(path)

    def open_gallery(self, path: str | Path) -> bool:
        """Switch to the gallery at ``path`` (created if missing): a running source is stopped,
        the current gallery closed; on failure the message offers another pick again."""
        if self.controller.running:
            self.stop()
        if self.session.gallery is not None:
            self.session.close()
        self.session.gallery_path = Path(path)
        if not self.ensure_engine():
            return False
        if self._gallery_box is not None:
            self._gallery_box.hide()
        self.notify(f"gallery: {path}", 5000)
        return True
