"""Load on ``edge-finer serve`` over loopback: requests/s, p50/p95 latency and the server's peak
RSS for one-sentence requests and for 100-sentence batches, with 1 and 8 concurrent clients; then
an overload (many more clients than workers plus queue) where every request must be answered
exactly once, 200 or 503 + Retry-After, nothing lost or duplicated.

Bounded: a fixed number of requests per scenario, every request with a timeout, each scenario on
a fresh server (127.0.0.1, a free port) that the benchmark stops itself.  The client is a small
asyncio program (httpx) on the same machine: its CPU time is part of what is measured.

    python -m benchmarks.serve_load [--requests 400] [--batches 24] [--batch-size 100] [--quick] [--out DIR]

Writes ``serve_load.json`` and ``serve_load.md`` (default: ``benchmarks/results/``).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.report import save_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BUNDLE, LANG = "masakhaner2-swa", "sw"
DEV = ROOT.parent / "shared" / "data" / "masakhaner2" / "swa" / "dev.conll"
FALLBACK = [
    "Rais Samia Suluhu Hassan alikutana na wajumbe jijini Dodoma siku ya Jumatatu.",
    "Waziri Mkuu Kassim Majaliwa amesema Tanzania itashirikiana na Kenya katika biashara.",
    "Mkutano huo ulifanyika Arusha mwezi Machi mwaka 2023 chini ya Umoja wa Mataifa.",
    "Timu ya Simba ilishinda mechi dhidi ya Yanga katika uwanja wa Benjamin Mkapa.",
]
URL = re.compile(r"open (http://\S+/) in a browser")


def sentences() -> tuple[list[str], str]:
    """Swahili dev sentences (MasakhaNER 2.0, tokens joined by spaces), or a built-in few."""
    if DEV.is_file():
        out, words = [], []
        for line in DEV.read_text(encoding="utf-8").splitlines() + [""]:
            if line.strip():
                words.append(line.split()[0])
            elif words:
                out.append(" ".join(words))
                words = []
        if out:
            return out, f"MasakhaNER 2.0 Swahili dev ({len(out)} sentences)"
    return FALLBACK, "4 built-in Swahili sentences"


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        info["cpu_model"] = fields.get("Model name", "?").strip()
        flags = set(fields.get("Flags", "").split())
        info["avx2"], info["avx512_vnni"], info["avx_vnni"] = "avx2" in flags, "avx512_vnni" in flags, "avx_vnni" in flags
    except (OSError, subprocess.SubprocessError):
        info["cpu_model"] = platform.processor() or "?"
    try:
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return info


class Server:
    """``edge-finer serve`` on a free loopback port, started and stopped by the benchmark."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "EDGE_FINER_SHIPPED": "1", "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "serve", "--port", "0", "--bundles", BUNDLE,
                                      *args], cwd=str(ROOT), env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")), daemon=True).start()
        self.errors: list[str] = []
        threading.Thread(target=lambda: self.errors.extend(iter(self.proc.stderr.readline, "")), daemon=True).start()
        deadline = time.monotonic() + 60
        self.url = ""
        while not self.url:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"edge-finer serve did not start: {''.join(self.errors)}")
            found = [m.group(1) for line in list(self.lines) for m in [URL.search(line)] if m]
            self.url = found[0] if found else ""
            time.sleep(0.05)

    def peak_rss_mb(self) -> float | None:
        """The server process's peak resident memory so far (Linux VmHWM)."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
        except OSError:
            return None
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def drive(url: str, bodies: list[dict], clients: int, *, timeout: float = 300.0) -> dict[str, Any]:
    """Send every body once, ``clients`` at a time (each client waits for its answer before its
    next request); record each answer by its X-Request-Id."""
    import httpx

    queue: asyncio.Queue = asyncio.Queue()
    for k, body in enumerate(bodies):
        queue.put_nowait((k, body))
    answers: dict[int, list] = {}
    latencies: list[float] = []
    problems: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(c: httpx.AsyncClient) -> None:
        while True:
            try:
                k, body = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t0 = time.perf_counter()
            try:
                res = await c.post("/v1/annotate", json=body, headers={"X-Request-Id": f"req-{k}"})
            except httpx.HTTPError as exc:
                problems.append(f"req-{k}: {type(exc).__name__}: {exc}")
                continue
            took = time.perf_counter() - t0
            rid = res.headers.get("x-request-id", "")
            if rid != f"req-{k}":
                problems.append(f"req-{k}: answered as {rid!r}")
            answers.setdefault(k, []).append((res.status_code, res.headers.get("retry-after"), res.content))
            if res.status_code == 200:
                latencies.append(took)

    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as c:
        await asyncio.gather(*(client(c) for _ in range(clients)))
    wall = time.perf_counter() - t0
    statuses: dict[int, int] = {}
    for k, body in enumerate(bodies):
        got = answers.get(k, [])
        if len(got) != 1:
            problems.append(f"req-{k}: {len(got)} answers")
            continue
        status, retry_after, content = got[0]
        statuses[status] = statuses.get(status, 0) + 1
        if status == 200:
            ans = json.loads(content)
            texts = body["text"] if isinstance(body["text"], list) else [body["text"]]
            results = ans["results"] if isinstance(body["text"], list) else [ans]
            if [r["text_chars"] for r in results] != [len(t) for t in texts]:
                problems.append(f"req-{k}: the answer is not for this request's text")
        elif status == 503:
            if not (retry_after or "").isdigit():
                problems.append(f"req-{k}: 503 without Retry-After")
        else:
            problems.append(f"req-{k}: status {status}: {content[:200]!r}")
    return {"wall_s": wall, "latencies": latencies, "statuses": statuses, "problems": problems}


def scenario(name: str, bodies: list[dict], clients: int, sentences_per_request: int, server_args: list[str],
             warm: dict) -> dict[str, Any]:
    server = Server(*server_args)
    try:
        import httpx

        t0 = time.perf_counter()
        first = httpx.post(server.url + "v1/annotate", json=warm, timeout=120)
        first_s = time.perf_counter() - t0
        assert first.status_code == 200, first.text
        run = asyncio.run(drive(server.url, bodies, clients))
        health = httpx.get(server.url + "v1/health", timeout=30).json()
        rss = server.peak_rss_mb()
    finally:
        server.stop()
    lat = run["latencies"]
    ok = run["statuses"].get(200, 0)
    row = {
        "scenario": name, "clients": clients, "requests": len(bodies), "sentences_per_request": sentences_per_request,
        "server": " ".join(server_args), "statuses": {str(k): v for k, v in sorted(run["statuses"].items())},
        "requests_per_s": round(ok / run["wall_s"], 2), "sentences_per_s": round(ok * sentences_per_request / run["wall_s"], 1),
        "p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
        "p95_ms": round(1000 * pct(lat, 0.95), 1) if lat else None,
        "max_ms": round(1000 * max(lat), 1) if lat else None,
        "wall_s": round(run["wall_s"], 2), "first_request_ms": round(1000 * first_s, 1), "peak_rss_mb": rss,
        "server_refused": health.get("refused"), "problems": run["problems"][:20], "problem_count": len(run["problems"]),
    }
    print(f"{name}: {row['requests_per_s']} req/s, p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms, "
          f"statuses {row['statuses']}, peak RSS {rss} MB, problems {len(run['problems'])}", flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=400, help="one-sentence requests per scenario")
    ap.add_argument("--batches", type=int, default=24, help="batch requests per scenario")
    ap.add_argument("--batch-size", type=int, default=100, help="sentences per batch request")
    ap.add_argument("--overload-clients", type=int, default=64)
    ap.add_argument("--overload-requests", type=int, default=640)
    ap.add_argument("--quick", action="store_true", help="a few requests only (smoke test)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.quick:
        args.requests, args.batches, args.batch_size, args.overload_clients, args.overload_requests = 16, 4, 10, 16, 48
    sents, source = sentences()
    single = [{"text": sents[k % len(sents)], "lang": LANG} for k in range(args.requests)]
    batches = [{"text": [sents[(k * args.batch_size + j) % len(sents)] for j in range(args.batch_size)], "lang": LANG}
               for k in range(args.batches)]
    warm = {"text": sents[0], "lang": LANG}
    default = ["--workers", "2", "--queue", "16"]
    info = machine()
    rows = []
    for clients in (1, 8):
        rows.append(scenario(f"1 sentence, {clients} client{'s' if clients > 1 else ''}", single, clients, 1, default, warm))
    for clients in (1, 8):
        rows.append(scenario(f"{args.batch_size} sentences, {clients} client{'s' if clients > 1 else ''}", batches,
                             clients, args.batch_size, default, warm))
    overload = [{"text": sents[k % len(sents)], "lang": LANG} for k in range(args.overload_requests)]
    rows.append(scenario(f"overload: {args.overload_clients} clients", overload, args.overload_clients, 1,
                         ["--workers", "1", "--queue", "4"], warm))
    over = rows[-1]
    answered_once = over["problem_count"] == 0 and set(over["statuses"]) <= {"200", "503"}
    data = {"machine": info, "text": source, "bundle": BUNDLE, "lang": LANG,
            "threads": {"onnxruntime_per_bundle": 1, "server_workers": "2 (overload: 1, queue 4)",
                        "client": "1 asyncio process (httpx)"},
            "note": ("2-core machine shared with another engineer's training job, which kept both cores busy "
                     "(the load average at start is in machine); client and server share the same cores."),
            "rows": rows, "overload_every_request_answered_once_200_or_503": answered_once,
            "overload_503_matches_server_count": over["statuses"].get("503", 0) == over["server_refused"]}
    save_results(args.out, "serve_load", data, markdown(data))
    problems = sum(r["problem_count"] for r in rows)
    return 0 if problems == 0 and answered_once else 1


def markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        "# `edge-finer serve` under load (loopback)",
        "",
        f"Machine: {m.get('cpu_model', '?')}, {m.get('cpus')} CPUs, avx2 {'yes' if m.get('avx2') else 'no'}, "
        f"avx512_vnni {'yes' if m.get('avx512_vnni') else 'no'}; Python {m.get('python')}, onnxruntime "
        f"{m.get('onnxruntime', '?')}; load average at start {m.get('load_average_at_start')}.",
        f"{data['note']}",
        f"Text: {data['text']}; bundle `{data['bundle']}` (requests give `lang: {data['lang']}`). Threads: "
        f"onnxruntime {data['threads']['onnxruntime_per_bundle']} per bundle, server workers "
        f"{data['threads']['server_workers']}, client {data['threads']['client']}.",
        "Each scenario: a fresh server, one warm-up request (model load, 'first'), then a fixed number of "
        "requests; latency is per request, from the client's send to the full answer.",
        "",
        "| scenario | clients | requests | req/s | sentences/s | p50 ms | p95 ms | max ms | first ms | statuses | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        statuses = ", ".join(f"{k}: {v}" for k, v in r["statuses"].items())
        lines.append(f"| {r['scenario']} | {r['clients']} | {r['requests']} | {r['requests_per_s']} | "
                     f"{r['sentences_per_s']} | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} | "
                     f"{r['first_request_ms']} | {statuses} | {r['peak_rss_mb']} |")
    over = data["rows"][-1]
    lines += [
        "",
        f"Overload (server `{over['server']}`): every request answered exactly once, 200 or 503 with Retry-After, "
        f"each answer carrying its own X-Request-Id and its own text's length: "
        f"**{'yes' if data['overload_every_request_answered_once_200_or_503'] else 'NO'}**; the server's count of "
        f"refusals ({over['server_refused']}) equals the 503s the client saw: "
        f"**{'yes' if data['overload_503_matches_server_count'] else 'NO'}**. Problems in all scenarios: "
        f"{sum(r['problem_count'] for r in data['rows'])}. The overload clients ignore Retry-After and send their "
        "next request as soon as they have an answer: the latency of the admitted requests then includes the CPU "
        "that this flood of refusals takes from the same two (already busy) cores.",
        "",
        "Rerun: `python -m benchmarks.serve_load` (about two minutes; `--quick` for a smoke run).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
