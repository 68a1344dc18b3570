"""dlib's 68-point shape predictor as a comparison baseline (benchmark extra, not a dependency).

Model: ``shape_predictor_68_face_landmarks.dat`` from the ``face-recognition-models`` package
(found by path: that package's ``__init__`` needs the removed ``pkg_resources``). dlib's
model was trained on 300-W itself (iBUG's training images, HELEN and AFW among them), so on
those images it is *not* a held-out comparison.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from engine.boxes import iou_matrix
from engine.errors import FacescopeError
from engine.landmarks.dataset import BoxRelation


def predictor_path() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FacescopeError("--compare dlib needs the bench extra: pip install 'facescope[bench]' "
                             "(dlib-bin and face-recognition-models)")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise FacescopeError(f"dlib's 68-point model not found at {path}")
    return path


class DlibLandmarks:
    """``predict(image BGR, box xyxy) -> (68, 2)`` with dlib's shape predictor.

    dlib's predictor was trained on boxes from dlib's own HOG detector, which are tighter and
    lower than YuNet's; fed YuNet boxes as they are it loses several points of NME. So that
    the comparison measures the predictor and not a box mismatch, :meth:`calibrate` measures
    the median HOG-box-from-our-box relation on the images where dlib's detector finds the
    face, and :meth:`predict` converts our box with it (the same face, the same crop origin).
    """

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError:
            raise FacescopeError("--compare dlib needs dlib: pip install 'facescope[bench]'") from None
        self._dlib = dlib
        self.predictor = dlib.shape_predictor(str(predictor_path()))
        self.relation = BoxRelation()     # dlib's box relative to ours
        self.calibrated_on = 0

    def calibrate(self, images, boxes) -> BoxRelation:
        """Median relation of dlib HOG boxes to ``boxes`` (matched at IoU >= 0.3)."""
        hog = self._dlib.get_frontal_face_detector()
        ours, theirs = [], []
        for img, box in zip(images, boxes, strict=True):
            dets = hog(np.ascontiguousarray(img[:, :, ::-1]), 1)
            if not len(dets):
                continue
            d = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in dets], np.float64)
            o = iou_matrix(d, box)[:, 0]
            j = int(np.argmax(o))
            if o[j] < 0.3:
                continue
            ours.append(box)
            theirs.append(d[j])
        self.relation = BoxRelation.fit(np.array(ours).reshape(-1, 4), np.array(theirs).reshape(-1, 4))
        self.calibrated_on = len(ours)
        return self.relation

    def predict(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = (int(round(v)) for v in self.relation.apply(box))
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        shape = self.predictor(rgb, self._dlib.rectangle(x1, y1, x2, y2))
        return np.array([[p.x, p.y] for p in shape.parts()], np.float32)
