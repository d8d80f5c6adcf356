"""Errors of the build pipeline.

Every failure a recipe author can cause (a bad recipe key, a malformed data line, a teacher
that is not a local folder) is a :class:`BuildError`.  It subclasses the runtime's
:class:`~edge_finer.errors.EdgeFinerError`, so ``edge-finer build`` and ``python -m quantize``
print its one-line message instead of a traceback.
"""
from __future__ import annotations

from edge_finer.errors import EdgeFinerError


class BuildError(EdgeFinerError):
    """A bundle cannot be built as the recipe asks."""


class RecipeError(BuildError):
    """The recipe file is missing, is not TOML, or has a bad or unknown key."""


class DataError(BuildError):
    """A data file is malformed; the message names the file and line."""


class TeacherError(BuildError):
    """The teacher is not a usable local token-classification model folder."""
