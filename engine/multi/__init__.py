"""Several sources in one process: per-source settings, one shared engine, batched embeddings.

See :mod:`engine.multi.runner` for the threads and the API a front end uses, :mod:`engine.multi.rounds`
for the engine loop and :mod:`engine.multi.embedding` for the embedder's own thread;
:mod:`engine.multi.settings` for :class:`SourceSettings` and the sources file;
:mod:`engine.multi.roi` for regions of interest; :mod:`engine.multi.presets` for what several
sources set differently from one (policy, threads). Nothing here imports Qt.
"""
from engine.multi.events import MultiEventLog
from engine.multi.presets import MULTI_POLICY, multi_pipeline_config, multi_runtime
from engine.multi.results import Round, SourceResult, SourceStatus
from engine.multi.roi import Roi, face_filter
from engine.multi.runner import MultiSource
from engine.multi.settings import SourceSettings, default_name, load_sources, unique_names

__all__ = ["MULTI_POLICY", "MultiEventLog", "MultiSource", "Roi", "Round", "SourceResult", "SourceSettings",
           "SourceStatus", "default_name", "face_filter", "load_sources", "multi_pipeline_config", "multi_runtime",
           "unique_names"]
