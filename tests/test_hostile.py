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


# -- models, tokenizers and manifests that ask for too much (benchmarks/hostile.py) ----------

from benchmarks.hostile import ATTACKS, PROBE_TEXT  # noqa: E402


@pytest.fixture(scope="module")
def attack_bundles(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("attacks")
    for attack in ATTACKS:
        attack.build(tiny_bundle, root / attack.name)
    return root


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_hostile_bundle_is_refused_with_one_line(attack, attack_bundles: Path, capfd):
    """Each attack is refused (at load, or for a shape only known at run time, on the first
    input) with one line that names the file at fault, and onnxruntime prints nothing itself."""
    folder = attack_bundles / attack.name
    with pytest.raises(BundleError) as err:
        Annotator(open_bundle(folder), threads=1).warm_up().annotate(PROBE_TEXT)
    msg = str(err.value)
    assert attack.expect in msg and str(folder) in msg, msg
    assert "\n" not in msg and "\x1b" not in msg and "\x07" not in msg
    out, errs = capfd.readouterr()
    assert out == "" and errs == "", (out, errs)


def test_the_attacks_differ_from_a_working_bundle_in_one_thing_only(tiny_bundle: Path, tmp_path: Path):
    """The catalogue's own control: the same builder with nothing changed gives a bundle that
    loads and finds the gazetteer's entities, so each refusal above is due to its attack."""
    from benchmarks.hostile import _rebuild

    _rebuild(tiny_bundle, tmp_path / "same", {})
    ents = Annotator(open_bundle(tmp_path / "same"), threads=1).annotate(PROBE_TEXT)
    assert [e.label for e in ents] == ["PER", "LOC", "LOC", "ORG"]


def test_cli_refuses_every_attack_with_one_clean_line_each(attack_bundles: Path):
    """``bundles verify`` over all attack bundles: one ``error:`` line per bundle refused at
    load, none with an escape sequence or an onnxruntime log line; the run-time attack loads
    (nothing static betrays it) and is refused on its first input by ``annotate``."""
    import subprocess
    import sys

    env_cmd = [sys.executable, str(ROOT / "cli.py")]
    folders = [str(attack_bundles / a.name) for a in ATTACKS]
    proc = subprocess.run(env_cmd + ["bundles", "verify", *folders], capture_output=True, text=True, timeout=300)
    lines = proc.stderr.splitlines()
    at_run = [a for a in ATTACKS if a.name == "expand_dynamic"]
    assert proc.returncode == 1
    assert len(lines) == len(ATTACKS) - len(at_run) and all(line.startswith("error: ") for line in lines), lines
    assert "\x1b" not in proc.stderr and "onnxruntime_src" not in proc.stderr
    proc = subprocess.run(env_cmd + ["annotate", "-b", str(attack_bundles / "expand_dynamic"), "-t", PROBE_TEXT,
                                     "-f", "jsonl"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "failed on this input" in proc.stderr, proc.stderr
    assert "\x1b" not in proc.stderr and "[E:onnxruntime" not in proc.stderr


def test_allow_list_is_what_the_shipped_models_use_and_documented():
    """The allow-list holds every operator of the shipped bundles, and docs/bundle-format.md
    lists exactly the allow-list."""
    from edge_finer.onnxcheck import ALLOWED_OPS, check_model

    for manifest in sorted((ROOT / "bundles").glob("*/manifest.json")):
        m = json.loads(manifest.read_text(encoding="utf-8"))
        check_model((manifest.parent / "model.onnx").read_bytes(), len(m["labels"]),
                    len(m["features"]["kinds"]) if "features" in m else None)
    doc = (ROOT / "docs" / "bundle-format.md").read_text(encoding="utf-8")
    section = doc[doc.index("### Operators"):]
    section = section[:section.index("Anything else")]
    listed = {(dom, op) for dom, op in
              ((d or "", o) for d, o in __import__("re").findall(r"`(?:([\w.]+)::)?(\w+)`", section))}
    assert listed == set(ALLOWED_OPS)


def test_json_depth_and_size_caps():
    from edge_finer.safejson import depth, loads

    assert depth({"a": [1, {"b": []}]}) == 4 and depth(5) == 0
    with pytest.raises(ValueError, match="nested"):
        loads("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested"):
        loads("[" * 70 + "]" * 70)
    assert loads("[" * 60 + "]" * 60)


def test_terminal_text_is_made_safe():
    from edge_finer.terminal import safe

    assert safe("Delhi\tक्\u200dष\n") == "Delhi क्\u200dष "  # joiners and scripts stay
    assert safe("a\x1b[2Jb\x07\u202ec\x9b\ud800") == "a\\x1b[2Jb\\x07\\u202ec\\x9b\\ud800"
