"""Typed configuration with defaults. Invalid values raise ValueError; nothing is silently fixed."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from engine.util.check import check as _check

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class RuntimeConfig:
    """Which inference backend runs the models, and its options.

    ``backend``: "auto" (TensorRT when a GPU and TensorRT are present, else ONNX Runtime with
    CUDA, else ONNX Runtime on the CPU: :mod:`engine.backends.select`) or a registered name.
    ``threads``: ONNX Runtime CPU threads (0 = all cores); ``embedder_threads``: the same for the
    embedder alone (None = ``threads``; see :func:`engine.multi.multi_runtime`). TensorRT only: ``precision`` of
    the engines built on first use (int8 needs a calibration cache from ``facescope trt build
    --precision int8 --calib DIR``), ``max_batch`` the top of the batch profile for stages
    that batch (embedder, landmarks), ``workspace_mb`` the builder's scratch memory limit.
    """

    backend: str = "auto"
    threads: int = 0
    embedder_threads: int | None = None
    precision: str = "fp16"
    max_batch: int = 16
    workspace_mb: int = 1024

    def __post_init__(self) -> None:
        _check(bool(self.backend.strip()), "backend must not be empty")
        _check(self.threads >= 0, f"threads must be >= 0, got {self.threads}")
        _check(self.embedder_threads is None or self.embedder_threads >= 0,
               f"embedder_threads must be >= 0 or None, got {self.embedder_threads}")
        _check(self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        _check(1 <= self.max_batch <= 1024, f"max_batch must be in [1, 1024], got {self.max_batch}")
        _check(64 <= self.workspace_mb <= 1 << 20, f"workspace_mb must be in [64, 1048576], got {self.workspace_mb}")

    def for_embedder(self) -> RuntimeConfig:
        """This runtime with ``threads`` = ``embedder_threads`` where that is set (the embedder's own)."""
        if self.embedder_threads is None:
            return self
        return dataclasses.replace(self, threads=self.embedder_threads, embedder_threads=None)


@dataclass(frozen=True)
class DetectorConfig:
    """Detector settings.

    ``input_size`` (width, height): frames are letterboxed (aspect kept, padded right/bottom)
    to this size; None runs at the frame's own size padded to the model's stride, which is
    most accurate for small images and slowest for large ones (frames whose longer side
    exceeds ``max_side`` are then downscaled to it). Thresholds default to the
    model card's (None). ``min_face_size`` is in source pixels (shorter box side).
    """

    name: str = "yunet"
    input_size: tuple[int, int] | None = (640, 640)
    score_threshold: float | None = None
    nms_threshold: float | None = None
    min_face_size: float = 0.0
    top_k: int = 5000
    max_side: int = 1920
    # native size only (input_size None, i.e. still images): also detect on halved copies so that
    # faces up to the whole image are localised right (engine.detectors.multiscale); a fixed
    # input_size (real-time video) is one scale whatever this says
    pyramid: bool = True


    def __post_init__(self) -> None:
        if self.input_size is not None:
            _check(len(self.input_size) == 2 and all(int(v) == v and 32 <= v <= 4096 for v in self.input_size),
                   f"detector input_size must be two integers in [32, 4096], got {self.input_size}")
        for key in ("score_threshold", "nms_threshold"):
            value = getattr(self, key)
            _check(value is None or 0.0 <= value <= 1.0, f"{key} must be in [0, 1], got {value}")
        _check(self.min_face_size >= 0, f"min_face_size must be >= 0, got {self.min_face_size}")
        _check(self.top_k > 0, f"top_k must be > 0, got {self.top_k}")
        _check(self.max_side >= 32, f"max_side must be >= 32, got {self.max_side}")
        _check(isinstance(self.pyramid, bool), f"pyramid must be True or False, got {self.pyramid!r}")


@dataclass(frozen=True)
class EmbedderConfig:
    """Embedder settings. ``flip`` averages the embedding of the face and its mirror image
    (2x the cost; measured no gain for SFace on LFW, so off by default)."""

    name: str = "sface"
    batch_size: int = 16
    flip: bool = False

    def __post_init__(self) -> None:
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class MatchConfig:
    """The open-set decision (engine.gallery.decision). ``threshold``: cosine similarity below
    which a face is 'unknown'; ``confirmed``: from which a name is confirmed (between the two it
    is 'probable'); ``margin``: how far the best person must lead the second-best for a confirmed
    name. None = the embedder's calibrated value (else its model card's single threshold)."""

    threshold: float | None = None
    confirmed: float | None = None
    margin: float | None = None

    def __post_init__(self) -> None:
        _check(self.threshold is None or -1.0 <= self.threshold <= 1.0,
               f"match threshold must be a cosine in [-1, 1], got {self.threshold}")
        _check(self.confirmed is None or -1.0 <= self.confirmed <= 1.0,
               f"match confirmed threshold must be a cosine in [-1, 1], got {self.confirmed}")
        _check(self.margin is None or 0.0 <= self.margin <= 2.0, f"match margin must be in [0, 2], got {self.margin}")


LANDMARK_ALIGN = ("auto", "landmarks", "detector")


@dataclass(frozen=True)
class LandmarkConfig:
    """The 68-point landmark stage.

    ``model``: a registered landmark model, a card path, or None (no landmark stage: faces
    then need detector keypoints, and quality has no pose/blur term). ``align``: which 5 points
    align faces for the embedder -- ``"detector"`` (the detector's keypoints; box-only
    detectors still fall back to the landmarks), ``"landmarks"`` (always the hourglass'
    eye centres, nose tip and mouth corners; the default) or ``"auto"`` (= detector keypoints
    when present).
    ``flip_test``: also run the mirrored crop and average (about 2x the landmark cost).
    ``refine``: run a second pass on the crop the first pass's landmarks imply (about 2x).
    """

    model: str | None = "hourglass68"
    # measured on LFW (facescope eval lfw): YuNet boxes + hourglass points 99.53 % vs YuNet's own
    # 5 keypoints 99.38 %, so the landmark model's points align faces by default
    align: str = "landmarks"
    flip_test: bool = False
    refine: bool = False

    def __post_init__(self) -> None:
        _check(self.align in LANDMARK_ALIGN, f"landmark align must be one of {LANDMARK_ALIGN}, got {self.align!r}")

    def uses_landmark_points(self, keypoints) -> bool:
        """THE alignment-point rule: faces are aligned with the landmark model's 5 points when
        ``align == "landmarks"`` or when the detector gave no 5 keypoints (``keypoints`` (N, K, 2)
        or None); otherwise with the detector's own."""
        return self.align == "landmarks" or keypoints is None or keypoints.shape[1] != 5


@dataclass(frozen=True)
class RecognizerConfig:
    """Everything that assembles a recognizer, as one tree: ``Recognizer.from_config(cfg)``.

    ``detector_weights``: a YOLO ``.pt`` or card for ``detector.name == "yolo"`` (None: shipped).
    Two presets: :meth:`still` (photos: the detector at the image's own size with the multi-scale
    pyramid for faces as large as the image, the card's threshold) and :meth:`realtime` (video: a
    fixed 640x384 input, one scale, for a steady frame time and a detector threshold lowered to
    the tracker's ``low_thresh``, since ByteTrack's second stage extends tracks with low-score
    detections). Every front end starts from one of them.
    """

    detector: DetectorConfig = DetectorConfig()
    landmarks: LandmarkConfig = LandmarkConfig()
    embedder: EmbedderConfig = EmbedderConfig()
    match: MatchConfig = MatchConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    detector_weights: str | None = None

    @classmethod
    def still(cls, **parts) -> RecognizerConfig:
        """Still images: ``parts`` replace whole sub-configs (``detector=DetectorConfig(...)``)."""
        return cls(**{"detector": DetectorConfig(input_size=None, pyramid=True), **parts})

    @classmethod
    def realtime(cls, tracker_low_thresh: float = 0.3, **parts) -> RecognizerConfig:
        """Video through the tracker: a detector without its own threshold gets
        ``tracker_low_thresh`` (``TrackerConfig.low_thresh``; the default is TrackerConfig's)."""
        detector = parts.pop("detector", DetectorConfig(input_size=(640, 384)))
        if detector.score_threshold is None:
            detector = dataclasses.replace(detector, score_threshold=tracker_low_thresh)
        detector = dataclasses.replace(detector, pyramid=False)  # one scale: a steady frame time
        return cls(detector=detector, **parts)
