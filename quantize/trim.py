"""Vocabulary trimming: keep only the subwords a corpus uses, and their embedding rows.

Why: a multilingual teacher's vocabulary (250k pieces for XLM-R) is mostly other languages;
its embedding matrix would dominate an on-device model.  Dropping pieces the corpus never
produces cannot change how the corpus is tokenised — WordPiece's greedy longest match and
Unigram's Viterbi both only ever chose kept pieces — provided the unknown-token fallbacks stay
the same.  So we keep: every special/added token, every id up to the padding id (XLM-R
derives position ids from it), every piece the corpus produced, the single characters (and
``##c`` / ``▁c`` forms) seen in the corpus or, with ``chars = "all"``, all of them, byte
fallbacks, and for Unigram the lowest-scoring piece (it sets the unknown-token penalty).  The
result is then *checked*: the corpus must tokenise to the same token strings, or the build stops.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

import torch
from tokenizers import Tokenizer

from .errors import BuildError


def used_ids(tok: Tokenizer, corpus: Sequence[Sequence[str]], batch: int = 1024) -> set[int]:
    seen: set[int] = set()
    for lo in range(0, len(corpus), batch):
        chunk = [list(ws) for ws in corpus[lo:lo + batch] if ws]
        for enc in tok.encode_batch(chunk, is_pretokenized=True, add_special_tokens=False):
            seen.update(enc.ids)
    return seen


def corpus_chars(tok: Tokenizer, corpus: Iterable[Sequence[str]]) -> set[str]:
    """Characters of the corpus *after* the tokenizer's normaliser (what the model looks up)."""
    norm = tok.normalizer
    chars: set[str] = set()
    for ws in corpus:
        for w in ws:
            chars.update(norm.normalize_str(w) if norm is not None else w)
    return chars


def plan_keep(tok: Tokenizer, corpus: Sequence[Sequence[str]], chars: str = "corpus",
              pad_id: int = 0) -> list[int]:
    """Old ids to keep, ascending (so specials keep their low ids)."""
    tj = json.loads(tok.to_str())
    model = tj["model"]
    kind = model.get("type")
    keep = used_ids(tok, corpus)
    keep.update(t["id"] for t in tj.get("added_tokens", []))
    for name in _processor_tokens(tj.get("post_processor")):  # [CLS]/<s> etc. even if never added
        if tok.token_to_id(name) is not None:
            keep.add(tok.token_to_id(name))
    keep.update(range(pad_id + 1))
    seen = corpus_chars(tok, corpus) if chars == "corpus" else None

    def char_ok(c: str) -> bool:
        return seen is None or c in seen

    if kind == "WordPiece":
        prefix = model.get("continuing_subword_prefix", "##")
        for piece, i in model["vocab"].items():
            if len(piece) == 1 and char_ok(piece):
                keep.add(i)
            elif piece.startswith(prefix) and len(piece) == len(prefix) + 1 and char_ok(piece[-1]):
                keep.add(i)
        if model.get("unk_token") in model["vocab"]:
            keep.add(model["vocab"][model["unk_token"]])
    elif kind == "Unigram":
        vocab = model["vocab"]
        if model.get("unk_id") is not None:
            keep.add(int(model["unk_id"]))
        keep.add(min(range(len(vocab)), key=lambda i: vocab[i][1]))  # fixes the unk penalty
        for i, (piece, _) in enumerate(vocab):
            if len(piece) == 1 and (char_ok(piece) or piece == "▁"):
                keep.add(i)
            elif len(piece) == 2 and piece[0] == "▁" and char_ok(piece[1]):
                keep.add(i)
            elif model.get("byte_fallback") and len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
                keep.add(i)
    else:
        raise BuildError(f"vocabulary trimming supports WordPiece and Unigram tokenizers, not {kind}; "
                         "set trim.enabled = false")
    return sorted(keep)


