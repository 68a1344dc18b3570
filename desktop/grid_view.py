"""The tiles of several sources: one :class:`~desktop.live_view.LiveView` per source in a grid.

Each tile has a header (name, state, processed FPS, end-to-end latency) over its live view.
A double click on a tile focuses it (only that tile, full size); a double click again, or
:meth:`SourceGrid.show_all`, brings the grid back. A click on a face in any tile is re-emitted
as ``face_clicked(source name, track id)``. Views only: the window feeds results and statuses.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QMenu, QRubberBand, QVBoxLayout, QWidget

from desktop.live_view import LiveView


class SourceTile(QFrame):
    """Header + live view of one source. ``double_clicked(name)`` asks the grid to (un)focus it.

    The header's context menu holds the source's settings: ``enabled_toggled(name, on)``,
    "Draw region of interest" (the next drag on the view draws a rectangle:
    ``roi_drawn(name, (x0, y0, x1, y1))`` in [0, 1] image fractions) and ``roi_cleared(name)``."""

    double_clicked = Signal(str)
    enabled_toggled = Signal(str, bool)
    roi_drawn = Signal(str, tuple)
    roi_cleared = Signal(str)

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.header = QLabel(name, self)
        self.header.setTextFormat(Qt.TextFormat.PlainText)
        self.view = LiveView(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.header)
        layout.addWidget(self.view, 1)
        self.enabled = True
        self.drawing = False
        self._origin: QPoint | None = None
        self._band = QRubberBand(QRubberBand.Shape.Rectangle, self.view)
        self.view.installEventFilter(self)
        self.header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.header.customContextMenuRequested.connect(
            lambda pos: self.settings_menu().exec(self.header.mapToGlobal(pos)))
        self.set_status("connecting", "", float("nan"), float("nan"))

    def settings_menu(self) -> QMenu:
        """Enabled (checkable), draw / clear the region of interest."""
        menu = QMenu(self)
        on = QAction("Enabled", menu, checkable=True, checked=self.enabled)
        on.toggled.connect(self.set_enabled)
        menu.addAction(on)
        menu.addAction(QAction("Draw region of interest", menu, triggered=lambda _=False: self.start_drawing()))
        menu.addAction(QAction("Clear region of interest", menu,
                               triggered=lambda _=False: self.roi_cleared.emit(self.name)))
        return menu

    def set_enabled(self, on: bool) -> None:
        self.enabled = bool(on)
        self.view.setEnabled(self.enabled)
        self.enabled_toggled.emit(self.name, self.enabled)

    def start_drawing(self) -> None:
        """The next left drag on the view draws the region of interest (faces outside are ignored)."""
        self.drawing = True
        self.view.setCursor(Qt.CursorShape.CrossCursor)

    def finish_drawing(self, a: QPoint, b: QPoint) -> tuple | None:
        """Emit ``roi_drawn`` for the widget points ``a``..``b`` (clipped to the image)."""
        self.drawing = False
        self._band.hide()
        r = self.view.image_rect()
        size = self.view.image_size
        if r.isEmpty() or size is None:
            return None

        def frac(p: QPoint) -> tuple[float, float]:
            return (min(max((p.x() - r.x()) / r.width(), 0.0), 1.0), min(max((p.y() - r.y()) / r.height(), 0.0), 1.0))

        (x0, y0), (x1, y1) = frac(a), frac(b)
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        if box[2] - box[0] < 0.02 or box[3] - box[1] < 0.02:
            return None  # a click, not a region
        self.roi_drawn.emit(self.name, box)
        return box

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if obj is not self.view or not self.drawing:
            return False
        kind = event.type()
        if kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            self._origin = event.position().toPoint()
            self._band.setGeometry(QRect(self._origin, QSize()))
            self._band.show()
            return True
        if kind == QEvent.Type.MouseMove and self._origin is not None:
            self._band.setGeometry(QRect(self._origin, event.position().toPoint()).normalized())
            return True
        if kind == QEvent.Type.MouseButtonRelease and self._origin is not None:
            a, self._origin = self._origin, None
            self.finish_drawing(a, event.position().toPoint())
            return True
        return False

    def set_status(self, state: str, reason: str, fps: float, e2e_ms: float) -> None:
        """Header text: ``name · state · 24.8 FPS · 38 ms`` (figures only while they exist)."""
        parts = [self.name, state]
        if math.isfinite(fps) and fps > 0:
            parts.append(f"{fps:.1f} FPS")
        if math.isfinite(e2e_ms):
            parts.append(f"{e2e_ms:.0f} ms")
        self.header.setText(" · ".join(parts))
        self.header.setToolTip(reason)

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self.double_clicked.emit(self.name)
        event.accept()


class SourceGrid(QWidget):
    """Tiles in a near-square grid (2 sources: 2x1, 4: 2x2, 5-6: 3x2 ...).

    ``face_clicked(name, track_id)``: a left click inside a tracked face of a tile.
    ``focused_changed(name)``: the focused tile's name, or "" when the whole grid shows.
    ``enabled_toggled``, ``roi_drawn``, ``roi_cleared``: a tile's settings (see :class:`SourceTile`)."""

    face_clicked = Signal(str, int)
    focused_changed = Signal(str)
    enabled_toggled = Signal(str, bool)
    roi_drawn = Signal(str, tuple)
    roi_cleared = Signal(str)

    def __init__(self, names: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if not names:
            raise ValueError("a source grid needs at least one source")
        self.tiles: dict[str, SourceTile] = {}
        self.focused = ""
        self._layout = QGridLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)
        cols = math.ceil(math.sqrt(len(names)))
        for i, name in enumerate(names):
            tile = SourceTile(name, self)
            tile.double_clicked.connect(self.toggle_focus)
            tile.view.face_clicked.connect(lambda tid, n=name: self.face_clicked.emit(n, int(tid)))
            tile.enabled_toggled.connect(self.enabled_toggled)
            tile.roi_drawn.connect(self.roi_drawn)
            tile.roi_cleared.connect(self.roi_cleared)
            self.tiles[name] = tile
            self._layout.addWidget(tile, i // cols, i % cols)

    def focus(self, name: str) -> None:
        """Show only ``name``'s tile."""
        if name not in self.tiles:
            raise KeyError(f"no source named {name!r}")
        for n, tile in self.tiles.items():
            tile.setVisible(n == name)
        self.focused = name
        self.focused_changed.emit(name)

    def show_all(self) -> None:
        for tile in self.tiles.values():
            tile.setVisible(True)
        self.focused = ""
        self.focused_changed.emit("")

    def toggle_focus(self, name: str) -> None:
        if self.focused == name:
            self.show_all()
        else:
            self.focus(name)
