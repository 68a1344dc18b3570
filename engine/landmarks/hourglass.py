"""The landmark stage at run time: ONNX hourglass -> 68 points, 5 alignment points, pose, sharpness.

``Landmarker(image, faces) -> Faces`` with ``landmarks`` (N, 68, 2), ``poses`` (N, 3) and
``sharpness`` (N,) set; ``keypoints`` become the 68-point model's 5 alignment points when
the detector gave none or ``replace_keypoints`` is set. One batched inference for all
faces of a frame. Crop, normalisation and decoding come from the model card.
"""
from __future__ import annotations

import numpy as np

from engine.align import crops_to_tensor
from engine.backends import create_session
from engine.config import LandmarkConfig, RuntimeConfig
from engine.errors import ModelError
from engine.landmarks.crop import apply, crop_matrix, invert, warp
from engine.landmarks.dataset import BoxRelation
from engine.landmarks.heatmap import soft_argmax
from engine.landmarks.ibug import MIRROR, five_points
from engine.landmarks.pose import head_pose, sharpness
from engine.models import ModelCard, find_card, prepared_model_path
from engine.records import Faces
from engine.registry import Registry

LANDMARKERS: Registry = Registry("landmark model")


def create_landmarker(name: str = "hourglass68", config: LandmarkConfig | None = None,
                      runtime: RuntimeConfig | None = None, **kwargs):
    """The one factory for landmark models (a registered name, or ``"onnx"`` with ``card=``)."""
    return LANDMARKERS.create(name, config=config or LandmarkConfig(model=name), runtime=runtime or RuntimeConfig(),
                              **kwargs)


class HourglassLandmarker:
    name = "hourglass"

    def __init__(self, card: ModelCard, config: LandmarkConfig, runtime: RuntimeConfig) -> None:
        if card.family != "landmarks":
            raise ModelError(f"model {card.name!r} is a {card.family}, not a landmark model")
        self.card, self.config = card, config
        self.size = int(card.input_size[0])
        self.stride = float(card.extra["stride"])
        self.crop_scale, self.shift_y = float(card.extra["crop_scale"]), float(card.extra["shift_y"])
        self.mean = np.asarray(card.mean, np.float32)
        self.std = np.asarray(card.std, np.float32)
        self.rgb = card.color_order == "RGB"
        self.session = create_session(prepared_model_path(card), runtime, card=card)
        self.input_name = self.session.input_names[0]

    def crops(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """((N, S, S, 3) uint8 crops, (N, 2, 3) image->crop affines)."""
        ms = np.stack([crop_matrix(b, self.size, self.crop_scale, self.shift_y) for b in boxes]) if len(boxes) else \
            np.zeros((0, 2, 3))
        crops = np.stack([warp(image, m, self.size) for m in ms]) if len(ms) else \
            np.zeros((0, self.size, self.size, 3), np.uint8)
        return crops, ms

    def preprocess(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 BGR crops -> (N, 3, S, S) float32 network input (the card's colour
        order and mean/std); also what INT8 calibration feeds TensorRT."""
        return crops_to_tensor(crops, self.mean, self.std, self.rgb)

    def predict_crops(self, crops: np.ndarray, scales: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(N, S, S, 3) uint8 -> ((N, 68, 2) crop px, (N, 68) peak probabilities).

        With ``config.flip_test`` the mirrored crops run in the same batch and the two
        predictions are averaged (mirrored back, iBUG indices swapped): less jitter and error
        for twice the inference. A model trained to its data's x convention (card
        ``extra.annotation_dx``, image px) is shifted by twice that when mirrored back;
        ``scales`` (N,) crop px per image px convert it (1 when not given).
        """
        n = len(crops)
        if self.config.flip_test:
            crops = np.concatenate([crops, crops[:, :, ::-1]])
        hm = next(iter(self.session.run({self.input_name: self.preprocess(crops)}).values()))
        xy, peak = soft_argmax(hm, self.stride)
        if self.config.flip_test:
            mirrored = xy[n:][:, MIRROR].copy()
            dx = float(self.card.extra.get("annotation_dx", 0.0)) * (np.ones(n) if scales is None else scales)
            mirrored[..., 0] = self.size - 1 - mirrored[..., 0] + 2 * dx[:, None]
            xy = (xy[:n] + mirrored) / 2
            peak = (peak[:n] + peak[n:][:, MIRROR]) / 2
        return xy, peak

    def predict(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (N, 4) xyxy -> ((N, 68, 2) image px, (N,) sharpness of each crop)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, 68, 2), np.float32), np.zeros(0, np.float32)
        crops, ms = self.crops(image, boxes)
        out = self._to_image(self.predict_crops(crops, ms[:, 0, 0])[0], ms)
        rel = self.card.extra.get("box_relation")
        if self.config.refine and rel:
            # second pass from the box the first pass implies (the training set's median
            # detector box for these landmarks): removes most of the detector's box jitter
            relation = BoxRelation(rel["dx"], rel["dy"], rel["size"])
            crops, ms = self.crops(image, np.stack([relation.box(p) for p in out]))
            out = self._to_image(self.predict_crops(crops, ms[:, 0, 0])[0], ms)
        return out.astype(np.float32), sharpness(crops)

    @staticmethod
    def _to_image(pts: np.ndarray, ms: np.ndarray) -> np.ndarray:
        """(N, 68, 2) crop px -> image px through each crop's inverse affine."""
        return np.stack([apply(invert(m), p) for m, p in zip(ms, pts, strict=True)]).astype(np.float32)

    def __call__(self, image: np.ndarray, faces: Faces) -> Faces:
        if len(faces) == 0:
            return faces.replace(landmarks=np.zeros((0, 68, 2), np.float32), poses=np.zeros((0, 3), np.float32),
                                 sharpness=np.zeros(0, np.float32))
        lm, sharp = self.predict(image, faces.boxes)
        changes = dict(landmarks=lm, poses=head_pose(lm, image.shape), sharpness=sharp)
        if self.config.uses_landmark_points(faces.keypoints):
            changes["keypoints"] = five_points(lm)
        return faces.replace(**changes)


@LANDMARKERS.register("hourglass68")
def _create_shipped(config: LandmarkConfig, runtime: RuntimeConfig) -> HourglassLandmarker:
    return HourglassLandmarker(find_card("hourglass68", family="landmarks"), config, runtime)


@LANDMARKERS.register("onnx")
def _create_from_card(config: LandmarkConfig, runtime: RuntimeConfig, card) -> HourglassLandmarker:
    card = card if isinstance(card, ModelCard) else find_card(card, family="landmarks")
    return HourglassLandmarker(card, config, runtime)
