"""Outputs that annotation tools open as they are: INCEpTION/WebAnno, brat, spaCy, transformers.

The line formats of :mod:`edge_finer.formats` serialise one record (a line, or one sentence of
given tokens) at a time; the tools here want a whole *document*: its text, its sentences, its
tokens and its entities in document offsets.  :func:`document` builds that from the records of
one input, and each writer turns it into one tool's format:

- ``xmi``: UIMA CAS XMI with DKPro Core's ``Sentence``, ``Token`` and ``NamedEntity`` (feature
  ``value``) written by ``dkpro-cassis`` (INCEpTION: import as "UIMA CAS XMI (XML 1.0)"; the
  ``TypeSystem.xml`` beside the files is DKPro Core's, as cassis ships it);
- ``webanno``: WebAnno TSV 3.3 (INCEpTION, WebAnno), offsets in UTF-16 code units as Java counts;
- ``brat``: the ``.ann`` of :mod:`edge_finer.formats` plus the ``.txt`` it indexes and an
  ``annotation.conf`` listing the bundle's types (:func:`brat_conf`);
- ``spacy``: a ``DocBin`` (``.spacy``) whose docs hold the exact text, tokens and entities;
- ``spacy-jsonl``: one line per record, ``text`` + ``tokens`` (with ``ws``) + ``spans`` (the
  Prodigy/spaCy span format): ``Doc(vocab, words, spaces)`` rebuilds the text exactly and
  ``doc.char_span(start, end)`` accepts every span;
- ``hf``: one JSON list per record in the shape of a transformers token-classification pipeline
  with ``aggregation_strategy="simple"``: ``entity_group``, ``score``, ``word``, ``start``, ``end``.

Document text: for raw-text input it is the decoded file as it is (CR of CRLF counted, as brat
counts it); for pre-tokenised input it is the tokens of each sentence joined by spaces, one
sentence per line, which is also what the brat ``.txt`` holds.  The optional libraries are
imported only here, with one clear error when missing (the 'export' extra).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

from .errors import EdgeFinerError
from .formats import Record, TokenRecord, _grid, label_of
from .segment import iter_sentences

NAMED_ENTITY = "de.tudarmstadt.ukp.dkpro.core.api.ner.type.NamedEntity"
SENTENCE = "de.tudarmstadt.ukp.dkpro.core.api.segmentation.type.Sentence"
TOKEN = "de.tudarmstadt.ukp.dkpro.core.api.segmentation.type.Token"
TYPESYSTEM_FILE = "TypeSystem.xml"
BRAT_CONF = "annotation.conf"

# Characters XML 1.0 cannot hold (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/U+FFFF).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass
class Document:
    """One input as the export formats need it; every span indexes ``text``."""

    name: str
    text: str
    sentences: list[tuple[int, int]] = field(default_factory=list)
    tokens: list[tuple[int, int]] = field(default_factory=list)
    entities: list[tuple[int, int, str, float]] = field(default_factory=list)  # start, end, label, score


def document_text(records: Sequence[Record]) -> str:
    """The text of pre-tokenised records: each sentence's tokens on a line of its own."""
    return "".join(rec.text + "\n" for rec in records)


def document(name: str, records: Iterable[Record], granularity: str = "fine", text: str | None = None) -> Document:
    """The document of one input from its records; ``text`` is the decoded input for raw-text
    records (pre-tokenised ones make their own, :func:`document_text`)."""
    records = list(records)
    if text is None:
        text = document_text(records)
    doc = Document(name, text)
    for rec in records:
        if isinstance(rec, TokenRecord):
            toks = [(rec.offset + a, rec.offset + b) for a, b in rec.spans if rec.text[a:b].strip()]
            if toks:
                doc.sentences.append((toks[0][0], toks[-1][1]))
        else:
            words = [(rec.offset + a, rec.offset + b) for a, b in _grid(rec.text, rec.entities)]
            toks = words
            k = 0
            for a, b in iter_sentences(rec.text):
                inside = []
                while k < len(words) and words[k][0] < rec.offset + b:
                    inside.append(words[k])
                    k += 1
                if inside:
                    doc.sentences.append((inside[0][0], inside[-1][1]))
        doc.tokens.extend(toks)
        doc.entities.extend((rec.offset + e.start, rec.offset + e.end, label_of(e, granularity), e.score)
                            for e in rec.entities)
    return doc


