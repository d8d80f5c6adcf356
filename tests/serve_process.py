"""Starting and stopping ``edge-finer serve`` as a child process, for the tests that talk to it
over loopback (the CLI tests and the browser tests)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
URL = re.compile(r"open (http://\S+/) in a browser")


def serve_command(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "cli.py"), "serve", *args]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)

    @property
    def stderr(self) -> str:
        return "".join(self.err)


@contextmanager
def running_server(*args: str, env: dict[str, str] | None = None, timeout: float = 60.0) -> Iterator[Server]:
    """A server on a free loopback port; stopped with Ctrl-C (SIGINT) on exit."""
    proc = subprocess.Popen(serve_command("--port", "0", *args), cwd=str(ROOT), env=env or dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    server = Server("", proc)
    readers = [threading.Thread(target=lambda s=s, into=into: into.extend(iter(s.readline, "")), daemon=True)
               for s, into in ((proc.stdout, server.out), (proc.stderr, server.err))]
    for r in readers:
        r.start()
    deadline = time.monotonic() + timeout
    try:
        while not server.url:
            if proc.poll() is not None:
                time.sleep(0.2)
                raise RuntimeError(f"edge-finer serve exited {proc.returncode}: {server.stderr}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"edge-finer serve did not say where it listens in time: {server.stderr}")
            found = [m.group(1) for line in list(server.out) for m in [URL.search(line)] if m]
            server.url = found[0] if found else ""
            time.sleep(0.05)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for r in readers:
            r.join(5)
