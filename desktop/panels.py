"""Puts the side panels into the main window and wires them to it.

Gallery panel: refreshed after every enrolment in the live view; dropped image files are
enrolled under a name the user types. Monitor panel: fed every shown result with the capture's
counters. Settings: the dialog saves to QSettings; the engine is rebuilt with them on the next
start (a running source is restarted).
"""
from __future__ import annotations

import time

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QInputDialog, QMessageBox

from desktop.gallery_panel import GalleryPanel, enrol_image_files
from desktop.monitor_panel import MonitorPanel
from desktop.settings import Settings, SettingsDialog


def settings_recognizer_factory(settings: Settings):
    """A recognizer factory for MainWindow built from the saved settings."""
    def factory():
        import dataclasses

        from engine.recognizer import Recognizer
        from engine.track import TrackerConfig

        cfg = settings.to_configs()
        detector = cfg.detector
        if detector.score_threshold is None:  # live video: keep ByteTrack's low-score detections
            detector = dataclasses.replace(detector, score_threshold=TrackerConfig().low_thresh)
        return Recognizer.create(detector, cfg.embedder, cfg.runtime, cfg.match, cfg.landmarks)
    return factory


def attach_panels(win) -> tuple[GalleryPanel, MonitorPanel]:
    gallery_panel = GalleryPanel(win.gallery, win)
    monitor = MonitorPanel(win)
    from PySide6.QtCore import Qt

    win.add_dock(gallery_panel, "Gallery")
    win.add_dock(monitor, "Monitor", area=Qt.DockWidgetArea.BottomDockWidgetArea)
    win.gallery_changed.connect(gallery_panel.refresh)
    shown: list[float] = []

    def on_result(r) -> None:
        now = time.perf_counter()
        shown.append(now)
        del shown[:-30]
        fps = (len(shown) - 1) / (shown[-1] - shown[0]) if len(shown) > 1 and shown[-1] > shown[0] else None
        worker = win.controller.worker
        monitor.add_result(r, worker.capture_stats() if worker is not None else None, fps)

    win.result_ready.connect(on_result)

    def on_files(paths: list[str]) -> None:
        if win.gallery is None or not win.ensure_engine():
            return
        name, ok = QInputDialog.getText(win, "Enrol images", f"Name for the person in {len(paths)} image(s):")
        if not ok or not name.strip():
            return
        enrolled, problems = enrol_image_files(win.gallery, win.recognizer, paths, name.strip())
        gallery_panel.refresh()
        if problems:
            QMessageBox.warning(win, "Enrol images", f"enrolled {enrolled}; skipped:\n" + "\n".join(problems))

    gallery_panel.enrol_files_requested.connect(on_files)

    def open_settings() -> None:
        dialog = SettingsDialog(Settings.load(), win)

        def apply(new: Settings) -> None:
            new.save()
            win._recognizer_factory = settings_recognizer_factory(new)
            win.pipeline_config = new.to_configs().pipeline
            running = win.controller.running
            if running:
                win.stop()
            win.recognizer = None  # rebuilt with the new settings on the next start
            if running:
                win.start()
            win.statusBar().showMessage("settings saved", 3000)

        dialog.changed.connect(apply)
        dialog.open()

    action = QAction("&Settings…", win)
    action.triggered.connect(open_settings)
    win.menuBar().addAction(action)
    return gallery_panel, monitor
