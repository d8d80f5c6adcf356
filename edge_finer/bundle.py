"""The bundle contract: what a bundle directory holds, how it is verified and how it is written.

Both halves use this module: the build pipeline writes bundles with :func:`write_bundle`, the
runtime opens them with :func:`open_bundle`.  Keeping reader and writer side by side is what
keeps the format honest (see ``docs/bundle-format.md``).

A bundle is refused, with one message naming the offending file, when its format version is
unknown, a checksum does not match, a listed file is missing, or its labels disagree with the
model's output width.  Only JSON, ``tokenizer.json`` and ONNX are ever read: nothing is
unpickled or evaluated.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import BundleError
from .features import FeatureSpec
from .pretokenize import PRETOKENIZER, Scheme, from_manifest as pretokenizer_of
from .safejson import read_json

#: Bumped on any change a reader of the previous version would misread.  Version 2 added the
#: optional ``features`` section (hashed word features, a second model input); a version-1
#: reader refuses such bundles with its one-line message instead of feeding them wrongly.
FORMAT_VERSION = 2
#: Versions this runtime reads: version-1 bundles (no features) load unchanged.
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
MODEL = "model.onnx"
TOKENIZER = "tokenizer.json"
MODEL_CARD = "MODEL_CARD.md"
REQUIRED_FILES = (MODEL, TOKENIZER, MODEL_CARD)
#: Manifests are small; a huge one is an attack or an accident, not a bundle.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: Manifests nest 4 levels (evaluation → per_type → type → figures); 16 is generous.
MAX_MANIFEST_DEPTH = 16
#: Labels are short names printed in tables and written into every output format.
MAX_LABEL_CHARS = 100


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so a large model does not sit twice in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk: its folder and its parsed manifest."""

    path: Path
    manifest: Mapping[str, Any]

    # Typed views on the manifest, so callers do not spell JSON keys.
    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def language(self) -> Mapping[str, Any]:
        return self.manifest["language"]

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def coarse_groups(self) -> Mapping[str, str]:
        return self.manifest["taxonomy"].get("coarse", {})

    @property
    def taxonomy(self) -> str:
        return str(self.manifest["taxonomy"]["name"])

    @property
    def model_path(self) -> Path:
        return self.path / MODEL

    @property
    def tokenizer_path(self) -> Path:
        return self.path / TOKENIZER

    @property
    def feature_spec(self) -> FeatureSpec | None:
        """The word features the model takes (None: a subword-only model)."""
        section = self.manifest.get("features")
        return None if section is None else FeatureSpec.from_manifest(section)

    @property
    def pretokenizer(self) -> Scheme:
        """The word pre-tokenisation the model was trained on (checked when the manifest was read)."""
        return pretokenizer_of(self.manifest["pretokenizer"])

    @property
    def licence(self) -> str:
        return str(self.manifest.get("licence", "unknown"))

    def size_bytes(self) -> int:
        return sum((self.path / f).stat().st_size for f in self.manifest["files"]) + (
            self.path / MANIFEST
        ).stat().st_size


def read_manifest(folder: Path) -> dict[str, Any]:
    """Parse ``manifest.json`` and check its shape, without touching the other files."""
    mpath = folder / MANIFEST
    if not folder.is_dir():
        raise BundleError(f"{folder}: not a bundle folder (no such directory)")
    if not mpath.is_file():
        raise BundleError(f"{mpath}: missing; {folder} is not a bundle")
    if mpath.stat().st_size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{mpath}: too large to be a manifest")
    manifest = read_json(mpath, MAX_MANIFEST_BYTES, "a manifest", MAX_MANIFEST_DEPTH)
    if not isinstance(manifest, dict):
        raise BundleError(f"{mpath}: not a JSON object")
    version = manifest.get("format_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise BundleError(
            f"{mpath}: bundle format version {version!r} is not supported by this edge-finer "
            f"(it reads versions {', '.join(map(str, READABLE_VERSIONS))}); upgrade edge-finer or rebuild the bundle"
        )
    _check_shape(mpath, manifest)
    return manifest


def _check_shape(mpath: Path, m: dict[str, Any]) -> None:
    def need(cond: bool, what: str) -> None:
        if not cond:
            raise BundleError(f"{mpath}: {what}")

    for key in ("name", "version", "language", "taxonomy", "labels", "files", "pretokenizer",
                "max_length", "stride", "input"):
        need(key in m, f"required field {key!r} is missing")
    need(isinstance(m["name"], str) and _safe_name(m["name"]), "field 'name' must be a plain name")
    labels = m["labels"]
    need(isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels),
         "field 'labels' must be a non-empty list of strings")
    need(len(set(labels)) == len(labels), "field 'labels' has duplicates")
    need("O" in labels, "field 'labels' has no 'O' label")
    for lab in labels:
        need(lab == "O" or (lab[:2] in ("B-", "I-") and len(lab) > 2),
             f"label {_shown(lab)} is not IOB2 (O, B-TYPE or I-TYPE)")
        need(_printable_label(lab), f"label {_shown(lab)} holds control, format or separator characters "
             f"or is longer than {MAX_LABEL_CHARS}; labels are printed in tables and files")
    files = m["files"]
    need(isinstance(files, dict), "field 'files' must map file names to checksums")
    for fname in REQUIRED_FILES:
        need(fname in files, f"field 'files' does not list {fname}")
    for fname, meta in files.items():
        need(isinstance(fname, str) and _safe_name(fname), f"file name {fname!r} is not allowed")
        need(isinstance(meta, dict) and isinstance(meta.get("sha256"), str),
             f"file {fname!r} has no sha256")
    try:
        pretokenizer_of(m["pretokenizer"])
    except ValueError as exc:
        need(False, f"{exc}; upgrade edge-finer or rebuild the bundle")
    need(isinstance(m["max_length"], int) and m["max_length"] >= 8, "max_length must be an integer ≥ 8")
    need(isinstance(m["stride"], int) and 0 <= m["stride"] < m["max_length"] // 2,
         "stride must be an integer in [0, max_length/2)")
    inp = m["input"]
    need(isinstance(inp, dict) and all(isinstance(inp.get(k), int) for k in ("bos_id", "eos_id", "pad_id")),
         "field 'input' must give integer bos_id, eos_id and pad_id")
    lang = m["language"]
    need(isinstance(lang, dict) and isinstance(lang.get("bcp47"), str), "field 'language' needs 'bcp47'")
    tax = m["taxonomy"]
    need(isinstance(tax, dict) and isinstance(tax.get("name"), str), "field 'taxonomy' needs 'name'")
    coarse = tax.get("coarse", {})
    need(isinstance(coarse, dict) and all(isinstance(k, str) and isinstance(v, str) and _printable_label(v)
                                          for k, v in coarse.items()),
         "field 'taxonomy.coarse' must map types to printable group names")
    if "features" in m:
        need(m.get("format_version", FORMAT_VERSION) >= 2, "field 'features' needs bundle format version 2")
        try:
            FeatureSpec.from_manifest(m["features"])
        except ValueError as exc:
            need(False, str(exc))


