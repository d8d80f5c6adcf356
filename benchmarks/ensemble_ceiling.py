"""How far an ensemble of teachers lifts dev F1 above its members (the ceiling a student can reach).

The student distils the mean log-probabilities of the build's teacher members, and on IL-NER Hindi
it matched them (75.3).  Whether more or more varied members could raise that ceiling is a question
about the members alone, so this scores them without building anything: each member, then the mean
of each chosen group of members, with the pipeline's own dev scorer (word grid, windows averaged,
constrained Viterbi, seqeval strict IOB2).  Members come from the teacher stage of ``quantize
build`` work folders (``WORK/teacher/teacher.json``); folders trained with one tokenizer can be
mixed (it is checked), e.g. an ensemble build and a build whose teacher has other dilations.
Word-level members (``teacher.word_members``) are numbered after every subword member.

    python -m benchmarks.ensemble_ceiling recipes/il-ner-hi.toml .build/il-ner-hi \\
        .build/il-ner-hi-dil1124 --remark "..." --groups 0,1,2 0,1,4 0,4 0,1,2,3 0,1,2,3,4
"""
from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def score_members(recipe_path: Path, works: list[Path], groups: list[list[int]]) -> dict[str, Any]:
    """Dev F1 of every member of the ``works`` folders' teachers and of each group's mean."""
    import numpy as np
    import torch

    from quantize.data import Sentence, to_model_words
    from quantize.encode import encode
    from quantize.evaluate import score
    from quantize.featured import logits
    from quantize.recipe import load_recipe
    from quantize.selection import tags_of, word_log_probs
    from quantize.teacher import load_model
    from quantize.tokenizer_train import load_backend_tokenizer
    from quantize.wordtagger import load_word_tagger, word_log_probs as word_tagger_log_probs
    from quantize.workdir import read_jsonl

    torch.set_num_threads(1)
    recipe = load_recipe(recipe_path)
    infos = [json.loads((w / "teacher" / "teacher.json").read_text(encoding="utf-8")) for w in works]
    tok = load_backend_tokenizer(Path(infos[0]["folder"]))
    paths: list[tuple[Path, Path]] = []
    for work, info in zip(works, infos):
        if load_backend_tokenizer(Path(info["folder"])).get_vocab() != tok.get_vocab():
            raise SystemExit(f"{work}: its teachers use another tokenizer; members must share one")
        paths += [(work, Path(m)) for m in info["members"]]
    # word-level members (teacher.word_members) are numbered after every subword member
    word_paths = [(work, Path(m)) for work, info in zip(works, infos) for m in info.get("word_members") or []]
    members = [load_model(p) for _, p in paths]
    labels, special = infos[0]["labels"], infos[0]["special"]
    known = {lab[2:] for lab in labels if lab != "O"}
    dev = [to_model_words(Sentence(row["tokens"], row["tags"]), recipe.pretokenizer)
           for row in read_jsonl(works[0] / "data" / "eval.jsonl")]
    dev = [s for s in dev if s.tokens]
    gold = [[t if t == "O" or t[2:] in known else "O" for t in s.tags] for s in dev]
    spec = recipe.feature_spec() or getattr(members[0], "spec", None)
    windows = encode(tok, [s.tokens for s in dev], None, None, recipe.runtime.max_length, recipe.runtime.stride,
                     special["bos_id"], special["eos_id"], features=spec)

    # every member's word log-probabilities on dev, once; a group's mean is what a student
    # distilled from that group learns (the build averages log-probabilities the same way)
    lengths = [len(s.tokens) for s in dev]
    logps = [word_log_probs(m, windows, lengths, len(labels), special["pad_id"], logits) for m in members]
    for work, folder in word_paths:
        logps.append([lp.numpy() for lp in word_tagger_log_probs(load_word_tagger(folder), [s.tokens for s in dev])])
        paths.append((work, folder))

    def f1(rows: list[list[np.ndarray]]) -> float:
        return float(score(gold, tags_of([np.mean(per_sentence, axis=0) for per_sentence in zip(*rows)],
                                         labels))["f1"])

    rows = [{"member": i, "work": str(w), "folder": str(p), "dev_f1": round(f1([lp]), 4)}
            for i, ((w, p), lp) in enumerate(zip(paths, logps))]
    out = []
    for group in groups:
        if any(not 0 <= i < len(logps) for i in group):
            raise SystemExit(f"group {group}: members are numbered 0..{len(logps) - 1}")
        best = max(rows[i]["dev_f1"] for i in group)
        out.append({"members": group, "dev_f1": round(f1([logps[i] for i in group]), 4), "best_member": best})
    from benchmarks.shipped import cpu_flags

    return {"recipe": str(recipe_path), "dev_sentences": len(dev), "members": rows, "groups": out,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores (CPU flags: {cpu_flags()})", "threads": 1}


def report(result: dict[str, Any], remark: str) -> str:
    lines = ["# Teacher ensembles: the ceiling a student can reach", "",
             f"Machine: {result['machine']}. Recipe `{result['recipe']}`, {result['dev_sentences']} dev sentences; dev F1 with the pipeline's own "
             "dev scorer (quantize.selection.DevScorer), one thread. Regenerate with `python -m "
             "benchmarks.ensemble_ceiling` (see its docstring).", "", remark, "",
             "| member | work folder | dev F1 |", "|---|---|---|"]
    lines += [f"| {r['member']} | `{r['work']}` ({Path(r['folder']).name}) | {100 * r['dev_f1']:.1f} |"
              for r in result["members"]]
    lines += ["", "| mean of members | dev F1 | best member alone | gain |", "|---|---|---|---|"]
    lines += [f"| {', '.join(map(str, g['members']))} | {100 * g['dev_f1']:.1f} | {100 * g['best_member']:.1f} | "
              f"{100 * (g['dev_f1'] - g['best_member']):+.1f} |" for g in result["groups"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", type=Path)
    ap.add_argument("works", type=Path, nargs="+", help="build work folders whose teacher stage is done")
    ap.add_argument("--groups", nargs="*", default=[], help="members to average, e.g. 0,1,2 (numbered in order)")
    ap.add_argument("--remark", default="", help="what the members are (written above the tables)")
    ap.add_argument("--out", type=Path, default=RESULTS / "ensemble_ceiling")
    args = ap.parse_args()
    groups = [[int(x) for x in g.split(",")] for g in args.groups]
    result = score_members(args.recipe, args.works, groups)
    args.out.with_suffix(".json").write_text(json.dumps({**result, "remark": args.remark}, indent=1) + "\n",
                                              encoding="utf-8")
    args.out.with_suffix(".md").write_text(report(result, args.remark), encoding="utf-8")
    print(report(result, args.remark))


if __name__ == "__main__":
    main()
