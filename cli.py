"""The ``edge-finer`` command: annotate text, manage bundles, build bundles.

Start-up time matters on a Pi, so everything beyond typer is imported inside the command that
needs it.  Every failure a user can cause ends as one ``error: ...`` line on stderr and a
non-zero exit code (1: something failed; 2: wrong usage), never a traceback.
"""
from __future__ import annotations

import dataclasses
import sys
from collections import Counter
from enum import Enum
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from typer.core import TyperGroup

from edge_finer.errors import DiskFullError, EdgeFinerError, InputError, OutputError


class _UserErrorsGroup(TyperGroup):
    """The root command group: a user error becomes one ``error:`` line and exit code 1.

    Done here, not only in :func:`main`, so that every way of running ``app`` (the console
    script, ``python cli.py``, typer's CliRunner, an embedding program) keeps the promise of
    no traceback; before, only ``main()`` did and ``app()`` alone let the exception escape.
    """

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except EdgeFinerError as exc:
            _err(str(exc))
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_UserErrorsGroup,
    name="edge-finer",
    help="Offline fine-grained named-entity annotation with small int8 bundles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: rich markup mode read every "[default: ...]" in our help texts as a
    # markup tag and dropped it.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
bundles_app = typer.Typer(help="List, inspect, verify, install, remove and pack bundles; browse the catalogue.",
                          no_args_is_help=True, rich_markup_mode=None)
app.add_typer(bundles_app, name="bundles")


class Fmt(str, Enum):
    table = "table"
    jsonl = "jsonl"
    conll = "conll"
    brat = "brat"
    tsv = "tsv"
    xmi = "xmi"
    webanno = "webanno"
    spacy = "spacy"
    spacy_jsonl = "spacy-jsonl"
    hf = "hf"


class InputFormat(str, Enum):
    text = "text"
    conll = "conll"
    tsv = "tsv"
    jsonl = "jsonl"


class RouteMode(str, Enum):
    document = "document"
    sentence = "sentence"


class DetectFmt(str, Enum):
    table = "table"
    jsonl = "jsonl"


class Granularity(str, Enum):
    fine = "fine"
    coarse = "coarse"


class Aggregation(str, Enum):
    first = "first"
    average = "average"
    max = "max"


class ErrorPolicy(str, Enum):
    strict = "strict"
    replace = "replace"
    ignore = "ignore"
    surrogateescape = "surrogateescape"


def _err(message: str) -> None:
    from edge_finer.terminal import safe  # one line, and no escape sequence from a file name

    sys.stderr.write(f"error: {safe(message)}\n")
    sys.stderr.flush()


def _safe(text: str) -> str:
    from edge_finer.terminal import safe

    return safe(text)


