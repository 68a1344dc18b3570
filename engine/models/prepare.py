"""From a shipped model file to a file a runtime can load: verified, dequantized, cached.

Steps: check the card's sha256, fold block-quantized weights to FP32 (``dequant``), rewrite
per-channel PRelu into ops ONNX Runtime's CPU kernels run in their blocked layout (``prelu``;
same values, SFace twice as fast on CPU; TensorRT gets the same graph), make the batch (or
a detector's height/width) dims symbolic.

The prepared file lives in the user's cache folder (``$FACESCOPE_CACHE_DIR`` or
``$XDG_CACHE_HOME/facescope`` or ``~/.cache/facescope``), named by the source sha256 and
this module's ``PREPARE_VERSION``, so a changed source or recipe never reuses a stale file.
Writes are atomic (temp file + rename), so a crash never leaves a half-written model.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import ModelError
from engine.models.card import ModelCard
from engine.util.fsio import atomic_write_bytes

if TYPE_CHECKING:  # onnx (with ml_dtypes, ~25 MB resident) is imported only to prepare a model, not to run one
    import onnx

PREPARE_VERSION = 2  # 2: PRelu rewritten for ONNX Runtime's CPU kernels (engine/models/prelu.py)


def cache_dir() -> Path:
    root = os.environ.get("FACESCOPE_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "facescope"


def _dynamic_dims(card: ModelCard) -> dict[int, str]:
    # Detectors run one frame at a time at any size; embedders batch at a fixed size.
    if card.family == "detector" and card.input_size is None:
        return {2: "height", 3: "width"}
    return {0: "batch"}


def load_onnx(path: Path) -> onnx.ModelProto:
    """Parse an ONNX file, turning parser failures into a clear ModelError."""
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError, ValueError, ... for junk files
        raise ModelError(f"{path} is not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    if not model.graph.node:
        raise ModelError(f"{path} is not a readable ONNX model (empty graph)")
    return model


def prepared_model_path(card: ModelCard, cache: Path | None = None) -> Path:
    """Verify the card's file and return an FP32 ONNX file with runtime-friendly dims.

    FP32 sources are still rewritten once (dynamic dims); the cost is paid on first use only.
    """
    card.verify()
    cache = cache or cache_dir()
    target = cache / "models" / f"{card.name}-{card.sha256[:16]}-v{PREPARE_VERSION}.onnx"
    if target.is_file():
        return target
    return atomic_write_bytes(target, prepare_graph(card).SerializeToString())


def prepare_graph(card: ModelCard, rewrite_prelu: bool = True) -> onnx.ModelProto:
    """The prepared graph in memory (``rewrite_prelu=False``: PRelu as shipped, for ``facescope
    bench models``). Raises ModelError for a file that is not what its card says."""
    import onnx

    from engine.models.dequant import dequantize_model, set_dynamic_dims
    from engine.models.prelu import rewrite_prelu as rewrite

    model = load_onnx(card.path)
    model, folded = dequantize_model(model)
    if card.quantization == "int8-block" and folded == 0:
        raise ModelError(f"{card.path}: card says int8-block but the graph has no constant DequantizeLinear")
    if rewrite_prelu:
        model, _ = rewrite(model)  # before the dims go symbolic, so every rank is known
    model = set_dynamic_dims(model, _dynamic_dims(card))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"prepared {card.name} failed the ONNX checker: {exc}") from None
    return model
