"""Running the app: bind the socket ourselves (so a port in use or an address not on this
machine is one clear line, not uvicorn's log and traceback), say what to open, then let uvicorn
serve until Ctrl-C or SIGTERM."""
from __future__ import annotations

import errno
import ipaddress
import socket
import sys
from typing import Iterable, TextIO

from ..errors import EdgeFinerError
from ..service import Service

def is_loopback(host: str) -> bool:
    """True when ``host`` names this machine's loopback interface only (what the default binds)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port), or one clear error."""
    where = f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise EdgeFinerError(f"cannot listen on {where}: unknown host ({getattr(exc, 'strerror', None) or exc})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once after a stop
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        why = {errno.EADDRINUSE: "the port is in use (another server, or edge-finer serve already running?); "
                                 "choose another with --port",
               errno.EACCES: "permission denied (ports below 1024 need privileges); choose another with --port",
               errno.EADDRNOTAVAIL: "that address is not one of this machine's"}.get(exc.errno or 0, exc.strerror or str(exc))
        raise EdgeFinerError(f"cannot listen on {where}: {why}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if sock.family == socket.AF_INET6:
        host = f"[{host}]"
    if host in ("0.0.0.0", "[::]"):
        host = "127.0.0.1" if host == "0.0.0.0" else "[::1]"
    return f"http://{host}:{port}/"


def serve(host: str = "127.0.0.1", port: int = 8765, *, service: Service | None = None, workers: int = 2,
          queue: int = 16, max_request_bytes: int | None = None, cors_origins: Iterable[str] = (),
          log_level: str = "warning", out: TextIO | None = None) -> None:
    """Serve the page and the API until interrupted.  Binding anywhere but loopback is the
    caller's explicit choice and is warned about: the server has no authentication."""
    try:
        import uvicorn
    except ImportError as exc:
        from . import missing

        raise missing(exc) from exc
    from .app import create_app

    out = out or sys.stdout
    svc = service if service is not None else Service()
    svc.check_bundles()
    loopback = is_loopback(host)
    if not loopback:
        sys.stderr.write(f"warning: serving on {host}, not loopback: anyone who can reach this machine on port "
                         f"{port} can use this server (it has no authentication); the default --host "
                         "127.0.0.1 keeps it to this machine\n")
        sys.stderr.flush()
    sock = bind(host, port)
    hosts = None
    if loopback:  # Host names a browser sends for this server (no port): others are refused
        bare = host.strip("[]").lower()
        hosts = {"localhost", "127.0.0.1", "[::1]", f"[{bare}]" if ":" in bare else bare}
    app = create_app(svc, workers=workers, queue=queue, max_request_bytes=max_request_bytes,
                     cors_origins=cors_origins, allowed_hosts=hosts)
    config = uvicorn.Config(app, log_level=log_level, access_log=log_level in ("debug", "info"),
                            lifespan="off", timeout_graceful_shutdown=5, server_header=False)
    server = uvicorn.Server(config)
    url = url_of(sock)
    out.write(f"edge-finer serve: open {url} in a browser (JSON API under {url}v1/, described at "
              f"{url}openapi.json). Ctrl-C stops it.\n")
    out.flush()
    try:
        server.run(sockets=[sock])
    finally:
        app.state.gate.close()
        sock.close()
