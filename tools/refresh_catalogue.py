"""Refresh catalogue/ after bundle builds, check what it offers, and print the README's table.

    python tools/refresh_catalogue.py pack [BUNDLE_DIR...]     # default: every bundle in .build/bundles
    python tools/refresh_catalogue.py verify [NAME...] [--sentences 50]
    python tools/refresh_catalogue.py table                     # markdown rows for the README

``pack`` packs the built bundles into ``catalogue/`` with ``python -m quantize.catalogue pack``,
taking spaCy's dev F1 and both systems' words/s from ``benchmarks/results/shipped.json`` (run
``EDGE_FINER_BUNDLES=.build/bundles python -m benchmarks.shipped NAMES --merge`` first for new
bundles), then checks every archive against the index.

``verify`` installs every catalogue bundle (or NAMES) into a throw-away user folder exactly as
``edge-finer bundles install NAME`` does (sha256 first), annotates and routes the first
sentences of the dev split its recipe names (the gold tokens joined as the build scores them),
and reports per bundle: loads, share of sentences routed to it, entities found, archive MB.
Routing here is among the shipped bundles plus that one (what a user has after installing it).

``table`` prints the README's "Catalogue bundles" table from the index: bundle, language, types,
licence (non-commercial marked), dev F1 (int8; calibrated threshold), spaCy's dev F1, size.

Run from the repository root with the project's Python (``PYTHONPATH=.``); one core is enough.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CATALOGUE = ROOT / "catalogue"
BUILT = ROOT / ".build" / "bundles"
SHIPPED_JSON = ROOT / "benchmarks" / "results" / "shipped.json"


def cmd_pack(dirs: list[Path], out: Path) -> int:
    from quantize.catalogue import check, pack

    if not dirs:
        dirs = sorted(p for p in BUILT.iterdir() if (p / "manifest.json").is_file()) if BUILT.is_dir() else []
    if not dirs:
        print(f"error: no bundle folders given and none built in {BUILT}", file=sys.stderr)
        return 2
    pack(dirs, out, SHIPPED_JSON if SHIPPED_JSON.is_file() else None)
    problems = check(out)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    return 1 if problems else 0


def dev_texts(name: str, n: int, pretokenizer: str) -> list[str]:
    from quantize.data import read_annotated
    from quantize.evaluate import gold_text
    from quantize.recipe import load_recipe

    r = load_recipe(ROOT / "recipes" / f"{name}.toml")
    return [gold_text(s.tokens, pretokenizer)[0] for s in read_annotated(r.resolve(r.data.eval))[:n]]


def cmd_verify(names: list[str], out: Path, n: int) -> int:
    home = Path(tempfile.mkdtemp(prefix="edge-finer-verify."))
    os.environ["XDG_DATA_HOME"], os.environ["XDG_CACHE_HOME"] = str(home / "data"), str(home / "cache")
    os.environ.pop("EDGE_FINER_BUNDLES", None)
    import shutil

    from edge_finer import catalogue, registry
    from edge_finer.annotator import Annotator, clear_cache
    from edge_finer.errors import EdgeFinerError
    from edge_finer.router import Router

    cat = catalogue.load(out)
    entries = [cat.find(x) for x in names] if names else cat.entries
    print("| bundle | language | loads | routed to it | entities | archive MB |")
    print("|---|---|---|---|---|---|")
    bad = 0
    for e in entries:
        try:
            b = catalogue.install(e.name, out, force=True)
            ann = Annotator.load(e.name)
            texts = dev_texts(e.name, n, b.pretokenizer.key)
            found = sum(len(x) for x in ann.annotate_batch(texts))
            router = Router.installed()
            routed = sum(router.route(t).bundle == e.name for t in texts)
            print(f"| {e.name} | {e.bcp47} | yes | {routed}/{len(texts)} | {found} | {e.size / 1e6:.2f} |")
        except EdgeFinerError as exc:
            bad += 1
            print(f"| {e.name} | {e.bcp47} | **no**: {exc} | – | – | {e.size / 1e6:.2f} |")
        finally:
            shutil.rmtree(registry.user_bundles_dir() / e.name, ignore_errors=True)
            clear_cache()
    shutil.rmtree(home, ignore_errors=True)
    return 1 if bad else 0


TYPES = {"multiconer2": "MultiCoNER v2: 33 fine types in 6 groups",
         "il-ner": "IL-NER: person, location, organisation, artifact, number, time",
         "masakhaner2": "MasakhaNER 2.0: PER, ORG, LOC, DATE",
         "mahaner": "MahaNER: person, location, organisation, measure, date, time, designation",
         "everest-ner": "EverestNER: person, location, organisation, event, date"}


def cmd_table(out: Path) -> int:
    """The README's "Catalogue bundles" table, figures from the index."""
    from edge_finer import catalogue

    print("| bundle | language | types | licence | dev F1 int8 (calibrated threshold) | spaCy dev F1 | size |")
    print("|---|---|---|---|---|---|---|")
    for e in catalogue.load(out).entries:
        f = e.figures
        pre = e.raw.get("pretokenizer") or {}
        lang = f"{e.language_name} (`{e.bcp47}`" + (", `han-chars` words" if "han-chars" in str(pre.get("name")) else "") + ")"
        lic = e.licence if len(e.licence) < 30 else e.licence.split(":")[0]
        lic = f"**{lic} (non-commercial)**" if e.non_commercial else lic
        f1 = f"{100 * f['dev_f1']:.1f}" if "dev_f1" in f else "–"
        if "dev_f1_calibrated" in f:
            f1 += f" ({100 * f['dev_f1_calibrated']:.1f} at {f.get('threshold', 0):.2f})"
        spacy = f"{100 * f['spacy_dev_f1']:.1f}" if "spacy_dev_f1" in f else "–"
        size = e.raw.get("bundle_size", e.size) / 1e6
        types = TYPES.get(e.taxonomy) or f"{e.taxonomy}: {e.raw.get('types', '?')} types"
        print(f"| `{e.name}` | {lang} | {types} | {lic} | {f1} | {spacy} | {size:.2f} MB |")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("bundles", nargs="*", type=Path)
    v = sub.add_parser("verify")
    v.add_argument("names", nargs="*")
    v.add_argument("--sentences", type=int, default=50)
    t = sub.add_parser("table")
    for s in (p, v, t):
        s.add_argument("--out", type=Path, default=CATALOGUE, help="catalogue folder [catalogue/]")
    args = ap.parse_args()
    if args.command == "pack":
        return cmd_pack(args.bundles, args.out)
    if args.command == "verify":
        return cmd_verify(args.names, args.out, args.sentences)
    return cmd_table(args.out)


if __name__ == "__main__":
    sys.exit(main())
