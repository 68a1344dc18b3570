"""SFace embedder: parity with OpenCV's FaceRecognizerSF on real faces, batching, flip, errors."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.config import DetectorConfig, EmbedderConfig
from engine.detectors import create_detector
from engine.embedders import EMBEDDERS, create_embedder
from engine.models import find_card
from tests.conftest import shared_path
from tests.opencv_reference import opencv_sface_features


@pytest.fixture(scope="module")
def faces_and_images():
    det = create_detector("yunet", DetectorConfig(input_size=None))
    out = []
    root = shared_path("data", "lfw", "lfw-deepfunneled")
    for name in ("Aaron_Eckhart", "Abdullah_Gul", "Abdullah_Gul", "Adam_Sandler"):
        for path in sorted((root / name).glob("*.jpg"))[:2]:
            image = cv2.imread(str(path))
            faces = det(image)
            out.append((image, faces.select([faces.largest()])))
    return out


@pytest.fixture(scope="module")
def sface():
    return create_embedder("sface")


def test_registry():
    assert {"sface", "onnx"} <= set(EMBEDDERS.names())


def test_parity_with_opencv_face_recognizer_sf(sface, faces_and_images, tmp_path):
    crops = np.concatenate([sface.aligned_crops(img, f.keypoints) for img, f in faces_and_images])
    ref = opencv_sface_features(crops, find_card("sface").path, tmp_path)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    ours_from_crops = sface.embed_crops(crops)
    ours_fused = np.concatenate([sface.embed_faces(img, f).embeddings for img, f in faces_and_images])
    assert (ours_from_crops * ref).sum(1).min() > 0.9999
    assert (ours_fused * ref).sum(1).min() > 0.999  # fused warp vs warp->uint8 round trip
    # and the embeddings mean something: same person closer than different persons
    sims = ours_fused @ ours_fused.T
    assert sims[2, 3] > 0.5 and sims[0, 6] < 0.3


def test_batching_is_consistent(sface, faces_and_images):
    image, faces = faces_and_images[0]
    x = sface.align(image, faces.keypoints)
    single = sface.embed_tensor(x)
    small = create_embedder("sface", EmbedderConfig(batch_size=3))
    batch = small.embed_tensor(np.repeat(x, 7, axis=0))
    np.testing.assert_allclose(batch, np.repeat(single, 7, axis=0), atol=1e-5)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1, atol=1e-5)


def test_flip_averaging_changes_little(faces_and_images):
    flip = create_embedder("sface", EmbedderConfig(flip=True))
    plain = create_embedder("sface")
    image, faces = faces_and_images[1]
    a = flip.embed_faces(image, faces).embeddings[0]
    b = plain.embed_faces(image, faces).embeddings[0]
    assert 0.8 < float(a @ b) < 0.99999


def test_errors(sface):
    from engine.records import Faces

    assert sface.embed_faces(np.zeros((64, 64, 3), np.uint8), Faces.empty(5)).embeddings.shape == (0, 128)
    with pytest.raises(ValueError, match="keypoints"):
        sface.embed_faces(np.zeros((64, 64, 3), np.uint8), Faces(np.array([[0, 0, 10, 10]]), [0.9]))
    with pytest.raises(ValueError, match="crops must be"):
        sface.embed_crops(np.zeros((2, 100, 100, 3), np.uint8))
    with pytest.raises(ValueError, match="batch_size"):
        EmbedderConfig(batch_size=0)
