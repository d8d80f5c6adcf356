"""Adapters that put the annotator in an LLM agent's hands, offline.

- :mod:`edge_finer.agent.mcp_server`: a Model Context Protocol server over stdio (``edge-finer mcp``);
- :mod:`edge_finer.agent.smol`: a smolagents ``Tool``.

Both are thin: the requests, the answers and their JSON schemas are :mod:`edge_finer.service`'s,
shared with any other JSON front end.  They need the ``agent`` extra (``pip install
'edge-finer[agent]'``); the runtime itself never imports ``mcp`` or ``smolagents``, and importing
this package imports neither.
"""
from __future__ import annotations

from ..errors import EdgeFinerError

INSTALL_HINT = "pip install 'edge-finer[agent]'"


class MissingExtra(EdgeFinerError, ImportError):
    """An adapter's package is not installed.  An :class:`ImportError` for Python callers and an
    :class:`EdgeFinerError` (one line, no traceback) for the CLI."""


def missing(package: str, what: str, exc: ImportError) -> MissingExtra:
    """The error for ``what`` needing ``package`` (``exc``: the failed import)."""
    detail = f" ({exc})" if getattr(exc, "name", None) not in (None, package) else ""
    return MissingExtra(f"{what} needs the '{package}' package, which is not installed{detail}: {INSTALL_HINT}")
