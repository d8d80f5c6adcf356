"""The web API of ``edge-finer serve``, driven in-process (no socket): the same answers as the
service and the Python API, the CLI's formats for downloads, errors as JSON with the right
status, bounded concurrency, CORS off by default, and page assets that fetch nothing.

Entities are never hard-coded for the shipped bundles (they may be rebuilt while this runs):
every answer is compared with the Python API's, computed in the same run.
"""
from __future__ import annotations

import ast
import asyncio
import json
import re
import threading
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the 'serve' extra (starlette, uvicorn) is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (the 'test' extra) is not installed")

from starlette.testclient import TestClient  # noqa: E402

from edge_finer.annotator import Annotator  # noqa: E402
from edge_finer.service import Service, entity_json  # noqa: E402
from edge_finer.web.app import STATIC, create_app  # noqa: E402
from edge_finer.web.gate import Busy, Gate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TINY = "Ravi Shankar Kumar works at Infosys Limited in Guwahati.\nअमित शाह visited Delhi and Shillong."
#: One real sentence per language whose bundle is shipped (entities come from the Python API).
HINDI = "प्रधानमंत्री नरेंद्र मोदी ने सोमवार को दिल्ली में अधिकारियों से मुलाकात की।"
SWAHILI = "Rais Samia Suluhu Hassan alikutana na wajumbe jijini Dodoma siku ya Jumatatu."


def expected(bundle: str, text: str, granularity: str = "fine", threshold: float | None = None) -> list[dict]:
    return [entity_json(e, granularity) for e in Annotator.load(bundle, threshold=threshold).annotate(text)]


@pytest.fixture
def client(bundles_env: Path):
    app = create_app(Service())
    with TestClient(app) as c:
        yield c
    app.state.gate.close()


def post(client, path: str, body, **kw):
    return client.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"}, **kw)


def check_error(res, status: int, fragment: str) -> dict:
    assert res.status_code == status, (res.status_code, res.text)
    assert res.headers["content-type"].startswith("application/json")
    body = res.json()
    assert set(body) == {"status", "error", "message"} and body["status"] == status, body
    assert fragment in body["message"], body["message"]
    return body


# -- answers: the service's, the Python API's ------------------------------------------------


def test_annotate_is_the_service_and_the_python_api(client):
    for granularity in ("fine", "coarse"):
        res = post(client, "/v1/annotate", {"text": TINY, "bundle": "tiny-en", "granularity": granularity})
        assert res.status_code == 200, res.text
        assert res.json() == Service().annotate(TINY, bundle="tiny-en", granularity=granularity)
        assert res.json()["entities"] == expected("tiny-en", TINY, granularity)
    routed = post(client, "/v1/annotate", {"text": TINY}).json()
    assert routed["routing"]["bundle"] == "tiny-en" and routed["entities"] == expected("tiny-en", TINY)
    assert all(TINY[e["start"]:e["end"]] == e["text"] for e in routed["entities"])
    cut = post(client, "/v1/annotate", {"text": TINY, "lang": "en", "threshold": 0.99}).json()
    assert cut["entities"] == expected("tiny-en", TINY, threshold=0.99)
    assert cut["bundles"][0]["threshold"] == 0.99


def test_annotate_a_list_of_texts_shares_batches(client):
    texts = [line for line in TINY.splitlines()] + ["", "Zoë in Delhi."]
    res = post(client, "/v1/annotate", {"text": texts, "lang": "en", "granularity": "coarse"})
    assert res.status_code == 200, res.text
    results = res.json()["results"]
    batch = Annotator.load("tiny-en").annotate_batch(texts)
    assert [r["entities"] for r in results] == [[entity_json(e, "coarse") for e in ents] for ents in batch]
    assert [r["text_chars"] for r in results] == [len(t) for t in texts]
    routed = post(client, "/v1/annotate", {"text": texts[:2]}).json()["results"]
    assert [r["routing"]["bundle"] for r in routed] == ["tiny-en", "tiny-en"]
    assert post(client, "/v1/annotate", {"text": []}).json() == {"results": []}
    check_error(post(client, "/v1/annotate", {"text": ["ok", 3]}), 400, "text 2 of 2 must be a string")


