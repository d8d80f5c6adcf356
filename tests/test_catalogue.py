"""The catalogue (issue 20): bundles packed into archives and listed in an index, listed by
``bundles available``, installed by name with ``bundles install NAME --from DIR`` (sha256
checked before anything is unpacked), and named by the router when a language has no bundle.
"""
from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli
from edge_finer import catalogue, registry
from edge_finer.annotator import Annotator
from edge_finer.errors import ArchiveError, CatalogueError
from edge_finer.languages import no_bundle_line
from quantize import catalogue as writer
from quantize.errors import BuildError
from tiny_bundle import make_tiny_bundle

ROOT = Path(__file__).resolve().parent.parent
NC = "CC BY-NC-SA 4.0"


def run(*args: str):
    return CliRunner().invoke(cli.app, [str(a) for a in args])


def one_error(result, *fragments: str) -> str:
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("built")
    make_tiny_bundle(root / "tiny-mr", name="tiny-mr", lang="mr", iso3="mar", scripts=("Deva",), licence=NC)
    make_tiny_bundle(root / "tiny-de", name="tiny-de", lang="de", iso3="deu")
    return root


@pytest.fixture
def cat(built: Path, tmp_path: Path) -> Path:
    """A fresh catalogue folder holding both tiny bundles, written by the pipeline's packer."""
    out = tmp_path / "catalogue"
    writer.pack([built / "tiny-mr", built / "tiny-de"], out, log=lambda *_: None)
    return out


def installed_names() -> set[str]:
    return {b.name for b in registry.installed() if b.source == "user"}


def test_pack_writes_an_index_the_runtime_reads(cat: Path, built: Path):
    doc = json.loads((cat / "index.json").read_text(encoding="utf-8"))
    assert doc["format_version"] == 1 and [e["name"] for e in doc["bundles"]] == ["tiny-de", "tiny-mr"]
    mr = doc["bundles"][1]
    assert mr["archive"] == "tiny-mr-0.0.1.tar.gz" and (cat / mr["archive"]).stat().st_size == mr["size"]
    assert mr["language"]["bcp47"] == "mr" and mr["licence"] == NC and mr["non_commercial"] is True
    assert doc["bundles"][0]["non_commercial"] is False
    assert mr["pretokenizer"] == {"name": "edge-finer-words", "version": 1} and mr["format_version"] == 2
    assert writer.check(cat) == []
    again = writer.pack([built / "tiny-mr"], cat.parent / "again", log=lambda *_: None).parent
    assert catalogue.load(again).find("tiny-mr").sha256 == mr["sha256"]  # packing is reproducible:
    head = (cat / mr["archive"]).read_bytes()[:10]
    assert head[4:8] == b"\0\0\0\0" and not head[3] & 0x08  # no time, no file name in the gzip header
    # repacking a new version replaces the entry and its old archive
    make_tiny_bundle(built.parent / "v2" / "tiny-mr", name="tiny-mr", lang="mr", iso3="mar", version="0.0.2",
                     licence=NC)
    writer.pack([built.parent / "v2" / "tiny-mr"], cat, log=lambda *_: None)
    assert sorted(p.name for p in cat.glob("*.tar.gz")) == ["tiny-de-0.0.1.tar.gz", "tiny-mr-0.0.2.tar.gz"]
    assert catalogue.load(cat).find("tiny-mr").version == "0.0.2" and writer.check(cat) == []


def test_pack_refuses_a_bundle_without_a_licence_and_check_sees_strays(built: Path, tmp_path: Path, cat: Path):
    make_tiny_bundle(tmp_path / "b" / "tiny-as", name="tiny-as", lang="as", iso3="asm",
                     licence="none stated (research use only)")
    with pytest.raises(BuildError, match="not put in the catalogue"):
        writer.pack([tmp_path / "b" / "tiny-as"], cat)
    shutil.copy(cat / "tiny-de-0.0.1.tar.gz", cat / "stray-1.tar.gz")
    (cat / "tiny-mr-0.0.1.tar.gz").unlink()
    problems = writer.check(cat)
    assert any("stray-1.tar.gz: not listed" in p for p in problems)
    assert any("tiny-mr-0.0.1.tar.gz: missing" in p for p in problems)


