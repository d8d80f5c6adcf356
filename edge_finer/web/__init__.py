"""``edge-finer serve``: a local web page and JSON API over :class:`edge_finer.service.Service`.

For people who will not use a terminal (a field worker pastes text or drops files into a page
on their own laptop or Pi) and for programs in other languages (ELAN or FLEx plug-ins, phone
apps, a Java pipeline) that call the same server over HTTP on loopback.  Everything runs on the
machine: the page's assets are files of this package, nothing is fetched from anywhere.

- :mod:`.app`: the ASGI application (routes, request bodies, errors as JSON);
- :mod:`.gate`: bounded concurrency (a few workers, a bounded queue, then 503 + Retry-After);
- :mod:`.openapi`: the OpenAPI document, built from the service's own JSON Schemas;
- :mod:`.export`: downloads in the CLI's formats (``edge_finer.formats``);
- :mod:`.server`: binding the socket and running uvicorn, with one-line errors.

It needs the ``serve`` extra (``pip install 'edge-finer[serve]'``: Starlette and uvicorn); the
runtime never imports this package, and importing it imports neither.
"""
from __future__ import annotations

from ..errors import EdgeFinerError

INSTALL_HINT = "pip install 'edge-finer[serve]'"


class MissingExtra(EdgeFinerError, ImportError):
    """Starlette or uvicorn is not installed: an :class:`ImportError` for Python callers and
    one error line (no traceback) for the CLI."""


def missing(exc: ImportError) -> MissingExtra:
    """The error for a failed import of the ``serve`` extra's packages."""
    name = (getattr(exc, "name", None) or "starlette/uvicorn").split(".")[0]
    return MissingExtra(f"edge-finer serve needs the '{name}' package, which is not installed: {INSTALL_HINT}")
