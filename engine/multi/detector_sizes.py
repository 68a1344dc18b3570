"""One recognizer per detector input size, all sharing the landmark and embedding models.

A source of a several-sources run may set its own ``det_size`` (a 1080p room camera with small
faces needs a larger detector input than a 720p desk webcam): it gets a copy of the shared
:class:`~engine.recognizer.Recognizer` with one more (small) detector; every source of the same
size shares that copy, and nothing else is loaded twice.
"""
from __future__ import annotations

import dataclasses

from engine.recognizer import Recognizer


class DetectorSizes:
    """``for_size(size, label)`` -> the shared recognizer, or its copy with a detector of input
    ``size`` (w, h) px, made once per size."""

    def __init__(self, recognizer: Recognizer) -> None:
        self.recognizer = recognizer
        self._copies: dict[tuple[int, int], Recognizer] = {}

    def for_size(self, size: tuple[int, int] | None, label: str = "a source") -> Recognizer:
        """``size`` None: the shared recognizer as it is. ValueError when the shared recognizer
        was not built from a config tree (nothing says how to build its detector at another size)."""
        rec = self.recognizer
        if size is None or (rec.config is not None and rec.config.detector.input_size == tuple(size)):
            return rec
        if rec.config is None:
            raise ValueError(f"det_size {size} for {label}: the shared recognizer was not built from a "
                             "config tree (Recognizer.from_config), so its detector cannot be resized")
        key = (int(size[0]), int(size[1]))
        if key not in self._copies:
            from engine.detectors.multiscale import detector_for

            det_cfg = dataclasses.replace(rec.config.detector, input_size=key)
            config = dataclasses.replace(rec.config, detector=det_cfg)
            kwargs = {"weights": config.detector_weights} if config.detector_weights else {}
            self._copies[key] = dataclasses.replace(
                rec, detector=detector_for(det_cfg, config.runtime, **kwargs), config=config)
        return self._copies[key]
