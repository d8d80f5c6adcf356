"""The JSON request/response layer over the annotator: one schema for every program that calls
edge-finer with JSON rather than through Python objects.

The MCP server (``edge-finer mcp``, :mod:`edge_finer.agent.mcp_server`), the smolagents tool
(:mod:`edge_finer.agent.smol`) and the web API (``edge-finer serve``, :mod:`edge_finer.web`) are
thin adapters over :class:`Service`:
they translate their transport's call into one of its methods and its answer (a plain dict that
``json.dumps`` accepts) or its error (an :class:`~edge_finer.errors.EdgeFinerError` with a
one-line message) back.  The inputs each method takes are described once here
(:data:`ANNOTATE_INPUTS`, :data:`DETECT_INPUTS`), and so are the answers (:data:`ANNOTATE_OUTPUT_SCHEMA`,
:data:`DETECT_OUTPUT_SCHEMA`, :data:`LIST_OUTPUT_SCHEMA`, JSON Schema); the adapters publish those.

The entity objects are exactly the ones of the CLI's ``jsonl`` format (``formats.jsonl_chunks``):
``start``, ``end``, ``text``, ``label``, ``score`` and, with fine granularity, ``coarse_label``;
the routing objects are exactly those the CLI writes into a record's ``"routing"``.  Unlike
``jsonl`` (one record per line, offsets into the line), one answer covers the whole text and its
offsets index the text as sent: ``text[start:end] == entity["text"]``.

Only the runtime's own modules are imported: no pydantic, no mcp, no web framework.
"""
from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any, Mapping, Sequence

from .errors import BundleNotFound, EdgeFinerError, InputError
from .version import __version__

MB = 1_000_000
#: Texts larger than this (UTF-8 bytes) are refused; ``edge-finer mcp --max-text-mb`` changes it.
#: Below it a text of any length is annotated chunk by chunk (512 sentences at a time, sentences
#: capped at 20,000 characters), so memory follows the chunk, not the text; the cap bounds the
#: time one call holds a worker (about 5 s per MB on one core) and the size of the answer.
DEFAULT_MAX_TEXT_BYTES = 2 * MB
#: A model card larger than this is not a model card.
MAX_MODEL_CARD_BYTES = 1 * MB
GRANULARITIES = ("fine", "coarse")
ROUTES = ("document", "sentence")
#: Where the MCP server publishes each bundle's model card.
MODEL_CARD_URI = "edge-finer://bundles/{name}/model-card"


class RequestError(InputError):
    """A request the service refuses: a wrong type, an unknown value, a text over the cap."""


class TooLarge(RequestError):
    """A text (or a batch of texts) over the size cap: an HTTP front end answers 413 for it."""


# -- what the methods take ------------------------------------------------------------------
# One entry per argument: a JSON type, a description for the calling model, and "nullable" for
# optional ones (the smolagents convention; ``request_schema`` turns it into JSON Schema).

ANNOTATE_INPUTS: dict[str, dict[str, Any]] = {
    "text": {"type": "string", "description": (
        "The text to annotate, as it is (any script; newlines kept). Offsets in the answer index "
        "this string. Long texts are fine: they are annotated sentence by sentence, up to the "
        "server's size cap.")},
    "lang": {"type": "string", "nullable": True, "description": (
        "Language code, BCP-47 (en, hi, sw) or ISO 639-3 (eng, hin, swa). Omit it to let the "
        "language be detected from the text.")},
    "bundle": {"type": "string", "nullable": True, "description": (
        "Name of an installed bundle (see list_bundles), e.g. multiconer2-en; wins over lang.")},
    "taxonomy": {"type": "string", "nullable": True, "description": (
        "Prefer the bundle of this taxonomy (e.g. multiconer2, il-ner, masakhaner2) where a "
        "language has several.")},
    "granularity": {"type": "string", "nullable": True, "enum": list(GRANULARITIES), "description": (
        "'fine' (default): label is the fine type and coarse_label its group; 'coarse': label is "
        "the coarse group and there is no coarse_label.")},
    "threshold": {"type": "number", "nullable": True, "minimum": 0.0, "maximum": 1.0, "description": (
        "Minimum entity score, 0 to 1. Default: the bundle's threshold, calibrated on its dev "
        "split. 0 returns every decoded entity.")},
    "route": {"type": "string", "nullable": True, "enum": list(ROUTES), "description": (
        "Without lang/bundle: 'document' (default) picks one bundle for the whole text; "
        "'sentence' picks one per sentence, for code-mixed text.")},
}

