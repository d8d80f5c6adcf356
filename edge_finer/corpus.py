"""``annotate --workers N``: one corpus over N worker processes, written as one process writes it.

Units of work: a small file is one unit (its worker reads, annotates and renders it); a file
larger than :data:`CHUNK_FILE_BYTES` (or stdin/--text) is read once here and cut into chunks of
lines.  The cuts fall exactly where :meth:`Annotator.stream` closes a group of sentences, so
every model batch holds the same sentences as with one process: with int8 models whose
activation scales are computed per batch, any other cut could change a score in the last digit,
and the outputs must be byte-identical to ``--workers 1``.

Results come back in input order (:func:`edge_finer.parallel.ordered_map`) and are written here,
each output through ``atomic_write`` as before: a killed run leaves whole outputs or none, and
``--resume`` skips whole outputs exactly as the one-process path does.

Routed runs (no --lang/--bundle) are parallel over files only: routing reads a whole document.

A file that one process would annotate as a stream (edge_finer/bigfile.py: large, jsonl or
tsv, see ``cli._streams``) is never read whole, in a worker or here: the parent streams it
itself, in its turn, while the workers go on with the other inputs.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from .errors import DiskFullError, InputError, OutputError
from .parallel import Local, PoolStats, interruptible, ordered_map

#: Files larger than this (on disk) are split into chunks of lines across the workers.
CHUNK_FILE_BYTES = 256 * 1024

#: Formats whose records render independently: a worker returns their text.  brat numbers its
#: annotations through a document and the table sizes its columns over all rows, so for those
#: a worker returns the records and they are rendered here.
TEXT_FORMATS = ("jsonl", "conll", "tsv", "hf", "spacy-jsonl")

_SKIP = object()  # the output is there from the interrupted run (--resume)
_STREAM = object()  # annotated as a stream in the parent (edge_finer/bigfile.py)


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to rebuild the parent's annotator (it must pickle)."""

    bundle: Optional[str]  # the resolved bundle folder; None: route each document
    taxonomy: Optional[str] = None
    route: str = "document"
    opts: dict = field(default_factory=dict)
    strict: bool = False
    fmt: str = "jsonl"
    granularity: str = "fine"
    encoding: str = "utf-8"
    errors: str = "strict"


def _render(records: Iterator, spec: WorkerSpec) -> Any:
    from .formats import render

    if spec.fmt in TEXT_FORMATS:
        return "".join(render(records, spec.fmt, spec.granularity, header=False))
    return list(records)


def worker_task(spec: WorkerSpec) -> Callable[[tuple], Any]:
    """Runs once in each worker: load the annotator (verifying the bundle there) with one
    thread unless --threads says otherwise, and return the function applied to each unit."""
    import cli  # the command's own record makers: one code path for 1 and N processes

    from .annotator import Annotator
    from .formats import Record
    from .textio import Source, read_text

    opts = {**spec.opts, "threads": spec.opts.get("threads") or 1}
    if spec.bundle is not None:
        annotator = Annotator.load(spec.bundle, **opts).warm_up()

        def records(name: str, text: str) -> Iterator:
            return cli._records(annotator, name, cli._script_checked(annotator, name, text, spec.strict))
    else:
        annotator = None
        records = cli._RoutedRecords(spec.taxonomy, spec.route, opts)

    def task(unit: tuple) -> Any:
        kind, name = unit[0], unit[1]
        if kind == "file":
            text = read_text(Source(name, Path(unit[2]), unit[3]), spec.encoding, spec.errors)
            return _render(records(name, text), spec)
        if kind == "text":
            return _render(records(name, unit[2]), spec)
        lines = unit[2]  # "lines": a chunk of a big file, script-checked by the parent
        found = annotator.stream(line for _, _, line in lines)
        return _render((Record(name, n, off, line, ents) for (n, off, line), ents in zip(lines, found)), spec)

    return task


