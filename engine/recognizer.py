"""Still-image recognition: detect -> align -> embed -> match, as stages on ``Faces``.

The real-time pipeline adds tracking and re-embedding policy on top of the same stages;
this module serves the CLI (enrol, identify, eval) where every image is independent.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from engine.config import EmbedderConfig, LandmarkConfig, MatchConfig, RecognizerConfig, RuntimeConfig
from engine.detectors import Detector
from engine.detectors.multiscale import detector_for
from engine.embedders import Embedder, create_embedder
from engine.errors import ModelError
from engine.gallery.index import classify
from engine.landmarks.base import Landmarker
from engine.models.card import find_card, model_source
from engine.records import NO_ID, Faces


def make_landmarker(config: LandmarkConfig, runtime: RuntimeConfig | None = None):
    """A registered landmark model name or a path to a card / its folder."""
    from engine.landmarks import create_landmarker

    spec = str(config.model)
    if model_source(spec).kind == "card":
        return create_landmarker("onnx", config=config, runtime=runtime, card=find_card(spec, "landmarks"))
    return create_landmarker(spec, config=config, runtime=runtime)


def make_embedder(spec: str, config: EmbedderConfig | None = None, runtime: RuntimeConfig | None = None) -> Embedder:
    """A registered embedder name (``sface``) or a path to a model card / its folder."""
    config = config or EmbedderConfig(name=spec)
    if model_source(spec).kind == "card":
        return create_embedder("onnx", config=config, runtime=runtime, card=find_card(spec, "embedder"))
    return create_embedder(spec, config=config, runtime=runtime)


@dataclass
class Recognizer:
    """Detector + (landmarks) + embedder + matching threshold (the card's unless overridden).

    ``landmarker`` (optional) adds 68 points, head pose and sharpness to faces before they
    are embedded, and supplies the 5 alignment points for box-only detectors.
    """

    detector: Detector
    embedder: Embedder
    match: MatchConfig = MatchConfig()
    landmarker: Landmarker | None = None
    config: RecognizerConfig | None = None  # the tree it was built from (None: assembled by hand)

    @classmethod
    def from_config(cls, config: RecognizerConfig) -> Recognizer:
        """The one way a front end turns its config tree (a preset, see RecognizerConfig) into a recognizer."""
        kwargs = {"weights": config.detector_weights} if config.detector_weights else {}
        landmarker = make_landmarker(config.landmarks, config.runtime) if config.landmarks.model else None
        return cls(detector_for(config.detector, config.runtime, **kwargs),  # still images: + pyramid
                   make_embedder(config.embedder.name, config.embedder, config.runtime.for_embedder()), config.match,
                   landmarker, config)

    def for_photos(self) -> Recognizer:
        """This recognizer for still photos (files dropped on the window while it runs video): the
        same embedder, landmarker and threshold, with the still-image preset's detector (the image's
        own size + the pyramid, the card's score threshold) instead of the real-time one. Itself
        when it already detects at native size, or when it was not built from a config tree."""
        if self.config is None or self.config.detector.input_size is None:
            return self
        detector = dataclasses.replace(self.config.detector, input_size=None, pyramid=True, score_threshold=None)
        config = dataclasses.replace(self.config, detector=detector)
        kwargs = {"weights": config.detector_weights} if config.detector_weights else {}
        return Recognizer(detector_for(detector, config.runtime, **kwargs), self.embedder, self.match, self.landmarker,
                          config)

    def warm_up(self) -> None:
        """Run every real-time stage once (detect, landmarks, align, crops, embed) on a blank
        read-only frame with four made-up faces, so that first-use costs are paid here and not by
        the first face of a session: Numba compiling the warp kernels on a fresh install (~5 s of
        CPU) or loading them from its cache later (~0.5 s with its thread pool), and each ONNX
        Runtime session's first run. Front ends call it where they build the recognizer, off the
        GUI thread, or their engine thread while the sources connect. Once per recognizer (a
        second call returns at once)."""
        if self.__dict__.get("_warmed"):
            return
        image = self.warm_up_detector()
        from engine.align import ARCFACE_TEMPLATE_112

        kps = np.repeat((ARCFACE_TEMPLATE_112 + [100.0, 60.0])[None].astype(np.float32), 4, axis=0)
        faces = Faces(np.repeat(np.array([[90.0, 50.0, 222.0, 182.0]], np.float32), 4, axis=0),
                      np.ones(4, np.float32), keypoints=kps)
        faces = self.locate(image, faces)
        self.embedder.embed_tensor(self.embedder.align(image, faces.keypoints))
        self.embedder.aligned_crops(image, faces.keypoints)
        self.__dict__["_warmed"] = True

    def warm_up_detector(self) -> np.ndarray:
        """The detector's first run (its session's start-up) on a blank read-only 320x240 frame,
        which it returns: what :meth:`warm_up` starts with, and all a copy of a warmed recognizer
        with another detector needs (:meth:`engine.multi.MultiSource` per-source sizes)."""
        image = np.zeros((240, 320, 3), np.uint8)
        image.flags.writeable = False  # live frames are read-only: the same compiled kernels
        self.detect(image)
        return image

    def backends(self) -> dict[str, object]:
        """The backend choice of each stage: {"detector"|"landmarks"|"embedder": its session's
        :class:`engine.backends.Selection`, or a string for a stage without an ONNX session (a YOLO
        ``.pt`` run by ultralytics)}; what ``facescope doctor`` and the window's status bar show."""
        stages = {"detector": getattr(self.detector, "detector", self.detector),  # a pyramid wraps one
                  "landmarks": self.landmarker, "embedder": self.embedder}
        out: dict[str, object] = {}
        for name, stage in stages.items():
            if stage is None:
                continue
            session = getattr(stage, "session", None)
            out[name] = getattr(session, "selection", None) or ("ultralytics (PyTorch)" if session is None else "?")
        return out

    @property
    def decision(self):
        """The open-set decision (:class:`engine.gallery.decision.DecisionConfig`): the embedder's
        calibrated two thresholds and margin, or its card's single threshold, with ``match``'s
        settings replacing them."""
        from engine.gallery.decision import decision_for

        m = self.match
        return decision_for(self.embedder.id, self.embedder.threshold, m.threshold, m.confirmed, m.margin)

    @property
    def threshold(self) -> float:
        """The 'unknown' threshold of :attr:`decision` (below it a face has no name)."""
        return self.decision.unknown

    def detect(self, image: np.ndarray) -> Faces:
        return self.detector(image)

    def locate(self, image: np.ndarray, faces: Faces) -> Faces:
        """Add landmarks/pose/sharpness (and alignment points where needed)."""
        if self.landmarker is not None:
            return self.landmarker(image, faces)
        if len(faces) and (faces.keypoints is None or faces.keypoints.shape[1] != 5):
            raise ModelError(f"detector {self.detector.name!r} gives boxes only: aligning faces needs a landmark "
                             "model (--landmarks hourglass68)")
        return faces

    def ensure_keypoints(self, image: np.ndarray, faces: Faces) -> Faces:
        """Faces with 5 alignment points, running the landmark model only when they are needed
        from it (box-only detector, or ``align="landmarks"``): the cheap path for bulk embedding."""
        lm = self.landmarker
        has = faces.keypoints is not None and faces.keypoints.shape[1] == 5
        if has and (lm is None or not lm.config.uses_landmark_points(faces.keypoints)):
            return faces
        return self.locate(image, faces)

    def embed(self, image: np.ndarray, faces: Faces) -> Faces:
        return self.embedder.embed_faces(image, self.locate(image, faces))

    def largest(self, image: np.ndarray) -> Faces:
        """The largest detected face, embedded (0 or 1 faces)."""
        faces = self.detect(image)
        if len(faces) == 0:
            return faces
        return self.embed(image, faces.select([faces.largest()]))

    def identify(self, image: np.ndarray, index) -> Faces:
        """Every face detected, embedded and matched against a gallery index."""
        return match_faces(self.embed(image, self.detect(image)), index, self.decision)


def match_faces(faces: Faces, index, threshold) -> Faces:
    """Set identities/names/similarities/status from ``index.search`` (one matrix product);
    ``threshold``: a DecisionConfig (two thresholds + margin) or a float (one threshold)."""
    if len(faces) == 0 or faces.embeddings is None:
        return faces
    found = index.search(faces.embeddings)
    person_ids, names, sims = found
    sims = np.asarray(sims, np.float32)
    ids, status = classify(person_ids, sims, threshold, getattr(found, "negative", None),  # negatives: schema v3
                           getattr(found, "second", None))
    return faces.replace(identities=ids, similarities=np.where(np.isfinite(sims), sims, np.nan), status=status,
                         names=tuple(n if i != NO_ID else None for n, i in zip(names, ids.tolist(), strict=True)))
