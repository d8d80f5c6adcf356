"""``edge-finer mcp``: the annotator as a Model Context Protocol server over stdio.

An MCP host (an LLM agent's application) starts ``edge-finer mcp`` as a child process and talks
JSON-RPC over its stdin/stdout; the annotation runs in that process, on the same machine, with
no network.  Tools:

- ``annotate``: entities of a text (offsets, fine label, coarse label, score) and the routing
  decision, with optional ``lang``, ``bundle``, ``taxonomy``, ``granularity``, ``threshold``,
  ``route``;
- ``detect_language``: which installed language/bundle a text is in, and why;
- ``list_bundles``: the installed bundles, their languages, taxonomies, types, licences and
  figures.

Resources: each installed bundle's model card, ``edge-finer://bundles/NAME/model-card``
(markdown; also readable for a bundle installed after the server started).

Each tool is a thin adapter over :class:`edge_finer.service.Service`: the answer is the
service's dict, sent both as ``structuredContent`` (validated by clients against the output
schema the tool advertises, the service's) and as JSON text.  A user error (unknown bundle, a
wrong type, a text over the size cap) comes back as a tool result with ``isError`` and a
one-line message for the calling model; an unexpected one as the SDK's generic tool error with
the traceback logged on stderr.  The server carries on with the next call either way.  Nothing
but the protocol is written to stdout: logs go to stderr, and while serving the SDK points the
process's own stdout (fd 1) at stderr.
"""
import json
from typing import Annotated, Any, Literal, Optional

from . import missing

try:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
    from mcp.server.mcpserver.resources import FunctionResource
    from mcp.server.mcpserver.tools import Tool
    from mcp.types import CallToolResult, TextContent, ToolAnnotations
    from pydantic import Field
except ImportError as exc:  # pragma: no cover - exercised in a child process by the tests
    raise missing("mcp", "edge-finer mcp", exc) from exc

from ..errors import BundleNotFound, EdgeFinerError
from ..service import (ANNOTATE_INPUTS, ANNOTATE_OUTPUT_SCHEMA, DEFAULT_MAX_TEXT_BYTES, DETECT_INPUTS,
                       DETECT_OUTPUT_SCHEMA, LIST_OUTPUT_SCHEMA, MODEL_CARD_URI, Service)
from ..version import __version__

SERVER_NAME = "edge-finer"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_READ_ONLY = dict(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def _d(inputs: dict, name: str) -> str:
    return str(inputs[name]["description"])


def _answer(result: dict[str, Any]) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(result, ensure_ascii=False))],
                          structured_content=result)


def _tool(fn: Any, name: str, title: str, description: str, output_schema: dict[str, Any]) -> Tool:
    """A tool whose advertised output schema is the service's JSON Schema (the SDK derives the
    input schema from the signature; the function returns a ready ``CallToolResult``)."""
    tool = Tool.from_function(fn, name=name, title=title, description=description, structured_output=False,
                              annotations=ToolAnnotations(title=title, **_READ_ONLY))
    tool.fn_metadata.output_schema = output_schema
    return tool


def build_server(service: Service | None = None, *, log_level: str = "WARNING") -> MCPServer:
    """The MCP server over ``service`` (a default :class:`Service` when None), not yet running."""
    svc = service if service is not None else Service()

    def annotate(
        text: Annotated[str, Field(description=_d(ANNOTATE_INPUTS, "text"))],
        lang: Annotated[Optional[str], Field(description=_d(ANNOTATE_INPUTS, "lang"))] = None,
        bundle: Annotated[Optional[str], Field(description=_d(ANNOTATE_INPUTS, "bundle"))] = None,
        taxonomy: Annotated[Optional[str], Field(description=_d(ANNOTATE_INPUTS, "taxonomy"))] = None,
        granularity: Annotated[Optional[Literal["fine", "coarse"]],
                               Field(description=_d(ANNOTATE_INPUTS, "granularity"))] = None,
        threshold: Annotated[Optional[float], Field(ge=0.0, le=1.0,
                                                    description=_d(ANNOTATE_INPUTS, "threshold"))] = None,
        route: Annotated[Optional[Literal["document", "sentence"]],
                         Field(description=_d(ANNOTATE_INPUTS, "route"))] = None,
    ) -> CallToolResult:
        try:
            return _answer(svc.annotate(text, lang=lang, bundle=bundle, taxonomy=taxonomy,
                                        granularity=granularity, threshold=threshold, route=route))
        except EdgeFinerError as exc:
            raise ToolError(str(exc)) from None

    def detect_language(
        text: Annotated[str, Field(description=_d(DETECT_INPUTS, "text"))],
        taxonomy: Annotated[Optional[str], Field(description=_d(DETECT_INPUTS, "taxonomy"))] = None,
        route: Annotated[Optional[Literal["document", "sentence"]],
                         Field(description=_d(DETECT_INPUTS, "route"))] = None,
        evidence: Annotated[Optional[bool], Field(description=_d(DETECT_INPUTS, "evidence"))] = None,
    ) -> CallToolResult:
        try:
            return _answer(svc.detect_language(text, taxonomy=taxonomy, route=route, evidence=evidence))
        except EdgeFinerError as exc:
            raise ToolError(str(exc)) from None

    def list_bundles() -> CallToolResult:
        try:
            return _answer(svc.list_bundles())
        except EdgeFinerError as exc:
            raise ToolError(str(exc)) from None

    tools = [
        _tool(annotate, "annotate", "Annotate fine-grained named entities", svc.annotate_description(),
              ANNOTATE_OUTPUT_SCHEMA),
        _tool(detect_language, "detect_language", "Detect the language (bundle) of a text",
              svc.detect_description(), DETECT_OUTPUT_SCHEMA),
        _tool(list_bundles, "list_bundles", "List the installed annotation bundles", svc.list_description(),
              LIST_OUTPUT_SCHEMA),
    ]
    server: MCPServer = MCPServer(
        SERVER_NAME, title="edge-finer: offline fine-grained named entities", version=__version__,
        instructions=("Offline fine-grained named-entity annotation on this machine. Call annotate with a "
                      "text (and lang if you know it); list_bundles says which languages, taxonomies and "
                      "entity types exist; each bundle's model card is a resource.\n" + svc.catalogue()),
        tools=tools, log_level=log_level)

    def card_reader(name: str):
        def read() -> str:
            try:
                return svc.model_card(name)
            except BundleNotFound as exc:
                raise ResourceNotFoundError(str(exc)) from None
            except EdgeFinerError as exc:
                raise ResourceError(str(exc)) from None
        read.__name__ = f"model_card_{name}"
        return read

    from ..registry import installed

    for b in installed():
        server.add_resource(FunctionResource.from_function(
            card_reader(b.name), uri=MODEL_CARD_URI.format(name=b.name), name=f"{b.name} model card",
            title=f"Model card of {b.name}", mime_type="text/markdown",
            description=f"{b.name}: {b.manifest.get('description', b.language)}; licence "
                        f"{b.manifest.get('licence', 'unknown')}"))

    @server.resource(MODEL_CARD_URI, name="model card", title="Model card of an installed bundle",
                     mime_type="text/markdown",
                     description="The MODEL_CARD.md of any installed bundle (name as list_bundles shows it).")
    def model_card(name: str) -> str:
        return card_reader(name)()

    return server


def serve(*, max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES, threads: int | None = None,
          log_level: str = "WARNING") -> None:
    """Run the server on this process's stdin/stdout until the host closes stdin."""
    build_server(Service(max_text_bytes=max_text_bytes, threads=threads), log_level=log_level).run("stdio")