def rewrite_tokenizer(tok: Tokenizer, keep: Sequence[int]) -> Tokenizer:
    """A tokenizer whose vocabulary is ``keep`` (old ids), renumbered 0..n-1 in the same order."""
    tj = json.loads(tok.to_str())
    remap = {old: new for new, old in enumerate(keep)}
    model = tj["model"]
    if model["type"] == "WordPiece":
        by_id = {i: p for p, i in model["vocab"].items()}
        model["vocab"] = {by_id[old]: new for new, old in enumerate(keep)}
        new_id = dict(model["vocab"])
    else:
        model["vocab"] = [model["vocab"][old] for old in keep]
        if model.get("unk_id") is not None:
            model["unk_id"] = remap[int(model["unk_id"])]
        new_id = {p: i for i, (p, _) in enumerate(model["vocab"])}
    for t in tj.get("added_tokens", []):
        t["id"] = remap[t["id"]]
        new_id.setdefault(t["content"], t["id"])
    if tj.get("post_processor"):
        tj["post_processor"] = _remap_processor(tj["post_processor"], new_id)
    if tj.get("padding") and tj["padding"].get("pad_token") in new_id:
        tj["padding"]["pad_id"] = new_id[tj["padding"]["pad_token"]]
    return Tokenizer.from_str(json.dumps(tj, ensure_ascii=False))


def _processor_tokens(node: Any) -> set[str]:
    """Token strings a post-processor inserts (the special tokens it names)."""
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("tokens"), list):
            found.update(t for t in node["tokens"] if isinstance(t, str))
        for v in node.values():
            found |= _processor_tokens(v)
    elif isinstance(node, list):
        if len(node) == 2 and isinstance(node[0], str) and isinstance(node[1], int):
            found.add(node[0])
        else:
            for v in node:
                found |= _processor_tokens(v)
    return found


def _remap_processor(node: Any, new_id: dict[str, int]) -> Any:
    """Fix special-token ids wherever a post-processor spells them (Template, Bert, Roberta, Sequence)."""
    if isinstance(node, dict):
        out = {k: _remap_processor(v, new_id) for k, v in node.items()}
        if isinstance(out.get("ids"), list) and isinstance(out.get("tokens"), list):
            out["ids"] = [new_id[t] for t in out["tokens"]]
        return out
    if isinstance(node, list):
        if len(node) == 2 and isinstance(node[0], str) and isinstance(node[1], int) and node[0] in new_id:
            return [node[0], new_id[node[0]]]
        return [_remap_processor(v, new_id) for v in node]
    return node


def first_mismatch(old: Tokenizer, new: Tokenizer, corpus: Sequence[Sequence[str]],
                   batch: int = 1024) -> tuple[list[str], list[str], list[str]] | None:
    """``(words, old tokens, new tokens)`` of the first sentence tokenised differently, or None."""
    for lo in range(0, len(corpus), batch):
        chunk = [list(ws) for ws in corpus[lo:lo + batch] if ws]
        a = old.encode_batch(chunk, is_pretokenized=True, add_special_tokens=False)
        b = new.encode_batch(chunk, is_pretokenized=True, add_special_tokens=False)
        for ws, ea, eb in zip(chunk, a, b):
            if ea.tokens != eb.tokens or ea.word_ids != eb.word_ids:
                return ws, ea.tokens, eb.tokens
    return None


def trim_embeddings(model: torch.nn.Module, keep: Sequence[int], special: dict[str, int]) -> dict[str, int]:
    """Keep only rows ``keep`` of the input embeddings; returns the renumbered special ids."""
    remap = {old: new for new, old in enumerate(keep)}
    emb = model.get_input_embeddings()
    new_special = {k: remap[v] for k, v in special.items()}
    rows = emb.weight.data[torch.as_tensor(list(keep), dtype=torch.long)].clone()
    new = torch.nn.Embedding(rows.shape[0], rows.shape[1], padding_idx=new_special["pad_id"])
    new.weight.data.copy_(rows)
    model.set_input_embeddings(new)
    cfg = model.config
    cfg.vocab_size = rows.shape[0]
    cfg.pad_token_id = new_special["pad_id"]
    if getattr(cfg, "model_type", "") == "xlm-roberta":
        if new_special["pad_id"] != special["pad_id"]:
            raise BuildError("trimming moved the XLM-R padding id; positions would shift")
        cfg.bos_token_id, cfg.eos_token_id = new_special["bos_id"], new_special["eos_id"]
    return new_special
