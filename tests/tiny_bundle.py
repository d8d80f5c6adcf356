"""Builds small, fully controlled bundles for runtime tests.

The model is a "gazetteer": a lookup table from token id to label logits followed by a
MatMul (so dynamic int8 quantization has something to quantize), masked by the attention
mask.  Its predictions are known in advance, which lets tests check offsets, windowing and
decoding exactly.  The bundle is written with the same ``write_bundle`` the build pipeline
uses, so the format under test is the real one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from edge_finer.bundle import write_bundle

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
COARSE = {"PER": "Person", "LOC": "Location", "ORG": "Group"}
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]

#: token -> label it lights up.  Multi-piece words show subword aggregation at work.
GAZETTEER: dict[str, str] = {
    "Ravi": "B-PER", "Shankar": "I-PER", "Kumar": "I-PER",
    "Guwa": "B-LOC", "##hati": "I-LOC", "Delhi": "B-LOC", "Shillong": "B-LOC",
    "Infosys": "B-ORG", "Limited": "I-ORG",
    "अमित": "B-PER", "शाह": "I-PER", "দিল্লী": "B-LOC", "শিলং": "B-LOC",
    "ᱥᱟᱱᱛᱟᱲ": "B-PER", "東京": "B-LOC", "Zoë": "B-PER",
}


def make_tokenizer(extra_words: list[str] = (), gazetteer: Mapping[str, str] | None = None) -> "object":
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab: dict[str, int] = {}
    gazetteer = GAZETTEER if gazetteer is None else gazetteer
    for tok in SPECIALS + list(gazetteer) + list(extra_words):
        vocab.setdefault(tok, len(vocab))
    # single characters (and their continuations) so any text in the tests tokenises
    chars = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()")
    for word in gazetteer:
        chars.update(word.replace("##", ""))
    for ch in sorted(chars):
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault("##" + ch, len(vocab))
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return tok


def make_model(path: Path, vocab: Mapping[str, int], labels: list[str] = LABELS,
               width: int | None = None, gazetteer: Mapping[str, str] | None = None) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n_out = width or len(labels)
    table = np.zeros((len(vocab), len(labels)), dtype=np.float32)
    table[:, labels.index("O")] = 4.0
    for tok, label in (GAZETTEER if gazetteer is None else gazetteer).items():
        if tok in vocab:
            table[vocab[tok]] = 0.0
            table[vocab[tok], labels.index(label)] = 8.0
    mix = np.eye(len(labels), n_out, dtype=np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["emb"], axis=0),
        helper.make_node("MatMul", ["emb", "mix"], ["mixed"]),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axes"], ["mask3"]),
        helper.make_node("Mul", ["mixed", "mask3"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "gazetteer",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", n_out])],
        initializer=[numpy_helper.from_array(table, "table"), numpy_helper.from_array(mix, "mix"),
                     numpy_helper.from_array(np.array([-1], dtype=np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def quantize(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)


def make_tiny_bundle(folder: Path, *, name: str = "tiny-en", lang: str = "en", iso3: str = "eng",
                     max_length: int = 16, stride: int = 4, int8: bool = True,
                     width: int | None = None, threshold: float = 0.0, taxonomy: str = "tiny",
                     version: str = "0.0.1", aggregation: str = "first", scripts: tuple[str, ...] = ("Latn",),
                     profile_text: list[str] | None = None, pretokenizer: str = "words",
                     gazetteer: Mapping[str, str] | None = None, licence: str = "CC0-1.0") -> Path:
    """Write a complete, valid bundle to ``folder`` and return it.

    ``taxonomy`` and ``version`` let registry tests tell same-language bundles apart;
    ``gazetteer`` adds token → label entries to the built-in ones; ``pretokenizer`` names the
    word scheme (``edge_finer.pretokenize.SCHEMES``) the manifest records.
    """
    from edge_finer.pretokenize import scheme

    gaz = {**GAZETTEER, **(gazetteer or {})}
    folder = Path(folder)
    work = folder.parent / f".{folder.name}.work"
    work.mkdir(parents=True, exist_ok=True)
    tok = make_tokenizer(gazetteer=gaz)
    tok.save(str(work / "tokenizer.json"))
    vocab = tok.get_vocab()
    make_model(work / "fp32.onnx", vocab, width=width, gazetteer=gaz)
    model = work / "fp32.onnx"
    if int8:
        quantize(model, work / "int8.onnx")
        model = work / "int8.onnx"
    manifest = {
        "name": name,
        "version": version,
        "demo": True,
        "language": {"bcp47": lang, "iso639_3": iso3, "name": "Test", "scripts": list(scripts)},
        "taxonomy": {"name": taxonomy, "types": sorted(COARSE), "coarse": COARSE},
        "labels": LABELS,
        "pretokenizer": scheme(pretokenizer).manifest(),
        "max_length": max_length,
        "stride": stride,
        "input": {"bos_id": vocab["[CLS]"], "eos_id": vocab["[SEP]"], "pad_id": vocab["[PAD]"],
                  "names": ["input_ids", "attention_mask"]},
        "decoding": {"aggregation": aggregation, "threshold": threshold},
        "model": {"architecture": "gazetteer", "layers": 0, "hidden_size": len(LABELS),
                  "parameters": len(vocab) * len(LABELS), "opset": 17},
        "quantization": {"method": "dynamic" if int8 else "none", "weight_type": "int8" if int8 else "float32",
                         "per_channel": False},
        "evaluation": {},
        "training_data": [{"name": "none (hand-made gazetteer)", "licence": licence}],
        "licence": licence,
        "built_with": {"edge_finer": "test"},
    }
    card = f"# {name}\n\nDEMO bundle for tests: a hand-made gazetteer, not a trained model.\n"
    files = {"model.onnx": model, "tokenizer.json": work / "tokenizer.json"}
    if profile_text is not None:  # the router's language profile, made as the pipeline makes it
        import json

        from quantize.profile import build_profile

        doc = build_profile(profile_text, {"bcp47": lang, "iso639_3": iso3, "scripts": list(scripts)})
        files["profile.json"] = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    return write_bundle(folder, manifest, files, card).path
