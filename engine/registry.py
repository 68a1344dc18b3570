"""A tiny registry: one per model family, one factory per registry (timm-style), and the one
resolver of model options (:func:`model_source`, :func:`resolve_card`)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps a name to a constructor. ``create(name, **kw)`` is the family's one factory."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.family} {name!r} is already registered")
            self._entries[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        return sorted(self._entries)

    def create(self, name: str, **kwargs) -> T:
        try:
            factory = self._entries[name]
        except KeyError:
            raise ValueError(f"unknown {self.family} {name!r}; available: {', '.join(self.names())}") from None
        return factory(**kwargs)


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
    :func:`resolve_card`'s (or the loader's) job, which says clearly what is wrong."""
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


def resolve_card(spec: str | Path, family: str | None = None):
    """``"registered name | card.json | folder | model.onnx"`` -> its ModelCard (of ``family``
    when given); ``.pt`` weights have no card: ModelError saying so."""
    from engine.errors import ModelError
    from engine.models import load_card, shipped_cards

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
