"""Training a subword tokenizer on the training text, for a teacher trained from scratch.

Why per family: a ``bert`` teacher gets WordPiece (``##`` continuations, ``[CLS]``/``[SEP]``)
and an ``xlm-roberta`` one gets Unigram with a ``▁`` word marker (``<s>``/``</s>``), so a
from-scratch bundle exercises the same two tokenizer models a user's real teacher would bring.
Normalisation never strips accents: for Indic scripts that would delete vowel signs.

Also here: the HF-folder glue (``save_hf_tokenizer``, ``load_backend_tokenizer``) and
``special_ids``, which turns a tokenizer into the manifest's ``input`` ids.
"""
from __future__ import annotations

import heapq
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers.processors import TemplateProcessing

from .errors import TeacherError

#: Special tokens per family, in id order (ids 0..n-1), and their roles.
SPECIALS = {
    "bert": {"tokens": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
             "roles": {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]",
                       "sep_token": "[SEP]", "mask_token": "[MASK]"}},
    "xlm-roberta": {"tokens": ["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                    "roles": {"bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>",
                              "unk_token": "<unk>", "cls_token": "<s>", "sep_token": "</s>",
                              "mask_token": "<mask>"}},
}


def train_tokenizer(sentences: Iterable[Sequence[str]], family: str, vocab_size: int,
                    lowercase: bool = False) -> Tokenizer:
    """Train a WordPiece (bert) or Unigram (xlm-roberta) tokenizer on word lists, reproducibly.

    The ``tokenizers`` trainers are not deterministic across processes (Rust hash-map order
    decides WordPiece merge ties and float summation order in Unigram), so WordPiece
    vocabularies are learnt here by a deterministic BPE-style merge loop and Unigram
    vocabularies are put in a canonical order with scores rounded past the noise.
    """
    texts = [" ".join(ws) for ws in sentences]
    specials = SPECIALS[family]["tokens"]
    if family == "bert":
        norm = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                          lowercase=lowercase)
        pre = pre_tokenizers.BertPreTokenizer()
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(w for w, _ in pre.pre_tokenize_str(norm.normalize_str(text)))
        vocab = wordpiece_vocab(counts, vocab_size, specials)
        tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100,
                                         continuing_subword_prefix="##"))
        tok.normalizer = norm
        tok.pre_tokenizer = pre
        tok.decoder = decoders.WordPiece()
        tok.add_special_tokens(list(specials))  # as the trainers do: never split, ids unchanged
        bos, eos = "[CLS]", "[SEP]"
    else:
        tok = Tokenizer(models.Unigram())
        norm_steps = [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
        if lowercase:
            norm_steps.append(normalizers.Lowercase())
        tok.normalizer = normalizers.Sequence(norm_steps)
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials,
                                          unk_token="<unk>", show_progress=False, max_piece_length=16)
        tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
        tok = _canonical_unigram(tok, len(specials))
        bos, eos = "<s>", "</s>"
    pair = f"{bos} $A {eos} $B:1 {eos}:1" if family == "bert" else f"{bos} $A {eos} {eos} $B {eos}"
    tok.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}", pair=pair,
        special_tokens=[(bos, tok.token_to_id(bos)), (eos, tok.token_to_id(eos))])
    return tok


def wordpiece_vocab(counts: Mapping[str, int], vocab_size: int, specials: Sequence[str],
                    prefix: str = "##") -> dict[str, int]:
    """A WordPiece vocabulary by greedy pair merges (what BERT's trainer does), deterministically.

    Start from every character (word-initial) and every ``##``-continuation character seen,
    then repeatedly merge the most frequent adjacent pair (ties: the alphabetically first)
    until ``vocab_size`` pieces exist or no pair occurs twice.
    """
    words = [w for w in sorted(counts) if w]
    freq = [counts[w] for w in words]
    symbols: list[list[str]] = [[w[0]] + [prefix + c for c in w[1:]] for w in words]
    vocab: dict[str, int] = {}
    for piece in list(specials) + sorted({p for syms in symbols for p in syms}, key=lambda p: (p.startswith(prefix), p)):
        vocab.setdefault(piece, len(vocab))
    pairs: dict[tuple[str, str], int] = defaultdict(int)
    where: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, syms in enumerate(symbols):
        for a, b in zip(syms, syms[1:]):
            pairs[(a, b)] += freq[i]
            where[(a, b)].add(i)
    heap = [(-c, a, b) for (a, b), c in pairs.items()]
    heapq.heapify(heap)
    while len(vocab) < vocab_size and heap:
        neg, a, b = heapq.heappop(heap)
        if pairs.get((a, b), 0) != -neg or -neg < 2:
            if pairs.get((a, b), 0) >= 2 and pairs[(a, b)] != -neg:
                heapq.heappush(heap, (-pairs[(a, b)], a, b))
            continue
        merged = a + b[len(prefix):]
        vocab.setdefault(merged, len(vocab))
        touched: set[tuple[str, str]] = set()
        for i in sorted(where.pop((a, b), ())):
            old = symbols[i]
            new: list[str] = []
            k = 0
            while k < len(old):
                if k + 1 < len(old) and old[k] == a and old[k + 1] == b:
                    new.append(merged)
                    k += 2
                else:
                    new.append(old[k])
                    k += 1
            for pa in zip(old, old[1:]):
                pairs[pa] -= freq[i]
                where[pa].discard(i)
                touched.add(pa)
            for pa in zip(new, new[1:]):
                pairs[pa] += freq[i]
                where[pa].add(i)
                touched.add(pa)
            symbols[i] = new
        pairs.pop((a, b), None)
        for pa in sorted(touched):
            if pairs.get(pa, 0) >= 2:
                heapq.heappush(heap, (-pairs[pa], pa[0], pa[1]))
    return vocab


