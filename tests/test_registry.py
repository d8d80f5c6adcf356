"""Finding bundles (lookup order, --lang and taxonomies), installing and removing them, and
unpacking archives from strangers safely."""
from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from edge_finer import registry
from edge_finer.annotator import Annotator
from edge_finer.archive import MAX_MEMBERS, extract_bundle, pack
from edge_finer.bundle import open_bundle
from edge_finer.errors import ArchiveError, BundleError, BundleNotFound, EdgeFinerError
from tiny_bundle import make_tiny_bundle


def _tree(root: Path) -> set[str]:
    """Every path under ``root`` (files, folders, links), relative."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> dict[str, Path]:
    """Bundles all named tiny-en, told apart by version, one per lookup root."""
    root = tmp_path_factory.mktemp("versions")
    return {v: make_tiny_bundle(root / v / "tiny-en", version=v) for v in ("1.0.0", "2.0.0", "3.0.0", "4.0.0")}


@pytest.fixture(scope="module")
def hindi(tmp_path_factory) -> dict[str, Path]:
    """Two Hindi bundles of different taxonomies."""
    root = tmp_path_factory.mktemp("hindi")
    return {tax: make_tiny_bundle(root / f"{tax}-hi", name=f"{tax}-hi", lang="hi", iso3="hin", taxonomy=tax)
            for tax in ("multiconer2", "il-ner")}


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake shipped-bundles folder; returns a function that ships a bundle into it."""
    root = tmp_path / "shipped"
    root.mkdir()
    index: dict = {"format_version": 1, "bundles": []}
    (root / "index.json").write_text(json.dumps(index), encoding="utf-8")
    monkeypatch.setattr(registry, "shipped_dir", lambda: root)

    def ship(folder: Path, default: bool = False, listed: bool = True) -> Path:
        dest = root / folder.name
        shutil.copytree(folder, dest)
        if listed:
            m = open_bundle(dest).manifest
            index["bundles"].append({"name": m["name"], "language": m["language"]["bcp47"],
                                     "taxonomy": m["taxonomy"]["name"], "default": default})
            (root / "index.json").write_text(json.dumps(index), encoding="utf-8")
        return dest

    return ship


def _user_install(folder: Path) -> Path:
    dest = registry.user_bundles_dir() / folder.name
    shutil.copytree(folder, dest)
    return dest


def _env(monkeypatch, *folders: Path) -> None:
    monkeypatch.setenv("EDGE_FINER_BUNDLES", os.pathsep.join(str(f) for f in folders))


# -- lookup order ---------------------------------------------------------------------------


def test_user_dirs_are_isolated(isolated_user_dirs: Path):
    assert str(registry.user_bundles_dir()).startswith(str(isolated_user_dirs))
    assert str(registry.user_cache_dir()).startswith(str(isolated_user_dirs))


def test_lookup_order(versions, shipped, monkeypatch, tmp_path: Path):
    shipped(versions["1.0.0"])
    assert registry.resolve("tiny-en") == registry.shipped_dir() / "tiny-en"
    _user_install(versions["2.0.0"])
    assert registry.resolve("tiny-en") == registry.user_bundles_dir() / "tiny-en"
    _env(monkeypatch, versions["3.0.0"].parent)
    assert registry.resolve("tiny-en") == versions["3.0.0"]
    assert Annotator.load("tiny-en").bundle.version == "3.0.0"
    # an explicit path beats everything, whatever the bundle inside is called
    assert registry.resolve(versions["4.0.0"]) == versions["4.0.0"]
    assert registry.resolve(str(versions["4.0.0"])) == versions["4.0.0"]
    assert Annotator.load(versions["4.0.0"]).bundle.version == "4.0.0"
    # listing shows each name once, from the first root that has it
    listed = [(b.name, b.source, b.manifest["version"]) for b in registry.installed()]
    assert listed == [("tiny-en", "env", "3.0.0")]
    monkeypatch.delenv("EDGE_FINER_BUNDLES")
    assert Annotator.load("tiny-en").bundle.version == "2.0.0"
    registry.remove("tiny-en")
    assert Annotator.load("tiny-en").bundle.version == "1.0.0"


