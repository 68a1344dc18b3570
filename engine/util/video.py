"""Video-file helpers: a file's own frame rate, an annotated-video writer (run, demo, several-sources runs)."""
from __future__ import annotations

from pathlib import Path

import cv2

from engine.errors import FacescopeError


def native_fps(spec) -> float | None:
    """A video file's own frame rate (None for other sources or when the container has none)."""
    if spec.kind != "file":
        return None
    cap = cv2.VideoCapture(str(spec.value))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return float(fps) if 0.5 <= fps <= 1000 else None


def open_writer(path: str | Path, shape: tuple, fps: float) -> cv2.VideoWriter:
    """An annotated-video writer for (H, W, 3) frames: MP4 (mp4v) for ``.mp4``, else MJPG."""
    fourcc = "mp4v" if Path(path).suffix.lower() == ".mp4" else "MJPG"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (shape[1], shape[0]))
    if not writer.isOpened():
        raise FacescopeError(f"cannot write video {path}")
    return writer
