"""The live video widget: newest frame + per-face overlays, aspect kept, clickable faces."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QMenu, QSizePolicy, QWidget

from engine.draw import COLOR_ENROLLING, COLOR_KNOWN, COLOR_UNKNOWN, face_label, is_probable, rgb
from engine.draw import face_color as engine_face_color

KNOWN = QColor(*rgb(COLOR_KNOWN))          # the same colours as the annotated videos (engine.draw)
UNKNOWN = QColor(*rgb(COLOR_UNKNOWN))
ENROLLING = QColor(*rgb(COLOR_ENROLLING))
BACKGROUND = QColor(20, 20, 20)


def bgr_qimage(image: np.ndarray) -> tuple[QImage, np.ndarray]:
    """A QImage viewing ``image`` (H, W, 3) uint8 BGR without copying (when it is contiguous)
    and the array it views: keep that array alive as long as the QImage."""
    arr = np.ascontiguousarray(image)
    if arr.ndim == 2:
        arr = np.ascontiguousarray(np.repeat(arr[..., None], 3, axis=2))
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 BGR image, got {arr.dtype} {arr.shape}")
    h, w = arr.shape[:2]
    return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_BGR888), arr


def _pointf(point) -> QPointF:
    """QPoint / QPointF / (x, y) -> QPointF."""
    if isinstance(point, QPointF):
        return point
    if hasattr(point, "x") and callable(point.x):
        return QPointF(float(point.x()), float(point.y()))
    x, y = point
    return QPointF(float(x), float(y))


class LiveView(QWidget):
    """Shows the newest frame scaled to the widget (aspect ratio kept, centred) with a box and a
    ``#id name sim`` label per face: known green, unknown orange, enrolling blue.
    ``face_clicked(track_id)`` is emitted for a left click inside a tracked face's box.
    The last clicked or hovered tracked face is the *selected* one (:attr:`selected_track`,
    drawn with a thicker box); ``selection_changed(track_id)`` follows each change.
    A right click on a face opens its menu (:meth:`face_menu`): enrol it, or, on a labelled
    face, "Not NAME" (``not_person_requested(track_id, name)``; the window asks the session)."""

    face_clicked = Signal(int)
    selection_changed = Signal(int)
    not_person_requested = Signal(int, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self._qimage: QImage | None = None
        self._array: np.ndarray | None = None  # the buffer _qimage views
        self.faces = None  # Faces of the shown frame
        self.result = None  # the shown FrameResult
        self.enrolling: set[int] = set()
        self.selected_track: int | None = None
        self.setMouseTracking(True)  # hover selects a face
        self.message = "No source"

    # -- data ------------------------------------------------------------------------------------
    def set_result(self, result) -> None:
        """Show a FrameResult (its frame image and faces)."""
        self.result = result
        self.set_frame(result.frame.image, result.faces)

    def set_frame(self, image: np.ndarray, faces=None) -> None:
        self._qimage, self._array = bgr_qimage(image)
        self.faces = faces
        self.update()

    def clear(self, message: str = "No source") -> None:
        self._qimage = self._array = None
        self.faces = self.result = None
        self.message = message
        self.update()

    def set_enrolling(self, track_ids) -> None:
        self.enrolling = {int(t) for t in track_ids}
        self.update()

    def select(self, track_id: int | None) -> None:
        tid = None if track_id is None else int(track_id)
        if tid != self.selected_track:
            self.selected_track = tid
            self.update()
            if tid is not None:
                self.selection_changed.emit(tid)

    @property
    def image_size(self) -> tuple[int, int] | None:
        return None if self._array is None else (self._array.shape[1], self._array.shape[0])

    # -- geometry --------------------------------------------------------------------------------
    def image_rect(self) -> QRectF:
        """Where the image is drawn, in widget coordinates (empty without an image)."""
        size = self.image_size
        if size is None:
            return QRectF()
        w, h = size
        s = min(self.width() / w, self.height() / h)
        dw, dh = w * s, h * s
        return QRectF((self.width() - dw) / 2, (self.height() - dh) / 2, dw, dh)

    def widget_to_image(self, point) -> QPointF | None:
        """Widget point -> image pixel coordinates; None outside the image."""
        r = self.image_rect()
        if r.isEmpty():
            return None
        p = _pointf(point)
        if not r.contains(p):
            return None
        s = r.width() / self.image_size[0]
        return QPointF((p.x() - r.x()) / s, (p.y() - r.y()) / s)

    def image_to_widget(self, point) -> QPointF:
        r = self.image_rect()
        s = r.width() / self.image_size[0]
        p = _pointf(point)
        return QPointF(r.x() + p.x() * s, r.y() + p.y() * s)

    def face_at(self, point) -> int | None:
        """Index (in ``faces``) of the smallest tracked face box containing the widget point."""
        p = self.widget_to_image(point)
        faces = self.faces
        if p is None or faces is None or len(faces) == 0:
            return None
        x, y = p.x(), p.y()
        b = faces.boxes
        inside = (b[:, 0] <= x) & (x <= b[:, 2]) & (b[:, 1] <= y) & (y <= b[:, 3]) & (faces.track_ids >= 0)
        idx = np.flatnonzero(inside)
        if idx.size == 0:
            return None
        area = (b[idx, 2] - b[idx, 0]) * (b[idx, 3] - b[idx, 1])
        return int(idx[np.argmin(area)])

    # -- events ----------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if event.button() == Qt.MouseButton.LeftButton:
            i = self.face_at(event.position())
            if i is not None:
                self.select(int(self.faces.track_ids[i]))
                self.face_clicked.emit(int(self.faces.track_ids[i]))
                event.accept()
                return
        super().mousePressEvent(event)

    def face_menu(self, point) -> QMenu | None:
        """The menu of the face under the widget ``point`` (None when there is none): "Enrol
        face #N…" and, when the face shows a name, "Not NAME"."""
        i = self.face_at(point)
        if i is None:
            return None
        tid, name = int(self.faces.track_ids[i]), self.faces.names[i]
        self.select(tid)
        menu = QMenu(self)
        menu.addAction(QAction(f"Enrol face #{tid}…", menu, triggered=lambda _=False: self.face_clicked.emit(tid)))
        if name:
            act = QAction(f"Not {name}", menu, triggered=lambda _=False: self.not_person_requested.emit(tid, name))
            act.setToolTip(f"This face is not {name}: remember it, so that it (and faces like it) stop matching {name}")
            menu.addAction(act)
        return menu

    def contextMenuEvent(self, event) -> None:  # noqa: N802 (Qt name)
        menu = self.face_menu(event.pos())
        if menu is None:
            super().contextMenuEvent(event)
            return
        menu.exec(event.globalPos())
        event.accept()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt name)
        i = self.face_at(event.position())
        if i is not None:
            self.select(int(self.faces.track_ids[i]))
        super().mouseMoveEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        if self._qimage is None:
            p.setPen(QColor(200, 200, 200))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)
            p.end()
            return
        r = self.image_rect()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        p.drawImage(r, self._qimage)
        p.translate(r.x(), r.y())
        s = r.width() / self.image_size[0]
        self._draw_overlays(p, s)
        p.end()

    def _draw_overlays(self, p: QPainter, scale: float) -> None:
        faces = self.faces
        if faces is None or len(faces) == 0:
            return
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        font = QFont(p.font())
        font.setPixelSize(max(10, min(22, int(14 * max(scale, 0.6)))))
        p.setFont(font)
        fm = p.fontMetrics()
        for i in range(len(faces)):
            x1, y1, x2, y2 = (float(v) * scale for v in faces.boxes[i])
            color = self.face_color(faces, i)
            selected = self.selected_track is not None and int(faces.track_ids[i]) == self.selected_track
            pen = QPen(color, 4 if selected else 2)
            if is_probable(faces, i):
                pen.setStyle(Qt.PenStyle.DashLine)  # "Name?": a probable name, drawn like the annotated videos
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(x1, y1, x2 - x1, y2 - y1))
            label = face_label(faces, i)
            tw, th = fm.horizontalAdvance(label) + 6, fm.height() + 2
            ty = max(y1 - th, 0.0)
            p.fillRect(QRectF(x1, ty, tw, th), color)
            p.setPen(QColor(0, 0, 0))
            p.drawText(QRectF(x1 + 3, ty, tw, th), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, label)

    def face_color(self, faces, i: int) -> QColor:
        if int(faces.track_ids[i]) in self.enrolling:
            return ENROLLING
        return QColor(*rgb(engine_face_color(faces, i)))  # known / probable / unknown: engine.draw's colours

    # -- export ----------------------------------------------------------------------------------
    def annotated_image(self) -> QImage | None:
        """The current frame at its own resolution with the overlays drawn (a copy)."""
        if self._qimage is None:
            return None
        img = self._qimage.convertToFormat(QImage.Format.Format_RGB32)
        p = QPainter(img)
        self._draw_overlays(p, 1.0)
        p.end()
        return img

    def snapshot(self, path: str) -> bool:
        """Save the annotated current frame as PNG; False when there is nothing to save."""
        img = self.annotated_image()
        return img is not None and img.save(str(path), "PNG")
