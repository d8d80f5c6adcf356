"""Hostile bundles: checksums valid (the attacker writes the manifest too), content crafted to
make the runtime do too much.  One catalogue, used by ``tests/test_hostile.py`` (each attack must
be refused with one line naming the file) and by ``benchmarks/soak.py`` (attacks tried,
refused, and the time each took to refuse).

Each attack starts from a working bundle (the tests' tiny gazetteer bundle) and changes one
thing: the ONNX graph, ``tokenizer.json`` or ``manifest.json``.  Building them needs the
``onnx`` package (the build extra); the runtime that must refuse them does not.

    python -m benchmarks.hostile BASE_BUNDLE OUT_FOLDER   # writes every attack, prints them
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

#: Text annotated after loading: attacks that pass the load must fail on it.
PROBE_TEXT = "Ravi Shankar visited Delhi and Shillong with Infosys Limited."


@dataclass(frozen=True)
class Attack:
    name: str
    target: str  # model | tokenizer | manifest
    what: str  # one line: the attack
    expect: str  # a fragment of the refusal
    build: Callable[[Path, Path], None]  # (base bundle, new bundle folder) -> writes the bundle


# -- ONNX graphs --------------------------------------------------------------------------


def _io(labels: int = 7, ids_type: int | None = None, extra_outputs: int = 0, out_type: int | None = None,
        extra_input: str | None = None):
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info("input_ids", ids_type or TensorProto.INT64, ["batch", "seq"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])]
    if extra_input:
        inputs.append(helper.make_tensor_value_info(extra_input, TensorProto.FLOAT, ["batch", "seq"]))
    outputs = [helper.make_tensor_value_info("logits", out_type or TensorProto.FLOAT, ["batch", "seq", labels])]
    outputs += [helper.make_tensor_value_info(f"extra{i}", TensorProto.FLOAT, ["batch", "seq", labels])
                for i in range(extra_outputs)]
    return inputs, outputs


def _logits(bias: str, out: str = "logits") -> list:
    """Nodes: ``out`` = float(input_ids)[..., None] * 0 + ``bias`` (so the graph is a legal model)."""
    from onnx import TensorProto, helper

    return [helper.make_node("Cast", ["input_ids"], ["xf"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["xf", "axes"], ["x3"]),
            helper.make_node("Mul", ["x3", "zero"], ["x0"]),
            helper.make_node("Add", ["x0", bias], [out])]


def _base_inits() -> list:
    from onnx import numpy_helper

    bias = np.zeros((7,), np.float32)
    bias[0] = 1.0
    return [numpy_helper.from_array(np.array([-1], np.int64), "axes"),
            numpy_helper.from_array(np.zeros((1,), np.float32), "zero"),
            numpy_helper.from_array(bias, "bias")]


def _model_bytes(nodes: list, inits: list, *, opset: int = 17, ir: int = 8, io=None, domains=(),
                 functions=()) -> bytes:
    from onnx import helper

    inputs, outputs = io or _io()
    graph = helper.make_graph(nodes, "hostile", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]
                              + [helper.make_opsetid(d, 1) for d in domains], functions=list(functions))
    model.ir_version = ir
    return model.SerializeToString()


def _with_model(data: Callable[[], bytes]) -> Callable[[Path, Path], None]:
    def build(base: Path, dest: Path) -> None:
        _rebuild(base, dest, {"model.onnx": data()})
    return build


def _constant_of_shape() -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    shape = numpy_helper.from_array(np.array([1, 1, 2**40], np.int64), "shape")
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["big"],
                              value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0])),
             helper.make_node("ReduceSum", ["big"], ["s"], keepdims=1)] + _logits("bias")
    return _model_bytes(nodes, _base_inits() + [shape])


def _expand_constant() -> bytes:
    from onnx import helper, numpy_helper

    shape = numpy_helper.from_array(np.array([100_000, 100_000, 7], np.int64), "shape")
    nodes = [helper.make_node("Expand", ["bias", "shape"], ["big"])] + _logits("bias")
    return _model_bytes(nodes, _base_inits() + [shape])


def _expand_dynamic() -> bytes:
    """Legal and allowed operators only: the shape is computed from the input at run time
    (input length x 10^9), so no static check can see it; the capped arena refuses it."""
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("Shape", ["input_ids"], ["shp"]),
             helper.make_node("Mul", ["shp", "huge"], ["bigshape"]),
             helper.make_node("Concat", ["bigshape", "seven"], ["shape3"], axis=0),
             helper.make_node("Expand", ["bias", "shape3"], ["big"]),
             helper.make_node("Slice", ["big", "starts", "ends"], ["small"]),
             ] + _logits("bias", "pre") + [helper.make_node("Add", ["pre", "small_b"], ["logits"]),
                                            helper.make_node("Mul", ["small", "zero"], ["small_b"])]
    inits = _base_inits() + [numpy_helper.from_array(np.array([1, 10**9], np.int64), "huge"),
                             numpy_helper.from_array(np.array([7], np.int64), "seven"),
                             numpy_helper.from_array(np.array([0, 0], np.int64), "starts"),
                             numpy_helper.from_array(np.array([1, 1], np.int64), "ends")]
    return _model_bytes(nodes, inits)


def _tile() -> bytes:
    from onnx import helper, numpy_helper

    reps = numpy_helper.from_array(np.array([2**31], np.int64), "reps")
    nodes = [helper.make_node("Tile", ["bias", "reps"], ["big"])] + _logits("bias")
    return _model_bytes(nodes, _base_inits() + [reps])


def _loop() -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["acc_in"], ["acc_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [7])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [7])])
    inits = _base_inits() + [numpy_helper.from_array(np.array(2**62, np.int64), "trips"),
                             numpy_helper.from_array(np.array(True), "cond")]
    nodes = [helper.make_node("Loop", ["trips", "cond", "bias"], ["looped"], body=body)] + _logits("looped")
    return _model_bytes(nodes, inits)


def _custom_domain() -> bytes:
    from onnx import helper

    nodes = [helper.make_node("Boom", ["bias"], ["boomed"], domain="evil.ops")] + _logits("boomed")
    return _model_bytes(nodes, _base_inits(), domains=["evil.ops"])


def _future_opset() -> bytes:
    return _model_bytes(_logits("bias"), _base_inits(), opset=99)


def _future_ir() -> bytes:
    return _model_bytes(_logits("bias"), _base_inits(), ir=99)


def _extra_output() -> bytes:
    from onnx import helper

    nodes = _logits("bias") + [helper.make_node("Identity", ["logits"], ["extra0"])]
    return _model_bytes(nodes, _base_inits(), io=_io(extra_outputs=1))


def _int_output() -> bytes:
    from onnx import TensorProto, helper

    nodes = _logits("bias", "f") + [helper.make_node("Cast", ["f"], ["logits"], to=TensorProto.INT64)]
    return _model_bytes(nodes, _base_inits(), io=_io(out_type=TensorProto.INT64))


def _odd_input() -> bytes:
    from onnx import helper

    nodes = _logits("bias", "pre") + [helper.make_node("Unsqueeze", ["secret", "axes"], ["s3"]),
                                      helper.make_node("Add", ["pre", "s3"], ["logits"])]
    return _model_bytes(nodes, _base_inits(), io=_io(extra_input="secret"))


def _function() -> bytes:
    from onnx import helper

    fn = helper.make_function("evil.fn", "Twice", ["x"], ["y"], [helper.make_node("Add", ["x", "x"], ["y"])],
                              [helper.make_opsetid("", 17)])
    nodes = [helper.make_node("Twice", ["bias"], ["twice"], domain="evil.fn")] + _logits("twice")
    return _model_bytes(nodes, _base_inits(), domains=["evil.fn"], functions=[fn])


def _wrong_width() -> bytes:
    return _model_bytes(_logits("bias"), _base_inits(), io=_io(labels=9))


# -- tokenizers ---------------------------------------------------------------------------


def _with_tokenizer(change: Callable[[dict], dict | bytes]) -> Callable[[Path, Path], None]:
    def build(base: Path, dest: Path) -> None:
        doc = json.loads((base / "tokenizer.json").read_text(encoding="utf-8"))
        out = change(doc)
        _rebuild(base, dest, {"tokenizer.json": out if isinstance(out, bytes)
                              else json.dumps(out, ensure_ascii=False).encode("utf-8")})
    return build


def _catastrophic_regex(doc: dict) -> dict:
    doc["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        doc["pre_tokenizer"], {"type": "Split", "pattern": {"Regex": "(a+)+$"}, "behavior": "Isolated",
                               "invert": False}]}
    return doc


def _growing_normaliser(doc: dict) -> dict:
    doc["normalizer"] = {"type": "Replace", "pattern": {"String": "a"}, "content": "a" * 100_000}
    return doc


def _huge_vocab(doc: dict) -> dict:
    vocab = doc["model"]["vocab"]
    for i in range(600_000):
        vocab[f"w{i}"] = len(vocab)
    return doc


def _word_limit(doc: dict) -> dict:
    doc["model"]["max_input_chars_per_word"] = 10**9
    return doc


def _nested_tokenizer(doc: dict) -> bytes:
    text = json.dumps(doc)
    return (text[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}").encode("utf-8")


def _giant_tokenizer(doc: dict) -> bytes:
    text = json.dumps(doc)
    return (text[:-1] + ', "padding_bytes": "' + "x" * (40 * 2**20) + '"}').encode("utf-8")


# -- manifests ----------------------------------------------------------------------------


def _with_manifest(change: Callable[[dict, Path], None]) -> Callable[[Path, Path], None]:
    """The manifest is not checksummed (it holds the checksums): edit it after the build."""
    def build(base: Path, dest: Path) -> None:
        _rebuild(base, dest, {})
        path = dest / "manifest.json"
        m = json.loads(path.read_text(encoding="utf-8"))
        change(m, path)
    return build


def _write(m: dict, path: Path) -> None:
    path.write_text(json.dumps(m, ensure_ascii=False), encoding="utf-8")


def _giant_manifest(m: dict, path: Path) -> None:
    with open(path, "r+b") as fh:  # 1 GB, sparse: costs no disk
        fh.truncate(2**30)


def _nested_manifest(m: dict, path: Path) -> None:
    text = json.dumps(m)
    path.write_text(text[:-1] + ', "x": ' + "[" * 200_000 + "]" * 200_000 + "}", encoding="utf-8")


def _label(bad: str) -> Callable[[dict, Path], None]:
    def change(m: dict, path: Path) -> None:
        m["labels"] = [("B-" + bad if lab == "B-PER" else "I-" + bad if lab == "I-PER" else lab)
                       for lab in m["labels"]]
        m["taxonomy"]["coarse"][bad] = "Person"
        _write(m, path)
    return change


def _coarse_escape(m: dict, path: Path) -> None:
    m["taxonomy"]["coarse"]["PER"] = "Person\x1b]8;;http://evil.example/\x07"
    _write(m, path)


def _name_escape(m: dict, path: Path) -> None:
    m["name"] = "tiny\x1b[2J"
    _write(m, path)


# -- assembling -----------------------------------------------------------------------------


def _rebuild(base: Path, dest: Path, replace: dict[str, bytes]) -> None:
    from edge_finer.bundle import open_bundle, write_bundle

    src = open_bundle(base)
    manifest = {k: v for k, v in src.manifest.items() if k not in ("files", "format_version")}
    files: dict[str, object] = {f: base / f for f in src.manifest["files"] if f != "MODEL_CARD.md"}
    files.update(replace)
    write_bundle(dest, manifest, files, "# hostile\n\nA test bundle built to be refused.\n")


ATTACKS: list[Attack] = [
    Attack("constant_of_shape", "model", "ConstantOfShape to 2^40 elements", "ConstantOfShape",
           _with_model(_constant_of_shape)),
    Attack("expand_constant", "model", "Expand to a constant shape of 7e10 elements", "Expand",
           _with_model(_expand_constant)),
    Attack("expand_dynamic", "model", "Expand to a shape computed at run time (input length x 1e9)",
           "failed on this input", _with_model(_expand_dynamic)),
    Attack("tile", "model", "Tile 2^31 times", "'Tile'", _with_model(_tile)),
    Attack("loop", "model", "Loop with 2^62 iterations", "'Loop'", _with_model(_loop)),
    Attack("custom_domain", "model", "a node of custom-op domain evil.ops", "evil.ops", _with_model(_custom_domain)),
    Attack("future_opset", "model", "ONNX opset 99", "version 99", _with_model(_future_opset)),
    Attack("future_ir", "model", "ONNX IR version 99", "IR version 99", _with_model(_future_ir)),
    Attack("extra_output", "model", "a second output", "2 outputs", _with_model(_extra_output)),
    Attack("int_output", "model", "int64 logits", "not a float32", _with_model(_int_output)),
    Attack("odd_input", "model", "an input the runtime does not feed", "'secret'", _with_model(_odd_input)),
    Attack("local_function", "model", "a model-local function", "functions", _with_model(_function)),
    Attack("wrong_width", "model", "9 outputs per token for 7 labels", "labels", _with_model(_wrong_width)),
    Attack("catastrophic_regex", "tokenizer", "Split pre-tokenizer with regex (a+)+$", "regular expression",
           _with_tokenizer(_catastrophic_regex)),
    Attack("growing_normaliser", "tokenizer", "Replace normaliser: 'a' -> 100,000 characters", "grow the text",
           _with_tokenizer(_growing_normaliser)),
    Attack("huge_vocabulary", "tokenizer", "600,000 extra vocabulary entries", "vocab entries",
           _with_tokenizer(_huge_vocab)),
    Attack("word_limit", "tokenizer", "WordPiece max_input_chars_per_word 1e9", "max_input_chars_per_word",
           _with_tokenizer(_word_limit)),
    Attack("nested_tokenizer", "tokenizer", "tokenizer.json nested 100,000 deep", "nested",
           _with_tokenizer(_nested_tokenizer)),
    Attack("giant_tokenizer", "tokenizer", "a 40 MB tokenizer.json", "too large", _with_tokenizer(_giant_tokenizer)),
    Attack("giant_manifest", "manifest", "a 1 GB manifest.json (sparse)", "too large", _with_manifest(_giant_manifest)),
    Attack("nested_manifest", "manifest", "manifest.json nested 200,000 deep", "nested",
           _with_manifest(_nested_manifest)),
    Attack("label_ansi", "manifest", "a label holding an ANSI colour sequence", "label",
           _with_manifest(_label("P\x1b[31mER"))),
    Attack("label_bidi", "manifest", "a label holding a right-to-left override", "label",
           _with_manifest(_label("PER\u202eXX"))),
    Attack("label_bell", "manifest", "a label holding BEL and a newline", "label", _with_manifest(_label("PER\x07\n"))),
    Attack("coarse_escape", "manifest", "a coarse group holding an OSC 8 hyperlink", "coarse",
           _with_manifest(_coarse_escape)),
    Attack("name_escape", "manifest", "a bundle name holding a clear-screen sequence", "name",
           _with_manifest(_name_escape)),
]


def main() -> None:
    base, out = Path(sys.argv[1]), Path(sys.argv[2])
    for attack in ATTACKS:
        attack.build(base, out / attack.name)
        print(f"{attack.name:20s} {attack.target:9s} {attack.what}")


if __name__ == "__main__":
    main()
