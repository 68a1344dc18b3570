"""Model cards: everything needed to run a model file, stated rather than guessed.

A card is a JSON file (``card.json``) next to the model file. It says how pixels must be
prepared (input size, colour order, mean/std), how outputs are read (keypoints, embedding
size), the default decision threshold, the licence and the file's sha256. Nothing here is
inferred from tensor shapes: a card that lacks a field a family needs fails on load.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ModelError
from engine.resources import models_dir

RESOURCES = models_dir()  # resources/models of a checkout, or the installed facescope_resources
FAMILIES = ("detector", "embedder", "landmarks")
QUANTIZATIONS = ("fp32", "fp16", "int8-block")
COLOR_ORDERS = ("BGR", "RGB")
TEMPLATES = ("arcface_112",)


@dataclass(frozen=True)
class ModelCard:
    """Typed model card. Paths are resolved against ``directory`` (the card's folder).

    Units: ``input_size`` is (width, height) in pixels or None for any size (the
    detector then pads to ``size_divisor``); ``mean``/``std`` apply to 0-255 pixel values
    in ``color_order``; ``threshold`` is a cosine similarity in [-1, 1].
    """

    name: str
    family: str
    architecture: str
    file: str
    sha256: str
    licence: str
    source: str
    directory: Path
    quantization: str = "fp32"
    input_size: tuple[int, int] | None = None
    size_divisor: int = 1
    color_order: str = "BGR"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    keypoints: int = 0
    keypoint_order: tuple[str, ...] = ()
    alignment_template: str | None = None
    embedding_size: int | None = None
    threshold: float | None = None
    score_threshold: float | None = None
    nms_threshold: float | None = None
    licence_file: str | None = None
    commercial_use: bool = True
    normalization_note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.family not in FAMILIES:
            problems.append(f"family {self.family!r} not in {FAMILIES}")
        if self.quantization not in QUANTIZATIONS:
            problems.append(f"quantization {self.quantization!r} not in {QUANTIZATIONS}")
        if self.color_order not in COLOR_ORDERS:
            problems.append(f"color_order {self.color_order!r} not in {COLOR_ORDERS}")
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            problems.append("sha256 must be 64 lowercase hex digits")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            problems.append("mean/std need 3 values each and std > 0")
        if self.input_size is not None and (len(self.input_size) != 2 or min(self.input_size) <= 0):
            problems.append(f"input_size {self.input_size!r} must be (width, height) > 0")
        if self.family == "embedder":
            if not self.embedding_size or self.embedding_size <= 0:
                problems.append("an embedder card needs embedding_size > 0")
            if self.alignment_template not in TEMPLATES:
                problems.append(f"an embedder card needs alignment_template in {TEMPLATES}")
            if self.threshold is None or not -1.0 <= self.threshold <= 1.0:
                problems.append("an embedder card needs a cosine threshold in [-1, 1]")
            if self.input_size is None:
                problems.append("an embedder card needs input_size")
        if self.family == "detector":
            for key in ("score_threshold", "nms_threshold"):
                value = getattr(self, key)
                if value is None or not 0.0 <= value <= 1.0:
                    problems.append(f"a detector card needs {key} in [0, 1]")
        if self.family == "landmarks":
            if self.input_size is None or self.input_size[0] != self.input_size[1]:
                problems.append("a landmarks card needs a square input_size")
            if self.keypoints <= 0:
                problems.append("a landmarks card needs keypoints > 0")
            missing = {"stride", "crop_scale", "shift_y"} - set(self.extra)
            if missing:
                problems.append(f"a landmarks card needs extra.{', extra.'.join(sorted(missing))}")
        if problems:
            raise ModelError(f"invalid model card for {self.name!r} in {self.directory}: " + "; ".join(problems))

    @property
    def path(self) -> Path:
        return self.directory / self.file

    @property
    def id(self) -> str:
        """Stable identity of the weights (name + short hash): galleries record it."""
        return f"{self.name}@{self.sha256[:12]}"

    def verify(self) -> Path:
        """Check that the file exists and its sha256 matches the card; return its path."""
        if not self.path.is_file():
            raise ModelError(f"model file for {self.name!r} not found: {self.path}")
        digest = sha256_file(self.path)
        if digest != self.sha256:
            raise ModelError(
                f"model file {self.path} does not match its card {self.name!r} "
                f"(sha256 {digest[:12]}…, card says {self.sha256[:12]}…): wrong or corrupt file"
            )
        return self.path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


_TUPLE_FIELDS = ("input_size", "mean", "std", "keypoint_order")


def load_card(path: str | Path) -> ModelCard:
    """Read a ``card.json`` (or a folder containing one). Unknown keys are an error."""
    path = Path(path)
    if path.is_dir():
        path = path / "card.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"model card not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"model card {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ModelError(f"model card {path} must hold a JSON object")
    known = set(ModelCard.__dataclass_fields__) - {"directory"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ModelError(f"model card {path} has unknown keys: {', '.join(unknown)}")
    for key in _TUPLE_FIELDS:
        if data.get(key) is not None:
            data[key] = tuple(data[key])
    try:
        return ModelCard(directory=path.parent, **data)
    except TypeError as exc:
        raise ModelError(f"model card {path} is incomplete: {exc}") from None


def shipped_cards(root: Path = RESOURCES) -> dict[str, ModelCard]:
    """All cards under ``resources/models`` keyed by name."""
    if not root.is_dir():
        raise ModelError(f"the shipped models folder {root} is missing; reinstall facescope "
                         f"(pip install --force-reinstall facescope) or set FACESCOPE_RESOURCES")
    cards = {}
    for card_path in sorted(root.glob("*/card.json")):
        card = load_card(card_path)
        cards[card.name] = card
    return cards


@dataclass(frozen=True)
class ModelSource:
    """What a model option names (``--embedder``, ``--landmarks``, ``--detector-weights``, the
    settings dialog): ``kind`` is "registered" (a registered / shipped model name), "card" (a
    ``card.json``, a folder holding one, or an ``.onnx`` file with its ``card.json`` beside it)
    or "weights" (a ``.pt`` file, run by ultralytics). ``path``: the card file or the weights."""

    kind: str
    text: str
    path: Path | None = None


def model_source(spec: str | Path) -> ModelSource:
    """THE test for "is this a card path?": a registered name, a card, or ``.pt`` weights.

    Only the spelling and ``is_dir`` are looked at; whether the file exists and parses is
    :func:`find_card`'s (or the loader's) job, which says clearly what is wrong."""
    text = str(spec).strip()
    path = Path(text)
    if path.suffix == ".pt":
        return ModelSource("weights", text, path)
    if path.suffix == ".json":
        return ModelSource("card", text, path)
    if path.suffix == ".onnx":
        return ModelSource("card", text, path.parent / "card.json")
    if path.is_dir():
        return ModelSource("card", text, path / "card.json")
    return ModelSource("registered", text)


def find_card(spec: str | Path, family: str | None = None) -> ModelCard:
    """THE resolver: ``"shipped name | card.json | folder | model.onnx"`` -> its ModelCard (of
    ``family`` when given); ``.pt`` weights have no card: ModelError saying so."""
    src = model_source(spec)
    if src.kind == "weights":
        raise ModelError(f"{src.text}: .pt weights have no model card (they are run by ultralytics)")
    if src.kind == "card":
        card = load_card(src.path)
    else:
        cards = shipped_cards()
        if src.text not in cards:
            raise ModelError(f"unknown model {src.text!r}; shipped models: {', '.join(sorted(cards))}")
        card = cards[src.text]
    if family is not None and card.family != family:
        raise ModelError(f"model {card.name!r} is a {card.family}, not a {family}")
    return card
