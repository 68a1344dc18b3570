"""Video capture: webcams, network streams, files and image folders as a stream of Frames.

Never imports Qt. ``Capture`` runs one capture thread per source that keeps only the newest
frame; ``parse_source`` turns user text into a ``SourceSpec`` (passwords masked for display).
"""
import os

from engine.capture.capture import Capture
from engine.capture.config import CaptureConfig, CaptureState, CaptureStats
from engine.capture.frame import Frame
from engine.capture.reader import SourceReader, open_capture
from engine.capture.source import SourceError, SourceSpec, mask_url, parse_source

# FFmpeg writes its own lines ("[mov,mp4,...] moov atom not found") straight to stderr from C, on top of
# facescope's one-line error for the same failure: quiet unless asked (OPENCV_FFMPEG_LOGLEVEL=32 shows them).
# OpenCV reads it when it first opens a video, so setting it here (before any capture) is in time.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

__all__ = ["Capture", "CaptureConfig", "CaptureState", "CaptureStats", "Frame", "SourceError", "SourceReader",
           "SourceSpec", "mask_url", "open_capture", "parse_source"]