def _canonical_unigram(tok: Tokenizer, n_specials: int) -> Tokenizer:
    """Same pieces, scores rounded past float-summation noise, non-specials in (score, piece) order.

    The trainer appends characters it must keep with a descending run of made-up scores in
    hash-map order; those scores are handed out again in code-point order.
    """
    tj = json.loads(tok.to_str())
    vocab = tj["model"]["vocab"]
    head = vocab[:n_specials]
    rest = [[p, round(sc, 9)] for p, sc in vocab[n_specials:]]
    lowest = min((sc for _, sc in rest), default=0.0)
    singles = [row for row in rest if len(row[0]) == 1]
    window = lowest + 1e-4 * (len(singles) + 1)  # the made-up run steps by 1e-4 above the lowest score
    tail = [row for row in singles if row[1] <= window]
    for row, sc in zip(sorted(tail, key=lambda r: r[0]), sorted((r[1] for r in tail), reverse=True)):
        row[1] = sc
    rest.sort(key=lambda x: (-x[1], x[0]))
    tj["model"]["vocab"] = head + rest
    return Tokenizer.from_str(json.dumps(tj, ensure_ascii=False))


def save_hf_tokenizer(tok: Tokenizer, folder: Path, roles: dict[str, str], max_length: int) -> None:
    """Save ``tok`` as an HF tokenizer folder that ``AutoTokenizer`` loads offline."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=max_length, **roles)
    fast.save_pretrained(str(folder))


def special_roles(folder: Path) -> dict[str, str]:
    """The special-token roles (``cls_token`` → ``[CLS]``, ...) of an HF tokenizer folder."""
    roles: dict[str, str] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        p = folder / name
        if not p.is_file():
            continue
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        for key in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"):
            val = data.get(key)
            if isinstance(val, dict):
                val = val.get("content")
            if isinstance(val, str) and key not in roles:
                roles[key] = val
    return roles


def load_backend_tokenizer(folder: Path) -> Tokenizer:
    """The fast (``tokenizers``) tokenizer of an HF folder, with truncation and padding off.

    Prefers ``tokenizer.json``; a slow-only folder (vocab.txt, sentencepiece model) is
    converted by transformers, offline.
    """
    tj = folder / "tokenizer.json"
    if tj.is_file():
        try:
            tok = Tokenizer.from_file(str(tj))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise TeacherError(f"{tj}: not a valid tokenizer ({exc})") from None
    else:
        from transformers import AutoTokenizer

        try:
            fast = AutoTokenizer.from_pretrained(str(folder), use_fast=True, local_files_only=True)
        except Exception as exc:  # many possible causes inside transformers
            raise TeacherError(f"{folder}: no tokenizer.json and the tokenizer cannot be converted "
                               f"offline ({exc})") from None
        if not getattr(fast, "is_fast", False):
            raise TeacherError(f"{folder}: only a slow tokenizer is available; save a tokenizer.json")
        tok = fast.backend_tokenizer
    tok.no_truncation()
    tok.no_padding()
    return tok


def special_ids(tok: Tokenizer, family: str, roles: dict[str, str] | None = None) -> dict[str, int]:
    """The ids the runtime wraps windows with: ``bos_id`` (CLS / <s>), ``eos_id``, ``pad_id``."""
    roles = roles or SPECIALS[family]["roles"]
    names = {
        "bos_id": roles.get("cls_token") or roles.get("bos_token"),
        "eos_id": roles.get("sep_token") or roles.get("eos_token"),
        "pad_id": roles.get("pad_token"),
    }
    out: dict[str, int] = {}
    for key, name in names.items():
        tid = tok.token_to_id(name) if name else None
        if tid is None:
            raise TeacherError(f"the tokenizer has no {key[:-3]} token ({name!r})")
        out[key] = int(tid)
    return out
