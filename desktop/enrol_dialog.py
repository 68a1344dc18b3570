"""Enrol dialog: the clicked face's aligned crop and a name (an existing person or a new one)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.live_view import bgr_qimage

DEFAULT_BEST_K = 5
DEFAULT_COLLECT_S = 3.0


@dataclass(frozen=True)
class EnrolChoice:
    """What the dialog decided: ``name``; ``collect`` True = enrol the best ``k`` frames of the
    track over the next ``seconds`` (by quality) instead of this one frame."""

    name: str
    collect: bool = False
    k: int = DEFAULT_BEST_K
    seconds: float = DEFAULT_COLLECT_S


class EnrolDialog(QDialog):
    """Shows ``crop`` ((112, 112, 3) uint8 BGR) and an editable combo of ``names``; after
    ``exec()`` returns Accepted, :meth:`name` is the chosen or typed name (stripped) and
    :meth:`choice` adds the "collect the best K frames over N seconds" option."""

    def __init__(self, crop: np.ndarray | None, names: Sequence[str] = (), parent: QWidget | None = None,
                 track_id: int | None = None, suggestion: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Enrol face" if track_id is None else f"Enrol face #{track_id}")
        self.image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(112, 112)
        if crop is not None:
            qimg, self._crop = bgr_qimage(crop)
            self.image.setPixmap(QPixmap.fromImage(qimg).scaled(
                224, 224, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
        else:
            self.image.setText("(no crop)")
        self.combo = QComboBox(editable=True)
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.combo.addItems(sorted(set(names), key=str.casefold))
        self.combo.setEditText(suggestion or "")
        self.combo.lineEdit().setPlaceholderText("choose a person or type a new name")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.combo.editTextChanged.connect(self._update_ok)
        self.collect_check = QCheckBox("Collect the best K frames of this track over the next N seconds (by quality)")
        self.k_spin = QSpinBox(minimum=1, maximum=20, value=DEFAULT_BEST_K)
        self.seconds_spin = QDoubleSpinBox(minimum=0.5, maximum=30.0, value=DEFAULT_COLLECT_S, singleStep=0.5,
                                           suffix=" s", decimals=1)
        self.collect_check.toggled.connect(self._update_collect)
        form = QFormLayout()
        form.addRow("Name:", self.combo)
        form.addRow(self.collect_check)
        form.addRow("K (frames):", self.k_spin)
        form.addRow("N (seconds):", self.seconds_spin)
        layout = QVBoxLayout(self)
        layout.addWidget(self.image)
        layout.addLayout(form)
        self._update_collect(False)
        layout.addWidget(self.buttons)
        self._update_ok()

    def name(self) -> str:
        return self.combo.currentText().strip()

    def choice(self) -> EnrolChoice:
        return EnrolChoice(self.name(), self.collect_check.isChecked(), int(self.k_spin.value()),
                           float(self.seconds_spin.value()))

    def _update_collect(self, on: bool) -> None:
        self.k_spin.setEnabled(bool(on))
        self.seconds_spin.setEnabled(bool(on))

    def set_name(self, name: str) -> None:
        self.combo.setEditText(name)

    def _update_ok(self, *_: object) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(self.name()))

    def accept(self) -> None:
        if self.name():
            super().accept()

    @classmethod
    def ask(cls, crop, names: Sequence[str] = (), parent: QWidget | None = None, **kw) -> str | None:
        """Run the dialog modally; the name on OK, None on Cancel."""
        dlg = cls(crop, names, parent, **kw)
        try:
            return dlg.name() if dlg.exec() == QDialog.DialogCode.Accepted else None
        finally:
            dlg.deleteLater()

    @classmethod
    def ask_choice(cls, crop, names: Sequence[str] = (), parent: QWidget | None = None, **kw) -> EnrolChoice | None:
        """Run the dialog modally; the :class:`EnrolChoice` on OK, None on Cancel."""
        dlg = cls(crop, names, parent, **kw)
        try:
            return dlg.choice() if dlg.exec() == QDialog.DialogCode.Accepted else None
        finally:
            dlg.deleteLater()
