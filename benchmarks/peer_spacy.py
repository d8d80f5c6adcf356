"""The peer every shipped bundle is measured against: spaCy's NER trained on the same data.

spaCy's default CPU pipeline (hash embeddings + CNN, no pretrained vectors) trained from
scratch with ``spacy train`` on the same train split, scored on the same dev split with the
same scorer (seqeval, strict IOB2, on the gold token grid), and timed on the same raw
sentences on one thread.  spaCy is a benchmark-only dependency (the ``bench`` extra).

    python -m benchmarks.peer_spacy ../shared/data/il-ner/hi --lang hi --out work/spacy-il-ner-hi
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def read_conll(path: Path) -> list[tuple[list[str], list[str]]]:
    """Sentences of the normalised shared data (``token<TAB>tag``, blank line between)."""
    sents, toks, tags = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if toks:
                sents.append((toks, tags))
                toks, tags = [], []
            continue
        parts = line.split("\t")
        toks.append(parts[0])
        tags.append(parts[-1])
    if toks:
        sents.append((toks, tags))
    return sents


def _blank(lang: str):
    import spacy

    try:
        return spacy.blank(lang)
    except Exception:  # spaCy has no language class for this code: use its multilingual one
        return spacy.blank("xx")


def to_docbin(sents, lang: str, out: Path) -> None:
    from spacy.tokens import Doc, DocBin
    from spacy.training import iob_to_biluo, biluo_tags_to_spans

    nlp = _blank(lang)
    db = DocBin()
    for words, tags in sents:
        doc = Doc(nlp.vocab, words=words, spaces=[True] * len(words))
        doc.ents = biluo_tags_to_spans(doc, iob_to_biluo(tags))
        db.add(doc)
    db.to_disk(out)


def train(data_dir: Path, lang: str, out: Path, max_steps: int = 6000, seed: int = 0) -> Path:
    """Train with spaCy's own default config for ``ner`` on CPU; returns the best model folder."""
    out.mkdir(parents=True, exist_ok=True)
    train_s, dev_s = read_conll(data_dir / "train.conll"), read_conll(data_dir / "dev.conll")
    to_docbin(train_s, lang, out / "train.spacy")
    to_docbin(dev_s, lang, out / "dev.spacy")
    spacy_lang = _blank(lang).lang
    cfg = out / "config.cfg"
    env = dict(os.environ, OMP_NUM_THREADS="2")
    subprocess.run([sys.executable, "-m", "spacy", "init", "config", str(cfg), "--lang", spacy_lang,
                    "--pipeline", "ner", "--optimize", "efficiency", "--force"], check=True, env=env)
    subprocess.run([sys.executable, "-m", "spacy", "train", str(cfg), "--output", str(out / "model"),
                    "--paths.train", str(out / "train.spacy"), "--paths.dev", str(out / "dev.spacy"),
                    "--training.max_steps", str(max_steps), "--system.seed", str(seed)],
                   check=True, env=env)
    return out / "model" / "model-best"


def predict_tags(nlp, sentences: list[list[str]]) -> list[list[str]]:
    """spaCy's entities as IOB2 tags on the gold tokens (the words given, not spaCy's own)."""
    from spacy.tokens import Doc

    out = []
    for words in sentences:
        doc = nlp(Doc(nlp.vocab, words=words, spaces=[True] * len(words)))
        tags = ["O"] * len(words)
        for ent in doc.ents:
            tags[ent.start] = "B-" + ent.label_
            for k in range(ent.start + 1, ent.end):
                tags[k] = "I-" + ent.label_
        out.append(tags)
    return out


def evaluate(model_dir: Path, data_dir: Path, repeats: int = 3) -> dict:
    """F1 on the gold grid, words/s on raw sentences (one thread), and size on disk."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import spacy
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    nlp = spacy.load(model_dir)
    dev = read_conll(data_dir / "dev.conll")
    gold = [tags for _, tags in dev]
    pred = predict_tags(nlp, [words for words, _ in dev])
    texts = [" ".join(w) for w, _ in dev]
    n_words = sum(len(w) for w, _ in dev)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _doc in nlp.pipe(texts, batch_size=32):
            pass
        times.append(time.perf_counter() - t0)
    times.sort()
    report = classification_report(gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    return {
        "system": "spacy-ner",
        "spacy_version": spacy.__version__,
        "f1": float(f1_score(gold, pred, mode="strict", scheme=IOB2)),
        "precision": float(precision_score(gold, pred, mode="strict", scheme=IOB2)),
        "recall": float(recall_score(gold, pred, mode="strict", scheme=IOB2)),
        "per_type": {k: {"f1": v["f1-score"], "precision": v["precision"], "recall": v["recall"],
                         "support": int(v["support"])} for k, v in report.items() if "avg" not in k},
        "words_per_second": n_words / times[len(times) // 2],
        "threads": 1,
        "size_bytes": sum(p.stat().st_size for p in Path(model_dir).rglob("*") if p.is_file()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="folder with train.conll and dev.conll")
    ap.add_argument("--lang", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--max-steps", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=0,
                    help="spaCy's training seed (0, the default, is the peer every table reports; others "
                         "show how far the peer's own F1 moves from seed to seed)")
    args = ap.parse_args()
    best = args.out / "model" / "model-best"
    if not best.is_dir():
        best = train(args.data, args.lang, args.out, max_steps=args.max_steps, seed=args.seed)
    result = evaluate(best, args.data)
    (args.out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "per_type"}, indent=2))


if __name__ == "__main__":
    main()
