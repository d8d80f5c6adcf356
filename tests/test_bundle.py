"""The bundle contract: what write_bundle writes, open_bundle accepts, and every refusal."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edge_finer.annotator import Annotator
from edge_finer.bundle import (FORMAT_VERSION, MANIFEST, MODEL_CARD, open_bundle, read_manifest,
                               sha256_file, write_bundle)
from edge_finer.errors import BundleError
from edge_finer.pretokenize import PRETOKENIZER
from tiny_bundle import COARSE, LABELS, make_tiny_bundle


def _edit_manifest(folder: Path, **changes) -> None:
    path = folder / MANIFEST
    m = json.loads(path.read_text(encoding="utf-8"))
    m.update(changes)
    path.write_text(json.dumps(m), encoding="utf-8")


def _refusal(folder: Path) -> str:
    """The one-line message open_bundle refuses ``folder`` with."""
    with pytest.raises(BundleError) as info:
        open_bundle(folder)
    msg = str(info.value)
    assert "\n" not in msg, "a refusal must be one line"
    return msg


# -- round trip -----------------------------------------------------------------------------


def test_write_open_round_trip(tiny_bundle: Path, tmp_path: Path):
    b = open_bundle(tiny_bundle)
    assert b.name == "tiny-en" and b.version == "0.0.1"
    assert b.labels == LABELS
    assert b.taxonomy == "tiny" and dict(b.coarse_groups) == COARSE
    assert b.manifest["format_version"] == FORMAT_VERSION
    assert b.manifest["pretokenizer"] == PRETOKENIZER
    # every other file is listed with its checksum and size, and the manifest is not
    listed = b.manifest["files"]
    on_disk = {p.name for p in tiny_bundle.iterdir()} - {MANIFEST}
    assert set(listed) == on_disk == {"model.onnx", "tokenizer.json", MODEL_CARD}
    for fname, meta in listed.items():
        assert meta["sha256"] == sha256_file(tiny_bundle / fname)
        assert meta["size"] == (tiny_bundle / fname).stat().st_size
    assert b.size_bytes() == sum(p.stat().st_size for p in tiny_bundle.iterdir())

    # rewriting the same manifest and files elsewhere gives an identical bundle
    manifest = {k: v for k, v in b.manifest.items() if k not in ("files", "format_version")}
    card = (tiny_bundle / MODEL_CARD).read_text(encoding="utf-8")
    again = write_bundle(tmp_path / "again", manifest,
                         {"model.onnx": (tiny_bundle / "model.onnx").read_bytes(),
                          "tokenizer.json": tiny_bundle / "tokenizer.json"}, card)
    assert again.manifest == b.manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"], "no temporary folder left"


def test_write_bundle_replaces_existing_and_forces_format_fields(tiny_bundle: Path, tmp_path: Path):
    b = open_bundle(tiny_bundle)
    manifest = dict(b.manifest, format_version=99, files={"evil": {"sha256": "0"}}, version="9.9.9")
    files = {"model.onnx": tiny_bundle / "model.onnx", "tokenizer.json": tiny_bundle / "tokenizer.json"}
    dest = tmp_path / "b"
    write_bundle(dest, dict(b.manifest), files, "first")
    out = write_bundle(dest, manifest, files, "second")
    assert out.version == "9.9.9"
    assert out.manifest["format_version"] == FORMAT_VERSION
    assert set(out.manifest["files"]) == {"model.onnx", "tokenizer.json", MODEL_CARD}
    assert (dest / MODEL_CARD).read_text(encoding="utf-8") == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_written_bundle_folder_is_readable_by_others(tiny_bundle: Path, tmp_path: Path):
    """Regression: the folder kept mkdtemp's 0o700, unreadable from a shared bundles folder."""
    b = open_bundle(tiny_bundle)
    old = os.umask(0o022)
    try:
        out = write_bundle(tmp_path / "shared", dict(b.manifest),
                           {"model.onnx": tiny_bundle / "model.onnx",
                            "tokenizer.json": tiny_bundle / "tokenizer.json"}, "card")
    finally:
        os.umask(old)
    assert out.path.stat().st_mode & 0o777 == 0o755
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in out.path.iterdir())