def test_available_lists_the_catalogue_with_licence_and_what_is_installed(cat: Path):
    res = run("bundles", "available", "--from", cat, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    rows = {r["name"]: r for r in doc["bundles"]}
    assert set(rows) == {"tiny-de", "tiny-mr"} and doc["catalogue"] == str(cat)
    assert rows["tiny-mr"]["non_commercial"] and rows["tiny-mr"]["language"] == "mr"
    assert rows["tiny-mr"]["installed"] is None
    assert rows["tiny-mr"]["sha256"] == catalogue.load(cat).find("tiny-mr").sha256
    ok = run("bundles", "install", "tiny-de", "--from", cat)
    assert ok.exit_code == 0, ok.output
    rows = {r["name"]: r for r in json.loads(run("bundles", "available", "--from", cat).stdout)["bundles"]}
    assert rows["tiny-de"]["installed"] == "0.0.1 (user)"
    one_error(run("bundles", "available", "--from", cat.parent), "not a catalogue folder (no index.json)")


def test_install_by_name_from_a_folder_then_it_annotates(cat: Path, tmp_path: Path):
    mirror = tmp_path / "usb-stick" / "catalogue"  # a copy of the folder works the same
    shutil.copytree(cat, mirror)
    res = run("bundles", "install", "tiny-mr", "--from", mirror)
    assert res.exit_code == 0, res.output
    assert "installed tiny-mr 0.0.1" in res.stdout and "NON-COMMERCIAL" in res.stdout
    assert installed_names() == {"tiny-mr"}
    ents = Annotator.load("tiny-mr").annotate("अमित शाह दिल्ली गए।")
    assert [e.text for e in ents] == ["अमित शाह"]
    one_error(run("bundles", "install", "tiny-mr", "--from", mirror), "already installed", "--force")
    assert run("bundles", "install", "tiny-mr", "--from", mirror, "--force").exit_code == 0
    one_error(run("bundles", "install", "tiny-xx", "--from", mirror), "no bundle named 'tiny-xx'", "tiny-de, tiny-mr")
    assert not list((registry.user_cache_dir() / "catalogue").iterdir())  # no private copy left behind


def test_install_by_name_uses_the_default_catalogue(cat: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(catalogue.ENV_VAR, str(cat))
    assert run("bundles", "install", "tiny-de").exit_code == 0 and installed_names() == {"tiny-de"}
    monkeypatch.delenv(catalogue.ENV_VAR)
    monkeypatch.setattr(catalogue, "default_dir", lambda: None)
    one_error(run("bundles", "install", "tiny-mr"), "no catalogue to install it from", "--from DIR")


def test_a_tampered_archive_is_refused_before_unpacking(cat: Path, monkeypatch: pytest.MonkeyPatch):
    archive = cat / "tiny-mr-0.0.1.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    archive.write_bytes(bytes(data))
    unpacked: list = []
    monkeypatch.setattr("edge_finer.archive.extract_bundle", lambda *a: unpacked.append(a))
    line = one_error(run("bundles", "install", "tiny-mr", "--from", cat), "tiny-mr-0.0.1.tar.gz", "sha256",
                     "nothing was unpacked or installed")
    assert "index entry says" in line and not unpacked and installed_names() == set()
    archive.write_bytes(bytes(data) + b"tail")  # and a longer one
    one_error(run("bundles", "install", "tiny-mr", "--from", cat), "is larger than", "its index entry says")
    assert not unpacked and installed_names() == set()


def test_a_wrong_sha256_in_the_index_is_refused(cat: Path):
    doc = json.loads((cat / "index.json").read_text(encoding="utf-8"))
    doc["bundles"][1]["sha256"] = "0" * 64
    (cat / "index.json").write_text(json.dumps(doc), encoding="utf-8")
    one_error(run("bundles", "install", "tiny-mr", "--from", cat), "has sha256", "index entry says 0000")
    assert installed_names() == set()
    doc["bundles"][1]["sha256"] = "not-a-checksum"
    (cat / "index.json").write_text(json.dumps(doc), encoding="utf-8")
    one_error(run("bundles", "install", "tiny-de", "--from", cat), "entry 2: sha256 is not 64 hex digits")


@pytest.mark.parametrize("archive", ["../tiny-mr-0.0.1.tar.gz", "/etc/passwd.tar", "sub/x.tar.gz", ".hidden.tar.gz",
                                     "tiny-mr.zip"])
def test_an_index_naming_a_file_outside_the_folder_is_refused(cat: Path, archive: str):
    doc = json.loads((cat / "index.json").read_text(encoding="utf-8"))
    doc["bundles"][1]["archive"] = archive
    (cat / "index.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(CatalogueError, match="not a plain archive file name"):
        catalogue.load(cat)
    one_error(run("bundles", "available", "--from", cat), "refused")


def _evil_archive(path: Path) -> None:
    with tarfile.open(path, "w:gz") as tar:
        payload = b"pwned"
        info = tarfile.TarInfo("tiny-mr/../../escaped.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))


def test_an_archive_with_path_traversal_is_refused_even_with_a_matching_sha256(cat: Path, tmp_path: Path):
    archive = cat / "tiny-mr-0.0.1.tar.gz"
    _evil_archive(archive)
    from edge_finer.bundle import sha256_file

    doc = json.loads((cat / "index.json").read_text(encoding="utf-8"))
    doc["bundles"][1].update(sha256=sha256_file(archive), size=archive.stat().st_size)
    (cat / "index.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ArchiveError, match="unsafe member path"):
        catalogue.install("tiny-mr", cat)
    one_error(run("bundles", "install", "tiny-mr", "--from", cat), "unsafe member path")
    assert installed_names() == set()
    assert not list(registry.user_cache_dir().rglob("escaped.txt"))
    assert not list(registry.user_bundles_dir().parent.rglob("escaped.txt"))


def test_an_archive_holding_another_bundle_is_refused(cat: Path):
    shutil.copy(cat / "tiny-de-0.0.1.tar.gz", cat / "tiny-mr-0.0.1.tar.gz")
    from edge_finer.bundle import sha256_file

    doc = json.loads((cat / "index.json").read_text(encoding="utf-8"))
    archive = cat / "tiny-mr-0.0.1.tar.gz"
    doc["bundles"][1].update(sha256=sha256_file(archive), size=archive.stat().st_size)
    (cat / "index.json").write_text(json.dumps(doc), encoding="utf-8")
    one_error(run("bundles", "install", "tiny-mr", "--from", cat), "holds bundle 'tiny-de', not 'tiny-mr'")
    assert installed_names() == set()


def test_the_router_says_install_it_with_when_the_catalogue_has_the_language(
        cat: Path, built: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(catalogue.ENV_VAR, str(cat))
    line = no_bundle_line("mr")
    assert line == ("mr (Marathi): no bundle installed; install it with `edge-finer bundles install tiny-mr` "
                    "(non-commercial licence)")
    assert no_bundle_line("mar") == "mar" + line[2:]  # ISO 639-3 codes find it too
    assert no_bundle_line("de").endswith("install it with `edge-finer bundles install tiny-de`")
    # no catalogue entry for the language: the build hint, as before
    assert no_bundle_line("as") == ("as (Assamese): no bundle installed; build one with `edge-finer build "
                                    "recipes/guit-astourne-as.toml` (see README, 'Building bundles')")
    # through the router: text named as Marathi with only an English bundle installed
    monkeypatch.setenv("EDGE_FINER_BUNDLES", str(built.parent / "en"))
    make_tiny_bundle(built.parent / "en" / "tiny-en", name="tiny-en")
    monkeypatch.setenv("EDGE_FINER_CLD3", "0")
    from edge_finer.router import Router

    d = Router.installed().route("मराठी भाषा ही महाराष्ट्राची राजभाषा आहे आणि ती कोट्यवधी लोक बोलतात.")
    assert (d.language, d.bundle) == ("mr", None) and d.reason == line
    # an unreadable catalogue never breaks routing: the build hint again
    (cat / "index.json").write_text("{", encoding="utf-8")
    assert "build one with `edge-finer build recipes/mahaner-mr.toml`" in no_bundle_line("mr")


def test_licences_that_forbid_commercial_use_are_flagged():
    for lic in ("CC BY-NC 4.0", "CC BY-NC-SA 4.0", "EverestNER terms: non-commercial use only (NC)",
                "Non-commercial purposes only"):
        assert catalogue.is_non_commercial(lic), lic
    for lic in ("CC BY 4.0", "CC0-1.0", "Apache-2.0", "CC BY-SA 4.0", "MIT"):
        assert not catalogue.is_non_commercial(lic), lic


def test_the_wheel_carries_the_default_bundles_only():
    """Catalogue archives stay out of the wheel, and the shipped bundles fit the ~40 MB budget."""
    cfg = (ROOT / "setup.cfg").read_text(encoding="utf-8")
    assert "catalogue" not in cfg.split("[options.extras_require]")[0]
    index = json.loads((ROOT / "bundles" / "index.json").read_text(encoding="utf-8"))
    listed = {b["name"] for b in index["bundles"]}
    on_disk = {p.name for p in (ROOT / "bundles").iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    assert on_disk == listed  # package_data globs bundles/*/: an unlisted folder would ship anyway
    total = sum(f.stat().st_size for name in listed for f in (ROOT / "bundles" / name).iterdir() if f.is_file())
    assert total <= 40e6, total


def test_manifest_and_model_card_say_non_commercial():
    from quantize.card import render_card

    m = json.loads((ROOT / "bundles" / "masakhaner2-hau" / "manifest.json").read_text(encoding="utf-8"))
    m["non_commercial"] = True
    assert "**NON-COMMERCIAL**" in render_card(m)
    m["non_commercial"] = False
    assert "NON-COMMERCIAL" not in render_card(m)
    res = run("bundles", "info", ROOT / "bundles" / "masakhaner2-hau")
    assert res.exit_code == 0 and "NON-COMMERCIAL" in res.stdout


COVERAGE = ["multiconer2-de", "multiconer2-sv", "multiconer2-zh", "il-ner-te", "il-ner-ur", "mahaner-mr",
            "everest-ner-ne"] + [f"masakhaner2-{c}" for c in "bam bbj ewe fon ibo kin lug luo mos nya pcm sna tsn twi "
                                                           "wol xho zul".split()]


@pytest.mark.parametrize("name", COVERAGE)
def test_every_coverage_language_has_a_v3_recipe_outside_the_wheel(name: str):
    from quantize.recipe import load_recipe

    r = load_recipe(ROOT / "recipes" / f"{name}.toml")
    assert r.name == name and r.output == ".build/bundles"  # never bundles/: that folder is the wheel's
    assert r.teacher.family == "cnn" and r.features.enabled and r.runtime.calibrate_threshold
    assert r.teacher.select_on_dev and r.student.select_on_dev and r.teacher.ensemble >= 2
    assert r.training_data and r.licence == r.training_data[0].licence
    assert catalogue.is_non_commercial(r.licence) == name.startswith(("masakhaner2", "mahaner", "everest"))
    assert ("NON-COMMERCIAL" in r.description) == catalogue.is_non_commercial(r.licence)
    assert r.pretokenizer == ("han-chars" if name.endswith("-zh") else "words")


REPO_CATALOGUE = ROOT / "catalogue"


@pytest.mark.skipif(not (REPO_CATALOGUE / "index.json").is_file(), reason="no catalogue/ packed in this checkout")
def test_the_repository_catalogue_is_intact_and_every_bundle_installs_and_annotates():
    assert writer.check(REPO_CATALOGUE) == []
    cat = catalogue.load(REPO_CATALOGUE)
    for e in cat.entries:
        assert e.licence and e.raw["bundle_size"] <= 5e6 and (ROOT / "recipes" / f"{e.name}.toml").is_file(), e.name
        b = catalogue.install(e.name, REPO_CATALOGUE)
        Annotator(b, threads=1).warm_up()
        shutil.rmtree(b.path)
