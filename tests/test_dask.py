"""The Dask integration (edge_finer/on_dask.py) on a real local cluster: two worker processes
on 127.0.0.1 (loopback only, no dashboard), started and closed by this module.  The cluster gives
the same entities as the Python API for a few hundred documents, a bundle shipped as a packed
archive is verified and loaded on each worker, and a worker killed mid-run is retried without
duplicating or losing a document."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from test_resume import LINES

pytestmark = pytest.mark.allow_network  # TCP on 127.0.0.1 between the cluster's processes only

ROOT = Path(__file__).resolve().parent.parent
PARTITION = 40


def documents(n: int = 300, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(LINES) + "." for _ in range(rng.randint(1, 4))) for _ in range(n)]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    from distributed import Client, LocalCluster

    home = tmp_path_factory.mktemp("dask-xdg")  # workers unpack archives into their own cache
    env = {"XDG_CACHE_HOME": str(home / "cache"), "XDG_DATA_HOME": str(home / "data"),
           "EDGE_FINER_SHIPPED": "0", "OMP_NUM_THREADS": "1"}
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, local_directory=str(home / "dask"), env=env)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def expected(tiny_bundle: Path, docs: list[str]) -> list[list[dict]]:
    """The Python API over the same partitions (batching as on the cluster)."""
    from edge_finer.annotator import Annotator

    ann = Annotator.load(str(tiny_bundle), threads=1)
    out: list[list[dict]] = []
    for i in range(0, len(docs), PARTITION):
        out += [[e.to_dict() for e in ents] for ents in ann.annotate_batch(docs[i:i + PARTITION])]
    return out


def test_bag_gives_the_api_entities(client, tiny_bundle: Path):
    import dask.bag as db

    from edge_finer.on_dask import annotate_bag, register

    docs = documents()
    register(client, tiny_bundle)  # a bundle folder on a path both workers share
    bag = db.from_sequence([{"id": i, "text": t} for i, t in enumerate(docs)], partition_size=PARTITION)
    got = annotate_bag(bag, tiny_bundle).compute(timeout=240)
    assert [r["id"] for r in got] == list(range(len(docs)))
    assert [r["entities"] for r in got] == expected(tiny_bundle, docs)
    assert sum(len(r["entities"]) for r in got) > 100
    plain = annotate_bag(db.from_sequence(docs[:80], partition_size=PARTITION), tiny_bundle, text_key=None)
    assert plain.compute(timeout=240) == expected(tiny_bundle, docs)[:80]


def _die_once(records: list, marker: str) -> list:
    """Kill this worker process (SIGKILL) the first time the partition holding id 130 runs."""
    if any(r["id"] == 130 for r in records):
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return records
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)
    return records


def test_archive_bundle_and_a_killed_worker_is_retried_without_duplicates(client, tiny_bundle: Path,
                                                                           tmp_path: Path):
    import cloudpickle
    import dask.bag as db

    import test_dask
    from edge_finer.archive import pack
    from edge_finer.on_dask import annotate_bag, register

    cloudpickle.register_pickle_by_value(test_dask)  # workers need not import the test module
    archive = pack(tiny_bundle, tmp_path / "tiny.tar.gz")
    register(client, archive)
    docs = documents(seed=9)
    marker = tmp_path / "killed-once"
    bag = db.from_sequence([{"id": i, "text": t} for i, t in enumerate(docs)], partition_size=PARTITION)
    got = annotate_bag(bag, archive).map_partitions(_die_once, str(marker)).compute(timeout=300)
    assert marker.exists(), "the worker was really killed mid-run"
    assert [r["id"] for r in got] == list(range(len(docs)))  # each document once: retried, not duplicated
    assert [r["entities"] for r in got] == expected(tiny_bundle, docs)


def test_files_and_jsonl_shards(client, tiny_bundle: Path, tmp_path: Path):
    import json

    from edge_finer.on_dask import annotate_bag, files_bag, jsonl_bag, register, to_jsonl

    docs = documents(40, seed=3)
    src = tmp_path / "src"
    src.mkdir()
    for i, d in enumerate(docs):
        (src / f"d{i:02d}.txt").write_text(d, encoding="utf-8")
    register(client, tiny_bundle)
    got = annotate_bag(files_bag(sorted(src.iterdir()), partition_size=PARTITION), tiny_bundle).compute(timeout=240)
    assert [r["entities"] for r in got] == expected(tiny_bundle, docs)
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "a.jsonl").write_text("".join(json.dumps({"id": i, "text": d}) + "\n" for i, d in enumerate(docs)),
                                    encoding="utf-8")
    out = tmp_path / "out"
    to_jsonl(annotate_bag(jsonl_bag(str(shards / "*.jsonl")), tiny_bundle), out)
    rows = [json.loads(ln) for p in sorted(out.glob("*.jsonl")) for ln in p.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == list(range(len(docs)))


def test_missing_extra_is_one_clear_line():
    code = ("import sys; sys.modules['dask'] = None; sys.modules['dask.bag'] = None\n"
            "try:\n    import edge_finer.on_dask\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT), timeout=60)
    assert out.stdout.strip() == ("EdgeFinerError the Dask integration needs the 'dask' extra: "
                                  "pip install 'edge-finer[dask]'"), out
