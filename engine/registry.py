"""A tiny registry: one per model family, one factory per registry (timm-style). The one
resolver of model options lives with the cards (:func:`engine.models.card.model_source`,
:func:`engine.models.card.find_card`)."""
from __future__ import annotations

from collections.abc import Callable
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