def test_write_bundle_refuses_incomplete_or_unsafe(tiny_bundle: Path, tmp_path: Path):
    b = open_bundle(tiny_bundle)
    with pytest.raises(BundleError, match="tokenizer.json"):
        write_bundle(tmp_path / "x", dict(b.manifest), {"model.onnx": b"m"}, "card")
    with pytest.raises(BundleError, match="not allowed"):
        write_bundle(tmp_path / "y", dict(b.manifest),
                     {"model.onnx": b"m", "tokenizer.json": b"t", "../escape": b"x"}, "card")
    assert not (tmp_path / "escape").exists()
    assert list(tmp_path.iterdir()) == [], "a refused write leaves nothing behind"


def test_verified_bundle_annotates(tiny_bundle: Path):
    ents = Annotator(open_bundle(tiny_bundle)).annotate("Ravi Shankar visited Delhi.")
    assert [(e.text, e.label, e.coarse_label) for e in ents] == [
        ("Ravi Shankar", "PER", "Person"), ("Delhi", "LOC", "Location")]


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("fname", ["model.onnx", "tokenizer.json", MODEL_CARD])
def test_changed_bytes_are_refused(bundle_copy: Path, fname: str):
    path = bundle_copy / fname
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    msg = _refusal(bundle_copy)
    assert str(path) in msg and "checksum" in msg


def test_appended_bytes_are_refused(bundle_copy: Path):
    path = bundle_copy / "tokenizer.json"
    path.write_bytes(path.read_bytes() + b" ")
    assert str(path) in _refusal(bundle_copy)


@pytest.mark.parametrize("fname", ["model.onnx", "tokenizer.json"])
def test_missing_file_is_refused(bundle_copy: Path, fname: str):
    (bundle_copy / fname).unlink()
    msg = _refusal(bundle_copy)
    assert str(bundle_copy / fname) in msg and "missing" in msg


def test_file_replaced_by_symlink_is_refused(bundle_copy: Path, tiny_bundle: Path):
    target = bundle_copy / "model.onnx"
    target.unlink()
    target.symlink_to(tiny_bundle / "model.onnx")  # same bytes, but not a file of the bundle
    assert str(target) in _refusal(bundle_copy)


def test_missing_manifest_is_refused(bundle_copy: Path):
    (bundle_copy / MANIFEST).unlink()
    assert str(bundle_copy / MANIFEST) in _refusal(bundle_copy)


def test_not_a_folder_is_refused(tmp_path: Path):
    assert str(tmp_path / "nope") in _refusal(tmp_path / "nope")


@pytest.mark.parametrize("version", [3, 0, "1", None, True])
def test_unknown_format_version_is_refused(bundle_copy: Path, version):
    _edit_manifest(bundle_copy, format_version=version)
    msg = _refusal(bundle_copy)
    assert str(bundle_copy / MANIFEST) in msg and "format version" in msg