def line_chunks(text: str) -> Iterator[list[tuple[int, int, str]]]:
    """The lines of ``text`` in the groups :meth:`Annotator.stream` would form: a group closes
    at the line that brings it to ``SENTENCES_PER_CHUNK`` sentences."""
    from .annotator import SENTENCES_PER_CHUNK
    from .segment import iter_sentences
    from .textio import iter_lines

    chunk: list[tuple[int, int, str]] = []
    count = 0
    for item in iter_lines(text):
        chunk.append(item)
        count += sum(1 for _ in iter_sentences(item[2]))
        if count >= SENTENCES_PER_CHUNK:
            yield chunk
            chunk, count = [], 0
    if chunk:
        yield chunk


def _size(path: Optional[Path]) -> int:
    try:
        return path.stat().st_size if path is not None else 0
    except OSError:
        return 0  # the worker reports why it cannot be read


def _plan(spec: WorkerSpec, annotator: Any, sources: list, output: Optional[Path], resume: bool,
          inputs: set, make_records: Any = None) -> Iterator[tuple[tuple[int, bool, float], Any]]:
    """``((source index, last unit of it, share of it), unit)`` in input order."""
    import cli

    from .formats import EXTENSIONS
    from .textio import read_text

    planned: set[Path] = set()
    for i, src in enumerate(sources):
        if output is not None:
            target = output / (src.output_stem + EXTENSIONS[spec.fmt])
            resolved = target.resolve()
            if resume and resolved not in planned and target.is_file() and resolved not in inputs:
                planned.add(resolved)
                yield (i, True, 1.0), Local(_SKIP)
                continue
            planned.add(resolved)
        if make_records is not None and cli._streams(make_records, src, spec.fmt, spec.encoding):
            yield (i, True, 1.0), Local(_STREAM)
            continue
        if src.text is None and (spec.bundle is None or _size(src.path) <= CHUNK_FILE_BYTES):
            yield (i, True, 1.0), ("file", src.name, str(src.path), src.output_stem)
            continue
        try:
            text = read_text(src, spec.encoding, spec.errors)
            if spec.bundle is None:
                yield (i, True, 1.0), ("text", src.name, text)
                continue
            text = cli._script_checked(annotator, src.name, text, spec.strict)
        except InputError as exc:
            yield (i, True, 1.0), Local(exc)
            continue
        total = max(1, len(text))
        chunks = line_chunks(text)
        chunk = next(chunks, [])
        while True:
            following = next(chunks, None)
            share = (sum(len(line) + 1 for _, _, line in chunk) / total) if text else 1.0
            yield (i, following is None, share), ("lines", src.name, chunk)
            if following is None:
                break
            chunk = following


class _Parts:
    """The results of one source's units, read off the shared ordered stream."""

    def __init__(self, stream: Iterator, index: int, on_unit: Callable[[float], None]) -> None:
        self.stream, self.index, self.on_unit = stream, index, on_unit
        self.done = False
        self.values = self._values()

    def _next(self) -> Any:
        (i, last, share), value = next(self.stream)
        assert i == self.index, (i, self.index)
        self.done = last
        self.on_unit(share)
        return value

    def _values(self) -> Iterator[Any]:
        while not self.done:
            value = self._next()
            if isinstance(value, BaseException):
                raise value
            yield value

    def drain(self) -> None:
        try:
            while not self.done:
                self._next()
        except StopIteration:  # the stream already ended with an error, being raised now
            self.done = True


def _in_parent(make_records: Any, spec: WorkerSpec, src: Any, header: bool) -> Iterator[str]:
    """The output of a file streamed here (``cli._streamed``, which raises its errors before
    any output), or, for a blank file under routing, the whole-text path's (its empty records)."""
    import cli

    from .formats import render
    from .textio import read_text

    body = cli._streamed(make_records, src, spec.fmt, spec.granularity, spec.encoding, spec.errors, header)
    if body is None:
        body = render(make_records(src.name, read_text(src, spec.encoding, spec.errors)), spec.fmt,
                      spec.granularity, header=header)
    return body


