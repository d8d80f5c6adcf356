"""Helpers for the build-pipeline tests: synthetic NER data, tiny teacher folders, recipes.

The teachers are made here the way a user would make one, with plain ``tokenizers`` and
``transformers`` APIs (not the pipeline's own helpers): a BERT token classifier with a
WordPiece tokenizer and an XLM-R one with a Unigram tokenizer, randomly initialised and tiny,
saved as ordinary local model folders.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"

PEOPLE = [["anna", "lopez"], ["ravi", "shankar"], ["mary", "o'neil"], ["li", "wei"], ["omar", "haddad"],
          ["john", "smith", "jr."], ["zoë", "martin"], ["amit", "shah"]]
PLACES = [["paris"], ["new", "york"], ["guwahati"], ["lagos"], ["são", "paulo"], ["delhi"], ["u.s."]]
ORGS = [["acme", "corp"], ["globex"], ["infosys", "limited"], ["red", "cross"], ["at&t"]]
FILLER = ["the", "a", "today", "said", "that", "new", "report", "on", "and", "with", "of", "from"]
TEMPLATES = [
    "{PER} lives in {LOC} .",
    "{PER} works for {ORG} in {LOC} .",
    "the {ORG} office opened in {LOC} today .",
    "{PER} met {PER} at the {ORG} meeting .",
    "a report from {ORG} said that {PER} visited {LOC} .",
    "nothing happened here .",
]
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
COARSE = {"PER": "Person", "LOC": "Location", "ORG": "Group"}


def synthetic_sentences(n: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """``n`` sentences of (tokens, IOB2 tags) from templates; entities are learnable by lexicon."""
    rng = random.Random(seed)
    pools = {"PER": PEOPLE, "LOC": PLACES, "ORG": ORGS}
    out = []
    for _ in range(n):
        toks: list[str] = []
        tags: list[str] = []
        if rng.random() < 0.3:
            toks.append(rng.choice(FILLER))
            tags.append("O")
        for part in rng.choice(TEMPLATES).split():
            if part.startswith("{"):
                etype = part[1:-1]
                words = rng.choice(pools[etype])
                toks += words
                tags += ["B-" + etype] + ["I-" + etype] * (len(words) - 1)
            else:
                toks.append(part)
                tags.append("O")
        out.append((toks, tags))
    return out


def write_conll(path: Path, sentences: list[tuple[list[str], list[str]]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for toks, tags in sentences:
            for t, g in zip(toks, tags):
                fh.write(f"{t}\t{g}\n")
            fh.write("\n")
    return path


def read_shared_sample(rel: str, limit: int) -> list[tuple[list[str], list[str]]]:
    """The first ``limit`` sentences of a shared data file (caller skips when it is absent)."""
    out: list[tuple[list[str], list[str]]] = []
    toks: list[str] = []
    tags: list[str] = []
    with open(SHARED / rel, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line.strip():
                if toks:
                    out.append((toks, tags))
                    toks, tags = [], []
                    if len(out) >= limit:
                        break
                continue
            t, g = line.split("\t")
            toks.append(t)
            tags.append(g)
    if toks and len(out) < limit:
        out.append((toks, tags))
    return out


def make_teacher(folder: Path, family: str, sentences: list[tuple[list[str], list[str]]],
                 labels: list[str] = LABELS, hidden: int = 32, layers: int = 2, vocab_size: int = 400,
                 seed: int = 0) -> Path:
    """A tiny random-init token classifier folder, as a user would save a fine-tuned one."""
    import torch
    from tokenizers.implementations import BertWordPieceTokenizer, SentencePieceUnigramTokenizer
    from transformers import (BertConfig, BertForTokenClassification, BertTokenizerFast, XLMRobertaConfig,
                              XLMRobertaForTokenClassification, XLMRobertaTokenizerFast)

    texts = [" ".join(toks) for toks, _ in sentences]
    common: dict[str, Any] = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                                  intermediate_size=2 * hidden, num_labels=len(labels),
                                  id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    torch.manual_seed(seed)
    if family == "bert":
        tok = BertWordPieceTokenizer(lowercase=False, strip_accents=False)
        tok.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=1,
                                special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
        fast = BertTokenizerFast(tokenizer_object=tok._tokenizer, do_lower_case=False, unk_token="[UNK]",
                                 sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")
        model = BertForTokenClassification(BertConfig(vocab_size=tok.get_vocab_size(), max_position_embeddings=512,
                                                      pad_token_id=0, **common))
    else:
        tok = SentencePieceUnigramTokenizer()
        tok.train_from_iterator(texts, vocab_size=vocab_size, show_progress=False,
                                special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], unk_token="<unk>")
        fast = XLMRobertaTokenizerFast(tokenizer_object=tok._tokenizer, bos_token="<s>", eos_token="</s>",
                                       sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>",
                                       mask_token="<mask>")
        model = XLMRobertaForTokenClassification(XLMRobertaConfig(
            vocab_size=tok.get_vocab_size(), max_position_embeddings=514, pad_token_id=1, bos_token_id=0,
            eos_token_id=2, type_vocab_size=1, **common))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    fast.save_pretrained(str(folder))
    return folder


def recipe_text(name: str, train: Path, eval_: Path, teacher: str = "", family: str = "bert",
                extra: str = "", language: str = "en", taxonomy_block: str = "") -> str:
    """A small recipe for tests: tiny sizes, few steps, one thread."""
    teacher_line = f'path = "{teacher}"' if teacher else f'family = "{family}"'
    tax = taxonomy_block or '[taxonomy]\nname = "synthetic"\ntypes = ["PER", "LOC", "ORG"]\n' \
                            'coarse = { PER = "Person", LOC = "Location", ORG = "Group" }\n'
    return f'''name = "{name}"
version = "0.0.1"
demo = true
seed = 3
threads = 1

[language]
bcp47 = "{language}"
iso639_3 = "eng"
name = "Test"
scripts = ["Latn"]

{tax}
[data]
train = ["{train}"]
eval = "{eval_}"
dataset = "synthetic"

[[training_data]]
name = "synthetic test sentences"
licence = "CC0 1.0"
citation = "none"
url = ""
source = "tests/quantize_helpers.py"

[teacher]
{teacher_line}
vocab_size = 400
layers = 2
hidden = 32
heads = 2
intermediate = 64
max_steps = 40
batch_size = 16
learning_rate = 3e-3

[student]
size = "tiny"
layers = 1
hidden = 32
heads = 2
intermediate = 64
max_steps = 60
batch_size = 16
learning_rate = 3e-3

[runtime]
max_length = 32
stride = 8

[evaluation]
speed_sentences = 20
{extra}
'''


def offline():
    """Context manager refusing internet sockets (module-scoped builds run outside the
    per-test guard of conftest.py, so they bring their own)."""
    import pytest

    from netguard import block_network

    mp = pytest.MonkeyPatch()
    block_network(mp, "a build")
    return _Undo(mp)


class _Undo:
    def __init__(self, mp) -> None:
        self.mp = mp

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        self.mp.undo()


def one_torch_thread():
    """Generator fixture body: torch on one thread (tiny models run several times faster so on a
    busy 2-core machine), restored afterwards."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
