"""Downloads from the page in the CLI's formats, written by the CLI's own writers
(:func:`edge_finer.formats.render`), so a file saved from the browser reads exactly like
``edge-finer annotate -f FORMAT`` output: the same records per line, the same offsets.

The entities come from the client (what the page shows, as ``/v1/annotate`` returned them),
so the file is what the user saw even if a bundle was rebuilt meanwhile; they are checked
against the text rather than trusted.
"""
from __future__ import annotations

import bisect
import re
from typing import Any, Mapping

from ..entity import Entity
from ..formats import EXTENSIONS, Record, render
from ..service import GRANULARITIES, RequestError, _type_name
from ..textio import iter_lines

EXPORT_FORMATS = ("jsonl", "conll", "brat", "tsv")
MEDIA_TYPES = {"jsonl": "application/x-ndjson", "conll": "text/plain", "brat": "text/plain",
               "tsv": "text/tab-separated-values"}
_LABEL = re.compile(r"\S{1,100}")
_SOURCE_BAD = re.compile(r"[\x00-\x1f\x7f\\/]")

#: The request body of ``POST /v1/export`` (JSON Schema).
EXPORT_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "description": "The annotated text, as sent to /v1/annotate."},
        "entities": {"type": "array", "description": "Entities as /v1/annotate returned them (offsets into text).",
                     "items": {"type": "object", "properties": {
                         "start": {"type": "integer", "minimum": 0}, "end": {"type": "integer", "minimum": 0},
                         "text": {"type": "string", "description": "If given, must equal text[start:end]."},
                         "label": {"type": "string", "pattern": r"^\S{1,100}$"},
                         "coarse_label": {"type": "string", "pattern": r"^\S{1,100}$"},
                         "score": {"type": "number", "minimum": 0, "maximum": 1}},
                         "required": ["start", "end", "label"], "additionalProperties": False}},
        "format": {"enum": list(EXPORT_FORMATS)},
        "granularity": {"enum": [*GRANULARITIES, None], "description": "fine (default) or coarse labels."},
        "source": {"type": ["string", "null"], "maxLength": 200,
                   "description": "Name of the document (a file name): jsonl's and tsv's source, the download's name."},
    },
    "required": ["text", "entities", "format"],
    "additionalProperties": False,
}


def export(body: Mapping[str, Any], check_text: Any) -> tuple[str, str, str]:
    """``(content, media type, file name)`` of a download; ``check_text`` is the service's size check."""
    unknown = sorted(set(body) - set(EXPORT_REQUEST_SCHEMA["properties"]))
    if unknown:
        raise RequestError(f"export: unknown field(s) {', '.join(map(repr, unknown))}; fields: "
                           f"{', '.join(EXPORT_REQUEST_SCHEMA['properties'])}")
    missing = [k for k in EXPORT_REQUEST_SCHEMA["required"] if k not in body]
    if missing:
        raise RequestError(f"export: missing field(s) {', '.join(map(repr, missing))}")
    text = check_text(body["text"])
    fmt = body["format"]
    if not isinstance(fmt, str) or fmt not in EXPORT_FORMATS:
        raise RequestError(f"format must be one of {', '.join(map(repr, EXPORT_FORMATS))}, not "
                           f"{repr(fmt)[:40] if isinstance(fmt, str) else _type_name(fmt)}")
    granularity = body.get("granularity")
    if granularity is None:
        granularity = "fine"
    elif not isinstance(granularity, str) or granularity not in GRANULARITIES:
        raise RequestError(f"granularity must be 'fine' or 'coarse', not {repr(granularity)[:40]}")
    source = body.get("source")
    if source is not None and (not isinstance(source, str) or len(source) > 200 or _SOURCE_BAD.search(source)):
        raise RequestError("source must be a file name: at most 200 characters, no slashes or control characters")
    source = source or "text"
    entities = _entities(body["entities"], text)
    records = _records(text, entities, source)
    content = "".join(render(records, fmt, granularity))
    stem = source.rsplit(".", 1)[0] if "." in source.strip(".") else source
    return content, MEDIA_TYPES[fmt], f"{stem}{EXTENSIONS[fmt]}"


def _entities(items: Any, text: str) -> list[Entity]:
    if not isinstance(items, list):
        raise RequestError(f"entities must be an array, not {_type_name(items)}")
    out = []
    for k, item in enumerate(items, 1):
        where = f"entity {k} of {len(items)}"
        if not isinstance(item, dict):
            raise RequestError(f"{where} must be an object, not {_type_name(item)}")
        extra = sorted(set(item) - {"start", "end", "text", "label", "coarse_label", "score"})
        if extra:
            raise RequestError(f"{where}: unknown field(s) {', '.join(map(repr, extra))}")
        start, end = item.get("start"), item.get("end")
        if any(isinstance(v, bool) or not isinstance(v, int) for v in (start, end)):
            raise RequestError(f"{where}: start and end must be integers")
        if not 0 <= start < end <= len(text):
            raise RequestError(f"{where}: needs 0 <= start < end <= {len(text)} (the text's length), "
                               f"not start {start}, end {end}")
        label = item.get("label")
        coarse = item.get("coarse_label", label)
        for name, value in (("label", label), ("coarse_label", coarse)):
            if not isinstance(value, str) or not _LABEL.fullmatch(value):
                raise RequestError(f"{where}: {name} must be 1 to 100 characters without spaces")
        score = item.get("score", 1.0)
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
            raise RequestError(f"{where}: score must be a number between 0 and 1")
        span = text[start:end]
        if "text" in item and item["text"] != span:
            raise RequestError(f"{where}: its text does not match text[start:end] "
                               f"({repr(item['text'])[:40]} vs {repr(span)[:40]}): offsets are characters of the text sent")
        out.append(Entity(start, end, span, label, coarse, float(score)))
    out.sort(key=lambda e: (e.start, e.end))
    return out


def _records(text: str, entities: list[Entity], source: str) -> list[Record]:
    """One record per line of ``text``, as the CLI makes them, with line-relative entities."""
    lines = list(iter_lines(text))
    starts = [offset for _, offset, _ in lines]
    per_line: list[list[Entity]] = [[] for _ in lines]
    for e in entities:
        k = bisect.bisect_right(starts, e.start) - 1
        _, offset, line = lines[k]
        if e.end > offset + len(line):
            raise RequestError(f"the entity at {e.start}-{e.end} crosses a line break: entities lie within one line")
        per_line[k].append(Entity(e.start - offset, e.end - offset, e.text, e.label, e.coarse_label, e.score))
    return [Record(source, number, offset, line, ents)
            for (number, offset, line), ents in zip(lines, per_line)]
