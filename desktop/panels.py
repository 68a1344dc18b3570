"""Puts the side panels into the main window and wires them to its session.

Gallery panel: refreshed after every enrolment in the live view (tabbed with the unknown
people and history panels, :mod:`desktop.people_docks`); dropped image files are
enrolled under a name the user types (``LiveSession.enrol_images``). Monitor panel: fed every
shown result with the capture's counters. Settings: the dialog saves to QSettings; the session
is reconfigured and rebuilds its recognizer on the next start (a running source is restarted).
Panels talk to the window's public API and its ``session``, never to its private fields.
"""
from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QInputDialog, QMessageBox

from desktop.gallery_panel import GalleryPanel
from desktop.monitor_panel import MonitorPanel
from desktop.people_docks import attach_people_panels
from desktop.pool import run_in_pool
from desktop.settings import Settings
from desktop.settings_dialog import SettingsDialog
from engine.util.rate import RateMeter


def settings_recognizer_factory(settings: Settings, multi: bool = False):
    """A recognizer factory built from the saved settings (the real-time preset's tree); ``multi``:
    for the grid's several sources (:func:`engine.multi.multi_runtime`)."""
    def factory():
        from engine.recognizer import Recognizer

        config = settings.to_configs().recognizer
        if multi:
            from engine.multi import multi_runtime

            config = dataclasses.replace(config, runtime=multi_runtime(config.runtime))
        return Recognizer.from_config(config)
    return factory


def attach_panels(win) -> tuple[GalleryPanel, MonitorPanel]:
    session = win.session
    gallery_panel = GalleryPanel(session.gallery, win)
    monitor = MonitorPanel(win)
    gallery_dock = win.add_dock(gallery_panel, "Gallery")
    win.add_dock(monitor, "Monitor", area=Qt.DockWidgetArea.BottomDockWidgetArea)
    attach_people_panels(win, gallery_panel, gallery_dock)  # unknowns + history, "Not NAME" in the live view
    win.gallery_changed.connect(gallery_panel.refresh)
    # the window may open its gallery after the panels exist (a first start that failed, a reload)
    def rebind() -> None:
        if gallery_panel.gallery is not session.gallery:
            gallery_panel.set_gallery(session.gallery)

    win.engine_ready.connect(rebind)
    gallery_panel.gallery_changed.connect(win.gallery_changed_elsewhere)
    shown = RateMeter(window_s=1.2)

    def on_result(r) -> None:
        shown.tick()
        monitor.add_result(r, session.capture_stats(), shown.rate() if len(shown) > 1 else None)

    win.result_ready.connect(on_result)
    win.controller.running_changed.connect(lambda running: monitor.mark_gap() if not running else None)

    def on_files(paths: list[str]) -> None:
        if session.gallery is None or not win.ensure_engine():
            return
        name, ok = QInputDialog.getText(win, "Enrol images", f"Name for the person in {len(paths)} image(s):")
        if not ok or not name.strip():
            return
        # Detection and embedding run on a pool thread (the photo recognizer is built here, on the
        # GUI thread, because the session's state belongs to it); the one-transaction write runs
        # back on the GUI thread, which owns the gallery connection.
        recognizer = session.photo_recognizer()
        win.notify(f"enrolling {len(paths)} image(s)…")

        def stored(batch) -> None:
            enrolled, problems = session.store_images(batch, name.strip())
            gallery_panel.refresh()
            win.gallery_changed_elsewhere()
            win.notify(f"enrolled {enrolled} face(s) as {name.strip()}", 5000)
            if problems and not enrolled:  # one line: the reason(s), each naming its file
                QMessageBox.warning(win, "Enrol images", "nothing enrolled: " + "; ".join(problems))
            elif problems:
                QMessageBox.warning(win, "Enrol images", f"enrolled {enrolled}; skipped:\n" + "\n".join(problems))

        def failed(message: str) -> None:
            win.notify("")
            QMessageBox.warning(win, "Enrol images", f"nothing enrolled: {message}")

        run_in_pool(lambda: session.prepare_images(paths, recognizer), stored, failed)

    gallery_panel.enrol_files_requested.connect(on_files)

    def open_settings() -> None:
        dialog = SettingsDialog(Settings.load(), win)

        def apply(new: Settings) -> None:
            new.save()
            running = win.controller.running
            if running:
                win.stop()
            session.configure(settings_recognizer_factory(new), new.to_configs().pipeline)
            if running:
                win.start()
            win.notify("settings saved", 3000)

        dialog.changed.connect(apply)
        dialog.open()

    action = QAction("&Settings…", win)
    action.triggered.connect(open_settings)
    win.menuBar().addAction(action)
    return gallery_panel, monitor
