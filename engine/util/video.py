"""Video-file helpers: a file's own frame rate, an annotated-video writer (run, demo, several-sources runs)."""
from __future__ import annotations

import os
from pathlib import Path

import cv2

from engine.errors import FacescopeError
from engine.util.fsio import PRIVATE_MODE, make_private_dirs


def native_fps(spec) -> float | None:
    """A video file's own frame rate (None for other sources or when the container has none)."""
    if spec.kind != "file":
        return None
    cap = cv2.VideoCapture(str(spec.value))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return float(fps) if 0.5 <= fps <= 1000 else None


def open_writer(path: str | Path, shape: tuple, fps: float) -> cv2.VideoWriter:
    """An annotated-video writer for (H, W, 3) frames: MP4 (mp4v) for ``.mp4``, else MJPG.

    The video shows faces with their names: the file is made 0600 (new folders 0700) BEFORE
    OpenCV opens it, since FFmpeg re-opens an existing file with O_TRUNC and keeps its mode,
    so not one frame is ever readable by other users."""
    path = Path(path)
    fourcc = "mp4v" if path.suffix.lower() == ".mp4" else "MJPG"
    try:
        make_private_dirs(path.parent)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_MODE))
        os.chmod(path, PRIVATE_MODE)  # an existing file (overwritten below) keeps its mode otherwise
    except OSError as exc:
        raise FacescopeError(f"cannot write video {path}: {exc.strerror}") from None
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (shape[1], shape[0]))
    if not writer.isOpened():
        raise FacescopeError(f"cannot write video {path}")
    return writer