@pytest.mark.parametrize("labels", [
    ["O", "B-PER", "X-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"],
    ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "PER"],
    ["O", "B-", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"],
    ["B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "S-ORG"],  # no O
    ["O", "B-PER", "B-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"],  # duplicate
    [],
])
def test_non_iob2_labels_are_refused(bundle_copy: Path, labels):
    _edit_manifest(bundle_copy, labels=labels)
    msg = _refusal(bundle_copy)
    assert str(bundle_copy / MANIFEST) in msg and "label" in msg


@pytest.mark.parametrize("pre", [{"name": "whitespace", "version": 1},
                                 {"name": "edge-finer-words", "version": 2}, "edge-finer-words"])
def test_unknown_pretokenizer_is_refused(bundle_copy: Path, pre):
    _edit_manifest(bundle_copy, pretokenizer=pre)
    msg = _refusal(bundle_copy)
    assert str(bundle_copy / MANIFEST) in msg and "pre-tokenisation" in msg


def test_manifest_not_json_is_refused(bundle_copy: Path):
    (bundle_copy / MANIFEST).write_text('{"name": "tiny-en", ', encoding="utf-8")
    msg = _refusal(bundle_copy)
    assert str(bundle_copy / MANIFEST) in msg and "JSON" in msg


def test_manifest_not_utf8_or_not_object_is_refused(bundle_copy: Path):
    (bundle_copy / MANIFEST).write_bytes(b'{"name": "\xff"}')
    assert str(bundle_copy / MANIFEST) in _refusal(bundle_copy)
    (bundle_copy / MANIFEST).write_text("[1, 2]", encoding="utf-8")
    assert "not a JSON object" in _refusal(bundle_copy)


@pytest.mark.parametrize("field", ["name", "labels", "files", "max_length", "input", "language"])
def test_missing_required_field_is_refused(bundle_copy: Path, field: str):
    m = json.loads((bundle_copy / MANIFEST).read_text(encoding="utf-8"))
    del m[field]
    (bundle_copy / MANIFEST).write_text(json.dumps(m), encoding="utf-8")
    msg = _refusal(bundle_copy)
    assert str(bundle_copy / MANIFEST) in msg and field in msg


@pytest.mark.parametrize("changes", [
    {"name": "../evil"}, {"name": ".hidden"},
    {"stride": 8}, {"stride": -1}, {"max_length": 4},
    {"input": {"bos_id": 1, "eos_id": "2", "pad_id": 0}},
])
def test_bad_field_values_are_refused(bundle_copy: Path, changes):
    _edit_manifest(bundle_copy, **changes)
    assert str(bundle_copy / MANIFEST) in _refusal(bundle_copy)


@pytest.mark.parametrize("fname", ["../model.onnx", "/etc/passwd", ".hidden", "a/b"])
def test_unsafe_file_names_in_manifest_are_refused(bundle_copy: Path, fname: str):
    m = json.loads((bundle_copy / MANIFEST).read_text(encoding="utf-8"))
    m["files"][fname] = {"sha256": "0" * 64, "size": 1}
    (bundle_copy / MANIFEST).write_text(json.dumps(m), encoding="utf-8")
    msg = _refusal(bundle_copy)
    assert "not allowed" in msg and str(bundle_copy / MANIFEST) in msg


def test_model_output_width_mismatch_is_refused_on_warm_up(tmp_path: Path):
    folder = make_tiny_bundle(tmp_path / "wrong-width", name="wrong-width", width=len(LABELS) + 2)
    bundle = open_bundle(folder)  # checksums are fine: the files are what the manifest says
    ann = Annotator(bundle)
    with pytest.raises(BundleError) as info:
        ann.warm_up()
    msg = str(info.value)
    assert "\n" not in msg
    assert str(folder / "model.onnx") in msg
    assert f"outputs {len(LABELS) + 2} labels" in msg and f"lists {len(LABELS)}" in msg
    # annotating is refused the same way (nothing half-initialised is left behind)
    with pytest.raises(BundleError, match="outputs"):
        ann.annotate("Ravi in Delhi")
    with pytest.raises(BundleError, match="outputs"):
        Annotator.load(folder).annotate("Ravi in Delhi")


def test_garbage_model_is_refused_with_one_line(bundle_copy: Path, tmp_path: Path):
    """A model onnxruntime cannot parse (checksummed correctly) is refused, not a crash."""
    b = open_bundle(bundle_copy)
    manifest = {k: v for k, v in b.manifest.items() if k != "files"}
    folder = write_bundle(tmp_path / "garbage", manifest,
                          {"model.onnx": b"not a model", "tokenizer.json": bundle_copy / "tokenizer.json"},
                          "card").path
    with pytest.raises(BundleError) as info:
        Annotator(open_bundle(folder)).warm_up()
    assert str(folder / "model.onnx") in str(info.value)
    assert "\n" not in str(info.value)


def test_garbage_tokenizer_is_refused_with_one_line(bundle_copy: Path, tmp_path: Path):
    b = open_bundle(bundle_copy)
    manifest = {k: v for k, v in b.manifest.items() if k != "files"}
    folder = write_bundle(tmp_path / "garbage", manifest,
                          {"model.onnx": bundle_copy / "model.onnx", "tokenizer.json": b"{}"}, "card").path
    with pytest.raises(BundleError) as info:
        Annotator(open_bundle(folder)).warm_up()
    assert str(folder / "tokenizer.json") in str(info.value)


def test_read_manifest_does_not_hash(bundle_copy: Path):
    """Listing reads only the manifest: a tampered model is still listed, but never opened."""
    (bundle_copy / "model.onnx").write_bytes(b"tampered")
    assert read_manifest(bundle_copy)["name"] == "tiny-en"
    assert open_bundle(bundle_copy, verify=False).name == "tiny-en"
    with pytest.raises(BundleError, match="checksum"):
        open_bundle(bundle_copy)
