"""Embeddings of still images, cached in one ``.npz`` file (evaluations that reuse the same photos).

Embedding LFW photos is the slow part of an open-set evaluation (detector + landmarks + embedder,
tens of ms a photo on a CPU), while the splits, seeds and thresholds are milliseconds. So
:func:`embed_cached` keeps ``{path -> embedding}`` in a file: a later run embeds only the photos
the file lacks and rewrites it atomically (temporary file + ``os.replace``: an interrupted run
leaves the previous cache intact).

A cache belongs to one recognizer: its ``key`` (embedder id and dimension, detector, landmark
model, alignment, flip, detector size) is stored with it, and a cache made with other settings is
refused with an error that names both keys (never mixed, never silently overwritten).
Paths are stored relative to ``root`` so that a cache survives moving the data folder.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.dataset_embed import EmbeddedSet, embed_paths
from engine.errors import FacescopeError


def recognizer_key(recognizer) -> dict:
    """What makes two embeddings of the same photo comparable: the models and settings."""
    cfg = recognizer.config
    lm = recognizer.landmarker
    det_card = getattr(getattr(recognizer.detector, "detector", recognizer.detector), "card", None)
    return {
        "embedder": recognizer.embedder.id, "dim": int(recognizer.embedder.dim),
        "detector": recognizer.detector.name, "detector_model": getattr(det_card, "id", None),
        "landmarks": lm.card.id if lm is not None else None,
        "align": cfg.landmarks.align if cfg is not None else None,
        "flip": bool(cfg.embedder.flip) if cfg is not None else None,
        "det_size": list(cfg.detector.input_size) if cfg is not None and cfg.detector.input_size else None,
    }


def _load(cache: Path, key: dict) -> dict[str, tuple[np.ndarray, bool]]:
    if not cache.exists():
        return {}
    try:
        with np.load(cache, allow_pickle=False) as z:
            stored = json.loads(str(z["key"]))
            rel, emb, det = z["paths"].tolist(), z["embeddings"], z["detected"]
    except (OSError, ValueError, KeyError) as exc:
        raise FacescopeError(f"embedding cache {cache} is not readable ({exc}); "
                             "delete it or pass another --cache") from None
    if stored != key:
        raise FacescopeError(f"embedding cache {cache} was made with {stored}, this run uses {key}; "
                             "pass another --cache file")
    return {p: (emb[i], bool(det[i])) for i, p in enumerate(rel)}


def _save(cache: Path, key: dict, entries: dict[str, tuple[np.ndarray, bool]], dim: int) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    rel = sorted(entries)
    emb = np.stack([entries[p][0] for p in rel]).astype(np.float32) if rel else np.zeros((0, dim), np.float32)
    det = np.array([entries[p][1] for p in rel], bool)
    fd, tmp = tempfile.mkstemp(prefix=cache.name, suffix=".tmp.npz", dir=cache.parent)
    os.close(fd)
    try:
        np.savez(tmp, key=json.dumps(key, sort_keys=True), paths=np.array(rel, dtype=str), embeddings=emb,
                 detected=det)
        os.replace(tmp, cache)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def embed_cached(recognizer, paths: Sequence[str | Path], root: str | Path, cache: str | Path | None,
                 progress: bool = True, desc: str = "embedding") -> EmbeddedSet:
    """``embed_paths(recognizer, paths)`` with the rows already in ``cache`` reused (None: no cache).

    ``paths`` must lie under ``root`` (they are keyed by their path relative to it). Returns the
    (N, D) embeddings and (N,) detected flags in the order of ``paths``; an unreadable image is an
    error (an evaluation must not quietly drop photos), and nothing is cached from such a run.
    """
    root = Path(os.path.abspath(root))  # not resolve(): a folder of symlinks keys by its own names
    try:
        rel = [str(Path(os.path.abspath(p)).relative_to(root)) for p in paths]
    except ValueError as exc:
        raise FacescopeError(f"embed_cached: {exc}") from None
    key = json.loads(json.dumps(recognizer_key(recognizer), sort_keys=True))
    entries = _load(Path(cache), key) if cache else {}
    todo = sorted({r for r in rel if r not in entries})
    if todo:
        fresh = embed_paths(recognizer, [root / r for r in todo], progress=progress, desc=desc)
        if fresh.failed:
            raise FacescopeError(f"{len(fresh.failed)} images unreadable, e.g. {fresh.failed[0]}")
        for i, r in enumerate(todo):
            entries[r] = (fresh.embeddings[i], bool(fresh.detected[i]))
        if cache:
            _save(Path(cache), key, entries, recognizer.embedder.dim)
    dim = recognizer.embedder.dim
    emb = np.stack([entries[r][0] for r in rel]).astype(np.float32) if rel else np.zeros((0, dim), np.float32)
    return EmbeddedSet(emb, np.array([entries[r][1] for r in rel], bool), [])