def test_shipped_hindi_and_swahili_match_the_python_api(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EDGE_FINER_SHIPPED", "1")
    app = create_app(Service())
    with TestClient(app) as c:
        for text, lang in ((HINDI, "hi"), (SWAHILI, "sw")):
            got = post(c, "/v1/annotate", {"text": text}).json()
            assert got["routing"]["language"] == lang, got["routing"]
            assert got["entities"] == expected(got["routing"]["bundle"], text)
            det = post(c, "/v1/detect", {"text": text}).json()
            assert det["segments"][0]["bundle"] == got["routing"]["bundle"]
    app.state.gate.close()


def test_detect_bundles_health_and_openapi(client):
    from jsonschema import Draft202012Validator

    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1") and set(doc["paths"]) == {
        "/v1/annotate", "/v1/detect", "/v1/export", "/v1/bundles", "/v1/health"}

    def valid(instance, name: str) -> None:
        schema = {**doc["components"]["schemas"][name], "components": doc["components"]}
        Draft202012Validator(schema).validate(instance)  # "#/components/..." refs resolve in it

    det = post(client, "/v1/detect", {"text": TINY, "route": "sentence", "evidence": True})
    assert det.status_code == 200 and det.json() == Service().detect_language(TINY, route="sentence", evidence=True)
    valid(det.json(), "Detection")
    bundles = client.get("/v1/bundles").json()
    assert [b["name"] for b in bundles["bundles"]] == ["tiny-en"]
    valid(bundles, "Bundles")
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["workers"] >= 1
    valid(health, "Health")
    valid(post(client, "/v1/annotate", {"text": TINY}).json(), "Annotation")
    valid(post(client, "/v1/annotate", {"text": [TINY]}).json(), "AnnotationBatch")
    valid({"status": 400, "error": "Bad Request", "message": "x"}, "Error")
    for name in ("AnnotateRequest", "DetectRequest", "ExportRequest"):  # requests the API takes are valid
        Draft202012Validator.check_schema(doc["components"]["schemas"][name])
    valid({"text": ["a", "b"], "lang": "en", "threshold": 0.5}, "AnnotateRequest")


def test_only_the_served_bundles(tiny_bundle: Path, wide_bundle: Path, monkeypatch: pytest.MonkeyPatch):
    """``serve --bundles``: the others are neither listed, nor routed to, nor reachable by name."""
    root = tiny_bundle.parent.parent / "two"
    if not root.exists():
        import shutil

        root.mkdir()
        shutil.copytree(tiny_bundle, root / "tiny-en")
        shutil.copytree(wide_bundle, root / "tiny-wide")
    monkeypatch.setenv("EDGE_FINER_BUNDLES", str(root))
    assert {b["name"] for b in Service().list_bundles()["bundles"]} == {"tiny-en", "tiny-wide"}
    svc = Service(bundles=["tiny-wide"])
    svc.check_bundles()
    app = create_app(svc)
    with TestClient(app) as c:
        assert [b["name"] for b in c.get("/v1/bundles").json()["bundles"]] == ["tiny-wide"]
        assert post(c, "/v1/annotate", {"text": TINY}).json()["routing"]["bundle"] == "tiny-wide"
        assert post(c, "/v1/annotate", {"text": TINY, "lang": "en"}).json()["bundles"][0]["name"] == "tiny-wide"
        check_error(post(c, "/v1/annotate", {"text": TINY, "bundle": "tiny-en"}), 404, "unknown bundle 'tiny-en'")
    app.state.gate.close()
    from edge_finer.errors import BundleNotFound

    with pytest.raises(BundleNotFound, match="unknown bundle.*'nope'"):
        Service(bundles=["tiny-en", "nope"]).check_bundles()


# -- errors ---------------------------------------------------------------------------------


def test_errors_are_json_with_the_right_status(client):
    check_error(client.post("/v1/annotate", content=b"{not json", headers={"Content-Type": "application/json"}),
                400, "not valid JSON")
    check_error(client.post("/v1/annotate", content=b"", headers={"Content-Type": "application/json"}), 400, "empty")
    check_error(post(client, "/v1/annotate", [1, 2]), 400, "must be a JSON object, not array")
    check_error(post(client, "/v1/annotate", {"txt": "x"}), 400, "unknown field(s) 'txt'")
    check_error(post(client, "/v1/annotate", {"lang": "en"}), 400, "missing field(s) 'text'")
    check_error(post(client, "/v1/annotate", {"text": 5}), 400, "text must be a string, not integer")
    check_error(post(client, "/v1/annotate", {"text": "x", "granularity": "medium"}), 400, "granularity must be one of")
    check_error(post(client, "/v1/annotate", {"text": "x", "threshold": 2}), 400, "threshold must be between 0 and 1")
    check_error(post(client, "/v1/annotate", {"text": "ᱥᱟᱱᱛᱟᱲ ᱵᱟᱝ"}), 400, "cannot tell the language")
    check_error(post(client, "/v1/detect", {"text": "x", "evidence": "yes"}), 400, "evidence must be true or false")
    check_error(client.post("/v1/annotate", content=b"{}", headers={"Content-Type": "text/plain"}), 415,
                "Content-Type: application/json")
    check_error(post(client, "/v1/annotate", {"text": "x", "bundle": "nope"}), 404, "unknown bundle 'nope'")
    check_error(post(client, "/v1/annotate", {"text": "x", "lang": "xx"}), 404, "no bundle installed for language 'xx'")
    check_error(client.get("/v1/nothing"), 404, "no such page or endpoint")
    check_error(client.delete("/v1/annotate"), 405, "DELETE is not allowed")
    check_error(client.post("/v1/annotate", content=b'{"text": "\xff\xfe"}', headers={"Content-Type": "application/json"}),
                422, "not UTF-8")


