"""edge-finer: offline fine-grained named-entity annotation from small int8 bundles.

    >>> from edge_finer import Annotator
    >>> ann = Annotator.load(lang="en")
    >>> for e in ann.annotate("Ravi Shankar played in Guwahati."):
    ...     print(e.start, e.end, e.label, e.text)

The runtime needs only onnxruntime, tokenizers and numpy; names are imported lazily so that
``import edge_finer`` (and the CLI's start-up) stays cheap.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from .annotator import Annotator, load
    from .entity import Entity
    from .errors import BundleError, EdgeFinerError

_LAZY = {
    "Annotator": ("annotator", "Annotator"),
    "load": ("annotator", "load"),
    "Entity": ("entity", "Entity"),
    "EdgeFinerError": ("errors", "EdgeFinerError"),
    "BundleError": ("errors", "BundleError"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'edge_finer' has no attribute {name!r}")
