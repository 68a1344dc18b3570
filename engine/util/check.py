"""The one-line validator typed configs use in ``__post_init__`` to fail loudly on bad values."""
from __future__ import annotations


def check(cond: bool, msg: str) -> None:
    """Raise ``ValueError(msg)`` unless ``cond``; configs never fix a bad value silently.

    Example: ``check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")``.
    """
    if not cond:
        raise ValueError(msg)
