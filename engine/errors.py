"""Exceptions with messages meant for the user: the CLI prints them as one line."""
from __future__ import annotations


class FacescopeError(Exception):
    """Base class for expected, user-facing failures (bad input, wrong model file, ...)."""


class ModelError(FacescopeError):
    """A model file is missing, corrupt, of the wrong kind, or does not match its model card."""


class ImageError(FacescopeError):
    """An image could not be read or cannot contain a face (corrupt, empty, too small)."""


class NoFaceError(FacescopeError):
    """No face was found where one was required (e.g. an enrolment image)."""
