"""Variants of the reference build, each through the router's tuning rule and then on dev text.

Are the routing targets (``benchmarks/routing.py``: >= 99 % of installed-language sentences
routed right, >= 99 % of other languages' unknown or named as themselves) held back by how the
reference file is built, or by the text it is built from?  Each variant of the build (table
sizes, sentences read per language, how a language's sources are weighted) is built into a
temporary folder and put through the same steps as the shipped file:

1. its (bias pull, word weight, margin) is chosen on its own tuning text by the rule of
   :func:`benchmarks.routing.tuning_text` (never on dev text);
2. its biases are fitted again at the chosen weight and pull (what the build does for the
   router's constants);
3. the dev text is routed at the chosen point, as ``benchmarks/routing.py`` routes it.

The rule, not dev, says which variant is better: of the variants whose chosen point reaches both
99 % targets on the tuning text, the one handing the fewest other-language sentences to an
installed bundle there -- and it replaces the shipped file only when it hands fewer by more than
the tuning text's noise (a two-proportion z-test, :data:`Z_BETTER`): a few sentences of ~10,000
are no reason to ship another file.  The dev figures are shown beside it so a person can see
whether the tuning text's verdict holds, never used to choose.

    python -m benchmarks.routing_variants [--jobs 2] [--only NAME ...]

Writes ``benchmarks/results/routing_variants.json`` and ``.md``.  A variant takes 3-4 minutes
on one core (two builds, the tuning grid, the dev text).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.report import save_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
#: (name, parameters of :func:`quantize.langrefs.build` that differ from the shipped file's).
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("shipped", {}),
    ("sources weighted alike", {"source_power": 0.0}),
    ("sources by the fourth root of their size", {"source_power": 0.25}),
    ("20,000 sentences per language", {"limit": 20_000}),
    ("8,000 n-grams per language", {"top_ngrams": 8_000}),
    ("10,000 words per language", {"top_words": 10_000}),
]
KEYS = ("installed_right", "other_ok", "other_to_installed")
#: How many standard errors fewer other-language sentences handed to an installed bundle (on the
#: tuning text) a variant needs to replace the shipped file: 1.96, a one-sided 2.5 % chance that
#: the difference is the tuning text's sampling alone.
Z_BETTER = 1.96


def run_variant(name: str, params: dict[str, Any], path: str) -> dict[str, Any]:
    """One variant: build, choose on its tuning text, refit its biases there, route dev."""
    import edge_finer.router as router_mod
    from edge_finer.langrefs import read_references
    from quantize.langrefs import build

    from benchmarks.routing import TARGET, benchmark_sentences, make_router, route_all, summarise, tuning_text

    started = time.perf_counter()
    path = Path(path)
    build(out=path, log=lambda *_: None, **params)
    built = read_references(path)
    installed = set(make_router(built).languages)
    tuned = tuning_text(built, installed)
    l2, weight, margin = tuned["chosen_l2"], tuned["chosen_word_weight"], tuned["chosen"]
    if l2 is None:  # no point keeps the other languages' target: nothing to route at
        return {"name": name, "params": params, "chosen": None, "seconds": round(time.perf_counter() - started)}
    at = next(r for r in tuned["rows"] if r["word_weight"] == weight and r["route_margin"] == margin)
    build(out=path, log=lambda *_: None, word_weight=weight, bias_l2=l2, **params)
    saved = router_mod.WORD_WEIGHT, router_mod.ROUTE_MARGIN
    router_mod.WORD_WEIGHT, router_mod.ROUTE_MARGIN = weight, margin
    try:
        table = route_all(make_router(read_references(path)), benchmark_sentences(300))["long"]
    finally:
        router_mod.WORD_WEIGHT, router_mod.ROUTE_MARGIN = saved
    dev = summarise(table, installed)
    return {"name": name, "params": params, "bytes": path.stat().st_size,
            "chosen": {"l2": l2, "word_weight": weight, "route_margin": margin},
            "tuning": {k: at[k] for k in (*KEYS, "installed_sentences", "other_sentences")},
            "both_targets": bool(at["installed_right"] >= TARGET and at["other_ok"] >= TARGET),
            "dev": {k: dev[k] for k in KEYS},
            "dev_missed": {lang: sum(n for got, n in table[lang].items() if got != lang) for lang in sorted(installed)},
            "seconds": round(time.perf_counter() - started)}


def preferred(rows: list[dict[str, Any]]) -> str | None:
    """The rule over variants: both targets on the tuning text, then fewest to installed there;
    the shipped file stays unless the best beats it by :data:`Z_BETTER` standard errors (a change
    must earn its place)."""
    ok = [r for r in rows if r.get("both_targets")]
    if not ok:
        return None
    best = min(ok, key=lambda r: (r["tuning"]["other_to_installed"], r["name"] != "shipped"))
    shipped = next((r for r in ok if r["name"] == "shipped"), None)
    if shipped is None or best is shipped or z_fewer(best["tuning"], shipped["tuning"]) >= Z_BETTER:
        return best["name"]
    return "shipped"


def z_fewer(new: dict[str, Any], old: dict[str, Any]) -> float:
    """Standard errors by which ``new`` hands a smaller share of other-language sentences to an
    installed bundle than ``old`` (two-proportion z statistic, pooled; 0 when neither hands any)."""
    n1, n2 = new["other_sentences"], old["other_sentences"]
    p1, p2 = new["other_to_installed"] / 100, old["other_to_installed"] / 100
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = (pooled * (1 - pooled) * (1 / n1 + 1 / n2)) ** 0.5
    return (p2 - p1) / se if se else 0.0


def markdown(res: dict[str, Any]) -> str:
    def cell(d: dict[str, Any] | None) -> str:
        return " / ".join(f"{d[k]:.2f} %" for k in KEYS) if d else "-"

    m = res["machine"]
    flags = m.get("lscpu_flags", {})
    lines = ["# Routing: variants of the reference build, through the tuning rule", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; lscpu flags: avx2 "
             f"{'yes' if flags.get('avx2') else 'no'}, avx512_vnni {'yes' if flags.get('avx512_vnni') else 'no'} "
             "(the figures are counts of sentences: they do not depend on it). "
             f"Command: `{res['command']}`. Each variant is built, its bias pull, word weight and margin chosen on its "
             "own tuning text (the build's held-out tenth) by the rule of `benchmarks/routing.py`, its biases fitted "
             "again there, and the dev text routed at that point (the shipped bundles installed, no CLD3, no "
             "py3langid). Figures: installed languages routed right / other languages unknown or named as "
             "themselves / other languages handed to an installed bundle (targets: >= 99 %, >= 99 %, never). The "
             "rule picks among variants on the tuning text; dev is shown, not used to choose.", "",
             "| variant | chosen pull, weight, margin | tuning text | both targets there | dev | dev misses (en, hi) "
             "| file |", "|---|---|---|---|---|---|---|"]
    for r in res["variants"]:
        c = r.get("chosen")
        point = f"{c['l2']}, {c['word_weight']}, {c['route_margin']}" if c else "none"
        missed = r.get("dev_missed", {})
        size = f"{r['bytes'] / 1e6:.2f} MB" if r.get("bytes") else "-"
        lines.append(f"| {r['name']} | {point} | {cell(r.get('tuning'))} | {'yes' if r.get('both_targets') else 'no'} "
                     f"| {cell(r.get('dev'))} | {missed.get('en', '-')}, {missed.get('hi', '-')} | {size} |")
    pick = res["preferred"]
    shipped = next((r for r in res["variants"] if r["name"] == "shipped" and r.get("tuning")), None)
    others = [r for r in res["variants"] if r.get("tuning") and r is not shipped]
    if shipped and others:
        lines += ["", "Fewer to installed than the shipped file on the tuning text, in standard errors (z; "
                  f"{Z_BETTER} needed to replace it): "
                  + ", ".join(f"{r['name']} {z_fewer(r['tuning'], shipped['tuning']):+.2f}" for r in others) + "."]
    lines += ["", f"The rule prefers: **{pick or 'none (no variant reaches both targets on its tuning text)'}**.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=1, help="variants built at once (one core each)")
    ap.add_argument("--only", action="append", default=[], help="run only the variants of these names")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    names = [n for n, _ in VARIANTS]
    unknown = [n for n in args.only if n not in names]
    if unknown:
        raise SystemExit(f"error: no variant named {', '.join(map(repr, unknown))}; variants: {', '.join(names)}")
    chosen = [(n, p) for n, p in VARIANTS if not args.only or n in args.only]
    # the user's own bundles and references must not leak into the figures
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="edge-finer-bench.")
    os.environ["EDGE_FINER_BUNDLES"] = ""
    os.environ.pop("EDGE_FINER_LANGREFS", None)
    os.environ["EDGE_FINER_LANGID"] = "0"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="edge-finer-variants.") as folder:
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(run_variant, n, p, str(Path(folder) / f"variant{i}.zip"))
                       for i, (n, p) in enumerate(chosen)]
            rows = []
            for future in futures:
                rows.append(future.result())
                print(f"{rows[-1]['name']}: done ({rows[-1]['seconds']} s)", file=sys.stderr)
    from benchmarks.routing import cpu

    res = {"command": "python -m benchmarks.routing_variants" + "".join(f" --only {n!r}" for n in args.only),
           "machine": cpu(), "variants": rows, "preferred": preferred(rows)}
    save_results(args.out, "routing_variants", res, markdown(res))


if __name__ == "__main__":
    main()