def test_env_var_holds_several_roots_in_order(versions, monkeypatch):
    _env(monkeypatch, versions["2.0.0"].parent, versions["3.0.0"].parent)
    assert registry.resolve("tiny-en") == versions["2.0.0"]
    _env(monkeypatch, "", versions["3.0.0"].parent, versions["2.0.0"].parent)
    assert registry.resolve("tiny-en") == versions["3.0.0"]


def test_name_lookup_agrees_with_listing_whatever_the_folders_are_called(versions, monkeypatch, tmp_path: Path):
    """resolve(name) tries the folder named after the bundle first; the answer must still be
    the bundle that `installed()` lists under that name (first root wins)."""
    early, late = tmp_path / "early", tmp_path / "late"
    shutil.copytree(versions["2.0.0"], early / "renamed")  # tiny-en 2.0.0 in a folder called otherwise
    shutil.copytree(versions["3.0.0"], late / "tiny-en")
    _env(monkeypatch, early, late)
    assert registry.resolve("tiny-en") == early / "renamed"
    assert [b.path for b in registry.installed() if b.name == "tiny-en"] == [early / "renamed"]
    # a folder named after the bundle whose manifest says otherwise is not that bundle
    shutil.copytree(versions["4.0.0"], early / "other-name")
    manifest = json.loads((early / "other-name" / "manifest.json").read_text())
    assert manifest["name"] == "tiny-en"
    with pytest.raises(BundleNotFound):
        registry.resolve("other-name")


def test_shipped_bundle_missing_from_index_is_ignored(versions, shipped):
    shipped(versions["1.0.0"], listed=False)
    assert registry.installed() == []
    with pytest.raises(BundleNotFound):
        registry.resolve("tiny-en")


def test_broken_bundle_is_skipped_when_listing(tmp_path: Path, tiny_bundle: Path, monkeypatch):
    root = tmp_path / "root"
    shutil.copytree(tiny_bundle, root / "good")
    (root / "broken").mkdir()
    (root / "broken" / "manifest.json").write_text("{", encoding="utf-8")
    (root / ".hidden").mkdir()
    _env(monkeypatch, root)
    assert [b.path.name for b in registry.installed()] == ["good"]


