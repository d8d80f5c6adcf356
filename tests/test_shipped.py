"""The bundles shipped in ``bundles/``: every one verifies, loads and annotates.

These run against the real committed bundles (not test-made ones), so a bundle committed with
a stale checksum, a broken model or a wrong index entry fails CI.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from edge_finer.annotator import Annotator
from edge_finer.bundle import open_bundle

ROOT = Path(__file__).resolve().parent.parent
INDEX = json.loads((ROOT / "bundles" / "index.json").read_text(encoding="utf-8"))
ENTRIES = INDEX["bundles"]

#: One real sentence per script family, for a smoke run through each bundle.
SAMPLES = {
    "Latn": "Barack Obama visited the Louvre in Paris with Angela Merkel on Monday.",
    "Deva": "प्रधानमंत्री नरेंद्र मोदी ने सोमवार को दिल्ली में टाटा समूह के अध्यक्ष से मुलाकात की।",
    "Beng": "রবীন্দ্রনাথ ঠাকুর কলকাতায় জন্মগ্রহণ করেন।",
    "Orya": "ମୁଖ୍ୟମନ୍ତ୍ରୀ ନବୀନ ପଟ୍ଟନାୟକ ଭୁବନେଶ୍ୱରରେ ଏକ ବୈଠକ କରିଥିଲେ।",
}


@pytest.fixture(autouse=True)
def shipped_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_FINER_SHIPPED", "1")


def test_index_lists_existing_bundles_with_one_default_per_language() -> None:
    assert ENTRIES, "bundles/index.json lists no bundles"
    defaults = Counter(e["language"] for e in ENTRIES if e.get("default"))
    for entry in ENTRIES:
        folder = ROOT / "bundles" / entry["name"]
        assert (folder / "manifest.json").is_file(), f"{folder} is listed but missing"
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["name"] == entry["name"]
        assert manifest["language"]["bcp47"] == entry["language"]
        assert manifest["taxonomy"]["name"] == entry["taxonomy"]
        assert defaults[entry["language"]] == 1, f"language {entry['language']} needs exactly one default"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_bundle_verifies_loads_and_annotates(entry: dict) -> None:
    bundle = open_bundle(ROOT / "bundles" / entry["name"])  # checksums of every file
    assert bundle.manifest.get("licence"), "a shipped bundle states its licence"
    assert bundle.manifest.get("training_data"), "a shipped bundle states its training data"
    assert "licence" in (ROOT / "bundles" / entry["name"] / "MODEL_CARD.md").read_text(encoding="utf-8").lower()
    ann = Annotator(bundle, threads=1).warm_up()  # also checks model width against labels
    script = bundle.language.get("scripts", ["Latn"])[0]
    text = SAMPLES.get(script, SAMPLES["Latn"])
    ents = ann.annotate(text)
    labels = set(bundle.labels)
    for e in ents:
        assert text[e.start:e.end] == e.text and e.text.strip() == e.text
        assert "B-" + e.label in labels
        assert 0.0 <= e.score <= 1.0
    assert [(e.start, e.end) for e in ents] == sorted((e.start, e.end) for e in ents)


def test_lang_routes_to_the_default_bundle() -> None:
    for entry in ENTRIES:
        if entry.get("default"):
            assert Annotator.load(lang=entry["language"]).bundle.name == entry["name"]


def test_taxonomy_picks_the_other_bundle_of_a_language() -> None:
    by_lang: dict[str, list[dict]] = {}
    for entry in ENTRIES:
        by_lang.setdefault(entry["language"], []).append(entry)
    multi = {lang: es for lang, es in by_lang.items() if len(es) > 1}
    if not multi:
        pytest.skip("no language has two shipped bundles")
    for lang, entries in multi.items():
        for entry in entries:
            assert Annotator.load(lang=lang, taxonomy=entry["taxonomy"]).bundle.name == entry["name"]


def test_non_commercial_licence_is_shown_by_bundles_info() -> None:
    from typer.testing import CliRunner

    import cli

    nc = [e for e in ENTRIES if "NC" in json.loads(
        (ROOT / "bundles" / e["name"] / "manifest.json").read_text(encoding="utf-8"))["licence"]]
    if not nc:
        pytest.skip("no non-commercial bundle shipped")
    for entry in nc:
        out = CliRunner().invoke(cli.app, ["bundles", "info", entry["name"]]).output
        assert "NON-COMMERCIAL" in out


DATA = ROOT.parent / "shared" / "data"


def _dev_sentences(manifest: dict, n: int) -> list[str]:
    """The first ``n`` dev sentences (>= 40 characters) of the dataset a bundle was built from."""
    from benchmarks.arm64.sentences import recipe_dev_sentences

    if not DATA.is_dir():
        pytest.skip(f"{DATA} not found (../shared/data beside the project)")
    return recipe_dev_sentences(manifest["name"], n)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_every_shipped_bundle_has_a_profile_that_routes_its_own_dev_text(entry: dict,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_finer.router import Router

    monkeypatch.setenv("EDGE_FINER_CLD3", "0")  # the n-gram profiles alone
    manifest = json.loads((ROOT / "bundles" / entry["name"] / "manifest.json").read_text(encoding="utf-8"))
    assert "profile.json" in manifest["files"], "rebuild its profile: python -m quantize profile RECIPE"
    router = Router.installed()
    assert not router.problems
    decisions = [router.route(s) for s in _dev_sentences(manifest, 40)]
    right = sum(d.language == entry["language"] for d in decisions)
    wrong = [d.language for d in decisions if d.language not in (None, entry["language"])]
    assert not wrong and right >= 38, (right, wrong)


def test_readme_quick_start_sentence_finds_its_three_names():
    """The README's first command must show real entities: the person, the museum, the city."""
    from edge_finer.annotator import Annotator

    text = "Barack Obama visited the Louvre in Paris."
    got = {(e.text, e.coarse_label) for e in Annotator.load(lang="en").annotate(text)}
    assert {t for t, _ in got} == {"Barack Obama", "Louvre", "Paris"}, got
    assert ("Barack Obama", "Person") in got and ("Paris", "Location") in got
