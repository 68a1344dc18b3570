"""Evaluation metrics (pure numpy): LFW protocol files, verification, open-set identification.

No models here: functions take similarity scores, embeddings and labels as arrays. Scores
follow one convention: higher = more similar, "same" when ``score >= threshold``.
``plots`` (matplotlib) is imported lazily by its functions.
"""
from __future__ import annotations

from engine.metrics.identification import (
    DEFAULT_FPRS,
    IdentResult,
    best_matches,
    identification_rates,
    split_gallery_probe,
)
from engine.metrics.lfw import Pair, find_lfw_root, identity_root, list_identity_folder, read_pairs
from engine.metrics.plots import format_table, plot_roc
from engine.metrics.verification import (
    KFoldResult,
    best_threshold,
    kfold_accuracy,
    roc,
    tar_at_far,
    threshold_for_far,
)

__all__ = [
    "DEFAULT_FPRS", "IdentResult", "KFoldResult", "Pair", "best_matches", "best_threshold",
    "find_lfw_root", "identity_root", "format_table", "identification_rates", "kfold_accuracy",
    "list_identity_folder", "plot_roc", "read_pairs", "roc", "split_gallery_probe",
    "tar_at_far", "threshold_for_far",
]
