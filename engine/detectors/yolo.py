"""YOLO face detectors (ultralytics family): ``.pt`` through ultralytics, ONNX through our backends.

``create_detector("yolo", weights=W)``: ``W`` is a ``.pt`` file (ultralytics runs it; needs
the ``train`` extra), or a model card / its folder for an ONNX export (no ultralytics needed),
or omitted for the shipped ``yolo11p-face``. Box-only (detect) and keypoint (pose) weights
both work; keypoints are kept only when there are 5 (the alignment template's points,
assumed in its order: image-left eye, image-right eye, nose, image-left mouth corner,
image-right mouth corner, as in yolov8-face). Box-only detectors need the landmark stage
(``engine.landmarks``) to align faces.

Both paths letterbox like ultralytics' predictor for PyTorch models: the longer side scaled
to the input size, the shorter padded *centred* with grey 114 to a multiple of 32 (so a 16:9
frame costs 640x384, not 640x640). The input size is ``max(config.input_size)`` but never
more than the image's own longer side (rounded up to 32): small images are not blown up
past the face sizes the detector was trained on (a 250 px LFW photo runs at 256, not 640);
``input_size=None`` always runs at the native size (capped by ``max_side``). Our ONNX path
reproduces the predictor's boxes (parity test on real images).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from engine.backends import create_session
from engine.config import DetectorConfig, RuntimeConfig
from engine.detectors.base import DETECTORS, drop_small, max_net_side, nms, planar_float
from engine.errors import ModelError
from engine.models import ModelCard, find_card, model_source, prepared_model_path
from engine.records import Faces

DEFAULT_WEIGHTS = "yolo11p-face"


def yolo_letterbox(image: np.ndarray, size: int, stride: int = 32) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Ultralytics ``LetterBox(auto=True, center=True)``: returns (padded HxWx3, ratio, (left, top))."""
    h, w = image.shape[:2]
    r = min(size / h, size / w)
    new_w, new_h = int(round(w * r)), int(round(h * r))
    dw, dh = (size - new_w) % stride / 2, (size - new_h) % stride / 2
    if (new_w, new_h) != (w, h):
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    padded = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return padded, r, (left, top)


