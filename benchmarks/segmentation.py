"""Sentence splitting: ``edge_finer/segment.py`` (before and after the abbreviation fix) against
pysbd and sentencex on the dev sets of ``../shared/data``.

Why: the annotator cuts text into sentences before the model sees it, and a cut inside a
sentence ("Prof. | Achebe") can break an entity.  Each gold sentence is detokenised (no space
before ``. , ; : ! ? ) ] %`` and closing quotes, none after opening brackets) and measured:

- ``cut inside``: share of gold sentences the splitter cuts (each is one sentence: every cut
  is wrong);
- ``entities cut``: gold entities that a cut falls inside;
- ``boundaries found``: consecutive gold sentences joined by a space; share of the joins where
  the splitter cuts (NER dev sets hold headlines and fragments without a final stop, so no
  splitter reaches 100 %);
- ``ms / 1k sent.``: time to split 1,000 joined sentences (one core).

    python -m benchmarks.segmentation [--sentences 1000]

Writes ``benchmarks/results/segmentation.json`` and ``benchmarks/results/segmentation.md``.
"""
from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import Callable

from benchmarks.peer_spacy import read_conll
from benchmarks.report import save_results

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"

#: (dataset folder, ISO 639-1 code for pysbd/sentencex where it has one)
SETS = [("multiconer2/en", "en"), ("multiconer2/de", "de"), ("multiconer2/hi", "hi"), ("multiconer2/bn", "bn"),
        ("il-ner/hi", "hi"), ("il-ner/or", "or"), ("mahaner/mr", "mr"), ("everest-ner/ne", "ne"),
        ("masakhaner2/hau", "ha"), ("masakhaner2/swa", "sw"), ("masakhaner2/yor", "yo"), ("masakhaner2/pcm", "en")]

_NO_SPACE_BEFORE = re.compile(r"^[.,;:!?)\]}%»”’।॥]+$")
_NO_SPACE_AFTER = re.compile(r"^[(\[{«“‘]+$")