def test_size_caps_answer_413(bundles_env: Path):
    app = create_app(Service(max_text_bytes=1000), max_request_bytes=5000)
    with TestClient(app) as c:
        check_error(post(c, "/v1/annotate", {"text": "Delhi " * 200}), 413, "text too large")
        check_error(post(c, "/v1/annotate", {"text": ["Delhi " * 100] * 3}), 413, "text too large")
        check_error(post(c, "/v1/annotate", {"text": "x" * 6000}), 413, "request body too large")

        def chunked():  # no Content-Length: the cap holds while reading
            for _ in range(10):
                yield b" " * 1000

        check_error(c.post("/v1/annotate", content=chunked(), headers={"Content-Type": "application/json"}),
                    413, "request body too large")
        assert post(c, "/v1/annotate", {"text": "Delhi " * 100}).status_code == 200
    app.state.gate.close()
    app = create_app(Service())
    with TestClient(app) as c:
        check_error(post(c, "/v1/annotate", {"text": [""] * 10_001}), 413, "too many texts")
    app.state.gate.close()


def test_lone_surrogates_and_odd_text_are_answered(client):
    for text in ("Delhi \ud800 Shillong", "\x00Delhi", "Zoë 東京\r\nDelhi", "🙂 Delhi"):
        res = client.post("/v1/annotate", content=json.dumps({"text": text, "lang": "en"}),
                          headers={"Content-Type": "application/json"})
        assert res.status_code == 200, res.text
        got = json.loads(res.content)
        assert got["entities"] == expected("tiny-en", text)
        assert all(text[e["start"]:e["end"]] == e["text"] for e in got["entities"])


# -- limits ---------------------------------------------------------------------------------