def effective_size(shape: tuple[int, ...], config: DetectorConfig, default: int = 640) -> int:
    """Letterbox target (longer side) for an image of ``shape``: see the module docstring."""
    native = -(-max(shape[0], shape[1]) // 32) * 32
    if config.input_size is None:
        return min(native, -(-config.max_side // 32) * 32)
    return min(max(config.input_size), native)


class OnnxYoloDetector:
    """ONNX export of a YOLO detect/pose model, decoded here (card ``extra.layout == "anchors"``:
    output (1, 4 + classes + K*kpt_dims, A), boxes cx, cy, w, h in input px, scores sigmoided)."""

    name = "yolo"

    def __init__(self, card: ModelCard, config: DetectorConfig, runtime: RuntimeConfig) -> None:
        if card.family != "detector" or card.architecture != "yolo":
            raise ModelError(f"model {card.name!r} is a {card.family}/{card.architecture}, not a YOLO detector")
        if card.extra.get("layout") != "anchors":
            raise ModelError(f"{card.name}: only the 'anchors' YOLO output layout is supported, card says "
                             f"{card.extra.get('layout')!r}")
        self.card, self.config = card, config
        self.classes = int(card.extra.get("classes", 1))
        self.kpt_dims = int(card.extra.get("kpt_dims", 0))
        self.score_threshold = config.score_threshold if config.score_threshold is not None else card.score_threshold
        self.nms_threshold = config.nms_threshold if config.nms_threshold is not None else card.nms_threshold
        self.session = create_session(prepared_model_path(card), runtime, card=card, max_batch=1,
                                      max_side=max_net_side(config))
        self.input_name = self.session.input_names[0]
        if card.color_order != "RGB" or tuple(card.std) != (255.0, 255.0, 255.0):
            raise ModelError(f"{card.name}: YOLO cards must state RGB input scaled by 1/255")

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int]]:
        """BGR uint8 frame -> ((1, 3, H, W) float32 RGB / 255 input, scale, (left, top) padding);
        also what INT8 calibration feeds TensorRT."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"detector expects an (H, W, 3) uint8 BGR image, got {image.dtype} {image.shape}")
        padded, r, pad = yolo_letterbox(image, effective_size(image.shape, self.config))
        return planar_float(padded, rgb=True) / 255.0, r, pad

    def __call__(self, image: np.ndarray) -> Faces:
        blob, r, (left, top) = self.preprocess(image)
        out = next(iter(self.session.run({self.input_name: blob}).values()))
        pred = np.asarray(out)[0].T                               # (A, C)
        k = self.card.keypoints
        if pred.shape[1] != 4 + self.classes + k * self.kpt_dims:
            raise ModelError(f"{self.card.name}: output has {pred.shape[1]} channels, card implies "
                             f"{4 + self.classes + k * self.kpt_dims}")
        scores = pred[:, 4:4 + self.classes].max(1)
        keep = scores >= self.score_threshold
        pred, scores = pred[keep], scores[keep]
        c, wh = pred[:, :2], pred[:, 2:4]
        boxes = np.concatenate([c - wh / 2, c + wh / 2], 1)
        order = nms(boxes, scores, self.score_threshold, self.nms_threshold, self.config.top_k)
        boxes, scores, pred = boxes[order], scores[order], pred[order]
        offset = np.array([left, top], np.float32)
        h, w = image.shape[:2]
        boxes = ((boxes.reshape(-1, 2, 2) - offset) / r).reshape(-1, 4)
        boxes = np.clip(boxes, 0, [w, h, w, h])
        kps = None
        if k == 5:
            kp = pred[:, 4 + self.classes:].reshape(-1, k, self.kpt_dims)[..., :2]
            kps = (kp - offset) / r
        return drop_small(Faces(boxes.astype(np.float32), scores.astype(np.float32), kps), self.config.min_face_size)


class UltralyticsYoloDetector:
    """A ``.pt`` file run by ultralytics' own predictor (reference for the ONNX path)."""

    name = "yolo"

    def __init__(self, weights: Path, config: DetectorConfig) -> None:
        import os

        os.environ.setdefault("YOLO_OFFLINE", "1")  # never reach for the network (fonts, hub, update checks)
        try:
            from ultralytics import YOLO
        except ImportError:
            raise ModelError(f"{weights}: .pt weights need ultralytics (pip install 'facescope[train]'); "
                             "or export them to ONNX with a card and load that") from None
        try:
            self.model = YOLO(str(weights))
        except Exception as exc:  # noqa: BLE001 - ultralytics raises many types for a wrong/corrupt file
            raise ModelError(f"{weights} is not a loadable YOLO .pt file ({type(exc).__name__}: {exc})") from None
        if self.model.task not in ("detect", "pose"):
            raise ModelError(f"{weights}: a {self.model.task} model, not a detect/pose face detector")
        self.config = config
        self.score_threshold = config.score_threshold if config.score_threshold is not None else 0.5
        self.nms_threshold = config.nms_threshold if config.nms_threshold is not None else 0.45

    def __call__(self, image: np.ndarray) -> Faces:
        res = self.model.predict(image, imgsz=effective_size(image.shape, self.config), conf=self.score_threshold,
                                 iou=self.nms_threshold, device="cpu", verbose=False, max_det=self.config.top_k)[0]
        boxes = res.boxes.xyxy.cpu().numpy().astype(np.float32)
        scores = res.boxes.conf.cpu().numpy().astype(np.float32)
        kps = None
        if res.keypoints is not None and res.keypoints.xy.shape[1] == 5:
            kps = res.keypoints.xy.cpu().numpy().astype(np.float32)
        return drop_small(Faces(boxes, scores, kps), self.config.min_face_size)


@DETECTORS.register("yolo")
def _create(config: DetectorConfig, runtime: RuntimeConfig, weights: str | Path | ModelCard | None = None):
    if isinstance(weights, ModelCard):
        return OnnxYoloDetector(weights, config, runtime)
    src = model_source(DEFAULT_WEIGHTS if weights is None else weights)
    if src.kind == "weights":
        if not src.path.is_file():
            raise ModelError(f"YOLO weights not found: {src.path}")
        return UltralyticsYoloDetector(src.path, config)
    if src.text.endswith(".onnx") and not src.path.is_file():
        raise ModelError(f"{src.text}: an ONNX detector needs a model card (card.json) beside it stating its "
                         "input, colour order and output layout; see resources/models/yolo11p-face/card.json")
    return OnnxYoloDetector(find_card(src.text, family="detector"), config, runtime)