def detokenise(tokens: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Raw-looking text from gold tokens, with each token's span."""
    text, spans = "", []
    glue = True
    for tok in tokens:
        if text and not glue and not _NO_SPACE_BEFORE.match(tok):
            text += " "
        spans.append((len(text), len(text) + len(tok)))
        text += tok
        glue = bool(_NO_SPACE_AFTER.match(tok))
    return text, spans


def entity_spans(tags: list[str], spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, start = [], None
    for k, tag in enumerate(tags + ["O"]):
        if start is not None and not tag.startswith("I-"):
            out.append((spans[start][0], spans[k - 1][1]))
            start = None
        if tag.startswith("B-"):
            start = k
    return out


def legacy_cuts(text: str) -> list[int]:
    """``segment.py`` before this change (abbreviations: one letter, or <= 3 capitalised)."""
    boundary = re.compile(r"[.!?…।॥؟۔።᱾᱿꯫။]+[\"'”’»)\]]*\s+|[。！？]+[\"'”’»)\]」』]*\s*|\n\s*")

    def abbrev(dot: int) -> bool:
        i = dot
        while i > 0 and text[i - 1].isalpha():
            i -= 1
        word = text[i:dot]
        return bool(word) and (len(word) == 1 or (len(word) <= 3 and word[0].isupper() and word[1:].islower()))

    cuts = []
    for m in boundary.finditer(text):
        if text[m.start()] == "." and abbrev(m.start()) and text[m.start():m.end()].strip() == ".":
            continue
        if m.end() < len(text):
            cuts.append(m.end())
    return cuts


def ours_cuts(text: str) -> list[int]:
    from edge_finer.segment import iter_sentences

    return [a for a, _ in iter_sentences(text)][1:]


def _cuts_from_strings(text: str, sentences: list[str]) -> list[int]:
    """Where each sentence after the first starts in ``text`` (splitters that return strings)."""
    starts, pos = [], 0
    for sent in sentences:
        core = sent.strip()
        at = text.find(core, pos) if core else -1
        if at >= 0:
            starts.append(at)
            pos = at + len(core)
    return starts[1:]


def pysbd_splitter(lang: str) -> Callable[[str], list[int]] | None:
    try:
        import pysbd
    except ImportError:
        return None
    try:
        seg = pysbd.Segmenter(language=lang, clean=False)
    except ValueError:
        seg = pysbd.Segmenter(language="en", clean=False)
    return lambda text: _cuts_from_strings(text, seg.segment(text))


def sentencex_splitter(lang: str) -> Callable[[str], list[int]] | None:
    try:
        from sentencex import segment
    except ImportError:
        return None
    return lambda text: _cuts_from_strings(text, list(segment(lang, text)))


def _inside(cut: int, spans: list[tuple[int, int]]) -> bool:
    return any(a < cut < b for a, b in spans)


def measure(split: Callable[[str], list[int]], sents: list[tuple[list[str], list[str]]]) -> dict:
    texts = [detokenise(t) for t, _ in sents]
    cut_inside = entities_cut = 0
    for (text, spans), (_, tags) in zip(texts, sents):
        cuts = [c for c in split(text) if text[:c].strip() and text[c:].strip()]
        if cuts:
            cut_inside += 1
        ents = entity_spans(tags, spans)
        entities_cut += sum(1 for a, b in ents if any(a < c < b for c in cuts))
    joins = found = 0
    for (a, _), (b, _) in zip(texts, texts[1:]):
        joined = a + " " + b
        cuts = split(joined)
        joins += 1
        if any(len(a) <= c <= len(a) + 1 for c in cuts):
            found += 1
    big = " ".join(t for t, _ in texts)
    t0 = time.perf_counter()
    split(big)
    elapsed = time.perf_counter() - t0
    return {"sentences": len(sents), "cut_inside": cut_inside / max(1, len(sents)),
            "entities_cut": entities_cut, "entities": sum(len(entity_spans(tg, sp)) for (_, sp), (_, tg) in zip(texts, sents)),
            "boundaries_found": found / max(1, joins), "ms_per_1k": 1000 * elapsed * 1000 / max(1, len(sents))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sentences", type=int, default=1000)
    args = ap.parse_args()
    rows = []
    for folder, lang in SETS:
        path = DATA / folder / "dev.conll"
        if not path.is_file():
            continue
        sents = read_conll(path)[:args.sentences]
        systems = {"segment.py before": legacy_cuts, "segment.py now": ours_cuts,
                   "pysbd": pysbd_splitter(lang), "sentencex": sentencex_splitter(lang)}
        for name, split in systems.items():
            if split is None:
                continue
            row = {"dataset": folder, "lang": lang, "system": name, **measure(split, sents)}
            rows.append(row)
            print(row, flush=True)
    from benchmarks.routing import cpu

    m = cpu()
    versions = {}
    for mod in ("pysbd", "sentencex"):
        try:
            versions[mod] = __import__(mod).__version__ if hasattr(__import__(mod), "__version__") else "?"
        except ImportError:
            versions[mod] = None
    lines = ["# Sentence splitting on the dev sets: segment.py against pysbd and sentencex", "",
             f"Machine: {m['cpu']}, lscpu flags: avx2 {'yes' if m['lscpu_flags'].get('avx2') else 'no'}, "
             f"avx512_vnni {'yes' if m['lscpu_flags'].get('avx512_vnni') else 'no'}; one core. "
             f"First {args.sentences} sentences of each dev split, detokenised. Versions: "
             + ", ".join(f"{k} {v}" for k, v in versions.items()) + ". `python -m benchmarks.segmentation`.", "",
             "| dev set | system | cut inside a sentence | entities cut | boundaries found | ms / 1k sent. |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['system']} | {100 * r['cut_inside']:.2f} % | {r['entities_cut']} of "
                     f"{r['entities']} | {100 * r['boundaries_found']:.1f} % | {r['ms_per_1k']:.0f} |")
    totals: dict[str, dict[str, float]] = {}
    for r in rows:
        t = totals.setdefault(r["system"], {"cut": 0, "n": 0, "ents": 0, "found": 0.0, "sets": 0, "ms": 0.0})
        t["cut"] += r["cut_inside"] * r["sentences"]
        t["n"] += r["sentences"]
        t["ents"] += r["entities_cut"]
        t["found"] += r["boundaries_found"]
        t["sets"] += 1
        t["ms"] += r["ms_per_1k"]
    lines += ["", "| system (all sets) | cut inside | entities cut | boundaries found (mean) | ms / 1k sent. (mean) |",
              "|---|---|---|---|---|"]
    for name, t in totals.items():
        lines.append(f"| {name} | {100 * t['cut'] / max(1, t['n']):.2f} % | {int(t['ents'])} | "
                     f"{100 * t['found'] / max(1, t['sets']):.1f} % | {t['ms'] / max(1, t['sets']):.0f} |")
    save_results(RESULTS, "segmentation", {"machine": m, "versions": versions, "rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
