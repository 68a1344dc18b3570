"""User settings (detector, embedder, backend, thresholds, re-embedding interval), persisted with QSettings.

``Settings.load(QSettings())`` never raises: a stored value that does not parse or that the engine
would reject falls back to its default, with a logged warning (also kept in ``Settings.problems``),
so a bad ini file can never stop the app from starting. ``to_configs()`` builds the engine configs.
The dialog that edits them is :class:`desktop.settings_dialog.SettingsDialog`.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from PySide6.QtCore import QSettings

from engine.config import DetectorConfig, EmbedderConfig, LandmarkConfig, MatchConfig, RecognizerConfig, RuntimeConfig
from engine.models.card import model_source
from engine.pipeline import PipelineConfig, realtime_config
from engine.track.gating import GateConfig

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

    @property
    def recognizer(self) -> RecognizerConfig:
        """The real-time preset's tree from these settings (the detector threshold, when left to
        the card, becomes the pipeline tracker's low threshold)."""
        return realtime_config(self.pipeline, detector=self.detector, embedder=self.embedder, runtime=self.runtime,
                               match=self.match, landmarks=self.landmarks)


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
    detector_gate: str = "adaptive"    # engine.track.gating: "adaptive" or "every-frame"
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
        if emb not in embedder_names() and model_source(emb).kind != "card":
            raise ValueError(f"unknown embedder {emb!r}: use one of {', '.join(embedder_names())} "
                             "or the path of a model card (.json) or its folder")
        lm = self.landmarks.strip()
        if lm.lower() != "none" and lm not in landmark_names() and model_source(lm).kind != "card":
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
            pipeline=dataclasses.replace(base, policy=policy, gate=GateConfig(mode=self.detector_gate)),
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
        read("detector_gate", lambda v: str(v).strip() or _raise("empty"))
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
        store.setValue(f"{GROUP}/detector_gate", self.detector_gate)
        store.sync()


def _raise(msg: str):
    raise ValueError(msg)
