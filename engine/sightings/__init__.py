"""Sightings: who was seen, when, on which source, with the best crop (schema v3 tables).

:class:`SightingCollector` turns tracked frames into :class:`Sighting` records on the worker
thread; :mod:`engine.sightings.store` writes, purges, lists and searches them.
"""
from .collector import Sighting, SightingCollector
from .config import RetentionConfig, SightingConfig

__all__ = ["RetentionConfig", "Sighting", "SightingCollector", "SightingConfig"]