def test_unknown_references(bundles_env: Path, tmp_path: Path):
    with pytest.raises(BundleNotFound, match="unknown bundle 'nope'.*tiny-en"):
        registry.resolve("nope")
    with pytest.raises(BundleNotFound, match="no such bundle folder"):
        registry.resolve("./nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(BundleNotFound, match="neither a bundle folder nor a bundle archive"):
        registry.resolve(tmp_path / "file.txt")
    with pytest.raises(EdgeFinerError, match="say which bundle"):
        registry.resolve(None)
    with pytest.raises(BundleNotFound, match="no bundle installed for language 'xx'.*en"):
        registry.resolve(lang="xx")


# -- languages and taxonomies ----------------------------------------------------------------


def test_lang_matches_bcp47_iso639_3_and_regions(bundles_env: Path):
    for code in ("en", "EN", "eng", "en-GB", "en_US"):
        assert registry.resolve(lang=code) == bundles_env, code
    with pytest.raises(BundleNotFound):
        registry.resolve(lang="hi")


def test_lang_default_taxonomy_and_override(hindi, shipped):
    shipped(hindi["multiconer2"], default=False)
    shipped(hindi["il-ner"], default=True)
    assert Annotator.load(lang="hi").bundle.taxonomy == "il-ner"
    assert Annotator.load(lang="hin").bundle.taxonomy == "il-ner"
    assert Annotator.load(lang="hi", taxonomy="multiconer2").bundle.taxonomy == "multiconer2"
    assert Annotator.load(lang="hi", taxonomy="IL-NER").bundle.taxonomy == "il-ner"
    with pytest.raises(BundleNotFound, match="available taxonomies: il-ner, multiconer2"):
        Annotator.load(lang="hi", taxonomy="masakhaner2")
    defaults = {b.name: b.default for b in registry.installed()}
    assert defaults == {"multiconer2-hi": False, "il-ner-hi": True}


def test_lang_prefers_earlier_roots_then_default(hindi, shipped, monkeypatch, tmp_path: Path):
    shipped(hindi["il-ner"], default=True)
    # a user-installed bundle for the language comes first (lookup order), even non-default
    _user_install(hindi["multiconer2"])
    assert Annotator.load(lang="hi").bundle.taxonomy == "multiconer2"
    assert Annotator.load(lang="hi", taxonomy="il-ner").bundle.taxonomy == "il-ner"


def test_lang_with_two_bundles_in_one_root_is_deterministic(hindi, monkeypatch):
    _env(monkeypatch, hindi["il-ner"].parent)
    picked = {registry.resolve(lang="hi") for _ in range(3)}
    assert picked == {hindi["il-ner"]}  # no default outside the shipped index: first by name
    assert registry.resolve(lang="hi", taxonomy="multiconer2") == hindi["multiconer2"]


# -- install / remove ------------------------------------------------------------------------


def test_install_from_folder_then_remove(tiny_bundle: Path):
    b = registry.install(tiny_bundle)
    dest = registry.user_bundles_dir() / "tiny-en"
    assert b.path == dest and b.name == "tiny-en"
    assert open_bundle(dest).manifest == open_bundle(tiny_bundle).manifest
    assert [x.name for x in registry.installed()] == ["tiny-en"]
    assert [(e.text, e.label) for e in Annotator.load("tiny-en").annotate("Ravi in Delhi")] == [
        ("Ravi", "PER"), ("Delhi", "LOC")]
    assert _tree(registry.user_bundles_dir()) == {"tiny-en", *(f"tiny-en/{p.name}" for p in dest.iterdir())}
    assert registry.remove("tiny-en") == dest
    assert not dest.exists()
    with pytest.raises(BundleNotFound):
        registry.resolve("tiny-en")
    with pytest.raises(BundleNotFound, match="no user-installed bundle"):
        registry.remove("tiny-en")


def test_install_refuses_existing_without_force(versions):
    registry.install(versions["1.0.0"])
    with pytest.raises(BundleError, match="already installed.*--force"):
        registry.install(versions["2.0.0"])
    assert open_bundle(registry.user_bundles_dir() / "tiny-en").version == "1.0.0"
    assert registry.install(versions["2.0.0"], force=True).version == "2.0.0"
    assert open_bundle(registry.user_bundles_dir() / "tiny-en").version == "2.0.0"
    expected = {"tiny-en"} | {f"tiny-en/{p.name}" for p in versions["2.0.0"].iterdir()}
    assert _tree(registry.user_bundles_dir()) == expected, "no temporary or old copies left"


def test_install_refuses_tampered_bundle(bundle_copy: Path):
    (bundle_copy / "tokenizer.json").write_bytes(b"{}")
    with pytest.raises(BundleError, match="checksum"):
        registry.install(bundle_copy)
    assert _tree(registry.user_bundles_dir()) == set()


def test_install_refuses_what_is_not_a_bundle(tmp_path: Path):
    with pytest.raises(BundleNotFound):
        registry.install(tmp_path / "missing")
    (tmp_path / "x.zip").write_bytes(b"PK")
    with pytest.raises(BundleError, match="neither a bundle folder nor an archive"):
        registry.install(tmp_path / "x.zip")
    assert _tree(registry.user_bundles_dir()) == set()


@pytest.mark.parametrize("name", ["", "..", ".hidden", "a/b", "tiny-en"])
def test_remove_refuses_unknown_or_unsafe_names(name: str, bundles_env: Path):
    with pytest.raises(BundleNotFound):
        registry.remove(name)
    assert bundles_env.is_dir(), "an env bundle is never deleted"


def test_remove_names_shipped_bundles(versions, shipped):
    shipped(versions["1.0.0"])
    with pytest.raises(BundleNotFound, match="shipped"):
        registry.remove("tiny-en")


# -- pack and archives -----------------------------------------------------------------------


def test_pack_install_round_trip(tiny_bundle: Path, tmp_path: Path):
    archive = pack(tiny_bundle, tmp_path)
    assert archive == tmp_path / "tiny-en-0.0.1.tar.gz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-en-0.0.1.tar.gz"], "no .part left"
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    assert sorted(m.name for m in members) == sorted(f"tiny-en/{p.name}" for p in tiny_bundle.iterdir())
    assert all(m.isfile() and m.mode == 0o644 and m.uid == 0 and m.mtime == 0 for m in members)

    b = registry.install(archive)
    assert b.path == registry.user_bundles_dir() / "tiny-en"
    assert b.manifest == open_bundle(tiny_bundle).manifest
    text = "Ravi Shankar Kumar of Infosys Limited, Guwahati."
    assert Annotator.load("tiny-en").annotate(text) == Annotator(open_bundle(tiny_bundle)).annotate(text)