def _safe_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..") \
        and not name.startswith(".") and name.isprintable() and len(name) <= 255


def _printable_label(label: str) -> bool:
    """A label holds printable characters only (spaces allowed): an escape sequence in a label
    would reach the terminal of everyone who prints a table of the bundle's entities."""
    return 0 < len(label) <= MAX_LABEL_CHARS and label.isprintable()


def _shown(value: str) -> str:
    """A value from a manifest, shown in a message without its control characters."""
    return repr(value[:MAX_LABEL_CHARS])  # repr escapes what is not printable


def open_bundle(folder: str | os.PathLike[str], verify: bool = True) -> Bundle:
    """Open and (by default) fully verify a bundle folder.

    Verification reads every file once to hash it; that is the price of refusing a tampered
    model before onnxruntime parses it.
    """
    path = Path(folder)
    manifest = read_manifest(path)
    for fname, meta in manifest["files"].items():
        fpath = path / fname
        if not fpath.is_file() or fpath.is_symlink():
            raise BundleError(f"{fpath}: missing from the bundle (the manifest lists it)")
        if verify and sha256_file(fpath) != meta["sha256"]:
            raise BundleError(
                f"{fpath}: checksum mismatch; the file was changed or damaged after the bundle "
                "was built. Reinstall the bundle."
            )
    return Bundle(path=path, manifest=manifest)


def verify_output_width(bundle: Bundle, width: int | str | None) -> None:
    """Refuse a model whose label dimension disagrees with the manifest's label list."""
    n = len(bundle.labels)
    if isinstance(width, int) and width != n:
        raise BundleError(
            f"{bundle.model_path}: the model outputs {width} labels but {bundle.path / MANIFEST} "
            f"lists {n}; the bundle is inconsistent"
        )


def write_bundle(
    folder: str | os.PathLike[str],
    manifest: Mapping[str, Any],
    files: Mapping[str, str | os.PathLike[str] | bytes],
    model_card: str,
) -> Bundle:
    """Write a complete bundle: copy ``files``, add the model card, checksum all, write manifest.

    ``files`` maps bundle file names to a source path or to bytes.  The manifest's ``files``
    field and ``format_version`` are filled in here so no writer can forget or fake them.  The
    folder is assembled beside its destination and renamed into place, so a crash never
    leaves a half-written bundle behind.
    """
    dest = Path(folder)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        contents: dict[str, str | os.PathLike[str] | bytes] = dict(files)
        contents[MODEL_CARD] = model_card.encode("utf-8")
        for fname in REQUIRED_FILES:
            if fname not in contents:
                raise BundleError(f"write_bundle: {fname} is required")
        listing: dict[str, dict[str, Any]] = {}
        for fname, src in sorted(contents.items()):
            if not _safe_name(fname):
                raise BundleError(f"write_bundle: file name {fname!r} is not allowed")
            target = tmp / fname
            if isinstance(src, (bytes, bytearray)):
                target.write_bytes(src)
            else:
                with open(src, "rb") as fin, open(target, "wb") as fout:
                    for block in iter(lambda: fin.read(1 << 20), b""):
                        fout.write(block)
            listing[fname] = {"sha256": sha256_file(target), "size": target.stat().st_size}
        full = dict(manifest)
        full["format_version"] = FORMAT_VERSION
        full.setdefault("pretokenizer", dict(PRETOKENIZER))
        full["files"] = listing
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        read_manifest(tmp)  # the writer must produce what the reader accepts
        # mkdtemp made the folder 0o700: give it the mode a plain mkdir would, so a bundle
        # written for a shared folder (EDGE_FINER_BUNDLES, bundles/) is readable by its users.
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)
        if dest.exists():
            _replace_dir(tmp, dest)
        else:
            os.replace(tmp, dest)
    except BaseException:
        _rmtree(tmp)
        raise
    return open_bundle(dest)


def _replace_dir(new: Path, dest: Path) -> None:
    old = dest.with_name(f".{dest.name}.old")
    _rmtree(old)
    os.replace(dest, old)
    os.replace(new, dest)
    _rmtree(old)


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def iter_bundle_dirs(root: Path) -> Iterable[Path]:
    """Sub-folders of ``root`` that hold a manifest (cheap: no verification)."""
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.is_dir() and not entry.name.startswith(".") and (entry / MANIFEST).is_file():
            yield entry
