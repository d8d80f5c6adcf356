"""Bundles crafted to make the runtime read or run more than the files it verified.

(Changed bytes, missing files, unknown format versions, label/width mismatches and archive
attacks are in test_bundle.py and test_registry.py.)  Here: ONNX models that reference external
data — valid checksums, since the attacker writes the manifest too — and a static check that
the runtime's source never unpickles, evaluates or spawns anything.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from edge_finer.annotator import Annotator
from edge_finer.bundle import open_bundle, write_bundle
from edge_finer.errors import BundleError
from edge_finer.onnxcheck import references_external_data

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _external(name: str, location: str) -> TensorProto:
    t = numpy_helper.from_array(np.zeros((7,), np.float32), name)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", "28")):
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def _io() -> tuple[list, list]:
    """A bundle model's inputs and output, so that only the attack under test differs."""
    return ([helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
             helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", 7])])


def _logits_from(bias: str) -> list:
    """Nodes computing logits = float(input_ids)[..., None] + ``bias`` (a float tensor of 7)."""
    return [helper.make_node("Cast", ["input_ids"], ["xf"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["xf", "axes"], ["x3"]),
            helper.make_node("Add", ["x3", bias], ["logits"])]


_AXES = numpy_helper.from_array(np.array([-1], np.int64), "axes")


def _model(where: str, location: str) -> bytes:
    inputs, outputs = _io()
    if where == "initializer":
        graph = helper.make_graph(_logits_from("W"), "g", inputs, outputs, [_external("W", location), _AXES])
    elif where == "subgraph":  # hidden in the else-branch of an If
        y = helper.make_tensor_value_info("C", TensorProto.FLOAT, [7])
        then_g = helper.make_graph([helper.make_node("Identity", ["zeros"], ["C"])], "t", [], [y])
        else_g = helper.make_graph([helper.make_node("Constant", [], ["C"], value=_external("C", location))],
                                   "e", [], [y])
        cond = numpy_helper.from_array(np.array(True), "cond")
        zeros = numpy_helper.from_array(np.zeros((7,), np.float32), "zeros")
        graph = helper.make_graph([helper.make_node("If", ["cond"], ["bias"], then_branch=then_g, else_branch=else_g)]
                                  + _logits_from("bias"), "g", inputs, outputs, [cond, zeros, _AXES])
    else:
        raise ValueError(where)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model.SerializeToString()


@pytest.mark.parametrize("where", ["initializer", "subgraph"])
@pytest.mark.parametrize("location", ["../../../etc/passwd", "weights.bin", "/etc/passwd"])
def test_model_with_external_data_is_refused(tiny_bundle: Path, tmp_path: Path, where: str, location: str):
    src = open_bundle(tiny_bundle)
    manifest = {k: v for k, v in src.manifest.items() if k not in ("files", "format_version")}
    evil = write_bundle(tmp_path / "evil", manifest, {
        "model.onnx": _model(where, location),
        "tokenizer.json": tiny_bundle / "tokenizer.json",
        "weights.bin": b"\0" * 16,  # even a file inside the bundle: it must be listed AND not external
    }, "# evil\n")
    assert references_external_data((evil.path / "model.onnx").read_bytes())
    with pytest.raises(BundleError, match="external data") as err:
        Annotator(open_bundle(evil.path), threads=1).warm_up()
    assert "\n" not in str(err.value)


def test_the_word_location_alone_does_not_make_a_model_external():
    """The fast path skips the walk only when b"location" is absent; present, the walk decides."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [4])
    w = numpy_helper.from_array(np.frombuffer(b"location" * 2, np.float32).copy(), "location")
    graph = helper.make_graph([helper.make_node("Add", ["X", "location"], ["Y"], name="location")], "g", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    assert b"location" in model and not references_external_data(model)


def test_external_tensor_without_location_is_refused_by_onnxruntime(tiny_bundle: Path, tmp_path: Path):
    """What the fast path relies on: no 'location' entry, no file read, one-line refusal."""
    src = open_bundle(tiny_bundle)
    manifest = {k: v for k, v in src.manifest.items() if k not in ("files", "format_version")}
    model = onnx.load_from_string(_model("initializer", "weights.bin"))
    entries = [e for e in model.graph.initializer[0].external_data if e.key != "location"]
    del model.graph.initializer[0].external_data[:]
    model.graph.initializer[0].external_data.extend(entries)
    raw = model.SerializeToString()
    assert b"location" not in raw and not references_external_data(raw)
    evil = write_bundle(tmp_path / "evil", manifest, {"model.onnx": raw, "tokenizer.json": tiny_bundle / "tokenizer.json"},
                        "# evil\n")
    with pytest.raises(BundleError, match="cannot load") as err:
        Annotator(open_bundle(evil.path), threads=1).warm_up()
    assert "\n" not in str(err.value)


def test_real_models_are_self_contained():
    for manifest in sorted((ROOT / "bundles").glob("*/manifest.json")):
        assert not references_external_data((manifest.parent / "model.onnx").read_bytes()), manifest.parent


def test_truncated_model_is_refused_with_one_line(tiny_bundle: Path, tmp_path: Path):
    src = open_bundle(tiny_bundle)
    manifest = {k: v for k, v in src.manifest.items() if k not in ("files", "format_version")}
    data = (tiny_bundle / "model.onnx").read_bytes()
    bad = write_bundle(tmp_path / "bad", manifest, {"model.onnx": data[: len(data) // 2],
                                                    "tokenizer.json": tiny_bundle / "tokenizer.json"}, "# bad\n")
    with pytest.raises(BundleError) as err:
        Annotator(open_bundle(bad.path), threads=1).warm_up()
    assert "model.onnx" in str(err.value) and "\n" not in str(err.value)


FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "joblib", "subprocess", "ctypes"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}


def test_runtime_never_unpickles_evaluates_or_spawns():
    """Every module of edge_finer/ (and cli.py), parsed: no import of a deserialiser or process
    launcher and no call of eval/exec/compile; the only files it opens are JSON, tokenizer.json
    and ONNX (plus the user's own text)."""
    offenders = []
    for path in sorted((ROOT / "edge_finer").glob("*.py")) + [ROOT / "cli.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
                offenders.append(f"{path.name}:{node.lineno} calls {node.func.id}")
                continue
            elif isinstance(node, ast.Attribute) and node.attr in ("system", "popen", "load") and \
                    isinstance(node.value, ast.Name) and node.value.id in ("os", "pickle", "np", "numpy"):
                offenders.append(f"{path.name}:{node.lineno} uses {node.value.id}.{node.attr}")
                continue
            else:
                continue
            offenders += [f"{path.name}:{node.lineno} imports {n}" for n in names if n in FORBIDDEN_MODULES]
    assert not offenders, offenders


def test_profiles_and_manifests_are_plain_json():
    for manifest in sorted((ROOT / "bundles").glob("*/manifest.json")):
        json.loads(manifest.read_text(encoding="utf-8"))
        for name in json.loads(manifest.read_text(encoding="utf-8"))["files"]:
            assert name.endswith((".onnx", ".json", ".md")), f"{manifest.parent.name}: unexpected file {name}"
