"""The ASGI application of ``edge-finer serve``: the page, its assets, and the JSON API.

Each API route is a thin adapter over :class:`edge_finer.service.Service` (the MCP server's
too): read a JSON body within the size cap, run the service's method on a worker of the
:class:`~.gate.Gate`, answer its dict as JSON, or its error as ``{"status", "error",
"message"}`` with the status the error calls for (400 bad input, 404 unknown bundle or
language, 413 too large, 415 not JSON, 422 not UTF-8, 503 busy with ``Retry-After``).
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path
from typing import Any, Callable, Iterable

try:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import FileResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
except ImportError as exc:  # pragma: no cover - exercised in a child process by the tests
    from . import missing

    raise missing(exc) from exc

from ..errors import BundleError, BundleNotFound, EdgeFinerError
from ..service import ANNOTATE_INPUTS, DETECT_INPUTS, MB, RequestError, Service, TooLarge, _type_name
from ..version import __version__
from .export import export
from .gate import Busy, Gate
from .openapi import MAX_TEXTS, openapi_document

log = logging.getLogger("edge_finer.web")
STATIC = Path(__file__).resolve().parent / "static"
#: What the page may load: its own files only (no CDN, no web font, no inline script).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
REASONS = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
           415: "Unsupported Media Type", 422: "Unprocessable Content", 500: "Internal Server Error",
           503: "Service Unavailable"}


class ApiError(Exception):
    """An answer other than 200, with the one-line message for the client."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON as UTF-8; a text with lone surrogates (valid in JSON escapes, not in UTF-8) is
    answered with ASCII escapes rather than failing."""
    try:
        body = json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        body = json.dumps(data, ensure_ascii=True, allow_nan=False).encode("ascii")
    return Response(body, status, headers=headers, media_type="application/json")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"status": status, "error": REASONS.get(status, "Error"), "message": message},
                         status, headers)


def status_of(exc: EdgeFinerError) -> int:
    """The HTTP status of a service error."""
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, BundleNotFound):
        return 404
    if isinstance(exc, BundleError):  # an installed bundle is broken: the server's fault
        return 500
    return 400


async def read_json(request: Request, cap: int) -> Any:
    """The request's JSON body, refused early when it is over ``cap`` bytes."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise ApiError(415, f"send the body as JSON (Content-Type: application/json), not {ctype[:60]}")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise ApiError(413, f"request body too large ({int(declared):,} bytes): this server accepts at most "
                            f"{cap:,} bytes; split the text (or start it with a larger --max-request-mb)")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise ApiError(413, f"request body too large (over {cap:,} bytes): split the text "
                                    "(or start the server with a larger --max-request-mb)")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ApiError(400, "the client went away before sending the whole body") from None
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError(400, "the request body is empty: send a JSON object")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(422, f"the request body is not UTF-8 (byte {exc.start}): send JSON encoded as UTF-8") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} "
                            f"column {exc.colno}") from None
    except RecursionError:
        raise ApiError(400, "the request body is nested too deeply") from None


def _object(body: Any, inputs: Iterable[str], required: Iterable[str], what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, f"{what}: the body must be a JSON object, not {_type_name(body)}")
    allowed = list(inputs)
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ApiError(400, f"{what}: unknown field(s) {', '.join(map(repr, unknown))}; "
                            f"fields: {', '.join(allowed)}")
    missing = [k for k in required if k not in body]
    if missing:
        raise ApiError(400, f"{what}: missing field(s) {', '.join(map(repr, missing))}")
    return body