class SlowService(Service):
    """Annotation that waits until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()
        self.started = threading.Event()

    def annotate(self, text, **kw):  # type: ignore[override]
        self.started.set()
        assert self.go.wait(30)
        return super().annotate(text, **kw)


def test_overload_answers_503_with_retry_after_and_loses_nothing(bundles_env: Path):
    svc = SlowService()
    app = create_app(svc, workers=1, queue=1)

    async def scenario() -> list:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            def one(i: int):
                return c.post("/v1/annotate", json={"text": f"Delhi {i}", "lang": "en"},
                              headers={"X-Request-Id": f"r{i}"})

            first = asyncio.ensure_future(one(0))
            while not svc.started.is_set():
                await asyncio.sleep(0.01)
            queued = asyncio.ensure_future(one(1))
            await asyncio.sleep(0.05)
            refused = await asyncio.gather(*(one(i) for i in range(2, 6)))
            health = (await c.get("/v1/health")).json()  # never queued
            svc.go.set()
            return [await first, await queued, *refused, health]

    *answers, health = asyncio.run(scenario())
    assert [r.status_code for r in answers] == [200, 200, 503, 503, 503, 503]
    assert [r.headers["x-request-id"] for r in answers] == [f"r{i}" for i in range(6)]
    for r in answers[2:]:
        assert int(r.headers["retry-after"]) >= 1 and "busy" in r.json()["message"]
    for i, r in enumerate(answers[:2]):
        assert r.json()["text_chars"] == len(f"Delhi {i}")
    assert health["running"] == 1 and health["queued"] == 1 and health["refused"] == 4
    app.state.gate.close()


def test_gate_queue_timeout_and_cancelled_waiters():
    gate = Gate(workers=1, queue=2, queue_timeout=0.2)
    release = threading.Event()

    async def scenario():
        blocker = asyncio.ensure_future(gate.run(release.wait, 5))
        await asyncio.sleep(0.05)
        with pytest.raises(Busy):  # waited longer than queue_timeout without starting
            await gate.run(lambda: 1)
        waiter = asyncio.ensure_future(gate.run(lambda: 2))
        await asyncio.sleep(0.05)
        waiter.cancel()  # the client went away: its place is given back
        await asyncio.sleep(0.05)
        assert gate.stats()["queued"] == 0
        release.set()
        assert await blocker is True
        assert await gate.run(lambda: 3) == 3

    asyncio.run(scenario())
    assert gate.stats() == {"workers": 1, "running": 0, "queued": 0, "queue": 2, "refused": 1}
    gate.close()


# -- CORS, hosts, headers -------------------------------------------------------------------


def test_no_cors_unless_asked(bundles_env: Path):
    origin = {"Origin": "http://localhost:3000"}
    app = create_app(Service())
    with TestClient(app) as c:
        res = c.get("/v1/health", headers=origin)
        assert "access-control-allow-origin" not in res.headers
        pre = c.options("/v1/annotate", headers={**origin, "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in pre.headers
    app.state.gate.close()
    app = create_app(Service(), cors_origins=["http://localhost:3000"])
    with TestClient(app) as c:
        assert c.get("/v1/health", headers=origin).headers["access-control-allow-origin"] == "http://localhost:3000"
        pre = c.options("/v1/annotate", headers={**origin, "Access-Control-Request-Method": "POST",
                                                  "Access-Control-Request-Headers": "content-type"})
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "http://localhost:3000"
        other = c.get("/v1/health", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    app.state.gate.close()


def test_loopback_host_check_and_security_headers(bundles_env: Path):
    app = create_app(Service(), allowed_hosts={"127.0.0.1", "localhost", "[::1]"})
    with TestClient(app, base_url="http://127.0.0.1:8765") as c:
        page = c.get("/")
        assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        assert c.get("/v1/health", headers={"Host": "localhost:8765"}).status_code == 200
        assert c.get("/v1/health", headers={"Host": "[::1]:8765"}).status_code == 200
        check_error(c.get("/v1/health", headers={"Host": "attacker.example"}), 400, "unexpected Host")
    app.state.gate.close()


# -- downloads: the CLI's formats -----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "conll", "brat", "tsv"])
@pytest.mark.parametrize("granularity", ["fine", "coarse"])
def test_export_is_what_the_cli_writes(client, fmt: str, granularity: str):
    from typer.testing import CliRunner

    import cli

    text = TINY + "\r\n\nZoë went to 東京 and Delhi.\n"
    entities = post(client, "/v1/annotate", {"text": text, "bundle": "tiny-en"}).json()["entities"]
    res = post(client, "/v1/export", {"text": text, "entities": entities, "format": fmt,
                                      "granularity": granularity, "source": "<text>"})
    assert res.status_code == 200, res.text
    assert "attachment" in res.headers["content-disposition"]
    cli_out = CliRunner().invoke(cli.app, ["annotate", "-b", "tiny-en", "-t", text, "-f", fmt, "-g", granularity])
    assert cli_out.exit_code == 0, cli_out.output
    assert res.content.decode("utf-8") == cli_out.stdout


def test_export_checks_the_entities(client):
    text = "Ravi in Delhi.\nInfosys"
    ok = {"start": 8, "end": 13, "label": "LOC"}
    for bad, fragment in (
        ({"start": 8, "end": 99, "label": "LOC"}, "needs 0 <= start < end <= 22"),
        ({"start": 8, "end": 13, "label": "LOC", "text": "Delha"}, "does not match"),
        ({"start": 8, "end": 13, "label": "two words"}, "without spaces"),
        ({"start": 8, "end": 20, "label": "LOC"}, "crosses a line break"),
        ({"start": 8, "end": 13, "label": "LOC", "score": 7}, "score must be"),
        ({"start": True, "end": 13, "label": "LOC"}, "must be integers"),
    ):
        check_error(post(client, "/v1/export", {"text": text, "entities": [ok, bad], "format": "brat"}), 400, fragment)
    check_error(post(client, "/v1/export", {"text": text, "entities": [], "format": "pdf"}), 400, "format must be one of")
    check_error(post(client, "/v1/export", {"text": text, "entities": [], "format": "tsv", "source": "../x"}),
                400, "source must be a file name")
    res = post(client, "/v1/export", {"text": text, "entities": [ok], "format": "brat", "source": "notes.txt"})
    assert res.text == "T1\tLOC 8 13\tDelhi\n"
    assert 'filename="notes.ann"' in res.headers["content-disposition"]


# -- the page's assets ----------------------------------------------------------------------


def test_page_assets_fetch_nothing_from_elsewhere(client):
    files = sorted(p for p in STATIC.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"index.html", "app.js", "app.css"}
    url = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}""")
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not url.findall(text), (path.name, url.findall(text))
        assert "@import" not in text and "@font-face" not in text, path.name
    page = client.get("/").text
    for ref in re.findall(r'(?:src|href)="([^"]+)"', page):
        if ref.startswith("data:") or ref.startswith("#"):
            continue
        assert ref.startswith("/"), ref
        assert client.get(ref).status_code == 200, ref


