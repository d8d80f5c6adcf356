"""Agent tools: the JSON service (``edge_finer.service``), the MCP server (``edge-finer mcp``)
driven over stdio by the official MCP client, and the smolagents tool in a scripted agent loop.

Entities are never hard-coded for the shipped bundles (they may be rebuilt while this runs):
every answer is compared with the Python API's, computed in the same run.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_finer.annotator import Annotator
from edge_finer.errors import BundleNotFound, EdgeFinerError
from edge_finer.service import (ANNOTATE_INPUTS, ANNOTATE_OUTPUT_SCHEMA, DETECT_OUTPUT_SCHEMA, LIST_OUTPUT_SCHEMA,
                                MODEL_CARD_URI, RequestError, Service, entity_json, request_schema)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [e["name"] for e in json.loads((ROOT / "bundles" / "index.json").read_text(encoding="utf-8"))["bundles"]]

#: One real sentence per script: Latin (English), Devanagari (Hindi), Odia.
SCRIPTS = {
    "en": "Barack Obama visited the Louvre in Paris with Angela Merkel on Monday.",
    "hi": "प्रधानमंत्री नरेंद्र मोदी ने सोमवार को दिल्ली में अधिकारियों से मुलाकात की।",
    "or": "ମୁଖ୍ୟମନ୍ତ୍ରୀ ନବୀନ ପଟ୍ଟନାୟକ ସୋମବାର ଭୁବନେଶ୍ୱରରେ ଏକ ବୈଠକ କରିଥିଲେ।",
}
TINY_TEXT = "Ravi Shankar works at Infosys Limited.\nअमित शाह visited Delhi and Shillong."


def expected(bundle: str, text: str, granularity: str = "fine", threshold: float | None = None) -> list[dict]:
    """The Python API's entities for ``text`` in the service's (= the CLI's jsonl) form."""
    return [entity_json(e, granularity) for e in Annotator.load(bundle, threshold=threshold).annotate(text)]


def validate(instance: dict, schema: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(instance, schema)


@pytest.fixture
def shipped_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_FINER_SHIPPED", "1")


# -- the service: one schema ----------------------------------------------------------------


def test_service_entities_are_the_python_apis_and_the_cli_jsonls(bundles_env: Path):
    """Same entities as ``Annotator.annotate``; same entity objects as ``annotate -f jsonl``."""
    from typer.testing import CliRunner

    import cli

    svc = Service()
    line = "Ravi Shankar Kumar works at Infosys Limited in Guwahati."
    for granularity in ("fine", "coarse"):
        got = svc.annotate(line, bundle="tiny-en", granularity=granularity)
        assert got["entities"] == expected("tiny-en", line, granularity)
        assert [e["text"] for e in got["entities"]] == ["Ravi Shankar Kumar", "Infosys Limited", "Guwahati"]
        res = CliRunner().invoke(cli.app, ["annotate", "-b", "tiny-en", "-t", line, "-f", "jsonl",
                                           "-g", granularity])
        assert res.exit_code == 0, res.output
        assert got["entities"] == json.loads(res.stdout)["entities"]
    assert "coarse_label" not in got["entities"][0] and got["entities"][0]["label"] == "Person"
    # routed: the CLI's routing object, and offsets into the whole text (several lines)
    got = svc.annotate(TINY_TEXT)
    assert got["routing"]["bundle"] == "tiny-en" and got["routing"]["by"]
    res = CliRunner().invoke(cli.app, ["annotate", "-t", TINY_TEXT.splitlines()[0], "-f", "jsonl"])
    assert json.loads(res.stdout)["routing"] == svc.annotate(TINY_TEXT.splitlines()[0])["routing"]
    assert got["entities"] == expected("tiny-en", TINY_TEXT)
    assert all(TINY_TEXT[e["start"]:e["end"]] == e["text"] for e in got["entities"])
    assert got["bundles"] == [{"name": "tiny-en", "language": "en", "taxonomy": "tiny", "threshold": 0.0,
                               "licence": "CC0-1.0"}]
    validate(got, ANNOTATE_OUTPUT_SCHEMA)


def test_service_explicit_bundle_threshold_and_script_warning(bundles_env: Path):
    svc = Service()
    got = svc.annotate(TINY_TEXT, lang="en", threshold=0.99)
    assert got["routing"] == {"language": "en", "bundle": "tiny-en", "confidence": 1.0, "by": "lang argument"}
    assert got["entities"] == expected("tiny-en", TINY_TEXT, threshold=0.99)
    assert got["bundles"][0]["threshold"] == 0.99 and got["warnings"] == []
    deva = "अमित शाह दिल्ली गए और शिलांग में रहे।"
    got = svc.annotate(deva, bundle="tiny-en")
    assert len(got["warnings"]) == 1 and "Deva" in got["warnings"][0] and "tiny-en" in got["warnings"][0]
    assert got["routing"]["by"] == "bundle argument"
    validate(got, ANNOTATE_OUTPUT_SCHEMA)


def test_service_refuses_bad_requests_with_one_clear_line(bundles_env: Path, tmp_path: Path):
    svc = Service(max_text_bytes=1000)
    cases = [
        (dict(text=5), "text must be a string, not integer"),
        (dict(text=None), "text must be a string, not null"),
        (dict(text="x", lang=3), "lang must be a string"),
        (dict(text="x", bundle="nope"), "unknown bundle 'nope'; installed bundles: tiny-en"),
        (dict(text="x", bundle=str(bundles_env)), "paths are not accepted"),  # a real bundle folder
        (dict(text="x", lang="xx"), "no bundle installed for language 'xx'"),
        (dict(text="x", granularity="medium"), "granularity must be one of 'fine', 'coarse', not 'medium'"),
        (dict(text="x", route=1), "route must be one of"),
        (dict(text="x", threshold=2), "threshold must be between 0 and 1, not 2"),
        (dict(text="x", threshold="high"), "threshold must be a number between 0 and 1, not string"),
        (dict(text="x", threshold=True), "threshold must be a number"),
        (dict(text="a" * 1001), "text too large (at least 1,001 bytes of UTF-8): this server accepts at most 1,000 bytes"),
        (dict(text="१२३ ४५६"), "cannot tell the language of the text"),
    ]
    for kwargs, fragment in cases:
        with pytest.raises(EdgeFinerError) as info:
            svc.annotate(**kwargs)
        message = str(info.value)
        assert fragment in message, (kwargs.keys(), message)
        assert "\n" not in message and len(message) < 1200
    with pytest.raises(RequestError, match="give lang to choose"):  # the hint speaks the tool's language
        svc.annotate("१२३ ४५६")
    with pytest.raises(RequestError, match="unknown argument.*'texte'.*arguments: text, lang"):
        svc.call("annotate", {"texte": "x"})
    with pytest.raises(RequestError, match="missing argument.*'text'"):
        svc.call("annotate", {"lang": "en"})
    with pytest.raises(RequestError, match="unknown method 'delete'"):
        svc.call("delete", {})
    with pytest.raises(RequestError, match="must be a JSON object, not array"):
        svc.call("annotate", ["x"])
    with pytest.raises(BundleNotFound):
        svc.model_card("nope")
    assert svc.call("annotate", {"text": "Ravi in Delhi"})["entities"][0]["text"] == "Ravi"


def test_size_cap_counts_utf8_bytes_and_long_texts_are_annotated_whole(bundles_env: Path):
    svc = Service(max_text_bytes=30_000)
    assert svc.check_text("a" * 30_000)
    with pytest.raises(RequestError, match=r"too large \(30,003 bytes of UTF-8\): this server accepts at most 30,000 "):
        svc.check_text("अ" * 10_001)  # 30,003 bytes of UTF-8 in 10,001 characters
    with pytest.raises(RequestError, match=r"too large \(2,000,001 bytes of UTF-8\): .* at most 2,000,000 bytes per"):
        Service().check_text("a" * 1_999_999 + "é")  # the cap and the size would both read 2.00 MB
    assert svc.check_text("अ" * 10_000) and svc.check_text("\ud800" * 10_000)  # lone surrogates count too
    # a long text below the cap: several internal chunks of 512 sentences, offsets into the whole
    text = "Ravi visited Delhi. " * 1400
    got = svc.annotate(text, bundle="tiny-en")
    assert len(got["entities"]) == 2800 and got["entities"] == expected("tiny-en", text)
    assert got["text_chars"] == len(text) and text[got["entities"][-1]["start"]:].startswith("Delhi")


def test_service_detect_and_sentence_routing_match_the_router(shipped_on, monkeypatch: pytest.MonkeyPatch):
    from edge_finer.router import Router

    svc = Service(use_cld3=False)
    router = Router.installed(use_cld3=False)
    mixed = SCRIPTS["en"] + " " + SCRIPTS["hi"] + "\n" + SCRIPTS["or"]
    det = svc.detect_language(mixed, route="sentence", evidence=True)
    validate(det, DETECT_OUTPUT_SCHEMA)
    assert [(s["start"], s["end"], s["bundle"]) for s in det["segments"]] == [
        (g.start, g.end, g.decision.bundle) for g in router.route_sentences(mixed)]
    assert all("evidence" in s for s in det["segments"]) and det["languages"] == router.languages
    got = svc.annotate(mixed, route="sentence")
    validate(got, ANNOTATE_OUTPUT_SCHEMA)
    # each bundle annotates its sentences together (int8 activations are quantized per batch, so
    # the Python API is asked the same way: one annotate_batch per bundle)
    by_bundle: dict[str, list[tuple[int, int]]] = {}
    for seg in got["routing"]["segments"]:
        by_bundle.setdefault(seg["bundle"], []).append((seg["start"], seg["end"]))
    assert len(by_bundle) == 3
    want = []
    for bundle, spans in by_bundle.items():
        found = Annotator.load(bundle).annotate_batch([mixed[a:b] for a, b in spans])
        want += [dict(entity_json(e, "fine"), start=e.start + a, end=e.end + a)
                 for (a, _), ents in zip(spans, found) for e in ents]
    assert got["entities"] == sorted(want, key=lambda e: (e["start"], e["end"]))
    assert {b["name"] for b in got["bundles"]} == {s["bundle"] for s in got["routing"]["segments"]}


def test_service_lists_bundles_and_sees_bundles_installed_later(tiny_bundle: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch):
    import shutil

    from tiny_bundle import make_tiny_bundle

    root = tmp_path / "env"
    bundles_env = Path(shutil.copytree(tiny_bundle, root / tiny_bundle.name))
    monkeypatch.setenv("EDGE_FINER_BUNDLES", str(root))
    svc = Service()
    listing = svc.list_bundles()
    validate(listing, LIST_OUTPUT_SCHEMA)
    (row,) = listing["bundles"]
    assert row["name"] == "tiny-en" and row["types"] == {"LOC": "Location", "ORG": "Group", "PER": "Person"}
    assert row["model_card"] == MODEL_CARD_URI.format(name="tiny-en") and row["non_commercial"] is False
    assert listing["languages"] == [{"code": "en", "name": "Test", "bundles": ["tiny-en"]}]
    assert svc.model_card("tiny-en") == (bundles_env / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert svc.annotate("Ravi in Delhi")["routing"]["bundle"] == "tiny-en"
    # a second language installed while the service runs: listed, routed and annotated at once
    make_tiny_bundle(root / "tiny-hi", name="tiny-hi", lang="hi", iso3="hin", scripts=("Deva",), taxonomy="tiny2")
    assert [b["name"] for b in svc.list_bundles()["bundles"]] == ["tiny-en", "tiny-hi"]
    # a sentence, not a line of names: "अमित शाह दिल्ली गए" scores as close to Nepali as to Hindi,
    # and the router now calls that unknown rather than guess (ROUTE_MARGIN, docs/routing.md)
    got = svc.annotate("अमित शाह दिल्ली गए और शिलांग में रहे।")
    assert got["routing"]["bundle"] == "tiny-hi" and got["entities"][0]["text"] == "अमित शाह"
    assert "hi Test: tiny-hi (tiny2)" in svc.annotate_description()


def test_request_schema_is_json_schema_of_the_inputs():
    schema = request_schema(ANNOTATE_INPUTS)
    validate({"text": "x", "lang": None, "granularity": "coarse", "threshold": 0.5}, schema)
    jsonschema = pytest.importorskip("jsonschema")
    for bad in ({}, {"text": 1}, {"text": "x", "granularity": "medium"}, {"text": "x", "threshold": 2},
                {"text": "x", "nope": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


# -- import graph ---------------------------------------------------------------------------


def test_runtime_never_imports_the_agent_packages(tiny_bundle: Path, isolated_user_dirs: Path):
    from test_imports import _imported_modules, _run_child

    agent_pkgs = {"mcp", "mcp_types", "smolagents"}
    for path in sorted((ROOT / "edge_finer").glob("*.py")) + [ROOT / "edge_finer" / "agent" / "__init__.py",
                                                              ROOT / "cli.py"]:
        assert not _imported_modules(path) & agent_pkgs, path
    code = """
import edge_finer.agent, edge_finer.service, cli
r = edge_finer.service.Service().annotate("Ravi Shankar visited Delhi with his family last week.")
assert [e["text"] for e in r["entities"]] == ["Ravi Shankar", "Delhi"], r
"""
    modules, _ = _run_child(code, tiny_bundle, isolated_user_dirs)
    assert "onnxruntime" in modules and not modules & agent_pkgs, sorted(modules & agent_pkgs)


def test_missing_extras_give_one_line_with_the_install_hint(tiny_bundle: Path, isolated_user_dirs: Path,
                                                            monkeypatch: pytest.MonkeyPatch):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EDGE_FINER_BUNDLES": str(tiny_bundle.parent)}
    code = "import sys\nsys.modules['mcp'] = None\nsys.argv = ['edge-finer', 'mcp']\nimport cli\ncli.main()\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=str(isolated_user_dirs), timeout=120)
    assert proc.returncode == 1 and proc.stdout == "" and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: edge-finer mcp needs the 'mcp' package")
    assert "pip install 'edge-finer[agent]'" in proc.stderr
    # the smolagents adapter, imported from Python: an ImportError carrying the same hint
    monkeypatch.setitem(sys.modules, "smolagents", None)
    monkeypatch.delitem(sys.modules, "edge_finer.agent.smol", raising=False)
    with pytest.raises(ImportError, match=r"needs the 'smolagents' package.*pip install 'edge-finer\[agent\]'"):
        import edge_finer.agent.smol  # noqa: F401


# -- the MCP server, driven by the official client over stdio -------------------------------


def _server_command(*args: str) -> tuple[str, list[str]]:
    """``edge-finer mcp ARGS`` as the console script runs it (``cli:main``), with the network
    refused inside the server process too."""
    from test_imports import PRELUDE

    code = PRELUDE + f"import sys\nsys.argv = ['edge-finer', 'mcp', *{list(args)!r}]\nimport cli\ncli.main()\n"
    return sys.executable, ["-c", code]


def _server_env(isolated_user_dirs: Path, **extra: str) -> dict[str, str]:
    return {"PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(isolated_user_dirs / "data"),
            "XDG_CACHE_HOME": str(isolated_user_dirs / "cache"), **extra}


def test_mcp_server_over_stdio(shipped_on, isolated_user_dirs: Path, tmp_path: Path):
    pytest.importorskip("mcp")
    import anyio
    from mcp import ClientSession, StdioServerParameters, stdio_client
    from mcp.shared.exceptions import MCPError

    command, args = _server_command()
    params = StdioServerParameters(command=command, args=args, cwd=str(tmp_path),
                                   env=_server_env(isolated_user_dirs, EDGE_FINER_SHIPPED="1"))
    errlog = open(tmp_path / "server.stderr", "w+", encoding="utf-8")
    svc = Service()  # the same bundles, in this process

    async def session() -> None:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as s:
            init = await s.initialize()
            assert init.server_info.name == "edge-finer"

            # tools: the service's inputs and output schemas; descriptions name languages and taxonomies
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert set(tools) == {"annotate", "detect_language", "list_bundles"}
            ann = tools["annotate"]
            assert set(ann.input_schema["properties"]) == set(ANNOTATE_INPUTS)
            assert ann.input_schema["required"] == ["text"]
            assert ann.output_schema == ANNOTATE_OUTPUT_SCHEMA
            assert tools["detect_language"].output_schema == DETECT_OUTPUT_SCHEMA
            assert tools["list_bundles"].output_schema == LIST_OUTPUT_SCHEMA
            assert ann.annotations.read_only_hint is True and ann.annotations.open_world_hint is False

            async def ok(name: str, arguments: dict) -> dict:
                res = await s.call_tool(name, arguments)  # the client checks it against the output schema
                assert not res.is_error, res.content
                assert json.loads(res.content[0].text) == res.structured_content
                return res.structured_content

            async def tool_error(arguments: dict, *fragments: str) -> str:
                res = await s.call_tool("annotate", arguments)
                assert res.is_error and res.structured_content is None, res
                message = res.content[0].text
                for f in fragments:
                    assert f in message, (f, message)
                # ... and the server is still up for the next call
                assert (await ok("annotate", {"text": "Barack Obama visited Paris.", "lang": "en"}))["entities"]
                return message

            # three scripts, routed and explicit, against the Python API
            for lang, text in SCRIPTS.items():
                got = await ok("annotate", {"text": text})
                bundle = got["routing"]["bundle"]
                assert got["routing"]["language"] == lang, got["routing"]
                assert got["entities"] == expected(bundle, text), lang
                assert all(text[e["start"]:e["end"]] == e["text"] for e in got["entities"])
                coarse = await ok("annotate", {"text": text, "lang": lang, "granularity": "coarse", "threshold": 0})
                assert coarse["entities"] == expected(bundle, text, "coarse", threshold=0.0)
                assert coarse["routing"]["by"] == "lang argument" and coarse["bundles"][0]["threshold"] == 0.0
                det = await ok("detect_language", {"text": text, "evidence": True})
                assert det["segments"][0]["bundle"] == bundle and det["segments"][0]["evidence"]["script"]
            assert (await ok("annotate", {"text": SCRIPTS["en"]}))["entities"], "the English bundle finds names"
            mixed = SCRIPTS["en"] + " " + SCRIPTS["hi"]
            assert await ok("annotate", {"text": mixed, "route": "sentence"}) == svc.annotate(mixed, route="sentence")

            listing = await ok("list_bundles", {})
            assert [b["name"] for b in listing["bundles"]] == [b["name"] for b in svc.list_bundles()["bundles"]]
            # the tool description tells the calling model every language and taxonomy there is
            assert len(listing["languages"]) >= 7 and len(listing["taxonomies"]) >= 3
            for lang in listing["languages"]:
                assert f"{lang['code']} {lang['name']}: {lang['bundles'][0]} (" in ann.description, lang
            for taxonomy in listing["taxonomies"]:
                assert f"{taxonomy['name']} ({len(taxonomy['types'])} types" in ann.description, taxonomy
            assert set(SHIPPED) <= {b["name"] for b in listing["bundles"]}
            for b in listing["bundles"]:
                assert b["types"] and b["licence"] and b["figures"].get("student_int8", {}).get("f1"), b["name"]
                assert b["non_commercial"] == b["name"].startswith("masakhaner2")

            # model cards as resources
            uris = {str(r.uri) for r in (await s.list_resources()).resources}
            assert {MODEL_CARD_URI.format(name=n) for n in SHIPPED} <= uris
            card = await s.read_resource(MODEL_CARD_URI.format(name="il-ner-hi"))
            card_file = ROOT / "bundles" / "il-ner-hi" / "MODEL_CARD.md"
            assert card.contents[0].text == card_file.read_text(encoding="utf-8")
            assert card.contents[0].mime_type == "text/markdown"
            with pytest.raises(MCPError, match="unknown bundle 'nope'"):
                await s.read_resource(MODEL_CARD_URI.format(name="nope"))

            # bad arguments: tool errors with a clear message, never a dead server
            await tool_error({"text": "x", "bundle": "nope"}, "unknown bundle 'nope'", "multiconer2-en")
            await tool_error({"text": "x", "bundle": str(ROOT / "bundles" / "multiconer2-en")},
                             "paths are not accepted")
            await tool_error({"text": 123}, "text", "valid string")
            await tool_error({"text": "x", "threshold": "high"}, "threshold")
            await tool_error({"text": "x", "threshold": 1.5}, "threshold")
            await tool_error({"text": "x", "granularity": "medium"}, "granularity")
            await tool_error({"text": "x", "lang": ["en"]}, "lang")
            await tool_error({}, "text", "required")
            await tool_error({"text": "12345 67890"}, "cannot tell the language", "give lang")
            await tool_error({"text": "Barack Obama " * 800_000}, "text too large (at least 10.40 MB",
                             "at most 2.00 MB per call")
            res = await s.call_tool("detect_language", {"text": "x", "route": "paragraph"})
            assert res.is_error and "route" in res.content[0].text

    async def bounded() -> None:
        with anyio.fail_after(400):
            await session()

    anyio.run(bounded)
    errlog.seek(0)
    stderr = errlog.read()
    assert "Traceback" not in stderr, stderr


def test_mcp_stdout_carries_only_the_protocol(shipped_on, isolated_user_dirs: Path, tmp_path: Path):
    """Raw JSON-RPC, by hand: every line the server writes on stdout is a protocol message, even
    when the text triggers warnings and errors; closing stdin ends the server cleanly.  Also
    ``--max-text-mb``: the cap it sets is the one enforced and stated."""
    pytest.importorskip("mcp")
    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

    command, args = _server_command("--max-text-mb", "0.005")
    env = {**os.environ, **_server_env(isolated_user_dirs, EDGE_FINER_SHIPPED="1")}
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": HANDSHAKE_PROTOCOL_VERSIONS[-1], "capabilities": {},
            "clientInfo": {"name": "raw-test", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "annotate", "arguments": {
            "text": SCRIPTS["hi"], "bundle": "multiconer2-en"}}},  # the wrong script: a warning
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "annotate", "arguments": {
            "text": "Barack Obama visited Paris. " * 200}}},  # 5,600 bytes: over the 5,000-byte cap
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "no_such_tool", "arguments": {}}},
        {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "annotate", "arguments": {
            "text": "Barack Obama visited Paris. " * 150}}},  # 4,200 bytes: under it
    ]
    import threading

    stderr_path = tmp_path / "server.stderr"
    with open(stderr_path, "w", encoding="utf-8") as stderr_file:
        proc = subprocess.Popen([command, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=stderr_file, text=True, encoding="utf-8", env=env, cwd=str(tmp_path))
        watchdog = threading.Timer(300, proc.kill)  # a hung server fails the test instead of hanging it
        watchdog.start()
        lines: list[str] = []
        try:
            for request in requests:  # one at a time: closing stdin cancels what is still running
                proc.stdin.write(json.dumps(request) + "\n")
                proc.stdin.flush()
                while "id" in request:
                    line = proc.stdout.readline()
                    assert line, "the server closed stdout"
                    lines.append(line)
                    if json.loads(line).get("id") == request["id"]:
                        break
            proc.stdin.close()
            lines += proc.stdout.readlines()
            assert proc.wait(timeout=60) == 0
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
    stderr = stderr_path.read_text(encoding="utf-8")
    assert "Traceback" not in stderr, stderr
    messages = [json.loads(line) for line in lines]  # every line the server wrote parses
    assert messages and all(m.get("jsonrpc") == "2.0" for m in messages)
    replies = {m["id"]: m for m in messages if "id" in m}
    assert set(replies) == {1, 2, 3, 4, 5}
    warned = replies[2]["result"]
    assert not warned["isError"] and "Deva" in warned["structuredContent"]["warnings"][0]
    refused = replies[3]["result"]
    assert refused["isError"] and "this server accepts at most 5,000 bytes per call" in refused["content"][0]["text"]
    assert replies[4]["result"]["isError"] and "no_such_tool" in replies[4]["result"]["content"][0]["text"]
    assert not replies[5]["result"]["isError"] and replies[5]["result"]["structuredContent"]["entities"]


# -- smolagents -----------------------------------------------------------------------------


def test_smolagents_tool_declares_and_returns_the_service_schema(bundles_env: Path):
    pytest.importorskip("smolagents")
    from smolagents.tools import validate_tool_arguments

    from edge_finer.agent.smol import EdgeFinerTool

    tool = EdgeFinerTool()  # smolagents validates the declaration on construction
    tool.validate_arguments()
    assert set(tool.inputs) == set(ANNOTATE_INPUTS)
    for name, spec in ANNOTATE_INPUTS.items():
        assert tool.inputs[name]["type"] == spec["type"]
        assert tool.inputs[name].get("nullable", False) == spec.get("nullable", False)
    assert tool.output_type == "object" and tool.output_schema == ANNOTATE_OUTPUT_SCHEMA
    assert "en Test: tiny-en (tiny)" in tool.description and "Person: PER" in tool.description
    assert "def annotate_entities(text: string" in tool.to_code_prompt()

    got = tool.forward(TINY_TEXT)
    validate(got, tool.output_schema)
    assert got == Service().annotate(TINY_TEXT) and got["entities"] == expected("tiny-en", TINY_TEXT)
    assert tool(text=TINY_TEXT, granularity="coarse", sanitize_inputs_outputs=True)["entities"] == expected(
        "tiny-en", TINY_TEXT, "coarse")
    validate_tool_arguments(tool, {"text": "x", "threshold": 0.5, "lang": None})
    with pytest.raises(TypeError):
        validate_tool_arguments(tool, {"text": 5})
    with pytest.raises(ValueError, match="required"):
        validate_tool_arguments(tool, {"lang": "en"})
    with pytest.raises(EdgeFinerError, match="granularity must be one of"):
        tool.forward("x", granularity="medium")
    small = EdgeFinerTool(max_text_bytes=100)
    with pytest.raises(EdgeFinerError, match="at most 100 bytes"):
        small.forward("Ravi " * 30)


def test_scripted_agent_loop_calls_the_tool(bundles_env: Path):
    """A smolagents ToolCallingAgent whose model is a script (no LLM): it first calls the tool with
    a bundle that does not exist, reads the error it gets back, calls again correctly, reads the
    entities from the observation and answers with the people found."""
    pytest.importorskip("smolagents")
    from smolagents import ToolCallingAgent
    from smolagents.models import (ChatMessage, ChatMessageToolCall, ChatMessageToolCallFunction, MessageRole,
                                   Model)

    from edge_finer.agent.smol import EdgeFinerTool

    text = "Ravi Shankar visited Delhi with Zoë. Infosys Limited paid."

    def observation(messages) -> str:
        last = messages[-1]
        assert last.role == MessageRole.TOOL_RESPONSE
        return "".join(part["text"] for part in last.content)

    class ScriptedModel(Model):
        def __init__(self) -> None:
            super().__init__(model_id="scripted")
            self.turns = 0
            self.seen: list[str] = []

        def generate(self, messages, stop_sequences=None, response_format=None, tools_to_call_from=None, **kw):
            self.turns += 1
            assert [t.name for t in tools_to_call_from or []][:1] == ["annotate_entities"]
            if self.turns == 1:
                call = ("annotate_entities", {"text": text, "bundle": "tiny-xx"})
            elif self.turns == 2:
                self.seen.append(observation(messages))
                call = ("annotate_entities", {"text": text, "lang": "en", "granularity": "fine"})
            else:
                seen = observation(messages)
                self.seen.append(seen)
                result = ast.literal_eval(seen.split("Observation:\n", 1)[1])
                people = [e["text"] for e in result["entities"] if e["coarse_label"] == "Person"]
                call = ("final_answer", {"answer": people})
            name, arguments = call
            return ChatMessage(role=MessageRole.ASSISTANT, content=None, tool_calls=[ChatMessageToolCall(
                function=ChatMessageToolCallFunction(name=name, arguments=arguments), id=f"call_{self.turns}",
                type="function")])

    model = ScriptedModel()
    agent = ToolCallingAgent(tools=[EdgeFinerTool()], model=model, max_steps=5, verbosity_level=-1)
    answer = agent.run("Who are the people in this text? " + text)
    assert model.turns == 3
    assert "unknown bundle 'tiny-xx'" in model.seen[0] and "installed bundles: tiny-en" in model.seen[0]
    people = [e["text"] for e in expected("tiny-en", text) if e["coarse_label"] == "Person"]
    assert people == ["Ravi Shankar", "Zoë"] and answer == people


def test_readme_registers_the_server_with_options_that_exist():
    """The README's host snippet is valid JSON and starts `edge-finer mcp` with real options."""
    from typer.testing import CliRunner

    import cli

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Agents (MCP, smolagents)", 1)[1].split("\n## ", 1)[0]
    config = json.loads(section.split("```json", 1)[1].split("```", 1)[0])
    server = config["mcpServers"]["edge-finer"]
    assert Path(server["command"]).name == "edge-finer" and server["args"][0] == "mcp"
    help_text = CliRunner().invoke(cli.app, ["mcp", "--help"]).output
    for arg in server["args"][1:]:
        if arg.startswith("--"):
            assert arg in help_text, arg
    assert "from edge_finer.agent.smol import EdgeFinerTool" in section