def _version(value: bool) -> None:
    if value:
        from edge_finer.version import __version__

        typer.echo(f"edge-finer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Offline fine-grained named-entity annotation with small int8 bundles."""


# -- annotate -------------------------------------------------------------------------------


@app.command()
def annotate(
    inputs: List[str] = typer.Argument(None, metavar="[FILES|FOLDERS|-]...",
                                       help="Files or folders to annotate; '-' or nothing reads stdin."),
    text: Optional[str] = typer.Option(None, "--text", "-t", help="Annotate this text instead of files."),
    bundle: Optional[str] = typer.Option(None, "--bundle", "-b", help="Bundle name, folder or archive."),
    lang: Optional[str] = typer.Option(None, "--lang", "-l", help="Language code (BCP-47 or ISO 639-3)."),
    taxonomy: Optional[str] = typer.Option(None, "--taxonomy", help="Prefer bundles of this taxonomy (e.g. multiconer2)."),
    route: RouteMode = typer.Option(RouteMode.document, "--route",
                                    help="Without --lang/--bundle: pick the bundle per document or per sentence."),
    granularity: Granularity = typer.Option(Granularity.fine, "--granularity", "-g", help="Fine types or their coarse groups."),
    fmt: Optional[Fmt] = typer.Option(None, "--format", "-f",
                                      help="Output format: table, jsonl, conll, tsv, brat; for annotation tools "
                                      "xmi (INCEpTION), webanno (WebAnno TSV 3.3), spacy (DocBin), spacy-jsonl, "
                                      "hf (transformers pipeline) [default: table on a terminal, else jsonl]."),
    input_format: InputFormat = typer.Option(InputFormat.text, "--input-format", "-i",
                                             help="text (each line annotated), or pre-tokenised: conll, tsv (one "
                                             "token per line, token first, blank line between sentences), jsonl "
                                             "({\"tokens\": [...]} per line); the tokens are kept exactly."),
    include: Optional[List[str]] = typer.Option(None, "--include", metavar="GLOB",
                                                help="In folders, take the files matching GLOB (repeatable) "
                                                "[default: the input format's extensions, e.g. *.txt *.md]."),
    exclude: Optional[List[str]] = typer.Option(None, "--exclude", metavar="GLOB",
                                                help="In folders, leave out the files matching GLOB (repeatable)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Write one output file per input into this folder."),
    force: bool = typer.Option(False, "--force", help="Replace existing output files."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted --output run: skip inputs "
                                "whose output is already there (same options required)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=256, help="onnxruntime threads [default: 1; more helps only long batch runs]."),
    threshold: Optional[float] = typer.Option(None, "--threshold", min=0.0, max=1.0,
                                              help="Minimum entity score [default: the bundle's]."),
    aggregation: Optional[Aggregation] = typer.Option(None, "--aggregation", help="Subword to word scores [default: the bundle's]."),
    low_memory: bool = typer.Option(False, "--low-memory", help="Smaller model batches: the lowest peak memory "
                                    "(small devices)."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Encoding of input files."),
    errors: ErrorPolicy = typer.Option(ErrorPolicy.strict, "--errors", help="What to do with undecodable bytes."),
    strict: bool = typer.Option(False, "--strict", help="With --lang/--bundle: refuse an input whose script the "
                                "bundle does not write (default: annotate it with a warning)."),
    workers: str = typer.Option("1", "--workers", metavar="N|auto", help="Worker processes, each with one "
                                "single-threaded model ('auto': the usable cores); outputs are identical to 1."),
) -> None:
    """Annotate text: files, folders, stdin or --text."""
    from edge_finer.parallel import parse_workers

    n_workers = parse_workers(workers)
    if output is not None and output.exists() and not output.is_dir():
        raise OutputError(f"{output}: exists and is not a folder")
    if resume and (output is None or force):
        raise typer.BadParameter("--resume continues an --output run and cannot be combined with --force"
                                 if output is not None else "--resume needs --output DIR")
    sources = _sources(inputs, text, encoding, errors.value, input_format.value, include or (), exclude or (),
                       output)
    from edge_finer.outputs import plan_sources

    sources, notes = plan_sources(sources, output, inputs)  # one file named twice
    for note in notes:
        sys.stderr.write(_safe(f"warning: {note}") + "\n")
    fmt_name = (fmt.value if fmt else ("table" if sys.stdout.isatty() and output is None else "jsonl"))
    _check_output_format(fmt_name, output, len(sources))
    in_fmt = input_format.value

    from edge_finer.annotator import LOW_MEMORY_BATCH_TOKENS, MAX_BATCH_TOKENS, Annotator

    opts = dict(threads=threads, threshold=threshold, aggregation=aggregation.value if aggregation else None,
                max_batch_tokens=LOW_MEMORY_BATCH_TOKENS if low_memory else MAX_BATCH_TOKENS)
    if bundle or lang:  # an explicit --bundle wins over --lang, and both over routing
        annotator = Annotator.load(bundle, lang=None if bundle else lang, taxonomy=taxonomy, **opts)
        if taxonomy and annotator.bundle.taxonomy.lower() != taxonomy.lower():
            raise typer.BadParameter(f"bundle {annotator.bundle.name} is of taxonomy {annotator.bundle.taxonomy!r}, "
                                     f"not {taxonomy!r}", param_hint="'--taxonomy'")
        annotator.warm_up()
        if in_fmt == "text":
            records = _BundleRecords(annotator, strict)
        else:
            records = lambda name, text: _token_records(annotator, name, text, in_fmt, strict)  # noqa: E731
            records.used = lambda: [annotator]  # type: ignore[attr-defined]
    else:
        records = _RoutedRecords(taxonomy, route.value, opts, in_fmt)
    if output is not None:
        from edge_finer.runlog import start_run

        start_run(output, {"format": fmt_name, "granularity": granularity.value, "bundle": bundle, "lang": lang,
                           "taxonomy": taxonomy, "route": route.value if not (bundle or lang) else None,
                           "threshold": threshold, "aggregation": aggregation.value if aggregation else None,
                           "encoding": encoding, "errors": errors.value, "input_format": in_fmt}, resume)
    if n_workers > 1 and (in_fmt != "text" or fmt_name in _ONE_PROCESS_FORMATS):
        sys.stderr.write(f"warning: --workers: {'--input-format ' + in_fmt if in_fmt != 'text' else '-f ' + fmt_name} "
                         "runs in one process\n")
        n_workers = 1
    if n_workers > 1:  # N processes over files and chunks of lines (edge_finer/corpus.py)
        from edge_finer.corpus import WorkerSpec, annotate_parallel

        spec = WorkerSpec(str(annotator.bundle.path) if (bundle or lang) else None, taxonomy, route.value, opts,
                          strict, fmt_name, granularity.value, encoding, errors.value)
        failed = annotate_parallel(spec, annotator if (bundle or lang) else None, sources, output, force,
                                   resume, n_workers, records)
    else:
        failed = _annotate_sources(records, sources, fmt_name, granularity.value, output, force,
                                   encoding, errors.value, resume)
    if output is not None and fmt_name in ("brat", "xmi"):
        _write_collection_files(output, fmt_name, _types_of(records, granularity.value))
    if failed:
        _err(f"{failed} of {len(sources)} inputs failed (see above)")
        raise typer.Exit(1)


#: Output formats written by one process (their documents need the whole input at once).
_ONE_PROCESS_FORMATS = ("xmi", "webanno", "spacy")


def _check_output_format(fmt: str, output: Optional[Path], n_sources: int) -> None:
    """Formats that cannot go to stdout as asked: one error line before any work."""
    if output is not None:
        return
    if fmt in ("xmi", "webanno") and n_sources > 1:
        raise typer.BadParameter(f"-f {fmt} writes one document per file: give --output DIR for several inputs")
    if fmt == "spacy" and sys.stdout.isatty():
        raise typer.BadParameter("-f spacy writes a binary DocBin: give --output DIR or redirect stdout to a file")


def _types_of(records, granularity: str) -> set[str]:
    """The entity types of every bundle the run used (for brat's annotation.conf)."""
    types: set[str] = set()
    for ann in records.used():
        fine = [t for t in ann.scheme.types if t]
        types.update(fine if granularity == "fine" else (ann.coarse[t] for t in fine))
    return types


def _write_collection_files(output: Path, fmt: str, types: set[str]) -> None:
    """What makes an output folder a collection the tool opens: brat's ``annotation.conf`` (the
    types of this run merged with those already declared there), INCEpTION's ``TypeSystem.xml``."""
    from edge_finer import exports
    from edge_finer.textio import atomic_write

    if fmt == "brat":
        conf = output / exports.BRAT_CONF
        if conf.is_file():
            try:
                types = types | exports.read_brat_conf_types(conf.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as exc:
                raise OutputError(f"{conf}: unreadable ({exc}); move it away and rerun") from None
        atomic_write(conf, exports.brat_conf(types))
    elif fmt == "xmi" and not (output / exports.TYPESYSTEM_FILE).is_file() and output.is_dir():
        atomic_write(output / exports.TYPESYSTEM_FILE, exports.typesystem_xml())


@app.command()
def detect(
    inputs: List[str] = typer.Argument(None, metavar="[FILES|FOLDERS|-]...",
                                       help="Files or folders to route; '-' or nothing reads stdin."),
    text: Optional[str] = typer.Option(None, "--text", "-t", help="Route this text instead of files."),
    route: RouteMode = typer.Option(RouteMode.document, "--route", help="One decision per document or per sentence."),
    taxonomy: Optional[str] = typer.Option(None, "--taxonomy", help="Prefer bundles of this taxonomy."),
    fmt: Optional[DetectFmt] = typer.Option(None, "--format", "-f",
                                            help="Output format [default: table on a terminal, else jsonl]."),
    evidence: bool = typer.Option(False, "--evidence", help="Include the evidence (scripts, scores, CLD3) in jsonl."),
    no_cld3: bool = typer.Option(False, "--no-cld3", help="Do not consult CLD3 even when it is installed."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Encoding of input files."),
    errors: ErrorPolicy = typer.Option(ErrorPolicy.strict, "--errors", help="What to do with undecodable bytes."),
) -> None:
    """Say which language each input is in, which installed bundle would annotate it, and why.

    A language without an installed bundle is named all the same ("mr (Marathi): no bundle
    installed; build one with ..."); text that fits no language the router knows is unknown."""
    import json

    from edge_finer.router import Router
    from edge_finer.textio import read_text

    sources = _sources(inputs, text, encoding, errors.value)
    router = Router.installed(taxonomy=taxonomy, use_cld3=False if no_cld3 else None)
    _check_taxonomy(router, taxonomy)
    for problem in router.problems:
        _err(f"ignored: {problem}")
    fmt_name = fmt.value if fmt else ("table" if sys.stdout.isatty() else "jsonl")
    rows: list[dict] = []
    failed = 0
    for source in sources:
        try:
            body = read_text(source, encoding, errors.value)
        except InputError as exc:
            failed += 1
            _err(str(exc))
            continue
        if route == RouteMode.document:
            pieces = [(0, len(body), router.route(body))]
        else:
            pieces = [(seg.start, seg.end, seg.decision) for seg in router.route_sentences(body)]
        for start, end, decision in pieces:
            row = {"source": source.name, "start": start, "end": end, **_routing_json(decision)}
            if evidence:
                row["evidence"] = decision.evidence
            rows.append(row)
            if fmt_name == "jsonl":
                sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    if fmt_name == "table":
        _print_detect_table(rows, route == RouteMode.sentence)
    if failed:
        _err(f"{failed} of {len(sources)} inputs failed (see above)")
        raise typer.Exit(1)


def _print_detect_table(rows: list[dict], spans: bool) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from edge_finer.terminal import safe as _clean

    table = Table(header_style="bold")
    cols = ["source"] + (["start", "end"] if spans else []) + ["language", "bundle", "confidence", "why"]
    for col in cols:
        table.add_column(col)
    for r in rows:
        cells = [_clean(r["source"])] + ([str(r["start"]), str(r["end"])] if spans else [])
        cells += [_clean(r["language"]), _clean(r["bundle"] or "-"), f"{r['confidence']:.3f}",
                  _clean(r.get("reason") or r["by"])]
        table.add_row(*(Text(c) for c in cells))
    Console().print(table)


def _sources(inputs: Optional[List[str]], text: Optional[str], encoding: str, errors: str,
             input_format: str = "text", include: tuple = (), exclude: tuple = (),
             output: Optional[Path] = None) -> list:
    """The documents named on the command line: --text, stdin, or files and folders (walked for
    the input format's files; one warning line per folder says what was passed over)."""
    from edge_finer.inputs import walk
    from edge_finer.textio import Source

    if text is not None and inputs:
        raise typer.BadParameter("give either --text or input files, not both")
    if text is not None:
        return [Source("<text>", None, "text", text)]
    if not inputs or inputs == ["-"]:
        if sys.stdin.isatty():
            raise typer.BadParameter("give files, '-' for stdin, or --text")
        return [Source("<stdin>", None, "stdin", _read_stdin(encoding, errors))]
    if "-" in inputs:
        raise typer.BadParameter("'-' (stdin) cannot be mixed with files")
    found = walk(inputs, input_format, include, exclude, output)
    for folder in found.skipped:
        sys.stderr.write(f"warning: {found.skipped_line(folder, include_hint=not include)}\n")
    return [Source(str(path), path, stem) for path, stem in found.files]


def _read_stdin(encoding: str, errors: str) -> str:
    data = sys.stdin.buffer.read()
    try:
        return data.decode(encoding, errors)
    except UnicodeDecodeError as exc:
        raise InputError(f"<stdin>: not valid {exc.encoding} (byte {exc.start}); pass --encoding "
                         "or --errors replace") from None
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}") from None


class _RoutedRecords:
    """Records of a text annotated by the bundle the router picks, per document or per
    sentence; each record carries the routing decision (written by the jsonl format)."""

    def __init__(self, taxonomy: Optional[str], mode: str, opts: dict, input_format: str = "text") -> None:
        from edge_finer.router import Router

        self.router = Router.installed(taxonomy=taxonomy)
        self.mode, self.opts, self.input_format = mode, opts, input_format
        self.annotators: dict[str, object] = {}
        if not self.router.candidates:
            problems = "; ".join(self.router.problems)
            raise EdgeFinerError("no bundles installed; install one (`edge-finer bundles install`) or pass --lang/--bundle"
                                 + (f": {problems}" if problems else ""))
        _check_taxonomy(self.router, taxonomy)

    def used(self) -> list:
        return list(self.annotators.values())

    def annotator(self, decision):
        from edge_finer.annotator import Annotator

        key = str(decision.path)
        if key not in self.annotators:
            self.annotators[key] = Annotator.load(key, **self.opts)
        return self.annotators[key]

    def __call__(self, source_name: str, text: str) -> Iterator:
        if not text.strip():  # nothing to route: an empty document has empty results
            yield from _empty_records(source_name, text, self.input_format)
            return
        if self.input_format != "text":
            yield from self._tokens(source_name, text)
            return
        if self.mode == "document":
            decision = self.router.route(text)
            if decision.bundle is None:
                raise InputError(f"{source_name}: {_unrouted(decision)}")
            routing = _routing_json(decision)
            for rec in _records(self.annotator(decision), source_name, text):
                yield dataclasses.replace(rec, routing=routing)
            return
        from edge_finer.formats import Record
        from edge_finer.textio import iter_lines

        # the whole text is routed at once (sentences are scored together, which is what keeps
        # routing cheap per sentence); each line then takes the sentences that start in it
        routed = self.router.route_sentences(text)
        total, skipped, k = 0, Counter(), 0
        for number, offset, line in iter_lines(text):
            entities, segments = [], []
            while k < len(routed) and routed[k].start < offset + len(line):
                seg = routed[k]
                k += 1
                start, end = max(seg.start, offset) - offset, min(seg.end, offset + len(line)) - offset
                if end <= start:
                    continue
                segments.append({"start": start, "end": end, **_routing_json(seg.decision)})
                total += 1
                if seg.decision.bundle is None:
                    skipped[seg.decision.language] += 1
                    continue
                for e in self.annotator(seg.decision).annotate(line[start:end]):
                    entities.append(dataclasses.replace(e, start=e.start + start, end=e.end + start))
            yield Record(source_name, number, offset, line, entities, {"mode": "sentence", "segments": segments})
        if skipped:
            from edge_finer.languages import name_of

            parts = [f"{n} in {lang} ({name_of(lang)}), which has no bundle installed" if lang else
                     f"{n} whose language could not be told" for lang, n in skipped.most_common()]
            sys.stderr.write(_safe(f"warning: {source_name}: {sum(skipped.values())} of {total} sentences not "
                                   f"annotated: {'; '.join(parts)} (see their routing; --lang chooses a bundle)") + "\n")


    def _tokens(self, source_name: str, text: str) -> Iterator:
        """Pre-tokenised input: routed on its tokens, per document or per sentence."""
        from edge_finer.readers import read_blocks
        from edge_finer.tokens import token_records

        blocks = list(read_blocks(text, self.input_format, source_name))
        if self.mode == "document":
            decision = self.router.route("\n".join(" ".join(b.tokens) for b in blocks))
            if decision.bundle is None:
                raise InputError(f"{source_name}: {_unrouted(decision)}")
            routing = _routing_json(decision)
            for rec in token_records(self.annotator(decision), source_name, blocks):
                yield dataclasses.replace(rec, routing=routing)
            return
        offset = 0
        for block in blocks:  # one decision per sentence of tokens
            decision = self.router.route(" ".join(block.tokens)) if any(t.strip() for t in block.tokens) else None
            if decision is not None and decision.bundle is not None:
                rec = next(token_records(self.annotator(decision), source_name, [block], offset))
            else:
                rec = next(token_records(None, source_name, [block], offset))
            offset += len(rec.text) + 1
            yield dataclasses.replace(rec, routing=None if decision is None else
                                      {"mode": "sentence", **_routing_json(decision)})


def _check_taxonomy(router, taxonomy: Optional[str]) -> None:
    """``--taxonomy`` naming no installed bundle's taxonomy is a mistake, not a preference."""
    if not taxonomy:
        return
    known = sorted({c.taxonomy for c in router.candidates})
    if taxonomy.lower() not in {t.lower() for t in known}:
        raise typer.BadParameter(f"no installed bundle has taxonomy {taxonomy!r} (installed: {', '.join(known)})",
                                 param_hint="'--taxonomy'")


def _empty_records(source_name: str, text: str, input_format: str) -> Iterator:
    """The records of a blank input: its lines, none with entities (nothing to route)."""
    from edge_finer.formats import Record
    from edge_finer.textio import iter_lines

    if input_format == "text":
        for number, offset, line in iter_lines(text):
            yield Record(source_name, number, offset, line, [])


def _token_records(annotator, source_name: str, text: str, input_format: str, strict: bool) -> Iterator:
    """Records of a pre-tokenised input (``edge_finer/readers.py``), one per sentence."""
    from edge_finer.readers import read_blocks
    from edge_finer.tokens import token_records

    blocks = list(read_blocks(text, input_format, source_name))
    _script_checked(annotator, source_name, "\n".join(" ".join(b.tokens) for b in blocks), strict)
    return token_records(annotator, source_name, blocks)


def _unrouted(decision) -> str:
    """Why a text routed to no bundle: its language has none ("mr (Marathi): no bundle
    installed; build one with ..."), or its language could not be told."""
    return decision.reason if decision.no_bundle else f"cannot tell the language: {decision.reason}"


def _routing_json(decision) -> dict:
    from edge_finer.service import routing_json  # one routing schema for the CLI, MCP and smolagents

    return routing_json(decision)


def _script_checked(annotator, source_name: str, text: str, strict: bool) -> str:
    """``text`` itself, after a one-line warning (or, with ``strict``, a refusal) when its main
    script is not one the explicitly chosen bundle writes: such a model sees only unknown pieces
    and its output is noise (a Swahili bundle on Devanagari tagged whole sentences as DATE)."""
    from edge_finer.service import script_mismatch

    problem = script_mismatch(annotator.bundle, text)
    if problem is None:
        return text
    line = f"{source_name}: {problem}; drop --lang/--bundle to route it, or pick a bundle for its language"
    if strict:
        raise InputError(line + " (refused: --strict)")
    sys.stderr.write(_safe(f"warning: {line}") + "\n")
    return text


class _BundleRecords:
    """Records of a text annotated by one bundle (--lang/--bundle); a large file is annotated
    as a stream instead (:func:`_streamed`)."""

    def __init__(self, annotator, strict: bool) -> None:
        self.annotator, self.strict = annotator, strict

    def __call__(self, source_name: str, text: str) -> Iterator:
        return _records(self.annotator, source_name, _script_checked(self.annotator, source_name, text, self.strict))

    def used(self) -> list:
        return [self.annotator]


def _streams(make_records, source, fmt: str, encoding: str) -> bool:
    """Whether ``source`` is annotated as a stream (edge_finer/bigfile.py): a large file in a
    streaming format and an encoding that splits at its newline bytes, annotated by one bundle
    or routed per document (``--route sentence`` routes the whole text at once)."""
    from edge_finer.bigfile import streamable

    if isinstance(make_records, _RoutedRecords):
        if make_records.mode != "document" or make_records.input_format != "text":
            return False
    elif not isinstance(make_records, _BundleRecords):
        return False
    return streamable(source.path, fmt, encoding)


def _streamed(make_records, source, fmt: str, granularity: str, encoding: str, errors: str, header: bool):
    """The output of a large file annotated as a stream (edge_finer/bigfile.py: memory flat in
    the file's and its lines' size, same bytes), or None where the whole-text path applies.
    Errors (undecodable, binary, no bundle for its language) are raised here, before output."""
    from edge_finer.bigfile import route_file, stream_file

    if not _streams(make_records, source, fmt, encoding):
        return None
    if isinstance(make_records, _RoutedRecords):
        decision = route_file(make_records.router, source.path, encoding, errors)
        if decision is None:  # blank: nothing to route, the whole-text path's empty records
            return None
        if decision.bundle is None:
            raise InputError(f"{source.name}: {_unrouted(decision)}")
        return stream_file(make_records.annotator(decision), source.path, source.name, fmt, granularity, errors,
                           header, encoding=encoding, routing=_routing_json(decision), checked=True)
    annotator = make_records.annotator
    return stream_file(annotator, source.path, source.name, fmt, granularity, errors, header,
                       check_head=lambda head: _script_checked(annotator, source.name, head, make_records.strict),
                       encoding=encoding)


def _records(annotator, source_name: str, text: str) -> Iterator:
    from edge_finer.formats import Record
    from edge_finer.textio import iter_lines

    lines = list(iter_lines(text))
    for (number, offset, line), ents in zip(lines, annotator.stream(line for _, _, line in lines)):
        yield Record(source_name, number, offset, line, ents)


def _annotate_sources(make_records, sources, fmt: str, granularity: str, output: Optional[Path],
                      force: bool, encoding: str, errors: str, resume: bool = False) -> int:
    from edge_finer.formats import DOCUMENT_FORMATS, EXTENSIONS, boundary, render
    from edge_finer.parallel import interruptible
    from edge_finer.textio import atomic_write, check_output_target, read_text

    inputs = {s.path.resolve() for s in sources if s.path is not None and s.path.exists()}
    written: dict[Path, str] = {}  # output file -> the input it holds, for this run
    stdout_header = True  # tsv to stdout: one header for all inputs
    docbin: list = []  # -f spacy to stdout: one DocBin of all inputs
    failed = 0
    progress = _progress(sum(_size(s) for s in sources)) if output is not None else None
    try:
        for source in interruptible(sources):
            size = _size(source)
            done = [0.0]
            try:
                streamed = _streamed(make_records, source, fmt, granularity, encoding, errors,
                                     header=stdout_header if output is None else True)
                if streamed is None:
                    text = read_text(source, encoding, errors)
                    records = make_records(source.name, text)
                    if progress is not None:
                        records = _tracked(records, text, size, progress, done)
                if output is None:
                    if streamed is not None:
                        if len(sources) > 1:  # where one input ends and the next begins
                            sys.stdout.write(boundary(fmt, source.name))
                        for chunk in streamed:
                            sys.stdout.write(chunk)
                        sys.stdout.flush()
                        stdout_header = False
                    elif fmt == "table":
                        _print_table(records, granularity)
                    elif fmt in DOCUMENT_FORMATS:
                        body = _document_body(fmt, source.name, records, granularity, text)
                        if fmt == "spacy":
                            docbin.append(body)
                        else:
                            sys.stdout.write(body)
                            sys.stdout.flush()
                    else:
                        out = sys.stdout
                        if len(sources) > 1:  # where one input ends and the next begins
                            out.write(boundary(fmt, source.name))
                        for chunk in render(records, fmt, granularity, header=stdout_header):
                            out.write(chunk)
                        out.flush()
                        stdout_header = False
                else:
                    target = output / (source.output_stem + EXTENSIONS[fmt])
                    if target.resolve() in written:
                        # x/a.txt and y/a.txt map to one output; with --force the second
                        # silently replaced the first's results.
                        raise OutputError(
                            f"{target}: already holds the results of {written[target.resolve()]} "
                            "from this run; annotate inputs with the same name separately")
                    if resume and target.is_file() and target.resolve() not in inputs:
                        written[target.resolve()] = source.name
                        continue  # finished by the interrupted run: outputs are written whole or not at all
                    check_output_target(target, inputs, force)
                    if streamed is not None:
                        body = streamed
                    elif fmt == "table":
                        body = _table_text(records, granularity)
                    elif fmt in DOCUMENT_FORMATS:
                        body = _document_body(fmt, source.name, records, granularity, text)
                        if fmt == "spacy":
                            from edge_finer.exports import to_docbin

                            body = to_docbin([body])
                    elif fmt == "brat":  # a brat collection: the text each .ann indexes beside it
                        records = list(records)
                        txt = target.with_suffix(".txt")
                        check_output_target(txt, inputs, force or resume)
                        atomic_write(txt, _document_text(records, text))
                        body = render(records, fmt, granularity)
                    else:
                        body = render(records, fmt, granularity)  # written chunk by chunk
                    atomic_write(target, body)
                    written[target.resolve()] = source.name
            except DiskFullError:
                raise  # every later output would fail too: one error, the run stops
            except (InputError, OutputError) as exc:
                failed += 1
                _err(str(exc))
            finally:
                if progress is not None:
                    progress[0].advance(progress[1], max(0.0, size - done[0]))
        if docbin:
            from edge_finer.exports import to_docbin

            sys.stdout.flush()
            sys.stdout.buffer.write(to_docbin(docbin))
            sys.stdout.flush()
    finally:
        if progress is not None:
            progress[0].stop()
    return failed


def _document_text(records: list, text: str) -> str:
    """The text a document format indexes: the decoded input, or for pre-tokenised input its
    tokens, a sentence per line (``edge_finer/exports.py``)."""
    from edge_finer.exports import document_text
    from edge_finer.formats import TokenRecord

    return document_text(records) if records and isinstance(records[0], TokenRecord) else text


def _document_body(fmt: str, name: str, records, granularity: str, text: str):
    """One input in a document format: XMI or WebAnno TSV text, or (spacy) the Document for
    the DocBin the caller writes."""
    from edge_finer import exports

    records = list(records)
    doc = exports.document(name, records, granularity, _document_text(records, text))
    if fmt == "xmi":
        return exports.to_xmi(doc)
    if fmt == "webanno":
        return exports.to_webanno(doc)
    return doc


def _size(source) -> int:
    """An input's size in bytes (progress counts bytes: one big file must show progress too)."""
    if source.path is None:
        return len(source.text or "")
    try:
        return source.path.stat().st_size
    except OSError:
        return 0


def _tracked(records, text: str, size: int, progress, done: list) -> Iterator:
    """``records`` as they come, moving the progress bar through the input's bytes by the
    share of its lines done."""
    lines = max(1, text.count("\n") + 1)
    for rec in records:
        yield rec
        step = size * min(1.0, rec.line / lines) - done[0]
        if step > 0:
            progress[0].advance(progress[1], step)
            done[0] += step


def _progress(total: int):
    if not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("annotating"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("annotating", total=max(1, total))
    bar.start()
    return bar, task


def _build_table(records, granularity: str):
    """The entities as a rich table.  Cells are plain ``Text``, never markup: a file named
    ``x[/b].txt`` or an entity holding ``[bold]`` used to be restyled or crash rich; tabs and
    line breaks are flattened so one entity stays one row, as in the tsv format."""
    from rich.table import Table
    from rich.text import Text

    from edge_finer.terminal import safe as _clean  # tabs, line breaks AND escape sequences

    table = Table(show_lines=False, header_style="bold")
    for col, just in (("source", "left"), ("line", "right"), ("start", "right"), ("end", "right"),
                      ("text", "left"), ("label", "left"), ("group" if granularity == "fine" else "", "left"),
                      ("score", "right")):
        if col:
            table.add_column(col, justify=just)
    count = 0
    for rec in records:
        for e in rec.entities:
            count += 1
            row = [_clean(rec.source), str(rec.line), str(e.start), str(e.end), _clean(e.text),
                   _clean(e.label if granularity == "fine" else e.coarse_label)]
            if granularity == "fine":
                row.append(_clean(e.coarse_label))
            row.append(f"{e.score:.3f}")
            table.add_row(*(Text(cell) for cell in row))
    return table, count


def _print_table(records, granularity: str) -> None:
    from rich.console import Console

    table, count = _build_table(records, granularity)
    console = Console()
    if count:
        console.print(table)
    else:
        console.print("no entities found")


def _table_text(records, granularity: str) -> str:
    import io

    from rich.console import Console

    table, _ = _build_table(records, granularity)
    buf = io.StringIO()
    Console(file=buf, width=200, no_color=True, force_terminal=False).print(table)
    return buf.getvalue()


# -- bundles --------------------------------------------------------------------------------


@bundles_app.command("list")
def bundles_list(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Installed bundles, in lookup order."""
    import json

    from edge_finer.registry import installed
    from edge_finer.service import bundle_row

    rows = [bundle_row(b) for b in installed()]
    if as_json or not sys.stdout.isatty():
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(header_style="bold")
    for col in ("name", "language", "taxonomy", "version", "licence", "size_mb", "source"):
        table.add_column(col)
    for r in rows:
        name = r["name"] + (" (default)" if r["default"] else "") + (" [demo]" if r["demo"] else "")
        cells = (name, r["language"], r["taxonomy"], r["version"], r["licence"], str(r["size_mb"]), r["source"])
        table.add_row(*(Text(_safe(str(c))) for c in cells))
    Console().print(table if rows else "no bundles installed")


@bundles_app.command("info")
def bundles_info(ref: str = typer.Argument(..., help="Bundle name, folder or archive.")) -> None:
    """What a bundle is: language, labels, figures, licence."""
    import json

    from edge_finer.bundle import open_bundle
    from edge_finer.registry import resolve

    b = open_bundle(resolve(ref))
    m = b.manifest
    lang = m["language"]
    lines = [
        f"name:        {b.name} {b.version}" + ("   [DEMO: not for real use]" if m.get("demo") else ""),
        f"path:        {b.path}",
        f"language:    {lang.get('name', '?')} ({lang.get('bcp47')}, {lang.get('iso639_3', '?')}), "
        f"scripts {', '.join(lang.get('scripts', []))}",
        f"taxonomy:    {b.taxonomy}, {len(m['taxonomy'].get('types', []))} types",
        f"labels:      {len(b.labels)}",
        f"licence:     {b.licence}",
    ]
    from edge_finer.service import is_non_commercial

    if is_non_commercial(b.licence):
        lines.append("             NON-COMMERCIAL: this bundle's training data forbids commercial use.")
    for d in m.get("training_data", []):
        lines.append(f"data:        {d.get('name')} ({d.get('licence', '?')})" + (f", {d['source']}" if d.get("source") else ""))
    model = m.get("model", {})
    if model:
        lines.append(f"model:       {model.get('architecture')} {model.get('layers')} layers, hidden "
                     f"{model.get('hidden_size')}, {model.get('parameters')} parameters")
    feats = m.get("features")
    lines.append(f"features:    {', '.join(feats['kinds'])} (hashed into {feats['buckets']} rows, seed {feats['seed']})"
                 if isinstance(feats, dict) else "features:    none (subword ids only; bundle format 1)")
    dec = m.get("decoding", {})
    cal = m.get("evaluation", {}).get("threshold_calibration")
    typed = {t: v for t, v in (dec.get("type_thresholds") or {}).items()
             if isinstance(v, (int, float)) and not isinstance(v, bool)} if isinstance(dec.get("type_thresholds"), dict) else {}
    global_f1 = cal.get("f1_global", cal.get("f1")) if isinstance(cal, dict) else None
    lines.append(f"threshold:   {float(dec.get('threshold', 0.0)):.2f}"
                 + (f" (calibrated on {cal.get('split', 'dev')}: F1 {100 * cal['f1_at_zero']:.1f} at 0 → "
                    f"{100 * global_f1:.1f})" if isinstance(cal, dict) and isinstance(global_f1, (int, float))
                    and isinstance(cal.get("f1_at_zero"), (int, float)) else " (not calibrated)")
                 + ("" if typed else "; --threshold overrides it"))
    if typed:
        cv = cal.get("cross_validated", {}) if isinstance(cal, dict) else {}
        lines.append("per type:    " + ", ".join(f"{_safe(str(t))} {float(v):.2f}" for t, v in typed.items())
                     + (f" (F1 {100 * cal['f1']:.1f}; 2-fold cross-validated {100 * cv['global']:.1f} → "
                        f"{100 * cv['per_type']:.1f})" if isinstance(cv, dict) and isinstance(cal.get("f1"), (int, float))
                        and all(isinstance(cv.get(k), (int, float)) for k in ("global", "per_type")) else "")
                     + "; --threshold replaces them all")
    q = m.get("quantization", {})
    if q:
        lines.append(f"quantized:   {q.get('method')} {q.get('weight_type')}, per-channel {q.get('per_channel')}")
    ev = m.get("evaluation", {})
    for system in ("teacher_fp32", "student_fp32", "student_int8"):
        if isinstance(ev.get(system), dict) and "f1" in ev[system]:
            lines.append(f"F1 {system:13s} {100 * ev[system]['f1']:.1f} on {ev.get('dataset', '?')} {ev.get('split', '')}")
    lines.append(f"size:        {b.size_bytes() / 1e6:.2f} MB")
    lines.append(f"built with:  {json.dumps(m.get('built_with', {}))}")
    typer.echo("\n".join(_safe(line) for line in lines))


@bundles_app.command("verify")
def bundles_verify(refs: List[str] = typer.Argument(None, help="Bundles to verify [default: all installed].")) -> None:
    """Check manifests, checksums, and that each model matches its labels."""
    from edge_finer.annotator import Annotator
    from edge_finer.bundle import open_bundle
    from edge_finer.registry import installed, resolve

    targets = [str(b.path) for b in installed()] if not refs else refs
    bad = 0
    for ref in targets:
        try:
            Annotator(open_bundle(resolve(ref)), threads=1).warm_up()
            typer.echo(_safe(f"ok      {ref}"))
        except EdgeFinerError as exc:
            bad += 1
            _err(str(exc))
    if bad:
        raise typer.Exit(1)


@bundles_app.command("available")
def bundles_available(
    source: Optional[Path] = typer.Option(None, "--from", metavar="DIR",
                                          help="Catalogue folder [default: $EDGE_FINER_CATALOGUE, else the "
                                               "source checkout's catalogue/]."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Bundles in the catalogue (installable offline with `bundles install NAME`)."""
    import json

    from edge_finer.catalogue import load
    from edge_finer.registry import installed

    cat = load(source)
    have = {b.name: f"{b.manifest.get('version', '?')} ({b.source})" for b in installed()}
    rows = [_catalogue_row(e, have) for e in cat.entries]
    if as_json or not sys.stdout.isatty():
        typer.echo(json.dumps({"catalogue": str(cat.folder), "bundles": rows}, ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(header_style="bold", title=f"catalogue {cat.folder}")
    for col in ("name", "language", "taxonomy", "licence", "MB", "dev F1", "spaCy F1", "words/s", "installed"):
        table.add_column(col, justify="right" if col in ("MB", "dev F1", "spaCy F1", "words/s") else "left")
    pct = lambda v: f"{100 * v:.1f}" if isinstance(v, (int, float)) else "–"  # noqa: E731
    for r in rows:
        licence = r["licence"] + (" NON-COMMERCIAL" if r["non_commercial"] else "")
        wps = f"{r['words_per_second']:,.0f}" if isinstance(r["words_per_second"], (int, float)) else "–"
        cells = (r["name"], f"{r['language']} ({r['language_name']})", r["taxonomy"], licence,
                 f"{r['size'] / 1e6:.2f}", pct(r["dev_f1_calibrated"] if r["dev_f1_calibrated"] is not None
                                               else r["dev_f1"]), pct(r["spacy_dev_f1"]), wps, r["installed"] or "–")
        table.add_row(*(Text(str(c), style="yellow" if c == licence and r["non_commercial"] else "") for c in cells))
    console = Console(highlight=False)
    console.print(table if rows else f"the catalogue {cat.folder} lists no bundles", markup=False)
    if rows:
        console.print("dev F1: the int8 bundle at its default (calibrated) threshold on the dev split; spaCy F1: "
                      "spaCy's CPU pipeline trained on the same data (benchmarks/results/shipped.md)", markup=False)
        console.print("install one with: edge-finer bundles install NAME" + (f" --from {source}" if source else ""),
                      markup=False)
        if any(r["non_commercial"] for r in rows):
            console.print("NON-COMMERCIAL: the training data of those bundles forbids commercial use.", markup=False)


def _catalogue_row(e, have: dict) -> dict:
    f = e.figures
    return {"name": e.name, "version": e.version, "language": e.bcp47, "language_name": e.language_name,
            "taxonomy": e.taxonomy, "licence": e.licence, "non_commercial": e.non_commercial,
            "size": e.size, "sha256": e.sha256, "archive": e.archive,
            "dev_f1": f.get("dev_f1"), "dev_f1_calibrated": f.get("dev_f1_calibrated"),
            "spacy_dev_f1": f.get("spacy_dev_f1"),
            "words_per_second": f.get("words_per_second"), "installed": have.get(e.name)}


@bundles_app.command("install")
def bundles_install(
    source: str = typer.Argument(..., help="A catalogue bundle name, a bundle folder or a .tar.gz archive."),
    catalogue: Optional[Path] = typer.Option(None, "--from", metavar="DIR",
                                             help="Install NAME from this catalogue folder (a copy of the "
                                                  "repository's catalogue/: USB stick, LAN share) [default: "
                                                  "$EDGE_FINER_CATALOGUE, else the source checkout's catalogue/]."),
    force: bool = typer.Option(False, "--force", help="Replace an installed bundle of the same name."),
) -> None:
    """Install a bundle: by name from the catalogue (sha256 checked before unpacking), or a folder or archive."""
    import os

    from edge_finer import catalogue as cat
    from edge_finer.errors import BundleNotFound
    from edge_finer.registry import ARCHIVE_SUFFIXES, install
    from edge_finer.service import is_non_commercial

    path = Path(source).expanduser()
    by_name = catalogue is not None or (not path.exists() and os.sep not in source and "/" not in source
                                        and not source.startswith(".") and not source.endswith(ARCHIVE_SUFFIXES))
    if by_name and catalogue is None and cat.default_dir() is None:
        raise BundleNotFound(f"{source}: no such bundle folder or archive, and no catalogue to install it from by "
                             f"name (pass --from DIR, a copy of the repository's catalogue/, or set {cat.ENV_VAR})")
    b = cat.install(source, catalogue, force=force) if by_name else install(path, force=force)
    typer.echo(_safe(f"installed {b.name} {b.version} ({b.licence}) to {b.path}"))
    if is_non_commercial(b.licence):
        typer.echo("NON-COMMERCIAL: this bundle's training data forbids commercial use.")


@bundles_app.command("remove")
def bundles_remove(name: str = typer.Argument(..., help="Name of a user-installed bundle.")) -> None:
    """Delete a bundle from the user data folder."""
    from edge_finer.registry import remove

    typer.echo(f"removed {remove(name)}")


@bundles_app.command("pack")
def bundles_pack(
    ref: str = typer.Argument(..., help="Bundle name or folder."),
    out: Optional[Path] = typer.Option(None, "--output", "-o", help="Archive file or folder [default: here]."),
) -> None:
    """Pack a bundle as one NAME-VERSION.tar.gz for distribution."""
    from edge_finer.archive import pack
    from edge_finer.registry import resolve

    typer.echo(str(pack(resolve(ref), out)))


# -- agents ---------------------------------------------------------------------------------


class LogLevel(str, Enum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


@app.command("mcp")
def mcp_serve(
    max_text_mb: float = typer.Option(2.0, "--max-text-mb", min=0.001, max=1000.0,
                                      help="Refuse a text larger than this (MB of UTF-8) with a tool error; "
                                      "smaller texts of any length are annotated chunk by chunk."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=256,
                                          help="onnxruntime threads per bundle (default 1)."),
    log_level: LogLevel = typer.Option(LogLevel.WARNING, "--log-level", help="What to log on stderr."),
) -> None:
    """Serve the annotator to LLM agents over the Model Context Protocol (stdio).

    Tools annotate, detect_language and list_bundles; each bundle's model card as a resource.
    An MCP host starts this command (see README, "Agents"). Needs the 'agent' extra."""
    from edge_finer.agent.mcp_server import serve  # a missing 'mcp' package: one error line
    from edge_finer.service import MB

    if sys.stdin.isatty():
        sys.stderr.write("edge-finer mcp: serving the Model Context Protocol on stdin/stdout; an MCP host "
                         "starts this command (see README, 'Agents'). Ctrl-C stops it.\n")
    serve(max_text_bytes=max(1, int(max_text_mb * MB)), threads=threads, log_level=log_level.value)


# -- serve ----------------------------------------------------------------------------------


@app.command("serve")
def web_serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Anything but loopback lets other "
                             "machines use this server, which has no authentication (a warning says so)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="TCP port (0: any free one)."),
    bundles: Optional[List[str]] = typer.Option(None, "--bundles", metavar="NAME[,NAME...]",
                                                help="Serve only these installed bundles [default: all]."),
    workers: int = typer.Option(2, "--workers", min=1, max=64, help="Requests annotated at once."),
    queue: int = typer.Option(16, "--queue", min=0, max=10_000,
                              help="Requests that may wait for a worker; more are answered 503 with Retry-After."),
    max_text_mb: float = typer.Option(2.0, "--max-text-mb", min=0.001, max=1000.0,
                                      help="Refuse a text (or a batch of texts) larger than this, MB of UTF-8 (413)."),
    max_request_mb: Optional[float] = typer.Option(None, "--max-request-mb", min=0.001, max=8000.0,
                                                   help="Refuse a request body larger than this (413) "
                                                   "[default: 8 x --max-text-mb]."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=256,
                                          help="onnxruntime threads per bundle (default 1)."),
    cors: Optional[List[str]] = typer.Option(None, "--cors", metavar="ORIGIN",
                                             help="Let pages from ORIGIN (e.g. http://localhost:3000) call the API "
                                             "from a browser; repeatable. Off by default."),
    log_level: LogLevel = typer.Option(LogLevel.WARNING, "--log-level", help="What to log on stderr."),
) -> None:
    """Serve a web page and a JSON API for annotation on this machine, offline.

    Open the address it prints in a browser; programs call /v1/annotate, /v1/detect, /v1/bundles
    (described at /openapi.json). Needs the 'serve' extra: pip install 'edge-finer[serve]'."""
    from edge_finer.service import MB, Service
    from edge_finer.web.server import serve  # a missing 'uvicorn'/'starlette': one error line

    names = [n.strip() for item in bundles or [] for n in item.split(",") if n.strip()]
    service = Service(max_text_bytes=max(1, int(max_text_mb * MB)), threads=threads, bundles=names or None)
    try:
        serve(host, port, service=service, workers=workers, queue=queue,
              max_request_bytes=int(max_request_mb * MB) if max_request_mb else None,
              cors_origins=cors or (), log_level=log_level.value.lower())
    except KeyboardInterrupt:
        pass
    # uvicorn may take the Ctrl-C itself and return normally: say it either way
    sys.stderr.write("edge-finer serve: stopped\n")


# -- build ----------------------------------------------------------------------------------


@app.command()
def build(
    recipe: Path = typer.Argument(..., help="Recipe file (TOML)."),
    work: Optional[Path] = typer.Option(None, "--work", help="Work folder for intermediate artefacts."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder to write the bundle into."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Reuse finished stages in the work folder."),
    jobs: Optional[int] = typer.Option(None, "--jobs", min=0, max=64,  # quantize.recipe.MAX_JOBS (not imported here)
                                       help="Processes that train the teacher's ensemble members at once, each "
                                            "with the recipe's threads, then the student's threads x N; 0 = the "
                                            "idle cores [default: the recipe's jobs, else 1]."),
) -> None:
    """Build a bundle from a recipe (needs the 'build' extra)."""
    from quantize import require_build_dependencies

    require_build_dependencies()
    from quantize.build import run_recipe

    path = run_recipe(recipe, work_dir=work, out_dir=out, resume=resume, jobs=jobs)
    typer.echo(f"bundle written to {path}")


def main() -> None:
    """Console entry point: user errors become one line and a non-zero exit code."""
    try:
        app(standalone_mode=True)
    except EdgeFinerError as exc:
        _err(str(exc))
        sys.exit(1)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)


if __name__ == "__main__":
    main()
