"""The settings dialog: edits a :class:`desktop.settings.Settings`, validates on OK."""
from __future__ import annotations

from PySide6.QtCore import QRegularExpression, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from desktop.settings import (
    Settings,
    backend_names,
    detector_names,
    embedder_names,
    format_size,
    landmark_names,
    parse_size,
)
from engine.config import LANDMARK_ALIGN
from engine.track.gating import GATE_MODES


class _OptionalSpin(QWidget):
    """A spin box with a "model card default" check box (checked = None)."""

    def __init__(self, lo: float, hi: float, default: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.default_box = QCheckBox("card default")
        self.spin = QDoubleSpinBox()
        self.spin.setRange(lo, hi)
        self.spin.setDecimals(3)
        self.spin.setSingleStep(0.01)
        self.spin.setValue(default)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.spin, 1)
        lay.addWidget(self.default_box)
        self.default_box.toggled.connect(lambda on: self.spin.setEnabled(not on))

    def value(self) -> float | None:
        return None if self.default_box.isChecked() else float(self.spin.value())

    def set_value(self, value: float | None) -> None:
        self.default_box.setChecked(value is None)
        self.spin.setEnabled(value is not None)
        if value is not None:
            self.spin.setValue(value)


class SettingsDialog(QDialog):
    """Edits a ``Settings``; OK validates, emits ``changed(Settings)`` and closes (invalid: a message)."""

    changed = Signal(object)

    def __init__(self, settings: Settings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        settings = settings or Settings()
        form = QFormLayout()

        self.detector = QComboBox()
        self.detector.addItems(detector_names())
        self.input_size = QLineEdit()
        self.input_size.setValidator(QRegularExpressionValidator(
            QRegularExpression(r"^\s*(auto|\d{0,4}\s*[xX]?\s*\d{0,4})\s*$"), self.input_size))
        self.input_size.setPlaceholderText("e.g. 640x640, or auto (frame size)")
        self.detector_threshold = _OptionalSpin(0.0, 1.0, 0.6)
        self.recognition_threshold = _OptionalSpin(-1.0, 1.0, 0.36)
        self.embedder = QComboBox()
        self.embedder.setEditable(True)  # a registered name or a model card path
        self.embedder.addItems(embedder_names())
        self.embedder.setToolTip("a registered embedder, or the path of a model card (.json) or its folder")
        self.backend = QComboBox()
        self.backend.addItems(backend_names())
        self.landmarks = QComboBox()
        self.landmarks.setEditable(True)
        self.landmarks.addItems(landmark_names() + ["none"])
        self.landmarks.setToolTip("68-point landmark model (pose, sharpness, alignment for box-only detectors), "
                                  "a model card path, or none")
        self.align = QComboBox()
        self.align.addItems(list(LANDMARK_ALIGN))
        self.align.setToolTip("alignment points: the detector's when it has them (auto/detector), "
                              "or always the landmark model's")
        self.refresh = QDoubleSpinBox()
        self.refresh.setRange(0.1, 600.0)
        self.refresh.setDecimals(2)
        self.refresh.setSuffix(" s")

        form.addRow("Detector", self.detector)
        form.addRow("Detector input size (WxH)", self.input_size)
        form.addRow("Detector threshold", self.detector_threshold)
        form.addRow("Recognition threshold", self.recognition_threshold)
        form.addRow("Landmarks", self.landmarks)
        form.addRow("Align faces with", self.align)
        form.addRow("Embedder", self.embedder)
        form.addRow("Backend", self.backend)
        form.addRow("Re-embed every", self.refresh)
        self.gate = QComboBox()
        self.gate.addItems(list(GATE_MODES))
        self.gate.setToolTip("adaptive: run the detector when something moved outside the tracked faces (and at least "
                             "every 0.4 s), following the tracked faces in between; every-frame: on every frame")
        form.addRow("Run the detector", self.gate)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.buttons)
        self.set_settings(settings)

    def set_settings(self, s: Settings) -> None:
        _select(self.detector, s.detector)
        self.input_size.setText(format_size(s.detector_input_size))
        self.detector_threshold.set_value(s.detector_threshold)
        self.recognition_threshold.set_value(s.recognition_threshold)
        _select(self.embedder, s.embedder)
        _select(self.backend, s.backend)
        self.refresh.setValue(s.refresh_s)
        _select(self.landmarks, s.landmarks)
        _select(self.align, s.align)
        _select(self.gate, s.detector_gate)

    def settings(self) -> Settings:
        """The edited settings; ValueError if they are invalid."""
        s = Settings(detector=self.detector.currentText(), detector_input_size=parse_size(self.input_size.text()),
                     detector_threshold=self.detector_threshold.value(),
                     recognition_threshold=self.recognition_threshold.value(),
                     embedder=self.embedder.currentText().strip(), backend=self.backend.currentText(),
                     refresh_s=float(self.refresh.value()), landmarks=self.landmarks.currentText().strip(),
                     align=self.align.currentText(), detector_gate=self.gate.currentText())
        s.validate()
        return s

    def accept(self) -> None:
        try:
            s = self.settings()
        except ValueError as exc:
            self._show_error(str(exc))
            return
        self.changed.emit(s)
        super().accept()

    def _show_error(self, text: str) -> None:  # overridable in tests
        QMessageBox.warning(self, "Invalid settings", text)


def _select(combo: QComboBox, text: str) -> None:
    i = combo.findText(text)
    if i < 0 and combo.isEditable():
        combo.addItem(text)
        i = combo.findText(text)
    if i >= 0:
        combo.setCurrentIndex(i)
