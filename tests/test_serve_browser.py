"""The page of ``edge-finer serve`` driven in a real headless Chromium (Debian's ``chromium``,
driven by Playwright with ``executable_path``: no browser is ever downloaded).

What a user does: paste a Hindi and a Swahili text and see the same spans as the API returns,
switch fine/coarse labels, switch to the table, download every format and read it back, drop
a large file and watch progress then cancel it, read Urdu right to left, use it on a phone-sized
screen and with the keyboard alone.  Entities are never hard-coded (bundles may be rebuilt while
this runs): every expectation comes from the API of the same server, in the same run.

Skipped, with the reason, only where no chromium binary exists; CI installs Debian's package.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="the 'serve' extra (starlette, uvicorn) is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (the 'test' extra) is not installed")
pytest.importorskip("playwright", reason="playwright (the 'test' extra) is not installed")

CHROMIUM = os.environ.get("EDGE_FINER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    pytest.skip("no chromium binary (install Debian's: apt-get install chromium); browser tests skipped",
                allow_module_level=True)

from playwright.sync_api import Page, sync_playwright  # noqa: E402
from serve_process import running_server  # noqa: E402

from edge_finer.pretokenize import split_words  # noqa: E402

pytestmark = pytest.mark.allow_network  # loopback only: the server listens on 127.0.0.1

HINDI = ("प्रधानमंत्री नरेंद्र मोदी ने सोमवार को दिल्ली में अधिकारियों से मुलाकात की।\n"
         "मुंबई में रिलायंस इंडस्ट्रीज के मुकेश अंबानी ने नई परियोजना की घोषणा की।")
SWAHILI = ("Rais Samia Suluhu Hassan alikutana na wajumbe jijini Dodoma siku ya Jumatatu.\n"
           "Waziri Mkuu Kassim Majaliwa amesema Tanzania itashirikiana na Kenya.")
URDU = "پاکستان کے وزیر اعظم نے اسلام آباد میں ایک اجلاس کی صدارت کی۔"
SCREENSHOT = os.environ.get("EDGE_FINER_SCREENSHOT")  # e.g. docs/img/serve.png: where to save the README's picture


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("serve-home")
    env = {k: v for k, v in os.environ.items() if k != "EDGE_FINER_BUNDLES"}
    env.update(EDGE_FINER_SHIPPED="1", XDG_DATA_HOME=str(home / "data"), XDG_CACHE_HOME=str(home / "cache"))
    with running_server("--workers", "2", env=env) as srv:
        yield srv


@pytest.fixture(scope="module")
def api(server):
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    outside: list[str] = []
    pg.on("request", lambda r: None if r.url.startswith(server.url) or r.url.startswith(("data:", "blob:"))
          else outside.append(r.url))
    pg.goto(server.url)
    pg.wait_for_selector("body[data-ready]")
    yield pg
    assert not outside, f"the page fetched from elsewhere: {outside}"
    assert not errors, errors
    context.close()


# -- helpers --------------------------------------------------------------------------------


def annotate_in_page(page: Page, text: str) -> None:
    page.evaluate("delete document.body.dataset.entities")
    page.fill("#text", text)
    page.click("#run")
    page.wait_for_selector("body[data-entities]:not(.busy)", timeout=120_000)


def marks(page: Page) -> list[dict]:
    return page.eval_on_selector_all("mark.ent", """ms => ms.map(m => ({
        start: Number(m.dataset.start), end: Number(m.dataset.end), label: m.dataset.label, text: m.textContent}))""")


def api_spans(api, text: str, granularity: str = "fine", **kw) -> list[dict]:
    res = api.post("/v1/annotate", json={"text": text, "granularity": granularity, **kw})
    assert res.status_code == 200, res.text
    return [{k: e[k] for k in ("start", "end", "label", "text")} for e in res.json()["entities"]]


def choose(page: Page, name: str, value: str) -> None:
    page.check(f"input[name={name}][value={value}]")


def download(page: Page, fmt: str, tmp_path: Path) -> str:
    with page.expect_download() as info:
        page.click(f"button[data-format={fmt}]")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    return path.read_text(encoding="utf-8")


# -- what a user does -----------------------------------------------------------------------


@pytest.mark.parametrize("text, lang", [(HINDI, "hi"), (SWAHILI, "sw")], ids=["hindi", "swahili"])
def test_pasted_text_shows_the_apis_spans_in_both_granularities(page: Page, api, text: str, lang: str):
    annotate_in_page(page, text)
    expected = api_spans(api, text)
    assert expected, "the bundle finds something in this text"
    assert marks(page) == expected
    routing = api.post("/v1/detect", json={"text": text}).json()["segments"][0]
    detected = page.inner_text("#detected")
    assert f"({lang})" in detected and routing["bundle"] in detected
    legend = page.eval_on_selector_all("#legend li", "ls => ls.map(l => l.dataset.label)")
    assert sorted(legend) == sorted({e["label"] for e in expected})

    choose(page, "granularity", "coarse")
    assert marks(page) == api_spans(api, text, "coarse")
    choose(page, "view", "table")
    assert page.is_visible("#table") and not page.is_visible("#highlighted")
    rows = page.eval_on_selector_all("#table tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.textContent))")
    assert [(r[1], r[2]) for r in rows] == [(e["text"], e["label"]) for e in api_spans(api, text, "coarse")]
    tip = page.get_attribute("mark.ent", "data-tip")
    assert "score" in tip


def test_every_download_reads_back_as_the_apis_entities(page: Page, api, tmp_path: Path):
    annotate_in_page(page, HINDI)
    entities = api.post("/v1/annotate", json={"text": HINDI}).json()["entities"]
    want = [(e["start"], e["end"], e["label"], e["text"]) for e in entities]

    records = [json.loads(line) for line in download(page, "jsonl", tmp_path).splitlines()]
    assert [r["text"] for r in records] == HINDI.splitlines()
    got = [(r["offset"] + e["start"], r["offset"] + e["end"], e["label"], e["text"]) for r in records for e in r["entities"]]
    assert got == want
    assert all(e["coarse_label"] for r in records for e in r["entities"])

    brat = download(page, "brat", tmp_path)
    rows = [line.split("\t") for line in brat.splitlines()]
    got = [(int(span.split()[1]), int(span.split()[2]), span.split()[0], text) for _, span, text in rows]
    assert got == want and all(HINDI[s:e] == t for s, e, _, t in got)

    tsv = download(page, "tsv", tmp_path).splitlines()
    assert tsv[0].split("\t") == ["source", "line", "start", "end", "label", "score", "text"]
    got = [(int(r[2]), int(r[3]), r[4], r[6]) for r in (line.split("\t") for line in tsv[1:])]
    assert got == want

    conll = download(page, "conll", tmp_path)
    spans, current = [], None
    for line in conll.splitlines():
        if not line:
            current = None
            continue
        word, tag = line.split("\t")
        if tag.startswith("B-"):
            current = [tag[2:], [word]]
            spans.append(current)
        elif tag.startswith("I-") and current is not None:
            current[1].append(word)
        else:
            current = None
    words = [HINDI[s:e] for s, e in split_words(HINDI.replace("\n", " "))]
    assert len([ln for ln in conll.splitlines() if ln]) == len(words)
    assert [(label, "".join(ws)) for label, ws in spans] == [(e[2], e[3].replace(" ", "")) for e in want]

    choose(page, "granularity", "coarse")
    coarse = download(page, "tsv", tmp_path).splitlines()[1:]
    assert [r.split("\t")[4] for r in coarse] == [e["coarse_label"] for e in entities]


def chunks(text: str, size: int) -> list[tuple[int, str]]:
    """The page's pieces of a long text (app.js ``chunks``) for a text of lines shorter than ``size``."""
    out, start = [], 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            nl = text.rfind("\n", start, end)
            end = nl + 1 if nl >= start else end
        out.append((start, text[start:end]))
        start = end
    return out


