"""The source toolbar and the window's actions and menus.

:class:`SourceBar`: an editable combo with the webcams found by a background probe (indices
0..4) and the recent sources (``settings``, a QSettings). Recent URLs are persisted with their
password masked; the real URL is kept in memory for this session only (see
:mod:`desktop.sources`). :func:`build_actions` gives the window its toolbar, menus and shortcuts.
"""
from __future__ import annotations

import logging

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QToolBar

from desktop.sources import RecentSources, WebcamProber

log = logging.getLogger(__name__)


class SourceBar:
    """The source combo of ``window`` (a MainWindow) and the webcam prober."""

    VIDEO_FILTER = "Videos (*.mp4 *.avi *.mkv *.mov *.webm *.m4v);;All files (*)"

    def __init__(self, window, settings: QSettings, probe_webcams: bool = True) -> None:
        self.window = window
        self.recent = RecentSources(settings)
        self.webcams: list[int] = []
        self.combo = QComboBox(window)
        self.combo.setEditable(True)
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.combo.setMinimumWidth(320)
        self.combo.setToolTip("webcams found on this machine and recent sources; or type a source")
        self.edit = self.combo.lineEdit()  # typing a source works as with a plain field
        self.edit.setPlaceholderText("webcam index (0), rtsp://… / http://… URL, or video file")
        self.edit.returnPressed.connect(lambda: window.start())
        self.refresh()
        self.prober = WebcamProber(window)
        self.prober.found.connect(self.on_webcams)
        if probe_webcams:
            self.prober.start()

    def take_spec(self, source: str | int | None = None):
        """The SourceSpec to start (``source`` or the field's text), recorded in the recent
        list; None (error shown) when there is none or it does not parse."""
        from engine.capture import parse_source

        if source is not None:
            self.edit.setText(str(source))
        text = self.recent.resolve(self.edit.text().strip())
        if not text:
            self.window.show_error("enter a source: a webcam index, a stream URL or a video file")
            return None
        try:
            spec = parse_source(text)
        except Exception as exc:  # noqa: BLE001 - a bad source is the user's to fix, not a crash
            self.window.show_error(f"bad source: {exc}")
            return None
        try:
            self.recent.add(text)
            self.refresh(self.recent.items()[0])
        except Exception:
            log.exception("updating the recent sources failed")
        return spec

    def refresh(self, current: str | None = None) -> None:
        """Fill the combo: found webcams, then recent sources (display texts, passwords masked)."""
        text = self.edit.text() if current is None else current
        combo = self.combo
        combo.blockSignals(True)
        combo.clear()
        seen = set()
        for i in self.webcams:
            combo.addItem(str(i))
            combo.setItemData(combo.count() - 1, f"webcam {i}", Qt.ItemDataRole.ToolTipRole)
            seen.add(str(i))
        for item in self.recent.items():
            if item not in seen:
                combo.addItem(item)
        combo.setCurrentIndex(-1)
        combo.setEditText(text)
        combo.blockSignals(False)

    def on_webcams(self, indices: list) -> None:
        self.webcams = [int(i) for i in indices]
        self.refresh()
        if self.webcams:
            self.window.notify(f"webcams found: {', '.join(map(str, self.webcams))}", 4000)


def build_actions(win) -> None:
    """Toolbar (source field + transport), File/Video/Panels menus and shortcuts of ``win``."""
    tb = QToolBar("Source", win)
    tb.setObjectName("source-toolbar")
    win.addToolBar(tb)

    def act(text, slot, shortcut=None, checkable=False):
        a = QAction(text, win)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        a.setCheckable(checkable)
        a.triggered.connect(slot)
        win.addAction(a)
        return a

    win.open_action = act("Open file…", win.open_file, QKeySequence.StandardKey.Open)
    win.start_action = act("Start", lambda: win.start())
    win.pause_action = act("Pause", win.toggle_pause, Qt.Key.Key_Space, checkable=True)
    win.stop_action = act("Stop", win.stop)
    win.fullscreen_action = act("Full screen", win.toggle_fullscreen, Qt.Key.Key_F, checkable=True)
    win.snapshot_action = act("Snapshot…", win.save_snapshot, "Ctrl+S")
    win.enrol_action = act("Enrol selected face…", win.enrol_selected, "Ctrl+E")
    win.quit_action = act("Quit", win.close, QKeySequence.StandardKey.Quit)
    win.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
    tb.addWidget(QLabel(" Source: "))
    tb.addWidget(win.source_bar.edit)
    for a in (win.open_action, win.start_action, win.pause_action, win.stop_action, None,
              win.snapshot_action, win.fullscreen_action):
        tb.addSeparator() if a is None else tb.addAction(a)

    menu = win.menuBar().addMenu("&File")
    for a in (win.open_action, win.snapshot_action, None, win.quit_action):
        menu.addSeparator() if a is None else menu.addAction(a)
    menu = win.menuBar().addMenu("&Video")
    for a in (win.start_action, win.pause_action, win.stop_action, None, win.enrol_action, None,
              win.fullscreen_action):
        menu.addSeparator() if a is None else menu.addAction(a)
    win.panels_menu = win.menuBar().addMenu("&Panels")