def test_pack_to_a_file_name(tiny_bundle: Path, tmp_path: Path):
    target = tmp_path / "sub" / "x.tar.gz"
    target.parent.mkdir()
    assert pack(tiny_bundle, target) == target
    dest = tmp_path / "out"
    dest.mkdir()
    folder = extract_bundle(target, dest)
    assert folder == dest / "tiny-en"
    assert open_bundle(folder).manifest == open_bundle(tiny_bundle).manifest


def test_an_interrupted_pack_leaves_no_part(tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Ctrl-C (or a full disk) half-way through packing: no archive and no .part beside it, and
    an archive that was there before is kept."""
    before = pack(tiny_bundle, tmp_path).read_bytes()
    calls = []

    def addfile_then_stop(self, info, fileobj=None):
        calls.append(info.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, info, fileobj)

    real = tarfile.TarFile.addfile
    monkeypatch.setattr(tarfile.TarFile, "addfile", addfile_then_stop)
    with pytest.raises(KeyboardInterrupt):
        pack(tiny_bundle, tmp_path)
    assert len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-en-0.0.1.tar.gz"]
    assert (tmp_path / "tiny-en-0.0.1.tar.gz").read_bytes() == before


def test_pack_refuses_tampered_bundle(bundle_copy: Path, tmp_path: Path):
    (bundle_copy / "model.onnx").write_bytes(b"x")
    with pytest.raises(BundleError, match="checksum"):
        pack(bundle_copy, tmp_path / "out.tar.gz")
    assert not (tmp_path / "out.tar.gz").exists()


def test_load_from_archive_path_uses_the_cache_once(tiny_bundle: Path, tmp_path: Path):
    archive = pack(tiny_bundle, tmp_path)
    ann = Annotator.load(archive)
    cache = registry.user_cache_dir() / "archives"
    assert ann.bundle.path.parent.parent == cache
    assert [(e.text, e.label) for e in ann.annotate("Delhi")] == [("Delhi", "LOC")]
    before = _tree(cache)
    assert registry.resolve(archive) == ann.bundle.path
    assert _tree(cache) == before


def test_load_from_tampered_archive_is_refused(tiny_bundle: Path, tmp_path: Path):
    folder = tmp_path / "evil" / "tiny-en"
    shutil.copytree(tiny_bundle, folder)
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for p in sorted(folder.iterdir()):
            data = b"tampered" if p.name == "model.onnx" else p.read_bytes()
            _add(tar, f"tiny-en/{p.name}", data)
    with pytest.raises(BundleError, match="checksum"):
        Annotator.load(archive)
    assert not (registry.user_cache_dir() / "archives").exists() or \
        not any(not p.name.startswith(".") for p in (registry.user_cache_dir() / "archives").iterdir())
    assert _tree(registry.user_cache_dir()) <= {"archives"}, "no half-unpacked archive left"


# -- hostile archives -----------------------------------------------------------------------


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"x", **attrs) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in attrs.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data) if info.isfile() else None)


def _bundle_members(folder: Path) -> list[tuple[str, bytes]]:
    return [(f"tiny-en/{p.name}", p.read_bytes()) for p in sorted(folder.iterdir())]


HOSTILE = {
    "dotdot": [("tiny-en/../evil.txt", tarfile.REGTYPE, {})],
    "dotdot-top": [("../evil.txt", tarfile.REGTYPE, {})],
    "dotdot-deep": [("tiny-en/sub/../../../evil.txt", tarfile.REGTYPE, {})],
    "absolute": [("/tmp/edge-finer-test-evil.txt", tarfile.REGTYPE, {})],
    "backslash": [("tiny-en\\..\\..\\evil.txt", tarfile.REGTYPE, {})],
    "drive": [("C:/evil.txt", tarfile.REGTYPE, {})],
    "symlink": [("tiny-en/link", tarfile.SYMTYPE, {"linkname": "/etc/passwd"})],
    "symlink-dir": [("tiny-en/sub", tarfile.SYMTYPE, {"linkname": ".."})],
    "hardlink": [("tiny-en/hard", tarfile.LNKTYPE, {"linkname": "tiny-en/manifest.json"})],
    "chardev": [("tiny-en/dev", tarfile.CHRTYPE, {"devmajor": 1, "devminor": 3})],
    "blockdev": [("tiny-en/blk", tarfile.BLKTYPE, {"devmajor": 8, "devminor": 0})],
    "fifo": [("tiny-en/fifo", tarfile.FIFOTYPE, {})],
    "two-tops": [("other/manifest.json", tarfile.REGTYPE, {})],
    "top-level-file": [("README", tarfile.REGTYPE, {})],
    "archive-root": [(".", tarfile.DIRTYPE, {})],
    "dot-slash": [("./", tarfile.DIRTYPE, {})],
}


REASONS = {
    "dotdot": "unsafe member path",
    "dotdot-top": "unsafe member path",
    "dotdot-deep": "unsafe member path",
    "absolute": "unsafe member path",
    "backslash": "unsafe member path",
    "drive": "unsafe member path",
    "symlink": "is a link",
    "symlink-dir": "is a link",
    "hardlink": "is a link",
    "chardev": "not a regular file",
    "blockdev": "not a regular file",
    "fifo": "not a regular file",
    "two-tops": "exactly one top folder",
    "top-level-file": "exactly one top folder",
    "archive-root": "archive root",
    "dot-slash": "archive root",
}

def _hostile_archive(path: Path, folder: Path, extra: list, first: bool) -> Path:
    """A genuine bundle archive with hostile members added before or after the real ones."""
    with tarfile.open(path, "w:gz") as tar:
        def bad():
            for name, kind, attrs in extra:
                _add(tar, name, b"evil" if kind == tarfile.REGTYPE else b"", type=kind, **attrs)
        if first:
            bad()
        for name, data in _bundle_members(folder):
            _add(tar, name, data)
        if not first:
            bad()
    return path


def _assert_refused_cleanly(archive: Path, tmp_path: Path, reason: str = "") -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    before = _tree(tmp_path)
    with pytest.raises(ArchiveError, match=reason) as info:
        extract_bundle(archive, dest)
    assert "\n" not in str(info.value) and str(archive) in str(info.value)
    assert _tree(tmp_path) == before, "nothing may be written anywhere"
    assert not Path("/tmp/edge-finer-test-evil.txt").exists()
    # the same archive through install / load: refused, and nothing left in the user folders
    with pytest.raises(ArchiveError):
        registry.install(archive)
    assert not any(registry.user_bundles_dir().iterdir())
    with pytest.raises(ArchiveError):
        Annotator.load(archive)
    cache = registry.user_cache_dir() / "archives"
    assert not cache.exists() or not any(cache.iterdir())
    assert _tree(tmp_path) == before


@pytest.mark.parametrize("first", [True, False], ids=["before", "after"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_are_refused(tiny_bundle: Path, tmp_path: Path, case: str, first: bool):
    archive = _hostile_archive(tmp_path / f"{case}.tar.gz", tiny_bundle, HOSTILE[case], first)
    _assert_refused_cleanly(archive, tmp_path, REASONS[case])


def test_decompression_bomb_is_refused(tiny_bundle: Path, tmp_path: Path):
    archive = tmp_path / "bomb.tar.gz"
    size = 64 << 20  # 64 MiB of zeros: ~64 KiB compressed, a ratio ~1000
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in _bundle_members(tiny_bundle):
            _add(tar, name, data)
        info = tarfile.TarInfo("tiny-en/zeros.bin")
        info.size = size

        class Zeros(io.RawIOBase):
            left = size

            def readable(self):
                return True

            def readinto(self, b):
                n = min(len(b), self.left)
                b[:n] = bytes(n)
                self.left -= n
                return n

        tar.addfile(info, io.BufferedReader(Zeros()))
    assert archive.stat().st_size * 200 + (1 << 20) < size
    _assert_refused_cleanly(archive, tmp_path, "decompression bomb")


def test_declared_size_beyond_the_ratio_is_refused(tiny_bundle: Path, tmp_path: Path):
    """A header may declare a huge size the data never backs up: refused on the header alone."""
    good = tmp_path / "good.tar"
    with tarfile.open(good, "w") as tar:
        for name, data in _bundle_members(tiny_bundle):
            _add(tar, name, data)
        _add(tar, "tiny-en/big.bin", b"\0" * 512)
    raw = bytearray(good.read_bytes())
    # patch the size field (offset 124, 12 octal bytes) of the last member's header
    header = raw.rfind(b"tiny-en/big.bin")
    raw[header + 124:header + 136] = b"%011o\0" % (1 << 30)
    checksum = sum(raw[header:header + 148]) + 8 * 32 + sum(raw[header + 156:header + 512])
    raw[header + 148:header + 156] = b"%06o\0 " % checksum
    archive = tmp_path / "liar.tar"
    archive.write_bytes(bytes(raw))
    good.unlink()
    _assert_refused_cleanly(archive, tmp_path, "decompression bomb")


def test_too_many_members_is_refused(tiny_bundle: Path, tmp_path: Path):
    archive = tmp_path / "many.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in _bundle_members(tiny_bundle):
            _add(tar, name, data)
        for k in range(MAX_MEMBERS):
            _add(tar, f"tiny-en/f{k}.txt")
    _assert_refused_cleanly(archive, tmp_path, "more than")


@pytest.mark.parametrize("content", [b"", b"not an archive at all", b"\x1f\x8b\x08\x00garbage"])
def test_unreadable_archives_are_refused(tmp_path: Path, content: bytes):
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(content)
    _assert_refused_cleanly(archive, tmp_path, "not a readable bundle archive")


def test_archive_without_manifest_or_empty_is_refused(tmp_path: Path):
    archive = tmp_path / "nomanifest.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "tiny-en/model.onnx")
    (tmp_path / "d1").mkdir()
    with pytest.raises(ArchiveError, match="manifest.json"):
        extract_bundle(archive, tmp_path / "d1")
    empty = tmp_path / "empty.tar.gz"
    with tarfile.open(empty, "w:gz"):
        pass
    (tmp_path / "d2").mkdir()
    with pytest.raises(ArchiveError, match="empty"):
        extract_bundle(empty, tmp_path / "d2")


def test_duplicate_member_is_refused(tiny_bundle: Path, tmp_path: Path):
    archive = tmp_path / "dup.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        members = _bundle_members(tiny_bundle)
        for name, data in members:
            _add(tar, name, data)
        _add(tar, "tiny-en/manifest.json", b"{}")  # would overwrite the real manifest
    (tmp_path / "dest").mkdir()
    with pytest.raises(ArchiveError):
        extract_bundle(archive, tmp_path / "dest")
    assert not (registry.user_bundles_dir() / "tiny-en").exists()
    with pytest.raises(ArchiveError):
        registry.install(archive)
    assert not any(registry.user_bundles_dir().iterdir())
