"""Annotating corpora on a Dask cluster (the ``[dask]`` extra; the runtime never imports this).

Why Dask and not a scheduler of our own: retries of a lost worker, data locality, spilling and
dashboards are solved problems there.  What this module adds is only what is ours:

- :class:`BundlePlugin`, a worker plugin that brings the bundle to every worker *as files*: a
  folder on a shared path, or a packed archive whose bytes travel with the plugin and are
  unpacked on each worker.  Either way each worker verifies it (checksums, labels against the
  model) and loads one single-threaded annotator, once, when it starts (and again on a worker
  that replaces a dead one).
- :func:`annotate_bag`, ``map_partitions`` over a ``dask.bag`` of texts or of dict records: each
  partition goes through :meth:`Annotator.stream`, so short documents share model batches.
- :func:`files_bag` / :func:`jsonl_bag`: corpora of text files or of JSONL shards as bags.

Results are values, not side effects, so a task re-run after its worker died (Dask retries it
on another worker) replaces its lost result: no document is annotated into the output twice.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from .errors import BundleNotFound, EdgeFinerError

try:  # the extra: one clear line instead of an ImportError deep inside a cluster
    import dask.bag as db
    from distributed import WorkerPlugin
except ImportError:  # pragma: no cover - exercised in a subprocess by tests/test_dask.py
    raise EdgeFinerError("the Dask integration needs the 'dask' extra: pip install 'edge-finer[dask]'") from None

#: Annotators loaded by :class:`BundlePlugin` in this worker process, by bundle reference.
_LOADED: dict[str, Any] = {}


def _options(threshold: Optional[float], aggregation: Optional[str], threads: int) -> dict:
    return {"threads": threads, "threshold": threshold, "aggregation": aggregation}


class BundlePlugin(WorkerPlugin):
    """Bring a bundle to each worker and load it there once (see the module docstring).

    ``bundle`` is a bundle folder every worker can read at the same path, or a bundle archive
    (``edge-finer bundles pack``) on the client, shipped to the workers inside the plugin.
    """

    def __init__(self, bundle: str | os.PathLike[str], *, threshold: Optional[float] = None,
                 aggregation: Optional[str] = None, threads: int = 1) -> None:
        path = Path(bundle).expanduser()
        self.key = str(bundle)
        self.name = f"edge-finer:{self.key}"  # one plugin per bundle; registering again replaces it
        self.options = _options(threshold, aggregation, threads)
        if path.is_file():
            self.archive: Optional[tuple[str, bytes]] = (path.name, path.read_bytes())
            self.folder: Optional[str] = None
        elif path.is_dir():
            self.archive, self.folder = None, str(path.resolve())
        else:
            raise BundleNotFound(f"{bundle}: no such bundle folder or archive")

    def setup(self, worker: Any) -> None:
        from .annotator import Annotator

        if self.archive is not None:  # unpacked safely into this worker's own folder
            import tempfile

            from .archive import extract_bundle

            name, data = self.archive
            where = Path(tempfile.mkdtemp(prefix="edge-finer-", dir=worker.local_directory))
            (where / name).write_bytes(data)
            unpacked = where / "bundle"
            unpacked.mkdir()
            ref = extract_bundle(where / name, unpacked)
        else:
            ref = Path(self.folder or "")
        # Annotator.load verifies the bundle (checksums, labels against the model) in this process
        _LOADED[self.key] = Annotator.load(str(ref), **self.options).warm_up()


def register(client: Any, bundle: str | os.PathLike[str], **options: Any) -> BundlePlugin:
    """Register :class:`BundlePlugin` for ``bundle`` on ``client``'s workers (now and future)."""
    plugin = BundlePlugin(bundle, **options)
    if hasattr(client, "register_plugin"):
        client.register_plugin(plugin)
    else:  # distributed before 2023.9
        client.register_worker_plugin(plugin)
    return plugin


def _annotator(key: str, options: dict) -> Any:
    hit = _LOADED.get(key)
    if hit is None:  # no plugin: the bundle must be readable at this path (or be a name) here
        from .annotator import Annotator

        hit = _LOADED[key] = Annotator.load(key, **options).warm_up()
    return hit


def _partition(items: Sequence[Any], key: str, options: dict, text_key: Optional[str]) -> list[Any]:
    items = list(items)
    annotator = _annotator(key, options)
    texts = [item if text_key is None else item[text_key] for item in items]
    found = annotator.stream(texts)
    if text_key is None:
        return [[e.to_dict() for e in ents] for ents in found]
    return [{**item, "entities": [e.to_dict() for e in ents]} for item, ents in zip(items, found)]


def annotate_bag(bag: "db.Bag", bundle: str | os.PathLike[str], *, text_key: Optional[str] = "text",
                 threshold: Optional[float] = None, aggregation: Optional[str] = None,
                 threads: int = 1) -> "db.Bag":
    """Annotate a bag lazily, one partition per task.

    Items are dicts holding the text under ``text_key`` (each comes back with ``entities``
    added), or, with ``text_key=None``, plain strings (each becomes its list of entity dicts:
    ``start``, ``end``, ``text``, ``label``, ``coarse_label``, ``score``).  ``bundle`` and the
    options must be those given to :func:`register`, or the bundle a path every worker reads.
    """
    return bag.map_partitions(_partition, str(bundle), _options(threshold, aggregation, threads), text_key)


def _read_file(path: str, encoding: str, errors: str) -> dict:
    from .textio import Source, read_text

    p = Path(path)
    return {"path": path, "text": read_text(Source(path, p, p.stem), encoding, errors)}


def files_bag(paths: Iterable[str | os.PathLike[str]], *, partition_size: int = 16, encoding: str = "utf-8",
              errors: str = "strict") -> "db.Bag":
    """One ``{"path", "text"}`` record per text file (read on the workers: the files must be on
    a path they share)."""
    return db.from_sequence([str(p) for p in paths], partition_size=partition_size).map(
        _read_file, encoding=encoding, errors=errors)


def jsonl_bag(paths: str | Sequence[str], *, blocksize: Optional[int | str] = None) -> "db.Bag":
    """The records of JSONL shards (one JSON object per line; a glob or a list of paths)."""
    return db.read_text(paths, blocksize=blocksize).map(json.loads)


def to_jsonl(bag: "db.Bag", folder: str | os.PathLike[str]) -> list[str]:
    """Write one JSONL shard per partition (a retried task rewrites its whole shard)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return bag.map(lambda r: json.dumps(r, ensure_ascii=False)).to_textfiles(str(Path(folder) / "*.jsonl"))


__all__ = ["BundlePlugin", "register", "annotate_bag", "files_bag", "jsonl_bag", "to_jsonl"]