def create_app(service: Service | None = None, *, workers: int = 2, queue: int = 16,
               max_request_bytes: int | None = None, cors_origins: Iterable[str] = (),
               allowed_hosts: Iterable[str] | None = None, queue_timeout: float = 30.0) -> Starlette:
    """The app over ``service``.  ``max_request_bytes`` caps a request body (default: 8 times the
    service's text cap, room for JSON escapes and the entities an export sends back);
    ``allowed_hosts``: the Host headers accepted (a loopback server takes only loopback names,
    so a web page cannot reach it through DNS rebinding); None accepts any."""
    svc = service if service is not None else Service()
    cap = int(max_request_bytes or max(1 * MB, 8 * svc.max_text_bytes))
    gate = Gate(workers=workers, queue=queue, queue_timeout=queue_timeout)
    document = openapi_document(svc.max_text_bytes, cap)
    hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def call(request: Request, fn: Callable[..., Any]) -> Any:
        """``fn()`` on a worker; a client that hangs up while its request waits (the page's
        Cancel) gives its place in the queue back instead of having it computed for nobody."""
        job = asyncio.ensure_future(gate.run(fn))
        gone = asyncio.ensure_future(request.receive())  # the body is read: the next message is the hang-up
        try:
            await asyncio.wait({job, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not job.done() and gone.done() and not gone.cancelled() and gone.result().get("type") == "http.disconnect":
            job.cancel()
            raise ApiError(503, "the client went away before its request ran")
        try:
            return await job
        except Busy as exc:
            raise ApiError(503, str(exc), {"Retry-After": str(exc.retry_after)}) from None

    async def annotate(request: Request) -> Response:
        body = _object(await read_json(request, cap), ANNOTATE_INPUTS, ["text"], "annotate")
        args = {k: v for k, v in body.items() if k != "text"}
        text = body["text"]
        if isinstance(text, list):
            if len(text) > MAX_TEXTS:
                raise ApiError(413, f"too many texts ({len(text):,}): at most {MAX_TEXTS:,} per call")
            return json_response({"results": await call(request, lambda: svc.annotate_many(text, **args))})
        return json_response(await call(request, lambda: svc.annotate(text, **args)))

    async def detect(request: Request) -> Response:
        body = _object(await read_json(request, cap), DETECT_INPUTS, ["text"], "detect")
        return json_response(await call(request, lambda: svc.detect_language(**body)))

    async def export_file(request: Request) -> Response:
        body = _object(await read_json(request, cap), ["text", "entities", "format", "granularity", "source"],
                       [], "export")
        content, media, name = await call(request, lambda: export(body, svc.check_text))
        return Response(content.encode("utf-8", "replace"), media_type=f"{media}; charset=utf-8",
                        headers={"Content-Disposition": f"attachment; filename=\"{_ascii_name(name)}\"; "
                                                        f"filename*=UTF-8''{_quote(name)}"})

    async def bundles(request: Request) -> Response:
        return json_response(await call(request, svc.list_bundles))

    async def health(request: Request) -> Response:
        return json_response({"status": "ok", "version": __version__, **gate.stats(),
                              "max_text_mb": svc.max_text_bytes / MB, "max_request_mb": cap / MB})

    async def openapi(request: Request) -> Response:
        return json_response(document)

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    async def on_api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.message, exc.headers)

    async def on_user_error(request: Request, exc: Exception) -> Response:
        status = status_of(exc)  # type: ignore[arg-type]
        if status >= 500:
            log.error("bundle problem: %s", exc)
        return error_response(status, str(exc))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = {404: f"no such page or endpoint: {request.url.path[:200]} (the API is under /v1/, "
                        "its description at /openapi.json)",
                   405: f"{request.method} is not allowed on {request.url.path[:200]}"}.get(exc.status_code, exc.detail)
        return error_response(exc.status_code, message, dict(exc.headers or {}))

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error: this is a bug in edge-finer (logged on the server's stderr)")

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/v1/annotate", annotate, methods=["POST"]),
        Route("/v1/detect", detect, methods=["POST"]),
        Route("/v1/export", export_file, methods=["POST"]),
        Route("/v1/bundles", bundles, methods=["GET"]),
        Route("/v1/health", health, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(_Headers, hosts=hosts)]
    origins = list(cors_origins)
    if origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                                     allow_headers=["Content-Type", "X-Request-Id"],
                                     expose_headers=["Retry-After", "X-Request-Id", "Content-Disposition"]))
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={
        ApiError: on_api_error, RequestError: on_user_error, EdgeFinerError: on_user_error,
        HTTPException: on_http, Exception: on_crash})
    app.state.gate, app.state.service, app.state.max_request_bytes = gate, svc, cap
    return app


class _Headers:
    """Pure ASGI middleware: refuses a Host that is not allowed, adds the security headers
    (and the page's CSP) to every answer, and echoes a client's ``X-Request-Id``."""

    def __init__(self, app: Any, hosts: set[str] | None) -> None:
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.hosts is not None and _host_name(headers.get("host", "")) not in self.hosts:
            await error_response(400, "unexpected Host header: this server answers only to the address it "
                                      "listens on")(scope, receive, send)
            return
        rid = headers.get("x-request-id", "")
        extra = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
        if not scope["path"].startswith("/v1/"):
            extra.append((b"content-security-policy", CSP.encode()))
        if _REQUEST_ID.fullmatch(rid):
            extra.append((b"x-request-id", rid.encode()))

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[:host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _ascii_name(name: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name.encode("utf-8", "replace"), safe="")
