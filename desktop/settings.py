"""User settings (detector, embedder, backend, thresholds, re-embedding interval), persisted with QSettings.

``Settings.load(QSettings())`` never raises: a stored value that does not parse or that the engine
would reject falls back to its default, with a logged warning (also kept in ``Settings.problems``),
so a bad ini file can never stop the app from starting. ``to_configs()`` builds the engine configs.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from PySide6.QtCore import QRegularExpression, QSettings, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout,
                               QHBoxLayout, QLineEdit, QMessageBox, QVBoxLayout, QWidget)

from engine.config import LANDMARK_ALIGN, DetectorConfig, EmbedderConfig, LandmarkConfig, MatchConfig, RuntimeConfig
from engine.pipeline import PipelineConfig

log = logging.getLogger(__name__)

ORGANIZATION = "facescope"
APPLICATION = "facescope"
GROUP = "engine"
_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def qsettings() -> QSettings:
    """The app's persistent store (organisation "facescope", application "facescope")."""
    return QSettings(ORGANIZATION, APPLICATION)


def parse_size(text: str) -> tuple[int, int] | None:
    """"640x480" -> (640, 480); "auto"/"" -> None (the frame's own size). ValueError otherwise."""
    text = str(text).strip()
    if text.lower() in ("", "auto", "none"):
        return None
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"detector input size must be WIDTHxHEIGHT or 'auto', got {text!r}")
    size = (int(m.group(1)), int(m.group(2)))
    DetectorConfig(input_size=size)  # range check: [32, 4096]
    return size


def format_size(size: tuple[int, int] | None) -> str:
    return "auto" if size is None else f"{size[0]}x{size[1]}"


def _optional_float(text: Any) -> float | None:
    text = str(text).strip()
    if text.lower() in ("", "none", "default", "@invalid()"):
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text!r}")
    return value


def detector_names() -> list[str]:
    from engine.detectors import DETECTORS
    return DETECTORS.names()


def embedder_names() -> list[str]:
    from engine.embedders import EMBEDDERS
    return [n for n in EMBEDDERS.names() if n != "onnx"]  # "onnx" needs a card path: type the path instead


def landmark_names() -> list[str]:
    from engine.landmarks import LANDMARKERS
    return [n for n in LANDMARKERS.names() if n != "onnx"]


def backend_names() -> list[str]:
    """"auto" (the machine decides: engine.backends.select) first, then every registered backend."""
    from engine.backends import BACKENDS
    return ["auto", *BACKENDS.names()]


class EngineConfigs(NamedTuple):
    detector: DetectorConfig
    embedder: EmbedderConfig
    runtime: RuntimeConfig
    match: MatchConfig
    pipeline: PipelineConfig
    landmarks: LandmarkConfig