def test_dropped_file_large_input_progress_cancel_and_resume(page: Page, api, server, tmp_path: Path):
    lines = [f"{line} ({k})" for k in range(60) for line in SWAHILI.splitlines()]
    text = "\n".join(lines) + "\n"
    big = tmp_path / "habari.txt"
    big.write_text(text, encoding="utf-8")
    page.goto(server.url + "?chunk=1500")
    page.wait_for_selector("body[data-ready]")
    page.evaluate("""text => {  // dropped on the page, as from a file manager
        const dt = new DataTransfer();
        dt.items.add(new File([text], "habari.txt", {type: "text/plain"}));
        document.getElementById("text").dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", text)
    page.wait_for_function("() => document.getElementById('text').value.length > 0")
    assert page.input_value("#text") == text

    # a full run in pieces: the same entities as the API gives for the same pieces
    page.click("#run")
    page.wait_for_selector("body[data-entities]:not(.busy)", timeout=120_000)
    bundle = api.post("/v1/detect", json={"text": text}).json()["segments"][0]["bundle"]
    want = []
    for offset, piece in chunks(text, 1500):
        for e in api.post("/v1/annotate", json={"text": piece, "bundle": bundle}).json()["entities"]:
            want.append({"start": e["start"] + offset, "end": e["end"] + offset, "label": e["label"], "text": e["text"]})
    assert len(chunks(text, 1500)) > 5
    assert marks(page) == want
    jsonl = download(page, "jsonl", tmp_path)
    assert [json.loads(r)["source"] for r in jsonl.splitlines()][:1] == ["habari.txt"]

    # a longer file in small pieces, cancelled part way (Esc): progress was shown, what was found
    # so far stays, with offsets still right
    longer = tmp_path / "habari-ndefu.txt"
    longer.write_text(text * 10, encoding="utf-8")
    page.goto(server.url + "?chunk=300")
    page.wait_for_selector("body[data-ready]")
    page.set_input_files("#files", str(longer))  # chosen with "Open files…"
    page.wait_for_function("() => document.getElementById('text').value.length > 0")
    page.click("#run")
    page.wait_for_function("() => document.getElementById('progress').value > 0.05", timeout=60_000)
    assert page.is_visible("#progress")
    page.keyboard.press("Escape")
    page.wait_for_selector("body[data-entities]:not(.busy)", timeout=60_000)
    assert "Cancelled" in page.inner_text("#status")
    partial = marks(page)
    assert partial and partial[-1]["end"] < 0.9 * len(text) * 10
    assert all((text * 10)[m["start"]:m["end"]] == m["text"] for m in partial)
    assert not page.is_visible("#progress")


def test_urdu_reads_right_to_left_even_without_a_bundle(page: Page):
    page.fill("#text", URDU)
    assert page.eval_on_selector("#text", "t => getComputedStyle(t).direction") == "rtl"
    page.evaluate("delete document.body.dataset.entities")
    page.click("#run")
    page.wait_for_selector("body[data-entities]:not(.busy)", timeout=60_000)
    assert "unknown" in page.inner_text("#detected").lower()
    assert page.inner_text("#highlighted") == URDU
    assert page.eval_on_selector("#highlighted", "h => getComputedStyle(h).direction") == "rtl"


def test_phone_sized_screen_has_no_sideways_scrolling(browser, server, api):
    context = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    page.goto(server.url)
    page.wait_for_selector("body[data-ready]")
    annotate_in_page(page, HINDI)
    for view in ("text", "table"):
        choose(page, "view", view)
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], (view, width)
    assert page.eval_on_selector("#run", "b => b.getBoundingClientRect().height") >= 36  # a finger can hit it
    context.close()


def test_keyboard_alone(page: Page, api):
    page.focus("#text")
    page.keyboard.insert_text(SWAHILI)
    page.evaluate("delete document.body.dataset.entities")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("body[data-entities]:not(.busy)", timeout=120_000)
    expected = api_spans(api, SWAHILI)
    assert marks(page) == expected
    page.focus("input[name=granularity][value=fine]")  # arrow keys move within the radio group
    page.keyboard.press("ArrowRight")
    assert page.is_checked("input[name=granularity][value=coarse]")
    assert [m["label"] for m in marks(page)] == [e["label"] for e in api_spans(api, SWAHILI, "coarse")]
    page.focus("button[data-format=tsv]")  # the last control before the text
    page.keyboard.press("Tab")  # entities are focusable, each with its label and score
    focused = page.evaluate("document.activeElement.dataset.tip || ''")
    assert "score" in focused
    tab_order = []
    page.focus("#text")
    for _ in range(12):
        page.keyboard.press("Tab")
        tab_order.append(page.evaluate("document.activeElement.id || document.activeElement.name || ''"))
    assert {"lang", "taxonomy", "bundle", "threshold", "run"} <= set(tab_order), tab_order


def test_screenshot(page: Page, tmp_path: Path):
    """The picture in the README (saved where EDGE_FINER_SCREENSHOT says, when it is set)."""
    annotate_in_page(page, HINDI)
    page.set_viewport_size({"width": 1000, "height": 760})
    path = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "serve.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
