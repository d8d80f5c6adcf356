"""Writing the catalogue: pack built bundles into archives and list them in ``index.json``.

    python -m quantize.catalogue pack BUNDLE_DIR... [--out catalogue] [--figures benchmarks/results/shipped.json]
    python -m quantize.catalogue check [--out catalogue]
    python -m quantize.catalogue remove NAME... [--out catalogue]

``pack`` verifies each bundle (every checksum), packs it as ``NAME-VERSION.tar.gz`` with
:func:`edge_finer.archive.pack`, and puts its entry into the index (replacing an older entry of
the same name and deleting that entry's archive): name, version, language, taxonomy, licence
with a non-commercial flag, archive size and sha256, bundle size, format version, word
pre-tokenisation, and figures: the build's dev F1 (int8, at threshold 0 and calibrated) and
words/s from the manifest, and, with ``--figures``, spaCy's dev F1 and both systems' words/s
from ``benchmarks/shipped.py``'s JSON.  A bundle whose licence is missing or says none was
stated (GUIT-AsTourNE) is refused: the catalogue is for bundles that may be redistributed.
``check`` verifies that every listed archive exists with its size and sha256 and that no
archive is unlisted.  The runtime reads the index (:mod:`edge_finer.catalogue`); only the
pipeline writes it.  Needs no training stack (no torch).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from edge_finer.archive import pack as pack_archive
from edge_finer.bundle import FORMAT_VERSION as BUNDLE_FORMAT, open_bundle, sha256_file
from edge_finer.catalogue import FORMAT_VERSION, INDEX, is_non_commercial, load
from edge_finer.errors import EdgeFinerError

from .errors import BuildError

#: The issue's budget per bundle; a larger one is packed only with --max-mb raised.
MAX_BUNDLE_MB = 5.0
_NO_LICENCE = ("", "unknown", "none")


def read_index(folder: Path) -> dict[str, Any]:
    path = folder / INDEX
    if not path.is_file():
        return {"format_version": FORMAT_VERSION, "bundles": []}
    load(folder)  # refuse to extend an index the runtime could not read
    return json.loads(path.read_text(encoding="utf-8"))


def write_index(folder: Path, doc: Mapping[str, Any]) -> Path:
    """Atomically (a reader never sees half an index), sorted by name."""
    doc = {"format_version": FORMAT_VERSION, **{k: v for k, v in doc.items() if k != "format_version"}}
    doc["bundles"] = sorted(doc["bundles"], key=lambda e: e["name"])
    fd, tmp = tempfile.mkstemp(prefix=".index.", suffix=".json", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    mask = os.umask(0o022)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)  # mkstemp made it private; a catalogue is for sharing
    os.replace(tmp, folder / INDEX)
    return folder / INDEX


def shipped_figures(path: Path | None) -> dict[str, dict[str, Any]]:
    """``benchmarks/results/shipped.json`` rows by bundle name ({} without the file)."""
    if path is None or not path.is_file():
        return {}
    return {r["bundle"]: r for r in json.loads(path.read_text(encoding="utf-8")).get("results", [])}


def figures_of(manifest: Mapping[str, Any], measured: Mapping[str, Any] | None) -> dict[str, Any]:
    """The figures an index entry carries: the build's, then the side-by-side measurement's."""
    ev = manifest.get("evaluation", {}) if isinstance(manifest.get("evaluation"), dict) else {}
    out: dict[str, Any] = {"split": ev.get("split"), "dataset": ev.get("dataset")}
    int8 = ev.get("student_int8")
    if isinstance(int8, dict) and "f1" in int8:
        out["dev_f1"] = int8["f1"]
    cal = ev.get("threshold_calibration")
    if isinstance(cal, dict) and "f1" in cal:
        out["dev_f1_calibrated"], out["threshold"] = cal["f1"], cal.get("threshold")
    if isinstance(ev.get("words_per_second"), (int, float)):
        out["words_per_second"] = ev["words_per_second"]
        out["words_per_second_from"] = "build (runtime words, one thread)"
    if measured:
        ours, peer = measured.get("int8", {}), measured.get("spacy", {})
        if "f1" in ours:
            out["dev_f1"] = ours["f1"]
        if isinstance(ours.get("calibrated"), dict):
            out["dev_f1_calibrated"] = ours["calibrated"]["f1"]
        if "words_per_second" in ours:
            out["words_per_second"] = round(ours["words_per_second"], 1)
            out["words_per_second_from"] = "benchmarks/shipped.py (gold tokens, one thread)"
        if "f1" in peer:
            out["spacy_dev_f1"] = peer["f1"]
        if "words_per_second" in peer:
            out["spacy_words_per_second"] = round(peer["words_per_second"], 1)
    return {k: v for k, v in out.items() if v is not None}


def entry_for(bundle_dir: Path, archive: Path, measured: Mapping[str, Any] | None) -> dict[str, Any]:
    b = open_bundle(bundle_dir, verify=False)
    m = b.manifest
    licence = b.licence
    return {
        "name": b.name, "version": b.version,
        "language": {k: m["language"].get(k) for k in ("bcp47", "iso639_3", "name", "scripts") if k in m["language"]},
        "taxonomy": b.taxonomy, "types": len(m["taxonomy"].get("types", [])),
        "licence": licence, "non_commercial": is_non_commercial(licence),
        "training_data": [{k: d.get(k) for k in ("name", "licence", "url") if d.get(k)}
                          for d in m.get("training_data", [])],
        "description": str(m.get("description", "")),
        "demo": bool(m.get("demo", False)),
        "archive": archive.name, "size": archive.stat().st_size, "sha256": sha256_file(archive),
        "bundle_size": b.size_bytes(), "format_version": m.get("format_version", BUNDLE_FORMAT),
        "pretokenizer": m.get("pretokenizer"),
        "figures": figures_of(m, measured),
    }


def pack(bundle_dirs: Iterable[Path], out: Path, figures: Path | None = None,
         max_mb: float = MAX_BUNDLE_MB, log: Any = print) -> Path:
    """Pack bundles into ``out`` and update its index; returns the index path."""
    out.mkdir(parents=True, exist_ok=True)
    doc = read_index(out)
    measured = shipped_figures(figures)
    entries = {e["name"]: e for e in doc["bundles"]}
    for folder in bundle_dirs:
        b = open_bundle(folder)  # every checksum, before anything is packed
        if b.licence.strip().lower() in _NO_LICENCE or b.licence.strip().lower().startswith("none"):
            raise BuildError(f"{folder}: licence {b.licence!r}: a bundle without a licence to redistribute its "
                             "training data is not put in the catalogue")
        if b.size_bytes() > max_mb * 1e6:
            raise BuildError(f"{folder}: {b.size_bytes() / 1e6:.2f} MB is over the {max_mb} MB budget "
                             "(--max-mb raises it)")
        archive = pack_archive(folder, out / f"{b.name}-{b.version}.tar.gz")
        old = entries.get(b.name)
        if old and old["archive"] != archive.name and (out / old["archive"]).is_file():
            (out / old["archive"]).unlink()
        entries[b.name] = entry_for(folder, archive, measured.get(b.name))
        e = entries[b.name]
        log(f"packed {b.name} {b.version}: {e['size'] / 1e6:.2f} MB archive, sha256 {e['sha256'][:12]}…"
            + (" (NON-COMMERCIAL)" if e["non_commercial"] else ""))
    doc["bundles"] = list(entries.values())
    return write_index(out, doc)


def remove(names: Iterable[str], out: Path) -> Path:
    doc = read_index(out)
    names = set(names)
    unknown = names - {e["name"] for e in doc["bundles"]}
    if unknown:
        raise BuildError(f"{out / INDEX}: lists no bundle named {', '.join(sorted(unknown))}")
    for e in doc["bundles"]:
        if e["name"] in names and (out / e["archive"]).is_file():
            (out / e["archive"]).unlink()
    doc["bundles"] = [e for e in doc["bundles"] if e["name"] not in names]
    return write_index(out, doc)


def check(out: Path) -> list[str]:
    """Problems of a catalogue folder (empty list: every archive listed, present and intact)."""
    cat = load(out)
    problems = []
    for e in cat.entries:
        path = out / e.archive
        if not path.is_file():
            problems.append(f"{path}: missing (listed for {e.name})")
        elif path.stat().st_size != e.size or sha256_file(path) != e.sha256:
            problems.append(f"{path}: does not match its index entry (size or sha256)")
    listed = {e.archive for e in cat.entries}
    for p in sorted(out.iterdir()):
        if p.name.endswith((".tar.gz", ".tgz", ".tar.xz", ".tar")) and p.name not in listed:
            problems.append(f"{p}: not listed in {INDEX}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m quantize.catalogue", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="pack bundle folders into the catalogue and update its index")
    p.add_argument("bundles", nargs="+", type=Path, help="built bundle folders")
    p.add_argument("--figures", type=Path, default=None,
                   help="benchmarks/results/shipped.json: spaCy's dev F1 and words/s beside ours")
    p.add_argument("--max-mb", type=float, default=MAX_BUNDLE_MB, help="largest bundle accepted (MB)")
    c = sub.add_parser("check", help="verify every archive against the index")
    r = sub.add_parser("remove", help="drop bundles (and their archives) from the catalogue")
    r.add_argument("names", nargs="+")
    for s in (p, c, r):
        s.add_argument("--out", type=Path, default=Path("catalogue"), help="catalogue folder [catalogue]")
    args = ap.parse_args(argv)
    try:
        if args.command == "pack":
            print(pack(args.bundles, args.out, args.figures, args.max_mb))
        elif args.command == "remove":
            print(remove(args.names, args.out))
        else:
            problems = check(args.out)
            for line in problems:
                print(f"error: {line}", file=sys.stderr)
            if problems:
                return 1
            print(f"ok: {len(load(args.out).entries)} bundles in {args.out}")
    except EdgeFinerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
