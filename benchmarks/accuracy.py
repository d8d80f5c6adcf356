"""Accuracy ablation: which modelling levers close the gap to spaCy, at one fixed CPU budget.

Each *probe* trains one model variant from scratch on a dataset's train split for the same
wall-clock budget (``--minutes``, one thread, the pipeline's own training loop, tokenizer
training, windowing and word features), then scores it on the dev split: seqeval strict IOB2
over the runtime's word grid (gold tokens re-split as the runtime splits them), constrained
Viterbi decoding as in the runtime.  Probes skip distillation, export and int8 (the full
recipe's figures, through the real runtime and side by side with spaCy, are in
``shipped.md``); they answer "which input and encoder learn most from little data".

Variants (``--variants``, comma-separated):
  transformer            the old recipe's model: 3 × 256 BERT over subword ids
  transformer+features   the same plus hashed word features (edge_finer.features)
  cnn                    gated convolutions (quantize.convnet) over subword ids, 4 × 256, window 3
  cnn+features           the convolutions plus hashed word features
  cnn+features+drop3     the same with dropout 0.3 (the others use 0.1)
  cnn+features+wdrop     the same plus 15 % word dropout (subword ids replaced by [UNK])
  cnn+features+k5        dropout 0.3, convolution window 5 instead of 3
  cnn+features+h192      dropout 0.3, 192 wide instead of 256 (about 40 % less work per token)
  cnn+features+select    dropout 0.3, the weights with the best dev F1 kept (scored every epoch; spaCy's
                         trainer does the same), instead of the last ones
  cnn+features+select+b32k  the same with 32,768 feature hash buckets of width 32 (8,192 × 64 otherwise)
  v3                     the shipped teacher recipe: select+b32k plus 10 % word dropout
  v3+formdrop            v3 plus 15 % of whole words hidden (ids and their form/long-affix features)
  v3+mentions            v3 plus one copy of each sentence with a mention, mentions swapped for
                         random training mentions of the same type (quantize.augment)
  v3+chars               v3 plus a character CNN over each word's characters (probe only)
  v3+mlm                 v3 after 1,400 steps of masked-word pretraining (quantize.pretrain) on the
                         train split's words plus the language's other text (MLM_TEXT)
  v3+dil1124, v3+dil1212 v3 with dilated blocks (dilations 1,1,2,4 or 1,2,1,2): each window reads
                         positions further apart, so the stack sees ±8 or ±6 subwords instead of
                         ±4 for the same work per token
  v3+lr1e3, v3+wd1       v3 with learning rate 1e-3 instead of 5e-4; with weight decay 0.1 instead of 0.01
  v3+h384, v3+h512, v3+l6  v3 384 or 512 wide, or with six blocks: capacity (benchmarks/capacity.py)
  cnn+features+family    dropout 0.3; half the budget on the train splits of EVERY language of the
                         dataset's family (e.g. all 20 MasakhaNER 2.0 languages, one tokenizer), then
                         half on the target language alone

    python -m benchmarks.accuracy --datasets masakhaner2/swa il-ner/or multiconer2/hi \\
        --variants transformer,transformer+features,cnn+features --minutes 8 --jobs 2

Probes run as subprocesses (``--jobs`` at a time, one thread each); finished probes are cached
in ``--work`` so an interrupted ablation resumes.  Writes ``benchmarks/results/accuracy.{json,md}``
with spaCy's dev F1 (``benchmarks/peer_spacy.py``, its default budget) from ``shipped.json``
beside each dataset's row.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"

#: The shipped v3 teacher (recipes/masakhaner2-hau.toml); the v3+ variants change one thing each.
_V3: dict[str, Any] = {"family": "cnn", "layers": 4, "features": True, "dropout": 0.3, "select": True,
                       "buckets": 32768, "dim": 32, "word_dropout": 0.1}
VARIANTS: dict[str, dict[str, Any]] = {
    "transformer": {"family": "bert", "layers": 3, "features": False, "dropout": 0.1},
    "transformer+features": {"family": "bert", "layers": 3, "features": True, "dropout": 0.1},
    "cnn": {"family": "cnn", "layers": 4, "features": False, "dropout": 0.1},
    "cnn+features": {"family": "cnn", "layers": 4, "features": True, "dropout": 0.1},
    "cnn+features+family": {"family": "cnn", "layers": 4, "features": True, "dropout": 0.3, "family_first": True},
    "cnn+features+k5": {"family": "cnn", "layers": 4, "features": True, "dropout": 0.3, "kernel": 5},
    "cnn+features+drop3": {"family": "cnn", "layers": 4, "features": True, "dropout": 0.3},
    "cnn+features+wdrop": {"family": "cnn", "layers": 4, "features": True, "dropout": 0.3, "word_dropout": 0.15},
    "cnn+features+h192": {"family": "cnn", "layers": 4, "features": True, "dropout": 0.3, "hidden": 192},
    "cnn+features+select": {"family": "cnn", "layers": 4, "features": True, "dropout": 0.3, "select": True},
    "cnn+features+select+b32k": {"family": "cnn", "layers": 4, "features": True, "dropout": 0.3, "select": True,
                                 "buckets": 32768, "dim": 32},
    # the shipped v3 teacher and two levers against memorised names
    "v3": _V3,
    "v3+formdrop": {**_V3, "form_dropout": 0.15},
    "v3+mentions": {**_V3, "mention_replacement": 1.0},
    # wider context at the same work per token: dilated blocks (the student keeps blocks 1, 3, 4)
    "v3+dil1124": {**_V3, "dilations": [1, 1, 2, 4]},
    "v3+dil1212": {**_V3, "dilations": [1, 2, 1, 2]},
    # a character CNN over each word (probe only: measured before any format change)
    "v3+chars": {**_V3, "chars": True},
    # masked-word pretraining (quantize.pretrain) on the train split plus the language's other text
    "v3+mlm": {**_V3, "mlm_steps": 1400},
    # training settings, against v3's (learning rate 5e-4, weight decay 0.01)
    "v3+lr1e3": {**_V3, "learning_rate": 1e-3},
    "v3+wd1": {**_V3, "weight_decay": 0.1},
    # capacity: wider or deeper teachers (benchmarks/capacity.py, run where a GPU makes them cheap)
    "v3+h384": {**_V3, "hidden": 384},
    "v3+h512": {**_V3, "hidden": 512},
    "v3+l6": {**_V3, "layers": 6},
}
#: Unlabelled text of each dataset's language elsewhere in ../shared/data (never the dataset's own
#: dev split), for masked-word pretraining; the train split's own words are always included.
MLM_TEXT = {"il-ner/hi": ["multiconer2/hi/train.conll", "multiconer2/hi/dev.conll", "text/hin/sentences.txt"],
            "multiconer2/hi": ["il-ner/hi/train.conll", "il-ner/hi/dev.conll", "text/hin/sentences.txt"],
            "il-ner/or": [], "masakhaner2/hau": [], "masakhaner2/swa": [], "masakhaner2/yor": []}
#: Bundle whose spaCy peer figure (shipped.json) stands beside each dataset.
SPACY_FROM = {"masakhaner2/swa": "masakhaner2-swa", "masakhaner2/hau": "masakhaner2-hau",
              "masakhaner2/yor": "masakhaner2-yor", "il-ner/or": "il-ner-or", "il-ner/hi": "il-ner-hi",
              "multiconer2/hi": "multiconer2-hi", "multiconer2/en": "multiconer2-en",
              "multiconer2/bn": "multiconer2-bn"}


#: Characters a word shows the character CNN: all of a short word, the first and last 6 of a long one.
CHAR_WIDTH = 12


def char_ids(words: list[str]) -> Any:
    """``(len(words), CHAR_WIDTH)`` ids of each word's characters (code points hashed into 1..1023,
    case kept, 0 = no character)."""
    import numpy as np

    out = np.zeros((len(words), CHAR_WIDTH), dtype=np.int64)
    half = CHAR_WIDTH // 2
    for i, w in enumerate(words):
        cs = w if len(w) <= CHAR_WIDTH else w[:half] + w[-half:]
        out[i, :len(cs)] = [(ord(c) * 2654435761) % 1023 + 1 for c in cs]
    return out


def char_model(cfg: Any, spec: Any, dim: int) -> Any:
    """The v3 teacher plus a character CNN per word (embed 24, window 3, 64 filters, max over the
    word's characters, projected to the hidden size and added like the word features); its
    input is ``word_features`` with :func:`char_ids` appended as extra columns."""
    import torch
    from torch import nn

    from quantize.convnet import ConvTokenClassifier
    from quantize.featured import FeaturedTokenClassifier

    class CharWords(nn.Module):
        def __init__(self, hidden: int) -> None:
            super().__init__()
            self.table = nn.Embedding(1024, 24, padding_idx=0)
            self.conv = nn.Conv1d(24, 64, 3, padding=1)
            self.proj = nn.Linear(64, hidden, bias=False)

        def forward(self, chars: torch.Tensor) -> torch.Tensor:
            b, t, c = chars.shape
            flat = chars.reshape(b * t, c)
            h = torch.relu(self.conv(self.table(flat).transpose(1, 2))) * (flat > 0).unsqueeze(1)
            return self.proj(h.max(dim=2).values).reshape(b, t, -1)

    class CharFeatured(FeaturedTokenClassifier):
        def __init__(self) -> None:
            super().__init__(ConvTokenClassifier(cfg), spec, dim)
            self.chars = CharWords(cfg.hidden_size)

        def input_embeddings(self, input_ids: torch.Tensor, word_features: torch.Tensor | None) -> torch.Tensor:
            k = len(self.spec.kinds)
            return super().input_embeddings(input_ids, word_features[..., :k]) + self.chars(word_features[..., k:])

    return CharFeatured()


def probe(dataset: str, variant: str, minutes: float, seed: int = 13, steps: int = 0,
          device: str = "cpu") -> dict[str, Any]:
    """Train ``variant`` on ``dataset`` for ``minutes`` (one thread) and score it on dev; with
    ``steps`` > 0, for that many optimiser steps instead (equal work whatever else runs, on
    whatever ``device`` trains it)."""
    from edge_finer.features import FeatureSpec
    from quantize.data import read_annotated, to_model_words
    from quantize.encode import encode
    from quantize.featured import forward_kwargs, logits
    from quantize.progress import Reporter
    from quantize.teacher import count_parameters, make_config, train_teacher
    from quantize.tokenizer_train import special_ids, train_tokenizer
    from quantize.train import Schedule, seed_everything

    v = VARIANTS[variant]
    seed_everything(seed, 1)
    if v.get("chars"):  # every window's word_features gain the word's character ids (this process only)
        import numpy as np

        import quantize.encode as encode_module

        plain = encode_module.word_feature_ids
        encode_module.word_feature_ids = lambda words, spec: np.hstack([plain(words, spec), char_ids(list(words))])
    folder = SHARED / dataset
    train = [s for s in map(to_model_words, read_annotated(folder / "train.conll")) if s.tokens]
    family: list = []
    if v.get("family_first"):
        for other in sorted(folder.parent.glob("*/train.conll")):
            family += [s for s in map(to_model_words, read_annotated(other)) if s.tokens]
    dev = [s for s in map(to_model_words, read_annotated(folder / "dev.conll")) if s.tokens]
    types = sorted({t[2:] for s in train + family for t in s.tags if t != "O"})
    labels = ["O"] + [f"{p}-{t}" for t in types for p in "BI"]
    label2id = {lab: i for i, lab in enumerate(labels)}
    for s in dev:  # a type never seen in training cannot be predicted; score it as missed
        s.tags[:] = [t if t == "O" or t[2:] in types else "O" for t in s.tags]
    unlabelled: list[list[str]] = []
    if v.get("mlm_steps"):
        from quantize.data import read_unlabelled

        for rel in MLM_TEXT[dataset]:
            unlabelled += [ws for ws in read_unlabelled(SHARED / rel) if ws]
    tok = train_tokenizer([s.tokens for s in (family or train)] + unlabelled, "bert", 8000, False)
    ids = special_ids(tok, "bert")
    spec = FeatureSpec(seed=seed, buckets=v.get("buckets", 8192)) if v["features"] else None

    def enc(sents: list) -> list:
        return encode(tok, [s.tokens for s in sents], [s.tags for s in sents], label2id, 128, 32,
                      ids["bos_id"], ids["eos_id"], features=spec)

    cfg = make_config(v["family"], tok.get_vocab_size(), v["layers"], v.get("hidden", 256), 4, 1024, labels, 128, ids,
                      v["dropout"], v.get("kernel", 3), v.get("dilations"))
    sched = Schedule(epochs=1000, max_steps=steps, batch_size=32, learning_rate=v.get("learning_rate", 5e-4),
                     warmup=0.06, weight_decay=v.get("weight_decay", 0.01),
                     max_minutes=0 if steps else minutes / 2 if family else minutes)
    from quantize.selection import BestCheckpoint, DevScorer

    # the pipeline's own dev scorer (quantize.selection): word grid, overlapping windows averaged,
    # constrained Viterbi, seqeval strict IOB2 — for checkpoint selection and the final figure alike
    scorer = DevScorer(encode(tok, [s.tokens for s in dev], None, None, 128, 32, ids["bos_id"], ids["eos_id"],
                              features=spec), [s.tags for s in dev], labels, ids["pad_id"],
                       logits)
    select = None
    if v.get("select"):
        per_epoch = -(-len(train) // 32)
        select = BestCheckpoint(scorer, per_epoch, start=per_epoch)
    train_windows = enc(family or train)
    if v.get("mention_replacement"):
        from quantize.augment import replace_mentions
        from quantize.data import Sentence

        extra = replace_mentions([(s.tokens, s.tags) for s in train], v["mention_replacement"], seed)
        train_windows += enc([Sentence(w, t) for w, t in extra])
    pretrained, mlm_facts = None, {}
    if v.get("chars") or v.get("mlm_steps"):
        import torch

        from quantize.teacher import new_model

        torch.manual_seed(seed)
        # the model train_teacher starts from: the char model, or the v3 model once pretrained
        dim = v.get("dim", 64)
        pretrained = char_model(cfg, spec, dim) if v.get("chars") else new_model(cfg, (spec, dim))
    if v.get("mlm_steps"):
        from quantize.pretrain import pretrain_masked_words

        text_windows = encode(tok, [s.tokens for s in train] + unlabelled, None, None, 128, 32,
                              ids["bos_id"], ids["eos_id"], features=spec)
        mlm_sched = Schedule(epochs=1000, max_steps=v["mlm_steps"], batch_size=32, learning_rate=5e-4,
                             warmup=0.06, weight_decay=0.01, max_minutes=0)
        mlm_facts = pretrain_masked_words(pretrained, text_windows, mlm_sched, ids["pad_id"], seed,
                                          Reporter(None, 1), tok.token_to_id("[MASK]"))
        mlm_facts = {"pretrain": {**mlm_facts, "unlabelled_sentences": len(unlabelled)}}
    model, facts = train_teacher(cfg, train_windows, sched, ids["pad_id"], seed, Reporter(None, 1),
                                 features=(spec, v.get("dim", 64)) if spec else None,
                                 word_dropout=v.get("word_dropout", 0.0), unk_id=tok.token_to_id("[UNK]"),
                                 select=select, form_dropout=v.get("form_dropout", 0.0), pretrained=pretrained,
                                 device=device)
    facts.update(mlm_facts)
    if family:  # then the target language alone, for the other half of the budget
        from quantize.train import fit

        first = facts["steps"]
        facts = fit(model, enc(train), sched, ids["pad_id"], seed,
                    lambda m, b, _: m(**forward_kwargs(m, b), labels=b["labels"]).loss, Reporter(None, 1), "target")
        facts["steps"] += first
        facts["family_sentences"] = len(family)
    model.eval()
    f1 = scorer(model)
    return {"dataset": dataset, "variant": variant, "minutes": minutes, "threads": 1, "seed": seed,
            "step_budget": steps, "device": str(device), "device_name": device_name(device),
            "dev_f1": round(f1, 4), "scorer": "quantize.selection.DevScorer", "parameters": count_parameters(model), **facts}


def device_name(device: str) -> str:
    """The accelerator a probe trained on, in words (the CPU's model name otherwise)."""
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    from benchmarks.shipped import machine

    return machine()["cpu"]


def budget_tag(minutes: float, steps: int = 0) -> str:
    """How a probe's budget appears in its file name: ``8`` (minutes) or ``s1400`` (steps)."""
    return f"s{steps}" if steps else f"{minutes:g}"


def probe_processes(commands: list[tuple[list[str], Path]], jobs: int) -> Iterator[tuple[Path, int]]:
    """Run each ``(command, output file)`` as a one-thread subprocess of the project, ``jobs`` at a
    time, yielding each output file and exit code as its process ends (the caller decides what a
    failure means). The caller's PYTHONPATH stays behind the project's (e.g. carried packages)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    todo, running = list(commands), []
    while todo or running:
        while todo and len(running) < jobs:
            cmd, out = todo.pop(0)
            running.append((subprocess.Popen(cmd, cwd=ROOT, env=env), out))
            print(f"started {out.name}", flush=True)
        time.sleep(2)
        for proc, out in list(running):
            if proc.poll() is not None:
                running.remove((proc, out))
                if proc.returncode == 0:
                    print(f"finished {out.name}", flush=True)
                yield out, proc.returncode


def run_all(datasets: list[str], variants: list[str], minutes: float, jobs: int, work: Path,
            steps: int = 0) -> list[dict]:
    """Every (dataset, variant) probe, ``jobs`` subprocesses at a time; cached results reused."""
    work.mkdir(parents=True, exist_ok=True)
    todo, done = [], []
    for d in datasets:
        for v in variants:
            out = work / f"{d.replace('/', '_')}__{v}__{budget_tag(minutes, steps)}.json"
            (done if out.is_file() else todo).append((d, v, out))
    commands = [([sys.executable, "-m", "benchmarks.accuracy", "--probe", d, v, "--minutes", str(minutes),
                  "--steps", str(steps), "--out", str(out)], out) for d, v, out in todo]
    for out, code in probe_processes(commands, jobs):
        if code != 0:
            raise SystemExit(f"probe {out.name} failed with exit code {code}")
    return [load_probe(p) for d in datasets for v in variants
            for p in [work / f"{d.replace('/', '_')}__{v}__{budget_tag(minutes, steps)}.json"]]


def load_probe(path: Path) -> dict[str, Any]:
    """A finished probe; ``budget`` is the minutes it was given (its file name says), while
    ``minutes`` is what its training loop measured."""
    tag = path.stem.rsplit("__", 1)[1]
    return {**json.loads(path.read_text(encoding="utf-8")), "budget": tag if tag.startswith("s") else float(tag)}


def merged(earlier: dict[str, Any], rows: list[dict], remark: str) -> tuple[list[dict], str]:
    """Additive, like ``shipped.py --merge``: the committed rows and their narrative (the rounds
    of remarks) stay; a probe measured again replaces its row in place; new ones come last."""
    key = lambda r: (r["dataset"], r["variant"], str(r["budget"]))  # noqa: E731
    fresh = {key(r): r for r in rows}
    kept = [fresh.pop(key(r), r) for r in earlier.get("probes", [])]
    return kept + list(fresh.values()), "\n\n".join(x for x in (earlier.get("remark", ""), remark) if x)


def machine_line() -> str:
    """This machine, as the report's first line names it (the probes' machine, not the reader's)."""
    from benchmarks.shipped import cpu_flags, machine

    m = machine()
    return f"{m['cpu']}, {m['cores']} cores (CPU flags: {cpu_flags()})"


#: What the committed probes ran on, for a report written before the file recorded its machine.
PROBES_MACHINE = "AMD EPYC, 2 cores (CPU flags: avx2)"


def report(rows: list[dict], minutes: float, probes_machine: str) -> str:
    shipped = json.loads((RESULTS / "shipped.json").read_text(encoding="utf-8"))
    spacy = {r["bundle"]: r["spacy"]["f1"] for r in shipped.get("results", [])}
    mixed = len({str(r["budget"]) for r in rows}) > 1
    for r in rows:  # a probe run for another budget is its own column, named with its minutes
        label = f"{r['budget'][1:]} steps" if isinstance(r["budget"], str) else f"{r['budget']:g} min"
        r["column"] = f"{r['variant']} ({label})" if mixed and r["budget"] != minutes else r["variant"]
    variants = list(dict.fromkeys(r["column"] for r in rows))
    lines = [
        "# Accuracy ablation (dev F1, same CPU budget per variant)", "",
        f"Machine: {probes_machine}; one thread per probe, "
        f"{minutes:g} minutes of training each, two probes side by side. Regenerate with "
        "`python -m benchmarks.accuracy` (see its docstring).", "",
        "`cnn+features+family` spends half its budget on the train splits of every language of the dataset's "
        "family (all MasakhaNER 2.0 languages; the six MultiCoNER v2 languages with a train split), one "
        "tokenizer for all, then half on the target language. `–`: not measured.", "",
        "Dev F1 (seqeval strict IOB2, runtime word grid, constrained Viterbi), trained from scratch on the "
        "train split; spaCy's dev F1 from `benchmarks/peer_spacy.py` (default budget), as in `shipped.md`.", "",
        "| dataset | " + " | ".join(variants) + " | spaCy |",
        "|---|" + "---|" * (len(variants) + 1),
    ]
    for d in dict.fromkeys(r["dataset"] for r in rows):
        got = {r["column"]: r for r in rows if r["dataset"] == d}
        sp = spacy.get(SPACY_FROM.get(d, ""))
        cells = [f"{100 * got[v]['dev_f1']:.1f}" if v in got else "–" for v in variants]
        cells.append(f"{100 * sp:.1f}" if sp is not None else "–")
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    lines += ["", "Steps reached in the budget (more is a faster model per step):", "",
              "| dataset | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for d in dict.fromkeys(r["dataset"] for r in rows):
        got = {r["column"]: r for r in rows if r["dataset"] == d}
        lines.append(f"| {d} | " + " | ".join(str(got[v]["steps"]) if v in got else "–" for v in variants) + " |")
    chosen = [r for r in rows if "selected_step" in r]
    if chosen:
        lines += ["", "Probes that keep their best dev checkpoint (`+select`, scored every epoch): the kept step, "
                  "and the F1 the last weights would have had.", "",
                  "| dataset | probe | kept step (epoch) | dev F1 kept | dev F1 of the last weights |",
                  "|---|---|---|---|---|"]
        for r in chosen:
            per_epoch = r["dev_f1_history"][0][0] if r["dev_f1_history"] else 1
            lines.append(f"| {r['dataset']} | {r['column']} | {r['selected_step']} ({r['selected_step'] // per_epoch})"
                         f" | {100 * r['selected_dev_f1']:.1f} | {100 * r['dev_f1_history'][-1][1]:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["masakhaner2/swa", "il-ner/or", "multiconer2/hi"])
    ap.add_argument("--variants", default="transformer,transformer+features,cnn+features")
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0,
                    help="train each probe for this many steps instead of --minutes (equal work even when "
                         "other jobs share the CPU); its results are filed under --minutes 0")
    ap.add_argument("--work", type=Path, default=ROOT / ".bench" / "accuracy")
    ap.add_argument("--remark", default="", help="a paragraph about the run's conditions, added after the "
                    "committed report's remarks (the committed rows stay; a probe run again replaces its row)")
    ap.add_argument("--report-only", action="store_true",
                    help="write the table from the probes already in --work, any budget (a budget other than "
                         "--minutes gets its own column); run nothing (missing: –)")
    ap.add_argument("--probe", nargs=2, metavar=("DATASET", "VARIANT"), help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=13, help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        result = probe(args.probe[0], args.probe[1], args.minutes, seed=args.seed, steps=args.steps,
                       device=args.device)
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        return
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    if args.report_only:
        # every probe of these datasets and variants found in --work, whatever its budget
        rows = [load_probe(p) for d in args.datasets for v in variants
                for p in sorted(args.work.glob(f"{d.replace('/', '_')}__{v}__*.json"))]
    else:
        rows = run_all(args.datasets, variants, args.minutes, args.jobs, args.work, args.steps)
    from benchmarks.report import save_results

    earlier = json.loads((RESULTS / "accuracy.json").read_text(encoding="utf-8")) \
        if (RESULTS / "accuracy.json").is_file() else {}
    rows, remark = merged(earlier, rows, args.remark)
    # --report-only runs nothing: the machine stays the one the committed probes ran on
    probes_machine = earlier.get("machine", PROBES_MACHINE) if args.report_only else machine_line()
    md = report(rows, args.minutes, probes_machine) + (f"\n{remark}\n" if remark else "")
    save_results(RESULTS, "accuracy", {"minutes": args.minutes, "machine": probes_machine, "probes": rows,
                                       "remark": remark}, md)


if __name__ == "__main__":
    main()
