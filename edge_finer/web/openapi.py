"""The API's OpenAPI 3.1 document, built from :mod:`edge_finer.service`'s JSON Schemas so that
the HTTP API, the MCP server and the smolagents tool publish one schema (OpenAPI 3.1 schemas
are JSON Schema: the service's are used as they are)."""
from __future__ import annotations

import copy
from typing import Any

from ..service import (ANNOTATE_INPUTS, ANNOTATE_OUTPUT_SCHEMA, DETECT_INPUTS, DETECT_OUTPUT_SCHEMA,
                       LIST_OUTPUT_SCHEMA, request_schema)
from ..version import __version__
from .export import EXPORT_FORMATS, EXPORT_REQUEST_SCHEMA

#: The most texts one /v1/annotate call takes (their total size is capped too).
MAX_TEXTS = 10_000

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error: the HTTP status, its name, and one line saying what to change.",
    "properties": {"status": {"type": "integer"}, "error": {"type": "string"}, "message": {"type": "string"}},
    "required": ["status", "error", "message"],
}

HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"const": "ok"}, "version": {"type": "string"},
        "workers": {"type": "integer", "description": "Requests annotated at once."},
        "running": {"type": "integer"}, "queued": {"type": "integer"},
        "queue": {"type": "integer", "description": "Requests that may wait; more get 503."},
        "refused": {"type": "integer", "description": "Requests refused with 503 since the start."},
        "max_text_mb": {"type": "number"}, "max_request_mb": {"type": "number"},
    },
    "required": ["status", "version", "workers", "running", "queued", "queue"],
}


def annotate_request_schema() -> dict[str, Any]:
    """The service's annotate request, with ``text`` also allowed to be a list of texts."""
    schema = request_schema(ANNOTATE_INPUTS)
    one = schema["properties"]["text"]
    schema["properties"]["text"] = {
        "description": one["description"] + " A list of texts is annotated as a batch (faster for many short "
                       "texts) and answered with one result per text, in order.",
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": MAX_TEXTS}],
    }
    return schema


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


_BUSY = {**_error("Busy: too many requests running and waiting; retry after Retry-After seconds."),
         "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}}
_POST_ERRORS = {
    "400": _error("Bad input: not JSON, a wrong type or value, a language that cannot be told."),
    "404": _error("Unknown bundle, or no bundle for the language."),
    "413": _error("Too large: the request body or the text is over the server's cap."),
    "415": _error("The body is not JSON (Content-Type)."),
    "422": _error("The body cannot be decoded: not UTF-8."),
    "503": _BUSY,
}


def _post(summary: str, description: str, request: str, answer: dict[str, Any], op: str) -> dict[str, Any]:
    return {"post": {
        "operationId": op, "summary": summary, "description": description,
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{request}"}}}},
        "responses": {"200": answer, **_POST_ERRORS},
    }}


def openapi_document(max_text_bytes: int, max_request_bytes: int) -> dict[str, Any]:
    """The document served at ``/openapi.json``."""
    json_answer = lambda ref: {"description": "OK", "content": {"application/json": {  # noqa: E731
        "schema": {"$ref": f"#/components/schemas/{ref}"}}}}
    formats = {"description": "The file, as `edge-finer annotate -f FORMAT` writes it.",
               "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
               "content": {t: {"schema": {"type": "string"}} for t in
                           ("application/x-ndjson", "text/plain", "text/tab-separated-values")}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "edge-finer", "version": __version__, "description": (
            "Offline fine-grained named-entity annotation on this machine. Entity objects are those of "
            "`edge-finer annotate -f jsonl`; offsets are Python str indices (Unicode code points) into the "
            f"text sent. Texts up to {max_text_bytes / 1e6:g} MB of UTF-8, request bodies up to "
            f"{max_request_bytes / 1e6:g} MB. Errors are JSON objects (status, error, message).")},
        "paths": {
            "/v1/annotate": _post(
                "Annotate a text or a list of texts",
                "Without lang or bundle the language is detected (routing tells which bundle and why).",
                "AnnotateRequest",
                {"description": "One answer for a text; {results: [...]} for a list of texts.",
                 "content": {"application/json": {"schema": {"anyOf": [
                     {"$ref": "#/components/schemas/Annotation"},
                     {"$ref": "#/components/schemas/AnnotationBatch"}]}}}},
                "annotate"),
            "/v1/detect": _post("Detect the language of a text", "Which installed bundle would annotate it, and why.",
                                "DetectRequest", json_answer("Detection"), "detect"),
            "/v1/export": _post("Write annotations in a file format",
                                f"The CLI's formats ({', '.join(EXPORT_FORMATS)}) from a text and its entities.",
                                "ExportRequest", formats, "export"),
            "/v1/bundles": {"get": {"operationId": "bundles", "summary": "The installed bundles",
                                    "responses": {"200": json_answer("Bundles"), "503": _BUSY}}},
            "/v1/health": {"get": {"operationId": "health", "summary": "Liveness and load",
                                   "responses": {"200": json_answer("Health")}}},
        },
        "components": {"schemas": copy.deepcopy({
            "AnnotateRequest": annotate_request_schema(),
            "DetectRequest": request_schema(DETECT_INPUTS),
            "ExportRequest": EXPORT_REQUEST_SCHEMA,
            "Annotation": ANNOTATE_OUTPUT_SCHEMA,
            "AnnotationBatch": {"type": "object", "properties": {
                "results": {"type": "array", "items": {"$ref": "#/components/schemas/Annotation"}}},
                "required": ["results"]},
            "Detection": DETECT_OUTPUT_SCHEMA,
            "Bundles": LIST_OUTPUT_SCHEMA,
            "Health": HEALTH_SCHEMA,
            "Error": ERROR_SCHEMA,
        })},
    }
