"""The Faces record: shape validation, immutability, selection."""
from __future__ import annotations

import numpy as np
import pytest

from engine.records import UNKNOWN, Faces


def _faces(n=3):
    boxes = np.array([[0, 0, 10, 10], [5, 5, 45, 60], [1, 1, 3, 3]][:n], np.float32)
    return Faces(boxes, np.linspace(0.9, 0.7, n), np.zeros((n, 5, 2)))


def test_defaults_and_selection():
    f = _faces()
    assert len(f) == 3 and f.largest() == 1
    assert f.identities.tolist() == [UNKNOWN] * 3 and f.names == (None,) * 3
    assert np.isnan(f.similarities).all() and f.track_ids.tolist() == [-1] * 3
    sub = f.select(np.array([True, False, True]))
    assert len(sub) == 2 and sub.boxes[1, 2] == 3
    named = f.replace(names=("a", None, "b"), embeddings=np.eye(3, 4))
    assert named.select([2]).names == ("b",) and named.select([2]).embeddings.shape == (1, 4)
    assert len(Faces.empty(5)) == 0 and Faces.empty(5).keypoints.shape == (0, 5, 2)


def test_arrays_are_read_only():
    f = _faces()
    with pytest.raises(ValueError):
        f.boxes[0, 0] = 1


@pytest.mark.parametrize("kwargs,message", [
    (dict(boxes=np.zeros((2, 3)), scores=[1, 1]), "boxes"),
    (dict(boxes=np.zeros((2, 4)), scores=[1]), "scores"),
    (dict(boxes=np.zeros((2, 4)), scores=[1, 1], keypoints=np.zeros((3, 5, 2))), "keypoints"),
    (dict(boxes=np.zeros((2, 4)), scores=[1, 1], embeddings=np.zeros((2,))), "embeddings"),
    (dict(boxes=np.zeros((2, 4)), scores=[1, 1], names=("a",)), "names"),
    (dict(boxes=np.full((1, 4), np.nan), scores=[1]), "NaN"),
])
def test_invalid_shapes_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Faces(**kwargs)
    with pytest.raises(ValueError, match="no faces"):
        Faces.empty().largest()
