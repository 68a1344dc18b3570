"""68-point landmarks: stacked hourglass at run time (ONNX), iBUG helpers, crop, pose, sharpness."""
from engine.landmarks.hourglass import LANDMARKERS, HourglassLandmarker, create_landmarker
from engine.landmarks.ibug import five_points, interocular

__all__ = ["LANDMARKERS", "HourglassLandmarker", "create_landmarker", "five_points", "interocular"]
