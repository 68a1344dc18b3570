"""INT8 calibration: real inputs, prepared by the pipeline's own code, fed to TensorRT.

``calibration_batches`` turns a folder of images into network inputs with the very methods
the stages use at run time (``preprocess`` of the detector, ``crops`` + ``preprocess`` of the
landmark model, ``align`` / ``preprocess_crops`` of the embedder), so the scales TensorRT
measures are those of the inputs it will see (tested bit for bit against the arrays the
stages hand their sessions). ``make_calibrator`` wraps them in an ``IInt8EntropyCalibrator2``
with a calibration cache file: a later build reads the cache and needs no images.

TensorRT calibrates a dynamic-shape network at one shape (the calibration profile's), so every
batch must have exactly that shape: ``calibration_batches`` keeps the inputs of the first shape
it sees (YOLO's letterbox follows each image's aspect ratio) and counts the rest, and the
calibrator checks each batch against the expected shape and dtype of *every* network input,
handing TensorRT one device pointer per input name (``check_batch``). A bad batch stops
calibration with the reason, which the build then raises, instead of scales measured on
garbage.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np

from engine.config import DetectorConfig, EmbedderConfig, LandmarkConfig, RuntimeConfig
from engine.errors import FacescopeError, ImageError
from engine.imageio import read_image
from engine.models.card import ModelCard
from engine.util.imagefiles import IMAGE_SUFFIXES, is_image_path

CPU = RuntimeConfig(backend="onnxruntime")
log = logging.getLogger(__name__)


def image_files(folder: str | Path, limit: int = 0) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"calibration folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if is_image_path(p))
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    return files[:limit] if limit else files


def _detector(card: ModelCard | None = None, config: DetectorConfig | None = None):
    from engine.detectors import create_detector

    if card is None:
        return create_detector("yunet", DetectorConfig(), CPU)
    kwargs = {"weights": card} if card.architecture == "yolo" else {"card": card}
    config = config or DetectorConfig(name=card.architecture)
    return create_detector(card.architecture, config, CPU, **kwargs)


def _detector_inputs(card: ModelCard, config: DetectorConfig | None = None) -> Callable[[np.ndarray], list[np.ndarray]]:
    det = _detector(card, config)
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
    ``folder``, all of one shape (a ragged last batch is dropped, and inputs whose shape differs
    from the first one are skipped and counted in the log: TensorRT calibrates at one shape).
    Detectors take one frame per sample at the detector's configured input size; landmark
    models and embedders take every face the default detector finds. Unreadable images are
    skipped."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    to_inputs = INPUTS[card.family](card)
    pending: list[np.ndarray] = []
    done, shape, skipped = 0, None, 0
    for path in image_files(folder, limit):
        try:
            image = read_image(path)
        except (ImageError, FacescopeError):
            continue
        for x in to_inputs(image):
            shape = shape or x.shape
            if x.shape != shape:
                skipped += 1
                continue
            pending.append(x)
        while len(pending) >= batch_size and done < max_batches:
            yield np.ascontiguousarray(np.stack(pending[:batch_size]), np.float32)
            pending, done = pending[batch_size:], done + 1
        if done >= max_batches:
            break
    if skipped:
        log.warning("calibration: %d inputs skipped, their shape differs from the first one %s", skipped, shape)


def check_batch(batch: np.ndarray | Mapping[str, np.ndarray], names: list[str],
                expected: Mapping[str, tuple[int, ...]]) -> list[np.ndarray]:
    """The arrays to copy for one calibration batch, one per name in ``names`` (TensorRT's order).

    ``batch``: an array (networks with one input) or ``{input name: array}``; ``expected``: the
    calibration profile's shape per input. ValueError, saying what is wrong, for a missing or
    unknown input, a shape other than the expected one, or a non-float32 array."""
    if not isinstance(batch, Mapping):
        if len(names) != 1:
            raise ValueError(f"the network has {len(names)} inputs {list(names)}; give a dict of arrays per batch")
        batch = {names[0]: batch}
    if set(batch) != set(names):
        raise ValueError(f"calibration batch has inputs {sorted(batch)}, the network wants {sorted(names)}")
    out = []
    for name in names:
        x = batch[name]
        if not isinstance(x, np.ndarray) or x.dtype != np.float32:
            raise ValueError(f"calibration input {name!r} must be a float32 array, got "
                             f"{getattr(x, 'dtype', type(x).__name__)}")
        if name not in expected:
            raise ValueError(f"no calibration shape for input {name!r}")
        if tuple(x.shape) != tuple(expected[name]):
            raise ValueError(f"calibration input {name!r} has shape {tuple(x.shape)}, the calibration profile "
                             f"wants {tuple(expected[name])}")
        out.append(np.ascontiguousarray(x))
    return out


def make_calibrator(batches: Iterator | list, cache_path: str | Path,
                    expected: Mapping[str, tuple[int, ...]] | None = None):
    """An ``IInt8EntropyCalibrator2`` over ``batches`` that reads/writes ``cache_path``.

    ``expected``: the calibration shape per input name (default: the first batch's shape, for a
    one-input network). With a cache present TensorRT asks for no batch at all. After the build,
    ``calibrator.error`` holds the reason if a batch was refused (``trt_build.build`` raises it).
    """
    from engine.backends.cuda_api import cuda_call, import_cudart, import_tensorrt
    from engine.util.fsio import atomic_write_bytes

    trt, cudart = import_tensorrt(), import_cudart()
    cache_path = Path(cache_path)

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._batches = iter(batches)
            self._first = None if cache_path.is_file() else next(self._batches, None)
            if self._first is None and not cache_path.is_file():
                raise FacescopeError("no calibration batch: the folder gave no usable input")
            self.expected = dict(expected) if expected is not None else None
            self._device: dict[str, tuple[int, int]] = {}      # name -> (pointer, bytes)
            self.batches_used, self.error = 0, None

        def get_batch_size(self) -> int:
            return 1      # explicit-batch networks: the batch is in the shapes (as Polygraphy's calibrator does)

        def get_batch(self, names):
            x = self._first if self._first is not None else next(self._batches, None)
            self._first = None
            if x is None:
                return None
            if self.expected is None:          # no profile given: the first batch fixes the shapes
                self.expected = {n: tuple(np.shape(x.get(n) if isinstance(x, Mapping) else x)) for n in names}
            try:
                arrays = check_batch(x, list(names), self.expected)
            except ValueError as exc:
                # an exception must not cross into TensorRT's C++: stop calibration, raise after the build
                self.error = f"calibration batch {self.batches_used + 1}: {exc}"
                log.error("%s", self.error)
                return None
            pointers = []
            for name, a in zip(names, arrays, strict=True):
                ptr, size = self._device.get(name, (None, 0))
                if a.nbytes > size:
                    if ptr is not None:
                        cuda_call(cudart.cudaFree(ptr))
                    ptr, size = cuda_call(cudart.cudaMalloc(a.nbytes)), a.nbytes
                    self._device[name] = (ptr, size)
                cuda_call(cudart.cudaMemcpy(ptr, a.ctypes.data, a.nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice))
                pointers.append(int(ptr))
            self.batches_used += 1
            return pointers

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache) -> None:
            atomic_write_bytes(cache_path, bytes(cache))

        def free(self) -> None:
            for ptr, _ in self._device.values():
                cudart.cudaFree(ptr)
            self._device = {}

        def __del__(self) -> None:
            self.free()

    return EntropyCalibrator()
