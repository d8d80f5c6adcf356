"""Where bundles live and how a name, path or language becomes a bundle folder.

Lookup order (first match wins): an explicit path; each folder in ``EDGE_FINER_BUNDLES``; the
user data folder (``platformdirs``), where ``bundles install`` puts bundles; the bundles shipped
with the package, listed in ``bundles/index.json``.  Only manifests are read here (cheap); the
full checksum verification happens when a bundle is opened.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .bundle import MANIFEST, Bundle, iter_bundle_dirs, open_bundle, read_manifest
from .errors import BundleError, BundleNotFound, EdgeFinerError

ENV_VAR = "EDGE_FINER_BUNDLES"
#: Set to 0 to ignore the bundles shipped with the package (only your own are then found).
SHIPPED_ENV_VAR = "EDGE_FINER_SHIPPED"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".tar")


@dataclass(frozen=True)
class Installed:
    """A bundle found in one of the roots, with its (unverified) manifest."""

    name: str
    path: Path
    source: str  # "env", "user" or "shipped"
    manifest: dict[str, Any]
    default: bool = False

    @property
    def language(self) -> str:
        return str(self.manifest.get("language", {}).get("bcp47", "?"))

    @property
    def taxonomy(self) -> str:
        return str(self.manifest.get("taxonomy", {}).get("name", "?"))


def user_bundles_dir() -> Path:
    """The per-user install folder (e.g. ``~/.local/share/edge-finer/bundles`` on Linux)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("edge-finer", appauthor=False)) / "bundles"


def user_cache_dir() -> Path:
    from platformdirs import user_cache_dir as _ucd

    return Path(_ucd("edge-finer", appauthor=False))


def shipped_dir() -> Path | None:
    """The bundles shipped with the package: installed as ``edge_finer_bundles`` data, or the
    ``bundles/`` folder of a source checkout."""
    import importlib.util

    if os.environ.get(SHIPPED_ENV_VAR, "1").strip().lower() in ("0", "no", "false", "off"):
        return None
    spec = importlib.util.find_spec("edge_finer_bundles")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            if Path(loc, "index.json").is_file():
                return Path(loc)
    here = Path(__file__).resolve().parent.parent / "bundles"
    return here if (here / "index.json").is_file() else None


def shipped_index() -> dict[str, Any]:
    root = shipped_dir()
    if root is None:
        return {"bundles": []}
    from .safejson import read_json

    return read_json(root / "index.json", 1 << 20, "the index of shipped bundles")


def roots() -> list[tuple[str, Path]]:
    """Bundle folders in lookup order."""
    out: list[tuple[str, Path]] = []
    for part in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if part.strip():
            out.append(("env", Path(part).expanduser()))
    out.append(("user", user_bundles_dir()))
    shipped = shipped_dir()
    if shipped is not None:
        out.append(("shipped", shipped))
    return out


def _walk(prefer: str | None = None,
          index: dict[str, Any] | None = None) -> Iterator[tuple[str, Path, dict[str, Any]]]:
    """``(source, folder, manifest)`` of every readable bundle in lookup order.

    Shipped folders not in the index are skipped, broken bundles too (``bundles verify``
    reports them).  With ``prefer``, each root's folder of that name is read first, so finding
    one bundle by name usually reads one manifest.
    """
    for source, root in roots():
        if source == "shipped":
            listed: set[str] | None = {b["name"] for b in (index or shipped_index()).get("bundles", [])}
        else:
            listed = None
        folders = list(iter_bundle_dirs(root))
        if prefer is not None:
            folders.sort(key=lambda f: f.name != prefer)
        for folder in folders:
            if listed is not None and folder.name not in listed:
                continue
            try:
                yield source, folder, read_manifest(folder)
            except BundleError:
                continue


def installed() -> list[Installed]:
    """Every findable bundle, earlier roots shadowing later ones with the same name."""
    seen: set[str] = set()
    found: list[Installed] = []
    index = shipped_index()
    defaults = {b["name"] for b in index.get("bundles", []) if b.get("default")}
    for source, folder, manifest in _walk(index=index):
        name = str(manifest["name"])
        if name in seen:
            continue
        seen.add(name)
        found.append(Installed(name, folder, source, manifest, default=source == "shipped" and name in defaults))
    return found


def _by_name(name: str) -> Path | None:
    """The folder of the installed bundle called ``name``, as :func:`installed` would find it."""
    return next((folder for _, folder, manifest in _walk(prefer=name) if manifest.get("name") == name), None)


def _lang_matches(manifest: dict[str, Any], lang: str) -> bool:
    want = lang.strip().lower().replace("_", "-")
    info = manifest.get("language", {})
    codes = {str(info.get("bcp47", "")).lower(), str(info.get("iso639_3", "")).lower()}
    return want in codes or want.split("-")[0] in codes