@dataclass(frozen=True)
class Settings:
    """What the settings dialog edits. None thresholds mean "the model card's default"."""

    detector: str = "yunet"
    detector_input_size: tuple[int, int] | None = (640, 384)
    detector_threshold: float | None = None
    recognition_threshold: float | None = None
    embedder: str = "sface"
    backend: str = "auto"
    refresh_s: float = 2.0
    landmarks: str = "hourglass68"     # a landmark model name / card path, or "none"
    align: str = "landmarks"
    problems: tuple[str, ...] = field(default=(), compare=False, repr=False)

    # ------------------------------------------------------------ validation
    def validate(self) -> None:
        """ValueError with a readable message if the engine would reject these settings."""
        if self.detector not in detector_names():
            raise ValueError(f"unknown detector {self.detector!r}; available: {', '.join(detector_names())}")
        if self.backend not in backend_names():
            raise ValueError(f"unknown backend {self.backend!r}; available: {', '.join(backend_names())}")
        emb = self.embedder.strip()
        if not emb:
            raise ValueError("embedder must not be empty")
        if emb not in embedder_names() and not (Path(emb).suffix == ".json" or Path(emb).is_dir()):
            raise ValueError(f"unknown embedder {emb!r}: use one of {', '.join(embedder_names())} "
                             "or the path of a model card (.json) or its folder")
        lm = self.landmarks.strip()
        if lm.lower() != "none" and lm not in landmark_names() and not (Path(lm).suffix == ".json" or Path(lm).is_dir()):
            raise ValueError(f"unknown landmark model {lm!r}: use one of {', '.join(landmark_names())}, 'none' "
                             "or the path of a model card (.json) or its folder")
        self.to_configs()

    def to_configs(self) -> EngineConfigs:
        """Engine configs (raises ValueError for values the engine rejects)."""
        base = PipelineConfig()
        policy = dataclasses.replace(base.policy, refresh_s=float(self.refresh_s))
        return EngineConfigs(
            detector=DetectorConfig(name=self.detector, input_size=self.detector_input_size,
                                    score_threshold=self.detector_threshold),
            embedder=EmbedderConfig(name=self.embedder),
            runtime=RuntimeConfig(backend=self.backend),
            match=MatchConfig(threshold=self.recognition_threshold),
            pipeline=dataclasses.replace(base, policy=policy),
            landmarks=LandmarkConfig(model=None if self.landmarks.strip().lower() == "none" else self.landmarks.strip(),
                                     align=self.align),
        )

    # ------------------------------------------------------------ persistence
    @classmethod
    def load(cls, store: QSettings | None = None) -> Settings:
        """Read from ``store`` (default: the app's QSettings); never raises."""
        store = store if store is not None else qsettings()
        default, values, problems = cls(), {}, []

        def read(key: str, parse) -> None:
            full = f"{GROUP}/{key}"
            if not store.contains(full):
                return
            raw = store.value(full)
            try:
                values[key] = parse(raw)
            except (ValueError, TypeError) as exc:
                problems.append(f"setting {full}={raw!r} is invalid ({exc}); using {getattr(default, key)!r}")

        read("detector", lambda v: str(v).strip() or _raise("empty"))
        read("detector_input_size", parse_size)
        read("detector_threshold", _optional_float)
        read("recognition_threshold", _optional_float)
        read("embedder", lambda v: str(v).strip() or _raise("empty"))
        read("backend", lambda v: str(v).strip() or _raise("empty"))
        read("refresh_s", float)
        read("landmarks", lambda v: str(v).strip() or _raise("empty"))
        read("align", lambda v: str(v).strip() or _raise("empty"))
        # Each value on its own against the engine's checks; a bad one falls back alone.
        for key in list(values):
            candidate = dataclasses.replace(default, **{key: values[key]})
            try:
                candidate.validate()
            except (ValueError, TypeError) as exc:
                problems.append(f"setting {GROUP}/{key}={values.pop(key)!r} is invalid ({exc}); "
                                f"using {getattr(default, key)!r}")
        result = dataclasses.replace(default, **values)
        try:
            result.validate()
        except (ValueError, TypeError) as exc:  # combination invalid: everything back to defaults
            problems.append(f"stored settings do not fit together ({exc}); using the defaults")
            result = default
        for problem in problems:
            log.warning(problem)
        return dataclasses.replace(result, problems=tuple(problems))

    def save(self, store: QSettings | None = None) -> None:
        store = store if store is not None else qsettings()
        opt = lambda v: "" if v is None else repr(float(v))  # noqa: E731
        store.setValue(f"{GROUP}/detector", self.detector)
        store.setValue(f"{GROUP}/detector_input_size", format_size(self.detector_input_size))
        store.setValue(f"{GROUP}/detector_threshold", opt(self.detector_threshold))
        store.setValue(f"{GROUP}/recognition_threshold", opt(self.recognition_threshold))
        store.setValue(f"{GROUP}/embedder", self.embedder)
        store.setValue(f"{GROUP}/backend", self.backend)
        store.setValue(f"{GROUP}/refresh_s", repr(float(self.refresh_s)))
        store.setValue(f"{GROUP}/landmarks", self.landmarks)
        store.setValue(f"{GROUP}/align", self.align)
        store.sync()


def _raise(msg: str):
    raise ValueError(msg)


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

    def settings(self) -> Settings:
        """The edited settings; ValueError if they are invalid."""
        s = Settings(detector=self.detector.currentText(), detector_input_size=parse_size(self.input_size.text()),
                     detector_threshold=self.detector_threshold.value(),
                     recognition_threshold=self.recognition_threshold.value(),
                     embedder=self.embedder.currentText().strip(), backend=self.backend.currentText(),
                     refresh_s=float(self.refresh.value()), landmarks=self.landmarks.currentText().strip(),
                     align=self.align.currentText())
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
