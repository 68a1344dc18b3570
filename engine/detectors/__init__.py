"""Face detectors: ``create_detector("yunet", config=..., runtime=...)``."""
from engine.detectors.base import DETECTORS, Detector, create_detector
from engine.detectors import yunet as _yunet  # noqa: F401  (registers "yunet")

__all__ = ["DETECTORS", "Detector", "create_detector"]
