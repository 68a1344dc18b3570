"""YuNet decoding: parity with OpenCV's FaceDetectorYN on real images, letterboxing, errors."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.config import DetectorConfig
from engine.detectors import DETECTORS, create_detector
from engine.models import find_card
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def native():
    return create_detector("yunet", DetectorConfig(input_size=None, score_threshold=0.6))


def _opencv(image, threshold=0.6):
    det = cv2.FaceDetectorYN.create(str(find_card("yunet").path), "", (image.shape[1], image.shape[0]),
                                    threshold, 0.3, 5000)
    _, faces = det.detect(image)
    return np.zeros((0, 15), np.float32) if faces is None else faces


def _as_rows(faces):
    b = faces.boxes
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2], faces.keypoints.reshape(-1, 10), faces.scores[:, None]], 1)


def _real_images():
    afw = sorted(shared_path("data", "300w", "afw").glob("*.jpg"))[:12]
    lfw = sorted(shared_path("data", "lfw", "lfw-deepfunneled").glob("A*/*.jpg"))[:6]
    return afw + lfw


def test_registry_names_yunet():
    assert "yunet" in DETECTORS.names()
    with pytest.raises(ValueError, match="unknown detector"):
        create_detector("nope")


def test_parity_with_opencv_face_detector_yn(native):
    multi = 0
    for path in _real_images():
        image = cv2.imread(str(path))
        ours = _as_rows(native(image))
        ref = _opencv(image)
        assert len(ours) == len(ref), path
        multi += len(ref) > 1
        ours, ref = ours[np.argsort(-ours[:, 14])], ref[np.argsort(-ref[:, 14])]
        np.testing.assert_allclose(ours[:, :14], ref[:, :14], atol=0.05, err_msg=str(path))
        np.testing.assert_allclose(ours[:, 14], ref[:, 14], atol=1e-4, err_msg=str(path))
    assert multi >= 1, "the sample should include multi-face AFW images"


def test_letterbox_maps_back_to_source_pixels(native):
    """A downscaled, padded detection maps back onto the full-resolution one."""
    path = shared_path("data", "300w", "afw")
    image = cv2.imread(str(sorted(path.glob("*.jpg"))[1]))  # two faces
    big = cv2.resize(image, None, fx=2.0, fy=2.0)
    big = np.concatenate([big, np.zeros((big.shape[0], 200, 3), np.uint8)], axis=1)  # non-square
    boxed = create_detector("yunet", DetectorConfig(input_size=(480, 320), score_threshold=0.6))(big)
    ref = native(big)
    assert len(boxed) >= 2 and len(ref) >= 2
    for b in boxed.boxes:
        assert _best_iou(b, ref.boxes) > 0.8
    for k in boxed.keypoints:  # keypoints land inside the matching full-resolution box
        assert any((r[0] <= k[:, 0]).all() and (k[:, 0] <= r[2]).all() for r in ref.boxes)


def _best_iou(box, boxes):
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return float((inter / (area(box) + area(boxes) - inter)).max())


def test_no_face_and_min_face_size():
    blank = np.full((240, 320, 3), 127, np.uint8)
    assert len(create_detector("yunet")(blank)) == 0
    image = cv2.imread(str(shared_path("data", "lfw", "lfw-deepfunneled", "Aaron_Eckhart", "Aaron_Eckhart_0001.jpg")))
    assert len(create_detector("yunet", DetectorConfig(input_size=None))(image)) == 1
    assert len(create_detector("yunet", DetectorConfig(input_size=None, min_face_size=300))(image)) == 0


def test_bad_inputs_and_config():
    det = create_detector("yunet")
    with pytest.raises(ValueError, match="uint8 BGR"):
        det(np.zeros((100, 100), np.uint8))
    with pytest.raises(ValueError, match="uint8 BGR"):
        det(np.zeros((100, 100, 3), np.float32))
    with pytest.raises(ValueError, match="input_size"):
        DetectorConfig(input_size=(10, 10))
    with pytest.raises(ValueError, match="score_threshold"):
        DetectorConfig(score_threshold=1.5)


def test_planar_float_is_the_transposed_cast():
    from engine.detectors.base import planar_float

    image = np.random.default_rng(0).integers(0, 256, (48, 70, 3), dtype=np.uint8)
    for view in (image, image[::2, 1::3], image[5:40, 3:60]):  # contiguous, strided, cropped
        for rgb in (False, True):
            ref = np.ascontiguousarray((view[:, :, ::-1] if rgb else view).transpose(2, 0, 1)[None], np.float32)
            out = planar_float(view, rgb=rgb)
            assert out.dtype == np.float32 and out.flags.c_contiguous
            np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("shape, size, max_side", [((720, 1280), (640, 384), None), ((1280, 720), (640, 384), None),
                                                   ((333, 517), None, None), ((1080, 1920), None, 640),
                                                   ((384, 640), (640, 384), None), ((100, 37), (320, 320), None)])
def test_letterbox_is_the_resize_padded_with_zeros(shape, size, max_side):
    """The resize written straight into the padded frame: the same pixels as resizing, then
    pasting onto zeros (landscape, portrait: a padded strip on the right, native scale, shrunk)."""
    from engine.detectors.base import letterbox

    image = np.random.default_rng(1).integers(0, 256, shape + (3,), dtype=np.uint8)
    out, box = letterbox(image, size, 32, max_side)
    assert out.shape[0] % 32 == 0 and out.shape[1] % 32 == 0 and (out.shape[1], out.shape[0]) == (box.net_width,
                                                                                                 box.net_height)
    new_w, new_h = max(1, round(shape[1] * box.scale)), max(1, round(shape[0] * box.scale))
    ref = np.zeros_like(out)
    interp = cv2.INTER_AREA if box.scale < 1 else cv2.INTER_LINEAR
    ref[:new_h, :new_w] = image if (new_w, new_h) == shape[::-1] else cv2.resize(image, (new_w, new_h),
                                                                                 interpolation=interp)
    np.testing.assert_array_equal(out, ref)
    if (new_w, new_h) != (out.shape[1], out.shape[0]):
        assert not out[new_h:].any() and not out[:, new_w:].any()
