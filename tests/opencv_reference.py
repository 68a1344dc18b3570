"""OpenCV's own SFace features for parity tests, computed in a child process.

OpenCV 5's new DNN graph engine refuses the SFace file (its weights are also listed as graph
inputs); the classic engine loads it, but the engine is chosen once per process from
``OPENCV_FORCE_DNN_ENGINE`` and the classic one in turn refuses YuNet's input resizing. So
the reference features run in a child with the classic engine. OpenCV 4.x ignores the
variable. Usage: ``python opencv_reference.py CROPS.npy OUT.npy MODEL.onnx``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def opencv_sface_features(crops: np.ndarray, model: Path, tmp: Path) -> np.ndarray:
    """(N, 112, 112, 3) uint8 BGR aligned crops -> (N, 128) OpenCV FaceRecognizerSF features."""
    src, dst = tmp / "crops.npy", tmp / "features.npy"
    np.save(src, crops)
    env = dict(os.environ, OPENCV_FORCE_DNN_ENGINE="1")
    subprocess.run([sys.executable, __file__, str(src), str(dst), str(model)], env=env, check=True,
                   capture_output=True, timeout=120)
    return np.load(dst)


if __name__ == "__main__":
    import cv2

    crops = np.load(sys.argv[1])
    recognizer = cv2.FaceRecognizerSF.create(sys.argv[3], "")
    np.save(sys.argv[2], np.stack([recognizer.feature(c)[0] for c in crops]))
