"""Face detectors: ``create_detector("yunet", config=..., runtime=...)``, ``create_detector("yolo", weights=...)``."""
from engine.detectors import yolo as _yolo  # noqa: F401  (registers "yolo")
from engine.detectors import yunet as _yunet  # noqa: F401  (registers "yunet")
from engine.detectors.base import DETECTORS, Detector, create_detector

__all__ = ["DETECTORS", "Detector", "create_detector"]
