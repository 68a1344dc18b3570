"""Pseudo-labelling extra faces with a teacher: MediaPipe FaceMesh (468 points) mapped to iBUG 68.

300-W gives ~1000 annotated training faces, too few to train a landmark model from scratch to
300-W accuracy on a CPU budget. FaceMesh (Apache-2.0, trained by Google on far more faces)
is a strong teacher but uses a different point scheme, so a ridge-regularised linear map
from its 468 points to each iBUG point is fitted on the 300-W *training* split (the held-out
split is never seen), and then labels unannotated faces (LFW). Measured here: the mapped
teacher scores 4.67 % NME on the held-out split (``facescope train landmarks`` prints it).
The student trains on teacher labels + the real annotations, then fine-tunes on the real
annotations only.

FaceMesh input: 192x192 RGB in [0, 1], a square crop of 1.5x the detector box; output
(1, 1404) = 468 x (x, y, z) in crop pixels and a face-presence logit.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.landmarks.crop import apply, crop_matrix, invert, warp

SIZE, SCALE = 192, 1.5


class MeshTeacher:
    def __init__(self, onnx_path: str | Path, threads: int = 0) -> None:
        import onnxruntime as ort

        path = Path(onnx_path)
        if not path.is_file():
            raise FileNotFoundError(f"teacher model not found: {path}")
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.weights: np.ndarray | None = None   # (68, 470): 468 mesh weights + x/y bias

    def mesh(self, image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """((468, 2) crop px, face-presence logit, (2, 3) image->crop affine)."""
        m = crop_matrix(box, SIZE, SCALE)
        crop = warp(image, m, SIZE)[:, :, ::-1].astype(np.float32) / 255.0
        pts, flag = self.session.run(None, {self.input: crop[None]})
        return pts.reshape(468, 3)[:, :2], float(np.ravel(flag)[0]), m

    def fit(self, meshes: np.ndarray, targets: np.ndarray, lam: float = 100.0) -> None:
        """Ridge fit: ``meshes`` (N, 468, 2) and ``targets`` (N, 68, 2), both in crop px."""
        n = len(meshes)
        a = np.concatenate([np.concatenate([meshes[:, :, 0], np.ones((n, 1)), np.zeros((n, 1))], 1),
                            np.concatenate([meshes[:, :, 1], np.zeros((n, 1)), np.ones((n, 1))], 1)])
        ata = a.T @ a + lam * np.diag(np.r_[np.ones(468), 0.0, 0.0])
        y = np.concatenate([targets[:, :, 0], targets[:, :, 1]])          # (2N, 68)
        self.weights = np.linalg.solve(ata, a.T @ y).T

    def map(self, meshes: np.ndarray) -> np.ndarray:
        """(N, 468, 2) -> (N, 68, 2) in the same (crop) coordinates."""
        w = self.weights
        if w is None:
            raise RuntimeError("teacher mapping not fitted")
        return np.stack([meshes[:, :, 0] @ w[:, :468].T + w[:, 468], meshes[:, :, 1] @ w[:, :468].T + w[:, 469]], -1)

    def fit_on(self, images: Sequence[np.ndarray], boxes: np.ndarray, points: np.ndarray) -> None:
        meshes, targets = [], []
        for img, box, pts in zip(images, boxes, points, strict=True):
            mesh, _, m = self.mesh(img, box)
            meshes.append(mesh)
            targets.append(apply(m, pts))
        self.fit(np.array(meshes), np.array(targets))

    def label(self, image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, float]:
        """(68, 2) image px and the face-presence logit."""
        mesh, flag, m = self.mesh(image, box)
        return apply(invert(m), self.map(mesh[None])[0]).astype(np.float32), flag
