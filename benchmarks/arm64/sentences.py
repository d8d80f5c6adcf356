"""The fixed sentences of the arm64 check: the first 20 dev sentences (>= 40 characters) of the
dataset each shipped bundle was built from, plus the hazards every bundle must survive.

    python -m benchmarks.arm64.sentences OUT.json
"""
from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HAZARDS = ["", "   ", "Zoë 🙂 met Ravi in Guwahati\u200d.", "\ud83d\ude00 2024-01-01 ..."]


def recipe_dev_sentences(name: str, n: int, min_chars: int = 40) -> list[str]:
    """The first ``n`` dev sentences (tokens joined by spaces, >= ``min_chars``) of the dataset the
    recipe ``recipes/NAME.toml`` evaluates on (also used by tests/test_shipped.py)."""
    recipe = tomllib.loads((ROOT / "recipes" / f"{name}.toml").read_text(encoding="utf-8"))
    dev = (ROOT / "recipes" / recipe.get("root", ".") / recipe["data"]["eval"]).resolve()  # root: relative to the recipe
    found, words = [], []
    for line in dev.read_text(encoding="utf-8").splitlines() + [""]:
        if line.strip():
            words.append(line.split("\t")[0])
        elif words:
            if len(" ".join(words)) >= min_chars:
                found.append(" ".join(words))
            words = []
        if len(found) == n:
            break
    return found


def sentences(per_bundle: int = 20) -> dict[str, list[str]]:
    index = json.loads((ROOT / "bundles" / "index.json").read_text(encoding="utf-8"))
    return {e["name"]: recipe_dev_sentences(e["name"], per_bundle) + [h for h in HAZARDS if "\ud83d" not in h]
            for e in index["bundles"]}


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(sentences(), ensure_ascii=False, indent=1), encoding="utf-8")
