"""Still-image recognition: detect -> align -> embed -> match, as stages on ``Faces``.

The real-time pipeline adds tracking and re-embedding policy on top of the same stages;
this module serves the CLI (enrol, identify, eval) where every image is independent.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.config import DetectorConfig, EmbedderConfig, MatchConfig, RuntimeConfig
from engine.detectors import Detector, create_detector
from engine.embedders import Embedder, create_embedder
from engine.records import UNKNOWN, Faces


def make_embedder(spec: str, config: EmbedderConfig | None = None, runtime: RuntimeConfig | None = None) -> Embedder:
    """A registered embedder name (``sface``) or a path to a model card / its folder."""
    config = config or EmbedderConfig(name=spec)
    if Path(spec).suffix == ".json" or Path(spec).is_dir():
        return create_embedder("onnx", config=config, runtime=runtime, card=spec)
    return create_embedder(spec, config=config, runtime=runtime)


@dataclass
class Recognizer:
    """Detector + embedder + matching threshold (the card's unless overridden)."""

    detector: Detector
    embedder: Embedder
    match: MatchConfig = MatchConfig()

    @classmethod
    def create(cls, detector: DetectorConfig | None = None, embedder: EmbedderConfig | None = None,
               runtime: RuntimeConfig | None = None, match: MatchConfig | None = None) -> Recognizer:
        detector = detector or DetectorConfig()
        embedder = embedder or EmbedderConfig()
        return cls(create_detector(detector.name, detector, runtime), make_embedder(embedder.name, embedder, runtime),
                   match or MatchConfig())

    @property
    def threshold(self) -> float:
        return self.match.threshold if self.match.threshold is not None else self.embedder.threshold

    def detect(self, image: np.ndarray) -> Faces:
        return self.detector(image)

    def embed(self, image: np.ndarray, faces: Faces) -> Faces:
        return self.embedder.embed_faces(image, faces)

    def largest(self, image: np.ndarray) -> Faces:
        """The largest detected face, embedded (0 or 1 faces)."""
        faces = self.detect(image)
        if len(faces) == 0:
            return faces
        return self.embed(image, faces.select([faces.largest()]))

    def identify(self, image: np.ndarray, index) -> Faces:
        """Every face detected, embedded and matched against a gallery index."""
        return match_faces(self.embed(image, self.detect(image)), index, self.threshold)


def match_faces(faces: Faces, index, threshold: float) -> Faces:
    """Set identities/names/similarities from ``index.search`` (one matrix product)."""
    if len(faces) == 0 or faces.embeddings is None:
        return faces
    person_ids, names, sims = index.search(faces.embeddings)
    sims = np.asarray(sims, np.float32)
    known = (np.asarray(person_ids) >= 0) & (sims >= threshold)
    ids = np.where(known, person_ids, UNKNOWN)
    return faces.replace(identities=ids, similarities=np.where(np.isfinite(sims), sims, np.nan),
                         names=tuple(n if k else None for n, k in zip(names, known)))
