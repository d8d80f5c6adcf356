"""The annotator as a smolagents ``Tool``, for an agent running in this process.

    from smolagents import CodeAgent
    from edge_finer.agent.smol import EdgeFinerTool

    agent = CodeAgent(tools=[EdgeFinerTool()], model=my_local_model)

The tool takes the inputs of the MCP server's ``annotate`` tool (``text`` and the optional
``lang``, ``bundle``, ``taxonomy``, ``granularity``, ``threshold``, ``route``) and returns the
same dict, described by the same JSON Schema (``output_schema``): both are
:mod:`edge_finer.service`'s.  A user error (unknown bundle, bad value, text over the size cap)
is raised as an :class:`~edge_finer.errors.EdgeFinerError` with a one-line message, which the
agent hands back to its model as the step's error.  Everything runs offline; the tool never
touches the Hugging Face Hub (do not ``push_to_hub`` it: it wraps local bundles).
"""
from __future__ import annotations

from typing import Any

from . import missing

try:
    from smolagents import Tool
except ImportError as exc:  # pragma: no cover - exercised in a child process by the tests
    raise missing("smolagents", "edge_finer.agent.smol", exc) from exc

from ..service import ANNOTATE_INPUTS, ANNOTATE_OUTPUT_SCHEMA, DEFAULT_MAX_TEXT_BYTES, Service


def _smol_inputs() -> dict[str, dict[str, Any]]:
    """The service's inputs in smolagents' form (``type``, ``description``, ``nullable``)."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in ANNOTATE_INPUTS.items():
        description = spec["description"]
        if "enum" in spec:
            description += f" One of: {', '.join(spec['enum'])}."
        out[name] = {"type": spec["type"], "description": description}
        if spec.get("nullable"):
            out[name]["nullable"] = True
    return out


class EdgeFinerTool(Tool):
    """Fine-grained named entities of a text, from the installed edge-finer bundles."""

    name = "annotate_entities"
    description = ("Find fine-grained named entities in a text, offline (edge-finer). Returns a dict with "
                   "'entities' (start, end, text, label, coarse_label, score) and 'routing'.")
    inputs = _smol_inputs()
    output_type = "object"
    output_schema = ANNOTATE_OUTPUT_SCHEMA

    def __init__(self, service: Service | None = None, *, max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES,
                 threads: int | None = None) -> None:
        self.service = service if service is not None else Service(max_text_bytes=max_text_bytes,
                                                                   threads=threads)
        # the installed languages and taxonomies, as the MCP tool tells them (AWED-FiNER style)
        self.description = self.service.annotate_description()
        super().__init__()

    def forward(self, text: str, lang: str | None = None, bundle: str | None = None,
                taxonomy: str | None = None, granularity: str | None = None, threshold: float | None = None,
                route: str | None = None) -> dict:
        return self.service.annotate(text, lang=lang, bundle=bundle, taxonomy=taxonomy, granularity=granularity,
                                     threshold=threshold, route=route)