def _require(module: str, package: str, fmt: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise EdgeFinerError(f"-f {fmt} needs the {package} package: pip install 'edge-finer[export]' "
                             f"(or pip install {package})") from None


# -- INCEpTION / WebAnno ----------------------------------------------------------------------


def _typesystem() -> Any:
    cassis = _require("cassis", "dkpro-cassis", "xmi")
    return cassis.load_dkpro_core_typesystem()


def typesystem_xml() -> str:
    """DKPro Core's type system as cassis ships it (INCEpTION reads it beside the XMI files)."""
    return _typesystem().to_xml()


def to_xmi(doc: Document, typesystem: Any = None) -> str:
    """The document as UIMA CAS XMI (XML 1.0).  Characters XML cannot hold (NUL, other C0
    controls, lone surrogates) become U+FFFD, one for one, so every offset stays right;
    cassis writes offsets in UTF-16 code units, as UIMA's Java side expects."""
    cassis = _require("cassis", "dkpro-cassis", "xmi")
    ts = typesystem if typesystem is not None else _typesystem()
    cas = cassis.Cas(typesystem=ts)
    cas.sofa_string = _XML_ILLEGAL.sub("\ufffd", doc.text)
    cas.sofa_mime = "text/plain"
    Sentence, Token, NamedEntity = ts.get_type(SENTENCE), ts.get_type(TOKEN), ts.get_type(NAMED_ENTITY)
    for a, b in doc.sentences:
        cas.add(Sentence(begin=a, end=b))
    for a, b in doc.tokens:
        cas.add(Token(begin=a, end=b))
    for a, b, label, _ in doc.entities:
        cas.add(NamedEntity(begin=a, end=b, value=label))
    return cas.to_xmi()


# WebAnno TSV 3.3 escaping: text (``#Text=`` lines, tokens) escapes the backslash and line
# breaks/tabs; feature values also the characters the format uses as syntax.
_TEXT_ESCAPE = re.compile(r"[\\\n\r\t]")
_VALUE_ESCAPE = re.compile(r"(\\|\[|\]|\||_|->|;|\t|\n|\*)")
_CONTROL = {"\t": "t", "\n": "n", "\r": "r"}


def _text_escape(s: str) -> str:
    return _TEXT_ESCAPE.sub(lambda m: "\\" + _CONTROL.get(m.group(0), m.group(0)), s)


def _tsv_escape(s: str) -> str:
    return _VALUE_ESCAPE.sub(lambda m: "\\" + _CONTROL.get(m.group(1), m.group(1)), s)


def _utf16(text: str) -> list[int]:
    """UTF-16 offset of every code point offset of ``text`` (and of its end)."""
    out, pos = [0], 0
    for ch in text:
        pos += 2 if ord(ch) > 0xFFFF else 1
        out.append(pos)
    return out


def to_webanno(doc: Document) -> str:
    """The document as WebAnno TSV 3.3: one row per token (``sentence-token``, UTF-16 offsets,
    token, NamedEntity value), a multi-token entity numbered ``LABEL[n]`` on each of its rows."""
    u16 = _utf16(doc.text)
    label_at: dict[int, str] = {}
    starts = {a: k for k, (a, _) in enumerate(doc.tokens)}
    n = 0
    for a, b, label, _ in doc.entities:
        first = starts.get(a)
        if first is None:
            continue  # cannot happen: entities start on tokens
        covered = [k for k in range(first, len(doc.tokens)) if doc.tokens[k][0] < b]
        if len(covered) > 1:
            n += 1
        for k in covered:
            label_at[k] = _tsv_escape(label) + (f"[{n}]" if len(covered) > 1 else "")
    out = ["#FORMAT=WebAnno TSV 3.3\n", f"#T_SP={NAMED_ENTITY}|value\n", "\n"]
    k = 0
    for s_no, (sa, sb) in enumerate(doc.sentences, start=1):
        out.append("\n")
        out.append(f"#Text={_text_escape(doc.text[sa:sb])}\n")
        t_no = 0
        while k < len(doc.tokens) and doc.tokens[k][0] < sb:
            a, b = doc.tokens[k]
            t_no += 1
            out.append(f"{s_no}-{t_no}\t{u16[a]}-{u16[b]}\t{_text_escape(doc.text[a:b])}\t{label_at.get(k, '_')}\t\n")
            k += 1
    return "".join(out)


# -- brat --------------------------------------------------------------------------------------


def brat_conf(types: Iterable[str]) -> str:
    """An ``annotation.conf`` declaring ``types`` as entities (brat refuses undeclared ones)."""
    lines = ["# written by edge-finer: the entity types of the bundle(s) used", "[entities]"]
    lines += sorted(set(types))
    lines += ["", "[relations]", "<OVERLAP> Arg1:<ENTITY>, Arg2:<ENTITY>, <OVL-TYPE>:<ANY>", "", "[events]", "",
              "[attributes]", ""]
    return "\n".join(lines)


def read_brat_conf_types(text: str) -> set[str]:
    """The entity types an ``annotation.conf`` declares (to merge with a resumed run's)."""
    types, section = set(), ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "entities":
            types.add(line.split()[0].lstrip("!"))
    return types


# -- spaCy ---------------------------------------------------------------------------------------


def doc_tokens(text: str, spans: Sequence[tuple[int, int]], start: int = 0, end: int | None = None
               ) -> list[tuple[int, int, bool]]:
    """spaCy tokens ``(start, end, space_after)`` covering ``text[start:end]`` exactly: the given
    token spans, one following space as ``space_after``, and any other gap (more spaces, a tab,
    a zero-width character) as a token of its own, as spaCy's own tokenizer keeps whitespace."""
    end = len(text) if end is None else end
    out: list[tuple[int, int, bool]] = []
    pos = start

    def gap(a: int, b: int) -> None:
        if a >= b:
            return
        if out and text[a] == " " and not out[-1][2]:
            out[-1] = (out[-1][0], out[-1][1], True)
            a += 1
        if a < b:
            out.append((a, b, False))

    for a, b in spans:
        if b <= a:
            continue
        gap(pos, a)
        out.append((a, b, False))
        pos = b
    gap(pos, end)
    return out


def _record_tokens(rec: Record) -> list[tuple[int, int]]:
    return list(rec.spans) if isinstance(rec, TokenRecord) else _grid(rec.text, rec.entities)


def spacy_jsonl_chunks(rec: Record, granularity: str) -> Iterator[str]:
    """One record as a spaCy/Prodigy span line (see the module docstring)."""
    toks = doc_tokens(rec.text, _record_tokens(rec))
    index = {a: k for k, (a, _, _) in enumerate(toks)}
    ends = {b: k for k, (_, b, _) in enumerate(toks)}
    obj = {
        "text": rec.text,
        "tokens": [{"text": rec.text[a:b], "start": a, "end": b, "id": k, "ws": ws}
                   for k, (a, b, ws) in enumerate(toks)],
        "spans": [{"start": e.start, "end": e.end, "token_start": index[e.start], "token_end": ends[e.end],
                   "label": label_of(e, granularity), "score": e.score} for e in rec.entities],
        "meta": {"source": rec.source, "line": rec.line},
    }
    yield json.dumps(obj, ensure_ascii=False) + "\n"


def to_docbin(docs: Iterable[Document]) -> bytes:
    """The documents as one spaCy ``DocBin``: each Doc's text is the document's text exactly,
    its sentences and entities are ours; scores and the source name are in ``doc.user_data``."""
    _require("spacy", "spacy", "spacy")
    from spacy.tokens import Doc, DocBin
    from spacy.vocab import Vocab

    vocab = Vocab()
    out = DocBin(store_user_data=True)
    for d in docs:
        toks = doc_tokens(d.text, d.tokens)
        sent_at = {a for a, _ in d.sentences}
        words = [d.text[a:b] for a, b, _ in toks]
        spacy_doc = Doc(vocab, words=words, spaces=[ws for _, _, ws in toks],
                        sent_starts=[a in sent_at or k == 0 for k, (a, _, _) in enumerate(toks)] if toks else None)
        spans = [spacy_doc.char_span(a, b, label=label) for a, b, label, _ in d.entities]
        spacy_doc.ents = [sp for sp in spans if sp is not None]  # all of them: entities start and end on tokens
        spacy_doc.user_data["edge_finer"] = {"source": d.name, "scores": [s for *_, s in d.entities]}
        out.add(spacy_doc)
    return out.to_bytes()


# -- transformers pipeline shape -------------------------------------------------------------------


def pipeline_output(entities: Iterable[Any], granularity: str = "fine") -> list[dict[str, Any]]:
    """Entities as a transformers token-classification pipeline returns them with
    ``aggregation_strategy="simple"`` (``word`` is the exact text of the span)."""
    return [{"entity_group": label_of(e, granularity), "score": e.score, "word": e.text, "start": e.start,
             "end": e.end} for e in entities]


def hf_chunks(rec: Record, granularity: str) -> Iterator[str]:
    yield json.dumps(pipeline_output(rec.entities, granularity), ensure_ascii=False) + "\n"