DETECT_INPUTS: dict[str, dict[str, Any]] = {
    "text": {"type": "string", "description": "The text whose language to detect."},
    "taxonomy": ANNOTATE_INPUTS["taxonomy"],
    "route": {"type": "string", "nullable": True, "enum": list(ROUTES), "description": (
        "'document' (default): one decision for the whole text; 'sentence': one per sentence.")},
    "evidence": {"type": "boolean", "nullable": True, "description": (
        "Include the evidence behind each decision (script, n-gram scores, CLD3).")},
}


def request_schema(inputs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The JSON Schema of a request object with these inputs (what a web API would publish)."""
    props: dict[str, Any] = {}
    for name, spec in inputs.items():
        prop = {k: v for k, v in spec.items() if k != "nullable"}
        if spec.get("nullable"):
            prop["type"] = [spec["type"], "null"]
            if "enum" in prop:
                prop["enum"] = [*prop["enum"], None]
        props[name] = prop
    return {"type": "object", "properties": props, "additionalProperties": False,
            "required": [n for n, s in inputs.items() if not s.get("nullable")]}


# -- what the methods answer ----------------------------------------------------------------

ENTITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A typed span of the text: text[start:end] == text.",
    "properties": {
        "start": {"type": "integer", "minimum": 0, "description": "Offset of the first character (Python str index)."},
        "end": {"type": "integer", "minimum": 0, "description": "Offset after the last character."},
        "text": {"type": "string"},
        "label": {"type": "string", "description": "Fine type (granularity fine) or coarse group (coarse)."},
        "coarse_label": {"type": "string", "description": "The fine type's coarse group (granularity fine only)."},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["start", "end", "text", "label", "score"],
    "additionalProperties": False,
}

DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Which bundle (language) a text was given to, and why; bundle null = unknown.",
    "properties": {
        "language": {"type": "string", "description": "BCP-47 code, or 'unknown'."},
        "bundle": {"type": ["string", "null"]},
        "confidence": {"type": "number"},
        "by": {"type": "string", "description": "The deciding evidence (script, n-gram profile, cld3, an argument)."},
        "language_name": {"type": "string", "description": "English name of the language (when it was told)."},
        "reason": {"type": "string", "description": (
            "Why no bundle was chosen (bundle null only): the language could not be told, or it was named but "
            "has no bundle installed ('mr (Marathi): no bundle installed; build one with ...').")},
        "evidence": {"type": "object"},
    },
    "required": ["language", "bundle", "confidence", "by"],
}

SEGMENT_SCHEMA: dict[str, Any] = {
    **DECISION_SCHEMA,
    "description": "A span of the text routed on its own.",
    "properties": {"start": {"type": "integer"}, "end": {"type": "integer"}, **DECISION_SCHEMA["properties"]},
    "required": ["start", "end", *DECISION_SCHEMA["required"]],
}

SENTENCE_ROUTING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"mode": {"const": "sentence"}, "segments": {"type": "array", "items": SEGMENT_SCHEMA}},
    "required": ["mode", "segments"],
}

ANNOTATE_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "entities": {"type": "array", "items": ENTITY_SCHEMA, "description": "Sorted by position."},
        "routing": {"anyOf": [DECISION_SCHEMA, SENTENCE_ROUTING_SCHEMA], "description": (
            "The routing decision (as in the CLI's jsonl 'routing'); with lang/bundle given, by says so.")},
        "bundles": {"type": "array", "description": "The bundles that annotated the text.", "items": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "language": {"type": "string"},
                           "taxonomy": {"type": "string"}, "threshold": {"type": "number"},
                           "licence": {"type": "string"}},
            "required": ["name", "language", "taxonomy", "threshold", "licence"]}},
        "granularity": {"enum": list(GRANULARITIES)},
        "text_chars": {"type": "integer", "description": "Length of the text in characters."},
        "warnings": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["entities", "routing", "bundles", "granularity", "text_chars", "warnings"],
}

DETECT_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "mode": {"enum": list(ROUTES)},
        "segments": {"type": "array", "items": SEGMENT_SCHEMA,
                     "description": "One decision for the whole text (document) or one per sentence."},
        "languages": {"type": "array", "items": {"type": "string"}, "description": "Installed languages."},
        "warnings": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["mode", "segments", "languages", "warnings"],
}

BUNDLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        # the fields of `edge-finer bundles list --json`
        "name": {"type": "string"}, "language": {"type": "string"}, "taxonomy": {"type": "string"},
        "version": {"type": "string"}, "licence": {"type": "string"}, "size_mb": {"type": "number"},
        "source": {"type": "string"}, "default": {"type": "boolean"}, "demo": {"type": "boolean"},
        "path": {"type": "string"},
        # and what a calling model needs to choose one
        "language_name": {"type": "string"}, "scripts": {"type": "array", "items": {"type": "string"}},
        "description": {"type": "string"},
        "types": {"type": "object", "additionalProperties": {"type": "string"},
                  "description": "Fine type -> its coarse group."},
        "threshold": {"type": "number"},
        "non_commercial": {"type": "boolean"},
        "training_data": {"type": "array", "items": {"type": "object"}},
        "figures": {"type": "object", "description": "Entity-level scores of the bundle's own evaluation."},
        "model_card": {"type": "string", "description": "URI of the model card resource."},
    },
    "required": ["name", "language", "taxonomy", "licence", "types", "default"],
}

LIST_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "bundles": {"type": "array", "items": BUNDLE_SCHEMA, "description": "Installed bundles, in lookup order."},
        "languages": {"type": "array", "items": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "name": {"type": "string"},
                           "bundles": {"type": "array", "items": {"type": "string"},
                                       "description": "Preferred (default) first."}},
            "required": ["code", "bundles"]}},
        "taxonomies": {"type": "array", "items": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "types": {"type": "object"},
                           "bundles": {"type": "array", "items": {"type": "string"}}},
            "required": ["name", "types", "bundles"]}},
        "max_text_mb": {"type": "number", "description": "The largest text one call accepts."},
        "version": {"type": "string"},
    },
    "required": ["bundles", "languages", "taxonomies", "max_text_mb", "version"],
}


# -- shared with the CLI --------------------------------------------------------------------


def entity_json(e: Any, granularity: str) -> dict[str, Any]:
    """One entity as the CLI's ``jsonl`` format writes it (``formats.jsonl_chunks``)."""
    from .formats import label_of

    item = {"start": e.start, "end": e.end, "text": e.text, "label": label_of(e, granularity), "score": e.score}
    if granularity == "fine":
        item["coarse_label"] = e.coarse_label
    return item


def routing_json(decision: Any) -> dict[str, Any]:
    """A router decision as the CLI writes it (``detect`` rows, a jsonl record's ``routing``)."""
    out = {"language": decision.language or "unknown", "bundle": decision.bundle,
           "confidence": round(decision.confidence, 4), "by": decision.evidence.get("by", "")}
    if decision.language is not None:
        from .languages import name_of

        out["language_name"] = name_of(decision.language)
    if decision.bundle is None:  # unknown, or a language named that has no bundle installed
        out["reason"] = decision.reason
    return out


def bundle_row(b: Any) -> dict[str, Any]:
    """An installed bundle as ``edge-finer bundles list --json`` shows it."""
    return {
        "name": b.name, "language": b.language, "taxonomy": b.taxonomy,
        "version": str(b.manifest.get("version", "?")), "licence": str(b.manifest.get("licence", "?")),
        "size_mb": round(sum(f.get("size", 0) for f in b.manifest.get("files", {}).values()) / 1e6, 2),
        "source": b.source, "default": b.default, "demo": bool(b.manifest.get("demo", False)),
        "path": str(b.path),
    }


def is_non_commercial(licence: str) -> bool:
    from .catalogue import is_non_commercial as _nc

    return _nc(licence)


def script_mismatch(bundle: Any, text: str) -> str | None:
    """Why ``bundle`` is the wrong choice for ``text`` (its main script is not one the bundle
    writes: such a model sees only unknown pieces and its output is noise), or None."""
    from .scripts import expand, script_counts

    counts = script_counts(text)
    if not counts:
        return None
    main = counts.most_common(1)[0][0]
    written = expand(bundle.language.get("scripts", []))
    if not written or main in written:
        return None
    return (f"the text is in {main} script, which bundle {bundle.name} ({bundle.language.get('bcp47')}) "
            f"does not write ({', '.join(sorted(written))})")


# -- argument checks (the same errors whatever the transport) -------------------------------


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


def _opt_str(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError(f"{name} must be a string, not {_type_name(value)}")
    return value.strip() or None


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value is None:
        return choices[0]
    if not isinstance(value, str) or value not in choices:
        shown = repr(value[:40]) if isinstance(value, str) else _type_name(value)
        raise RequestError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, not {shown}")
    return value


def _threshold(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"threshold must be a number between 0 and 1, not {_type_name(value)}")
    if not 0.0 <= float(value) <= 1.0:
        raise RequestError(f"threshold must be between 0 and 1, not {value}")
    return float(value)


def _flag(name: str, value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RequestError(f"{name} must be true or false, not {_type_name(value)}")
    return value


class Service:
    """Annotation, language detection and bundle listing as JSON-ready dicts.

    Thread-safe: the MCP server calls it from worker threads.  ``max_text_bytes`` caps the text
    of one call (UTF-8 bytes); ``threads`` is onnxruntime's thread count per bundle.  Bundles
    are named, never given as paths: a calling model may use what is installed (``bundles
    install``, ``EDGE_FINER_BUNDLES``), not load files from anywhere on the machine.  A bundle
    installed, removed or rebuilt while the service runs is seen by the next call.
    """

    def __init__(self, *, max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES, threads: int | None = None,
                 use_cld3: bool | None = None, bundles: Sequence[str] | None = None) -> None:
        if max_text_bytes < 1:
            raise EdgeFinerError(f"the text size cap must be positive, not {max_text_bytes}")
        self.max_text_bytes = int(max_text_bytes)
        self.threads = threads
        self.use_cld3 = use_cld3
        #: Serve only these installed bundles (``edge-finer serve --bundles``); None: all of them.
        self.only: frozenset[str] | None = frozenset(bundles) if bundles else None
        self._lock = threading.Lock()
        self._fingerprint: tuple | None = None
        self._routers: dict[str | None, Any] = {}

    # -- the three calls ------------------------------------------------------------------

    def annotate(self, text: Any, lang: Any = None, bundle: Any = None, taxonomy: Any = None,
                 granularity: Any = None, threshold: Any = None, route: Any = None) -> dict[str, Any]:
        """Entities of ``text`` (see :data:`ANNOTATE_INPUTS` and :data:`ANNOTATE_OUTPUT_SCHEMA`)."""
        text = self.check_text(text)
        return self._annotate_texts([text], lang, bundle, taxonomy, granularity, threshold, route)[0]

    def annotate_many(self, texts: Any, lang: Any = None, bundle: Any = None, taxonomy: Any = None,
                      granularity: Any = None, threshold: Any = None, route: Any = None) -> list[dict[str, Any]]:
        """One :meth:`annotate` answer per text, for a client that sends many short texts at once
        (a web API's batch): the sentences of all texts that go to the same bundle share model
        batches, several times faster than one call per text.  The size cap applies to the texts
        together; a text whose language cannot be told fails the whole call, naming it."""
        if not isinstance(texts, list):
            raise RequestError(f"texts must be an array of strings, not {_type_name(texts)}")
        for k, t in enumerate(texts):
            if not isinstance(t, str):
                raise RequestError(f"text {k + 1} of {len(texts)} must be a string, not {_type_name(t)}")
        self.check_text("\n".join(texts))  # the cap covers the batch, as if it were one text
        return self._annotate_texts(texts, lang, bundle, taxonomy, granularity, threshold, route)

    def _annotate_texts(self, texts: list[str], lang: Any, bundle: Any, taxonomy: Any, granularity: Any,
                        threshold: Any, route: Any) -> list[dict[str, Any]]:
        lang, bundle, taxonomy = _opt_str("lang", lang), _opt_str("bundle", bundle), _opt_str("taxonomy", taxonomy)
        granularity = _choice("granularity", granularity, GRANULARITIES)
        route = _choice("route", route, ROUTES)
        threshold = _threshold(threshold)
        self._refresh()
        if not texts:
            return []

        def answer(text: str, entities: list[Any], routing: dict[str, Any], used: list[Any],
                   warnings: list[str]) -> dict[str, Any]:
            return {
                "entities": [entity_json(e, granularity) for e in entities],
                "routing": routing,
                "bundles": [{"name": a.bundle.name, "language": str(a.bundle.language.get("bcp47", "?")),
                             "taxonomy": a.bundle.taxonomy, "threshold": _cut_at(a, threshold),
                             "licence": a.bundle.licence} for a in used],
                "granularity": granularity,
                "text_chars": len(text),
                "warnings": warnings,
            }

        def where(k: int) -> str:
            return "the text" if len(texts) == 1 else f"text {k + 1} of {len(texts)}"

        if bundle or lang:  # as in the CLI: an explicit bundle wins over lang, and both over routing
            annotator = self._annotator(self._bundle_path(bundle) if bundle else None,
                                        lang=None if bundle else lang, taxonomy=taxonomy)
            b = annotator.bundle
            routing: dict[str, Any] = {"language": str(b.language.get("bcp47", "?")), "bundle": b.name,
                                       "confidence": 1.0, "by": "bundle argument" if bundle else "lang argument"}
            out = []
            for text, found in zip(texts, self._run(annotator, texts, threshold)):
                problem = script_mismatch(b, text)
                warnings = [f"{problem}; omit lang/bundle to route it, or pick a bundle for its language"] if problem else []
                out.append(answer(text, found, dict(routing), [annotator], warnings))
            return out
        if route == "document":
            router = self._router(taxonomy)
            decisions = []
            for k, text in enumerate(texts):
                decision = router.route(text)
                if decision.no_bundle:
                    raise RequestError(f"{where(k)}: {decision.reason}")
                if decision.bundle is None:
                    raise RequestError(f"cannot tell the language of {where(k)}: "
                                       + decision.reason.replace("pass --lang to choose", "give lang to choose"))
                decisions.append(decision)
            groups: dict[str, list[int]] = {}
            for k, decision in enumerate(decisions):
                groups.setdefault(str(decision.path), []).append(k)
            results: list[dict[str, Any]] = [{} for _ in texts]
            for members in groups.values():
                annotator = self._annotator(decisions[members[0]].path)
                for k, found in zip(members, self._run(annotator, [texts[k] for k in members], threshold)):
                    results[k] = answer(texts[k], found, routing_json(decisions[k]), [annotator], [])
            return results
        out = []
        for text in texts:
            entities, routing, used, skipped = self._by_sentence(text, taxonomy, threshold)
            warnings = []
            if skipped:
                warnings.append(f"{skipped} of {len(routing['segments'])} sentences were not annotated: their "
                                "language could not be told or has no bundle installed (see routing.segments); "
                                "give lang to annotate them")
            out.append(answer(text, entities, routing, used, warnings))
        return out

    @staticmethod
    def _run(annotator: Any, texts: list[str], threshold: float | None) -> list[list[Any]]:
        """Entities per text, at the request's threshold (the annotator keeps every entity)."""
        cut = _cut_at(annotator, threshold)
        found = [annotator.annotate(texts[0])] if len(texts) == 1 else annotator.annotate_batch(texts)
        return [[e for e in ents if e.score >= cut] for ents in found]

    def detect_language(self, text: Any, taxonomy: Any = None, route: Any = None,
                        evidence: Any = None) -> dict[str, Any]:
        """Which bundle each part of ``text`` would be annotated with, and why (``edge-finer detect``)."""
        text = self.check_text(text)
        taxonomy = _opt_str("taxonomy", taxonomy)
        route = _choice("route", route, ROUTES)
        evidence = _flag("evidence", evidence)
        self._refresh()
        router = self._router(taxonomy)
        if route == "document":
            pieces = [(0, len(text), router.route(text))]
        else:
            pieces = [(seg.start, seg.end, seg.decision) for seg in router.route_sentences(text)]
        segments = []
        for start, end, decision in pieces:
            row = {"start": start, "end": end, **routing_json(decision)}
            if evidence:
                row["evidence"] = json.loads(json.dumps(decision.evidence, default=str))
            segments.append(row)
        return {"mode": route, "segments": segments, "languages": list(router.languages),
                "warnings": [f"ignored: {p}" for p in router.problems]}

    def list_bundles(self) -> dict[str, Any]:
        """The installed bundles: languages, taxonomies, types, licences, figures."""
        from .registry import preference_order

        found = self._installed()
        by_lang: dict[str, list[Any]] = {}
        for b in found:
            by_lang.setdefault(b.language, []).append(b)
        languages = [{"code": code, "name": str(group[0].manifest.get("language", {}).get("name", code)),
                      "bundles": [b.name for b in preference_order(group)]}
                     for code, group in sorted(by_lang.items())]
        taxonomies: dict[str, dict[str, Any]] = {}
        for b in found:
            tax = taxonomies.setdefault(b.taxonomy, {"name": b.taxonomy, "types": {}, "bundles": []})
            tax["types"].update(_types(b.manifest))
            tax["bundles"].append(b.name)
        return {"bundles": [self._describe(b) for b in found], "languages": languages,
                "taxonomies": list(taxonomies.values()), "max_text_mb": self.max_text_bytes / MB,
                "version": __version__}

    def model_card(self, name: Any) -> str:
        """The ``MODEL_CARD.md`` of an installed bundle."""
        from .bundle import MODEL_CARD

        path = self._bundle_path(_opt_str("name", name) or "") / MODEL_CARD
        try:
            if path.stat().st_size > MAX_MODEL_CARD_BYTES:
                raise RequestError(f"{path}: larger than {MAX_MODEL_CARD_BYTES // MB} MB; not a model card")
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise BundleNotFound(f"{path}: unreadable ({exc.strerror or exc})") from None

    def call(self, method: str, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        """One request by name with a JSON object of arguments (what a web API would do):
        unknown arguments and methods are refused with the list of valid ones."""
        table = {"annotate": (self.annotate, ANNOTATE_INPUTS), "detect_language": (self.detect_language, DETECT_INPUTS),
                 "list_bundles": (self.list_bundles, {})}
        if method not in table:
            raise RequestError(f"unknown method {method!r}; methods: {', '.join(table)}")
        fn, inputs = table[method]
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            raise RequestError(f"the arguments of {method} must be a JSON object, not {_type_name(arguments)}")
        unknown = sorted(set(arguments) - set(inputs))
        if unknown:
            raise RequestError(f"{method}: unknown argument(s) {', '.join(map(repr, unknown))}; "
                               f"arguments: {', '.join(inputs) or 'none'}")
        missing = [n for n, s in inputs.items() if not s.get("nullable") and n not in arguments]
        if missing:
            raise RequestError(f"{method}: missing argument(s) {', '.join(map(repr, missing))}")
        return fn(**arguments)

    # -- limits ---------------------------------------------------------------------------

    def check_text(self, text: Any) -> str:
        """``text`` itself, or a :class:`RequestError` when it is not a string or over the cap."""
        if not isinstance(text, str):
            raise RequestError(f"text must be a string, not {_type_name(text)}")
        cap = self.max_text_bytes
        # every character is 1 to 4 bytes of UTF-8: only a text in between needs encoding
        if len(text) > cap:
            n, at_least = len(text), "at least "
        elif 4 * len(text) <= cap:
            return text
        else:
            n, at_least = len(text.encode("utf-8", "surrogatepass")), ""
            if n <= cap:
                return text
        size, limit = (_mb(n), _mb(cap)) if _mb(n) != _mb(cap) else (f"{n:,} bytes", f"{cap:,} bytes")
        raise TooLarge(f"text too large ({at_least}{size} of UTF-8): this server accepts at most {limit} per "
                           "call; split the text at paragraph or sentence ends and send the parts "
                           "(or start the server with a larger --max-text-mb)")

    # -- descriptions for calling models --------------------------------------------------

    def catalogue(self) -> str:
        """The installed languages and taxonomies, in a few lines a calling model can read."""
        from .registry import preference_order

        found = self._installed()
        if not found:
            return "No bundles are installed: every call will fail until one is (edge-finer bundles install)."
        by_lang: dict[str, list[Any]] = {}
        for b in found:
            by_lang.setdefault(b.language, []).append(b)
        langs = []
        for code, group in sorted(by_lang.items()):
            name = group[0].manifest.get("language", {}).get("name", code)
            names = ", ".join(
                f"{b.name} ({b.taxonomy}{', non-commercial' if is_non_commercial(b.manifest.get('licence', '')) else ''})"
                for b in preference_order(group))
            langs.append(f"{code} {name}: {names}")
        taxes: dict[str, dict[str, str]] = {}
        for b in found:
            taxes.setdefault(b.taxonomy, {}).update(_types(b.manifest))
        tax_lines = []
        for tax, types in taxes.items():
            groups: dict[str, list[str]] = {}
            for fine, coarse in types.items():
                groups.setdefault(coarse, []).append(fine)
            body = "; ".join(f"{coarse}: {', '.join(fines)}" if fines != [coarse] else coarse
                             for coarse, fines in groups.items())
            tax_lines.append(f"{tax} ({len(types)} types in {len(groups)} groups) - {body}")
        return ("Installed languages (code name: bundles, preferred first): " + "; ".join(langs) + ".\n"
                "Taxonomies (coarse group: fine types): " + " | ".join(tax_lines) + ".")

    def annotate_description(self) -> str:
        return (
            "Find fine-grained named entities (people, places, organisations, creative works, products, "
            "dates and more, depending on the taxonomy) in a text, offline, on this machine (edge-finer "
            f"{__version__}). Returns each entity's character offsets into the text (text[start:end] equals "
            "its text), its fine label, its coarse group (coarse_label) and a score, plus which language and "
            "bundle annotated the text and why (routing).\n"
            + self.catalogue() + "\n"
            "Without lang or bundle the language is detected from the text (script, then character n-gram "
            "profiles); pass lang when you know it, and route='sentence' for code-mixed text. "
            f"Texts up to {_mb(self.max_text_bytes)} of UTF-8 per call; split larger ones.")

    def detect_description(self) -> str:
        return ("Tell which language a text is in and which installed bundle would annotate it, offline, with the "
                "confidence and the evidence, as annotate would route it; a language without an installed bundle "
                "is named with bundle null and the reason; 'unknown' with the reason when it fits none. "
                f"Installed languages: {', '.join(sorted({b for b in self._languages()})) or 'none'}.")

    def list_description(self) -> str:
        return ("List the installed annotation bundles: for each its language, taxonomy and entity types "
                "(fine type -> coarse group), licence (some are non-commercial), evaluation figures and the "
                "URI of its model card; also the languages and taxonomies they cover.")

    # -- internals ------------------------------------------------------------------------

    def _languages(self) -> list[str]:
        return [b.language for b in self._installed()]

    def _installed(self) -> list[Any]:
        """The installed bundles this service offers (all, or those of ``bundles=``)."""
        from .registry import installed

        return [b for b in installed() if self.only is None or b.name in self.only]

    def check_bundles(self) -> None:
        """Fail now, naming them, when a bundle given to ``bundles=`` is not installed (a server
        checks this at start rather than on the first request)."""
        if self.only is None:
            return
        from .registry import installed

        have = {b.name for b in installed()}
        missing = sorted(self.only - have)
        if missing:
            raise BundleNotFound(f"unknown bundle(s) {', '.join(map(repr, missing))}; installed bundles: "
                                 f"{', '.join(sorted(have)) or 'none'}")

    def _refresh(self) -> None:
        """Forget routers and annotators when the installed bundles changed (installed,
        removed, rebuilt): a long-running server then serves the bundles as they are now."""
        from .annotator import clear_cache
        from .registry import installed

        fingerprint = tuple((b.name, str(b.path), b.source, b.default,
                             json.dumps(b.manifest.get("files", {}), sort_keys=True)) for b in installed())
        with self._lock:
            if fingerprint != self._fingerprint:
                if self._fingerprint is not None:
                    clear_cache()
                self._routers.clear()
                self._fingerprint = fingerprint

    def _router(self, taxonomy: str | None) -> Any:
        from .router import Router

        with self._lock:
            router = self._routers.get(taxonomy)
            if router is None:
                router = Router.installed(taxonomy=taxonomy, use_cld3=self.use_cld3)
                if self.only is not None:  # route among the served bundles only
                    router = Router([c for c in router.candidates if c.name in self.only], cld3=router.cld3,
                                    min_confidence=router.min_confidence, problems=router.problems,
                                    references=router.references, langid=router.langid)
                self._routers[taxonomy] = router
            return router

    def _bundle_path(self, name: str) -> Any:
        found = self._installed()
        for b in found:
            if b.name == name:
                return b.path
        names = ", ".join(b.name for b in found) or "none"
        raise BundleNotFound(f"unknown bundle {name!r}; installed bundles: {names} (give a name that "
                             "list_bundles shows; paths are not accepted)"[:1000])

    def _annotator(self, path: Any, *, lang: str | None = None, taxonomy: str | None = None) -> Any:
        """The one shared annotator of a bundle.  It keeps every entity (threshold 0) and each
        request cuts at its own threshold (:func:`_cut_at`): a threshold in the annotator's
        cache key would load one model session per distinct value a client sends."""
        from .annotator import Annotator

        if path is None and lang is not None and self.only is not None:
            path = self._lang_path(lang, taxonomy)
        return Annotator.load(path, lang=lang, taxonomy=taxonomy, threads=self.threads, threshold=0.0)

    def _lang_path(self, lang: str, taxonomy: str | None) -> Any:
        """``registry.by_language`` among the served bundles."""
        from .registry import _lang_matches, preference_order

        served = self._installed()
        candidates = [b for b in served if _lang_matches(b.manifest, lang)]
        if not candidates:
            raise BundleNotFound(f"no bundle served for language {lang!r}; served languages: "
                                 f"{', '.join(sorted({b.language for b in served})) or 'none'}")
        if taxonomy and not any(b.taxonomy.lower() == taxonomy.lower() for b in candidates):
            raise BundleNotFound(f"no {taxonomy!r} bundle for language {lang!r}; available taxonomies: "
                                 f"{', '.join(sorted({b.taxonomy for b in candidates}))}")
        return preference_order(candidates, taxonomy)[0].path

    def _by_sentence(self, text: str, taxonomy: str | None, threshold: float | None) -> tuple:
        """``--route sentence`` of the CLI: each line's sentences routed on their own (a short
        one takes its line's decision); each bundle annotates its sentences in shared batches."""
        router = self._router(taxonomy)
        segments: list[dict[str, Any]] = []
        groups: dict[str, tuple[Any, list[tuple[int, int]]]] = {}
        skipped = 0
        # routed as one text (its sentences are scored together: cheap per sentence); a short
        # sentence still takes its own line's decision
        for seg in router.route_sentences(text):
            start, end = seg.start, seg.end
            segments.append({"start": start, "end": end, **routing_json(seg.decision)})
            if seg.decision.bundle is None:
                skipped += 1
            else:
                groups.setdefault(str(seg.decision.path), (seg.decision.path, []))[1].append((start, end))
        entities: list[Any] = []
        used = []
        for path, spans in groups.values():
            annotator = self._annotator(path)
            used.append(annotator)
            cut = _cut_at(annotator, threshold)
            for (start, _), found in zip(spans, annotator.stream(text[a:b] for a, b in spans)):
                entities.extend(dataclasses.replace(e, start=e.start + start, end=e.end + start)
                                for e in found if e.score >= cut)
        entities.sort(key=lambda e: (e.start, e.end))
        return entities, {"mode": "sentence", "segments": segments}, used, skipped

    def _describe(self, b: Any) -> dict[str, Any]:
        m = b.manifest
        lang = m.get("language", {})
        licence = str(m.get("licence", "?"))
        return {
            **bundle_row(b),
            "language_name": str(lang.get("name", b.language)),
            "scripts": list(lang.get("scripts", [])),
            "description": str(m.get("description", "")),
            "types": _types(m),
            "threshold": float(m.get("decoding", {}).get("threshold", 0.0)),
            "non_commercial": is_non_commercial(licence),
            "training_data": [{k: d[k] for k in ("name", "licence", "url") if k in d}
                              for d in m.get("training_data", []) if isinstance(d, dict)],
            "figures": _figures(m),
            "model_card": MODEL_CARD_URI.format(name=b.name),
        }


def _cut_at(annotator: Any, threshold: float | None) -> float:
    """The score an entity needs: the request's threshold, else the bundle's calibrated one."""
    if threshold is not None:
        return threshold
    return float(annotator.bundle.manifest.get("decoding", {}).get("threshold", 0.0))


def _types(manifest: Mapping[str, Any]) -> dict[str, str]:
    tax = manifest.get("taxonomy", {})
    coarse = tax.get("coarse", {}) or {}
    return {str(t): str(coarse.get(t, t)) for t in tax.get("types", [])}


def _figures(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The bundle's own evaluation, as ``bundles info`` shows it (entity-level F1 etc.)."""
    ev = manifest.get("evaluation", {}) or {}
    out: dict[str, Any] = {k: ev[k] for k in ("dataset", "split", "sentences") if k in ev}
    for system in ("teacher_fp32", "student_fp32", "student_int8"):
        scores = ev.get(system)
        if isinstance(scores, dict) and "f1" in scores:
            out[system] = {k: scores[k] for k in ("f1", "precision", "recall") if k in scores}
    cal = ev.get("threshold_calibration")
    if isinstance(cal, dict) and "f1" in cal:
        out["at_threshold"] = {k: cal[k] for k in ("threshold", "f1", "f1_at_zero", "split") if k in cal}
    return out


def _mb(size: int) -> str:
    return f"{size:,} bytes" if size < MB else f"{size / MB:.2f} MB"

