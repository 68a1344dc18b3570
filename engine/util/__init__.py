"""Small helpers shared by the engine, the trainers and the front ends (no Qt, no models).

One home each for jobs that were written by hand in several places:

* :mod:`engine.util.fsio`: atomic file writes (temp file in the same folder, fsync, ``os.replace``).
* :mod:`engine.util.rate`: :class:`~engine.util.rate.RateMeter`, events per second over a sliding window.
* :mod:`engine.util.imagefiles`: the image suffixes the app reads (:data:`IMAGE_SUFFIXES`).
* :mod:`engine.util.check`: :func:`~engine.util.check.check`, the validator of typed configs.
* :mod:`engine.util.heap`: :func:`~engine.util.heap.release_free_heap` (glibc `malloc_trim`) after a model loads.

Import from the submodules; this package imports nothing itself, so using one helper never
pulls in another's dependencies.
"""