def by_language(lang: str, taxonomy: str | None = None) -> Installed:
    """The bundle for ``lang``: the one of ``taxonomy`` if given, else the default one."""
    candidates = [b for b in installed() if _lang_matches(b.manifest, lang)]
    if not candidates:
        langs = sorted({b.language for b in installed()})
        raise BundleNotFound(
            f"no bundle installed for language {lang!r}; installed languages: "
            f"{', '.join(langs) or 'none'} (see `edge-finer bundles list`)"
        )
    if taxonomy and not any(b.taxonomy.lower() == taxonomy.lower() for b in candidates):
        raise BundleNotFound(
            f"no {taxonomy!r} bundle for language {lang!r}; available taxonomies: "
            f"{', '.join(sorted({b.taxonomy for b in candidates}))}"
        )
    return preference_order(candidates, taxonomy)[0]


def preference_order(candidates: list[Installed], taxonomy: str | None = None) -> list[Installed]:
    """Same-language bundles, preferred first: the asked-for taxonomy, then your own bundles
    (env, user) over shipped ones, then the index's default."""
    order = {"env": 0, "user": 1, "shipped": 2}
    want = taxonomy.lower() if taxonomy else None
    return sorted(candidates, key=lambda b: (want is not None and b.taxonomy.lower() != want,
                                             order[b.source], not b.default, b.name))


def resolve(name_or_path: str | os.PathLike[str] | None = None, *, lang: str | None = None,
            taxonomy: str | None = None) -> Path:
    """The folder of the bundle meant by a path, a name, or a language."""
    if name_or_path is not None and str(name_or_path).strip():
        ref = str(name_or_path)
        path = Path(ref).expanduser()
        if path.is_dir() and (path / MANIFEST).is_file():
            return path
        if path.is_file() and ref.endswith(ARCHIVE_SUFFIXES):
            return _unpacked_archive(path)
        if path.exists():
            raise BundleNotFound(f"{path}: neither a bundle folder nor a bundle archive ({', '.join(ARCHIVE_SUFFIXES)})")
        found = _by_name(ref)
        if found is not None:
            return found
        if os.sep in ref or ref.startswith("."):
            raise BundleNotFound(f"{ref}: no such bundle folder or archive")
        names = ", ".join(b.name for b in installed()) or "none"
        raise BundleNotFound(f"unknown bundle {ref!r}; installed bundles: {names}")
    if lang:
        return by_language(lang, taxonomy).path
    raise EdgeFinerError("say which bundle to use: a bundle name or path, or a language (--lang)")


def _unpacked_archive(archive: Path) -> Path:
    """An archive is verified and unpacked once into the user cache, keyed by its checksum."""
    from .archive import extract_bundle
    from .bundle import sha256_file

    digest = sha256_file(archive)[:16]
    target_root = user_cache_dir() / "archives" / digest
    if target_root.is_dir():
        for folder in iter_bundle_dirs(target_root):
            return folder
    target_root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack.", dir=target_root.parent))
    try:
        folder = extract_bundle(archive, tmp)
        open_bundle(folder)
        try:
            os.replace(tmp, target_root)
        except OSError:
            # another process (a second worker) unpacked the same archive first: use its copy
            if not (target_root / folder.name).is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target_root / folder.name


def install(source: str | os.PathLike[str], force: bool = False, expect_name: str | None = None) -> Bundle:
    """Copy a bundle folder or archive into the user data folder, verified, atomically.

    Nothing lands in the user folder unless the whole bundle verified; an existing bundle of
    the same name is replaced only with ``force``.  ``expect_name`` (a catalogue install)
    refuses an archive that holds some other bundle than the one asked for.
    """
    from .archive import extract_bundle

    src = Path(source).expanduser()
    dest_root = user_bundles_dir()
    dest_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".install.", dir=dest_root))
    try:
        if src.is_dir():
            open_bundle(src)
            staged = tmp / src.name
            shutil.copytree(src, staged, symlinks=True)
        elif src.is_file() and str(src).endswith(ARCHIVE_SUFFIXES):
            staged = extract_bundle(src, tmp)
        elif not src.exists():
            raise BundleNotFound(f"{src}: no such bundle folder or archive")
        else:
            raise BundleError(f"{src}: neither a bundle folder nor an archive ({', '.join(ARCHIVE_SUFFIXES)})")
        bundle = open_bundle(staged)
        if expect_name is not None and bundle.name != expect_name:
            raise BundleError(f"{src}: holds bundle {bundle.name!r}, not {expect_name!r} as its catalogue entry "
                              "says; refused, nothing installed")
        dest = dest_root / bundle.name
        if dest.exists():
            if not force:
                raise BundleError(f"bundle {bundle.name!r} is already installed at {dest}; pass --force to replace it")
            old = dest_root / f".{bundle.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dest, old)
            os.replace(staged, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staged, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from .annotator import clear_cache

    clear_cache()
    return open_bundle(dest)


def remove(name: str) -> Path:
    """Delete a user-installed bundle (shipped ones cannot be removed)."""
    dest = user_bundles_dir() / name
    if not name or "/" in name or name.startswith(".") or not (dest / MANIFEST).is_file():
        shipped = any(b.name == name and b.source != "user" for b in installed())
        hint = " (it is shipped with edge-finer or comes from EDGE_FINER_BUNDLES)" if shipped else ""
        raise BundleNotFound(f"no user-installed bundle named {name!r}{hint}")
    shutil.rmtree(dest)
    from .annotator import clear_cache

    clear_cache()
    return dest