def annotate_parallel(spec: WorkerSpec, annotator: Any, sources: list, output: Optional[Path], force: bool,
                      resume: bool, workers: int, make_records: Any = None) -> int:
    """Annotate ``sources`` over ``workers`` processes; returns the number of failed inputs.

    Same outputs, errors and exit status as the one-process path in ``cli._annotate_sources``.
    ``make_records``: the parent's record maker (``cli._BundleRecords``/``_RoutedRecords``),
    which streams the large files here (none given: every file goes to the workers).
    """
    import cli

    from .formats import EXTENSIONS, TSV_HEADER, boundary, render
    from .textio import atomic_write, check_output_target, read_text

    inputs = {s.path.resolve() for s in sources if s.path is not None and s.path.exists()}
    written: dict[Path, str] = {}
    stats = PoolStats()
    stream = ordered_map(_plan(spec, annotator, sources, output, resume, inputs, make_records), worker_task,
                         (spec,), workers, stats=stats)
    progress = cli._progress(sum(cli._size(s) for s in sources)) if output is not None else None
    advance = ((lambda share: progress[0].advance(progress[1], share)) if progress is not None
               else (lambda share: None))
    failed = 0
    stdout_header = True
    try:
        for i, src in enumerate(interruptible(sources)):
            size = cli._size(src)  # progress counts bytes
            parts = _Parts(stream, i, lambda share, size=size: advance(share * size))
            try:
                first = next(parts.values)
                local = _in_parent(make_records, spec, src, output is not None) if first is _STREAM else None
                if output is None:
                    if spec.fmt == "table":
                        cli._print_table(chain.from_iterable(chain([first], parts.values)), spec.granularity)
                    else:
                        if spec.fmt == "tsv" and stdout_header:
                            sys.stdout.write(TSV_HEADER)
                        if len(sources) > 1:
                            sys.stdout.write(boundary(spec.fmt, src.name))
                        body = (local if local is not None else
                                chain([first], parts.values) if spec.fmt in TEXT_FORMATS else  # brat: one numbering
                                render(chain.from_iterable(chain([first], parts.values)), spec.fmt, spec.granularity))
                        for piece in body:
                            sys.stdout.write(piece)
                        sys.stdout.flush()
                        stdout_header = False
                    continue
                target = output / (src.output_stem + EXTENSIONS[spec.fmt])
                if target.resolve() in written:
                    raise OutputError(f"{target}: already holds the results of {written[target.resolve()]} "
                                      "from this run; annotate inputs with the same name separately")
                if first is _SKIP:
                    written[target.resolve()] = src.name
                    continue
                check_output_target(target, inputs, force)
                if spec.fmt == "brat":  # a brat collection: the text each .ann indexes beside it
                    txt = target.with_suffix(".txt")
                    check_output_target(txt, inputs, force or resume)
                    atomic_write(txt, read_text(src, spec.encoding, spec.errors))
                atomic_write(target, local if local is not None else _body(spec, first, parts.values))
                written[target.resolve()] = src.name
            except DiskFullError:
                parts.done = True
                raise  # every later output would fail too: one error, the run stops
            except (InputError, OutputError) as exc:
                failed += 1
                cli._err(str(exc))
            except BaseException:  # Ctrl-C, a dead worker: stop now, finish nothing more
                parts.done = True
                raise
            finally:
                parts.drain()  # the rest of a failed input's units, to reach the next input's
    finally:
        stream.close()  # stops the workers if the run did not finish
        if progress is not None:
            progress[0].stop()
    sys.stderr.write(f"edge-finer: {stats.memory_line()}\n")
    return failed


def _body(spec: WorkerSpec, first: Any, rest: Iterator[Any]) -> Any:
    """The output file's text from its parts, as the one-process path renders it."""
    import cli

    from .formats import TSV_HEADER, render

    if spec.fmt in TEXT_FORMATS:
        return chain([TSV_HEADER] if spec.fmt == "tsv" else [], [first], rest)
    records = chain.from_iterable(chain([first], rest))
    if spec.fmt == "table":
        return cli._table_text(records, spec.granularity)
    return render(records, spec.fmt, spec.granularity)