def test_static_assets_are_package_data():
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    assert "edge_finer.web" in cfg["options"]["packages"].split()
    data = cfg["options.package_data"]["edge_finer.web"].split()
    from fnmatch import fnmatch

    for path in STATIC.rglob("*"):
        if path.is_file():
            rel = path.relative_to(STATIC.parent).as_posix()
            assert any(fnmatch(rel, pattern) for pattern in data), rel
    extras = cfg["options.extras_require"]
    assert "starlette" in extras["serve"] and "uvicorn" in extras["serve"]


def test_runtime_never_imports_the_web_stack():
    """Only the `serve` command imports edge_finer.web; the runtime imports neither it nor its framework."""
    web_stack = {"starlette", "uvicorn", "fastapi", "httpx"}
    for path in sorted((ROOT / "edge_finer").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            assert not {n.split(".")[0] for n in names} & web_stack, (path.name, names)
            if isinstance(node, ast.ImportFrom) and node.level:
                assert not (node.module or "").startswith("web"), path.name
    tree = ast.parse((ROOT / "cli.py").read_text(encoding="utf-8"))
    for node in tree.body:  # cli.py imports the web package inside its command only
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            assert not any(n.startswith("edge_finer.web") or n.split(".")[0] in web_stack for n in names)


def test_a_client_that_hangs_up_while_queued_gives_its_place_back(bundles_env: Path):
    """The page's Cancel closes the connection: a request still waiting is then never run."""
    svc = SlowService()
    app = create_app(svc, workers=1, queue=2)
    ran: list[str] = []
    real = svc.annotate

    def annotate(text, **kw):
        ran.append(text)
        return real(text, **kw)

    svc.annotate = annotate  # type: ignore[method-assign]

    async def request(text: str, hang_up: asyncio.Event) -> list[dict]:
        body = json.dumps({"text": text, "lang": "en"}).encode()
        sent: list[dict] = []
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive():
            if messages:
                return messages.pop()
            await hang_up.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/v1/annotate", "raw_path": b"/v1/annotate",
                 "query_string": b"", "headers": [(b"content-type", b"application/json"), (b"host", b"127.0.0.1")],
                 "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 8765), "client": ("127.0.0.1", 5),
                 "root_path": ""}
        await app(scope, receive, send)
        return sent

    async def scenario():
        stay, leave = asyncio.Event(), asyncio.Event()
        first = asyncio.ensure_future(request("Delhi one", stay))
        while not svc.started.is_set():
            await asyncio.sleep(0.01)
        second = asyncio.ensure_future(request("Delhi two", leave))
        await asyncio.sleep(0.1)
        assert app.state.gate.stats()["queued"] == 1
        leave.set()  # the second client hangs up while waiting
        await asyncio.sleep(0.1)
        assert app.state.gate.stats()["queued"] == 0
        svc.go.set()
        return await first, await second

    first, second = asyncio.run(scenario())
    assert first[0]["status"] == 200 and second[0]["status"] == 503
    assert ran == ["Delhi one"]
    app.state.gate.close()


def test_one_shared_annotator_per_bundle_whatever_the_thresholds(client):
    """A threshold is a cut on the scores, not a new model session: clients sending many
    different values must not grow the server's memory."""
    from edge_finer import annotator as annotator_module

    for k in range(12):
        assert post(client, "/v1/annotate", {"text": TINY, "lang": "en", "threshold": k / 11}).status_code == 200
    assert post(client, "/v1/annotate", {"text": [TINY, TINY]}).status_code == 200
    paths = [key[0] for key in annotator_module._cache]
    assert len(paths) == len(set(paths)) == 1, list(annotator_module._cache)
