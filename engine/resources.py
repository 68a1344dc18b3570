"""Where the shipped files are: the one resolver for ``resources/`` (model cards and files, demo clip).

The repository keeps them in the top-level ``resources/`` folder. A wheel installs that folder as
the data-only package ``facescope_resources`` (``package-dir`` in ``setup.py``), so a plain
``pip install facescope`` carries its models. Order:

1. a source tree: ``resources/`` beside the ``engine`` package that is running, in a folder that
   also holds ``pyproject.toml`` (a git checkout, with or without an editable install; so a
   checkout always uses its own files, even in a venv where a wheel is installed too);
2. the installed ``facescope_resources`` package (a wheel; an editable install maps it back to
   the checkout's ``resources/``).

``FACESCOPE_RESOURCES`` overrides both (a folder laid out like ``resources/``).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

PACKAGE = "facescope_resources"


def resources_dir() -> Path:
    """The folder holding ``models/`` and ``demo/``. When none is found it returns where a source
    tree would keep it (which does not exist): users of the path then fail with a clear error
    (:func:`engine.models.card.shipped_cards`), and importing facescope never does."""
    override = os.environ.get("FACESCOPE_RESOURCES")
    if override:
        return Path(override).expanduser()
    source_tree = Path(__file__).resolve().parents[1]
    if (source_tree / "pyproject.toml").is_file() and (source_tree / "resources" / "models").is_dir():
        return source_tree / "resources"
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except ImportError:  # an import hook that refuses the name: the same as not installed
        spec = None
    # a data-only (namespace) package: its folder is its one search location
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "models").is_dir():
            return Path(location)
    return source_tree / "resources"


def models_dir() -> Path:
    """``resources/models``: one folder per shipped model (``card.json`` + model file + licence)."""
    return resources_dir() / "models"


def demo_dir() -> Path:
    """``resources/demo``: the demo clip, its enrolment manifest and NOTICE."""
    return resources_dir() / "demo"
