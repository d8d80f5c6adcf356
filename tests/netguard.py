"""One network guard for the whole suite: per-test (conftest) and around module-scoped builds.

Internet sockets raise :class:`NetworkBlocked`; local ones (AF_UNIX, and sockets wrapping an
existing descriptor, as ``socketpair`` and asyncio's self-pipe make) stay allowed: they are
not network use.
"""
from __future__ import annotations

import socket

import pytest


class NetworkBlocked(RuntimeError):
    """Raised when code under test tries to open a network connection."""


def block_network(mp: pytest.MonkeyPatch, during: str) -> None:
    """Patch ``socket`` through ``mp`` so that network use during ``during`` fails loudly."""
    real = socket.socket

    class GuardedSocket(real):  # type: ignore[misc, valid-type]
        def __init__(self, family=-1, type=-1, proto=-1, fileno=None):  # noqa: A002
            if fileno is None and family != getattr(socket, "AF_UNIX", object()):
                raise NetworkBlocked(f"network socket (family {family}) opened during {during}")
            super().__init__(family, type, proto, fileno)

    def refuse(*args, **kwargs):
        raise NetworkBlocked(f"network connection attempted during {during}: {args!r}")

    mp.setattr(socket, "socket", GuardedSocket)
    mp.setattr(socket, "create_connection", refuse)
