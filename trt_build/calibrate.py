"""INT8 calibration: real inputs, prepared by the pipeline's own code, fed to TensorRT.

``calibration_batches`` turns a folder of images into network inputs with the very methods
the stages use at run time (``preprocess`` of the detector, ``crops`` + ``preprocess`` of the
landmark model, ``align`` / ``preprocess_crops`` of the embedder), so the scales TensorRT
measures are those of the inputs it will see (tested bit for bit against the arrays the
stages hand their sessions). ``make_calibrator`` wraps them in an ``IInt8EntropyCalibrator2``
with a calibration cache file: a later build reads the cache and needs no images.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from engine.config import DetectorConfig, EmbedderConfig, LandmarkConfig, RuntimeConfig
from engine.errors import FacescopeError, ImageError
from engine.imageio import read_image
from engine.models.card import ModelCard

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
CPU = RuntimeConfig(backend="onnxruntime")


def image_files(folder: str | Path, limit: int = 0) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"calibration folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    return files[:limit] if limit else files


def _detector(card: ModelCard | None = None):
    from engine.detectors import create_detector

    if card is None:
        return create_detector("yunet", DetectorConfig(), CPU)
    kwargs = {"weights": card} if card.architecture == "yolo" else {"card": card}
    return create_detector(card.architecture, DetectorConfig(name=card.architecture), CPU, **kwargs)


def _detector_inputs(card: ModelCard) -> Callable[[np.ndarray], list[np.ndarray]]:
    det = _detector(card)
    return lambda image: [det.preprocess(image)[0][0]]


def _landmark_inputs(card: ModelCard) -> Callable[[np.ndarray], list[np.ndarray]]:
    from engine.landmarks import create_landmarker

    det, lm = _detector(), create_landmarker("onnx", LandmarkConfig(), CPU, card=card)

    def faces(image: np.ndarray) -> list[np.ndarray]:
        boxes = det(image).boxes
        return list(lm.preprocess(lm.crops(image, boxes)[0])) if len(boxes) else []
    return faces


def _embedder_inputs(card: ModelCard) -> Callable[[np.ndarray], list[np.ndarray]]:
    from engine.embedders import create_embedder

    from engine.landmarks import create_landmarker

    # the app's defaults: YuNet boxes, alignment points from the hourglass (Recognizer.locate)
    det, lm = _detector(), create_landmarker("hourglass68", LandmarkConfig(), CPU)
    emb = create_embedder("onnx", EmbedderConfig(name=card.name), CPU, card=card)
    w, h = emb.size

    def faces(image: np.ndarray) -> list[np.ndarray]:
        if image.shape[:2] == (h, w):                     # already an aligned crop (a gallery's)
            return [emb.preprocess_crops(image[None])[0]]
        found = det(image)
        return list(emb.align(image, lm(image, found).keypoints)) if len(found) else []
    return faces


INPUTS: dict[str, Callable[[ModelCard], Callable[[np.ndarray], list[np.ndarray]]]] = {
    "detector": _detector_inputs, "landmarks": _landmark_inputs, "embedder": _embedder_inputs}


def calibration_batches(card: ModelCard, folder: str | Path, batch_size: int, limit: int = 0,
                        max_batches: int = 64) -> Iterator[np.ndarray]:
    """Batches ``(batch_size, 3, H, W)`` float32 for ``card``'s network from the images in
    ``folder`` (a ragged last batch is dropped: TensorRT calibrates at one shape). Detectors
    take one frame per sample at the detector's configured input size; landmark models and
    embedders take every face the default detector finds. Unreadable images are skipped."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    to_inputs = INPUTS[card.family](card)
    pending: list[np.ndarray] = []
    done = 0
    for path in image_files(folder, limit):
        try:
            image = read_image(path)
        except (ImageError, FacescopeError):
            continue
        pending.extend(to_inputs(image))
        while len(pending) >= batch_size and done < max_batches:
            yield np.ascontiguousarray(np.stack(pending[:batch_size]), np.float32)
            pending, done = pending[batch_size:], done + 1
        if done >= max_batches:
            return


def make_calibrator(batches: Iterator[np.ndarray] | list[np.ndarray], cache_path: str | Path):
    """An ``IInt8EntropyCalibrator2`` over ``batches`` (all one shape) that reads/writes
    ``cache_path``. With a cache present TensorRT asks for no batch at all."""
    from engine.backends.trt_cache import atomic_write
    from trt_build.cuda_api import cuda_call, import_cudart, import_tensorrt

    trt, cudart = import_tensorrt(), import_cudart()
    cache_path = Path(cache_path)

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._batches = iter(batches)
            self._first = None if cache_path.is_file() else next(self._batches, None)
            if self._first is None and not cache_path.is_file():
                raise FacescopeError("no calibration batch: the folder gave no usable input")
            self._size = len(self._first) if self._first is not None else 1
            self._device, self._nbytes, self.batches_used = None, 0, 0

        def get_batch_size(self) -> int:
            return self._size

        def get_batch(self, names):
            x = self._first if self._first is not None else next(self._batches, None)
            self._first = None
            if x is None:
                return None
            x = np.ascontiguousarray(x, np.float32)
            if x.nbytes > self._nbytes:
                if self._device is not None:
                    cuda_call(cudart.cudaFree(self._device))
                self._device, self._nbytes = cuda_call(cudart.cudaMalloc(x.nbytes)), x.nbytes
            cuda_call(cudart.cudaMemcpy(self._device, x.ctypes.data, x.nbytes,
                                        cudart.cudaMemcpyKind.cudaMemcpyHostToDevice))
            self.batches_used += 1
            return [int(self._device)]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache) -> None:
            atomic_write(cache_path, bytes(cache))

        def __del__(self) -> None:
            if self._device is not None:
                cudart.cudaFree(self._device)

    return EntropyCalibrator()
