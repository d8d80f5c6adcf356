"""The runtime must not pull in the build stack: a Pi has no torch, and importing it would cost
seconds and hundreds of MB even where it is installed."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("torch", "transformers", "optimum", "quantize", "seqeval")

#: Run first in every child: forbid the network there too, then run the snippet, then report
#: which forbidden top-level modules ended up imported.
PRELUDE = """
import socket
class _Blocked(socket.socket):
    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        if fileno is None and family != socket.AF_UNIX:
            raise RuntimeError("network socket opened")
        super().__init__(family, type, proto, fileno)
socket.socket = _Blocked
def _refuse(*a, **k):
    raise RuntimeError("network connection attempted")
socket.create_connection = _refuse
"""
EPILOGUE = """
import json, sys
print("MODULES=" + json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def _run_child(code: str, tiny_bundle: Path, isolated_user_dirs: Path) -> tuple[set[str], str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env["EDGE_FINER_BUNDLES"] = str(tiny_bundle.parent)
    proc = subprocess.run([sys.executable, "-c", PRELUDE + code + EPILOGUE], capture_output=True,
                          text=True, env=env, cwd=str(isolated_user_dirs), timeout=120)
    assert proc.returncode == 0, proc.stderr
    marker = [ln for ln in proc.stdout.splitlines() if ln.startswith("MODULES=")]
    assert marker, proc.stdout
    return set(json.loads(marker[-1][len("MODULES="):])), proc.stdout


def test_library_use_imports_no_build_stack(tiny_bundle: Path, isolated_user_dirs: Path):
    code = f"""
import edge_finer
from edge_finer import Annotator
ents = Annotator.load({str(tiny_bundle)!r}).annotate("Ravi Shankar visited Delhi.")
assert [(e.text, e.label) for e in ents] == [("Ravi Shankar", "PER"), ("Delhi", "LOC")], ents
ents = edge_finer.load(lang="en").annotate_batch(["Infosys Limited"])
assert ents[0][0].label == "ORG"
"""
    modules, _ = _run_child(code, tiny_bundle, isolated_user_dirs)
    assert "onnxruntime" in modules and "tokenizers" in modules, "the child really annotated"
    assert not modules & set(FORBIDDEN), sorted(modules & set(FORBIDDEN))


def test_import_edge_finer_is_cheap(tiny_bundle: Path, isolated_user_dirs: Path):
    modules, _ = _run_child("import edge_finer\nedge_finer.__version__\n", tiny_bundle, isolated_user_dirs)
    assert not modules & {"onnxruntime", "tokenizers", "numpy", *FORBIDDEN}


@pytest.mark.parametrize("argv", [
    ["edge-finer", "annotate", "--text", "Ravi in Delhi", "--bundle", "tiny-en"],
    ["edge-finer", "annotate", "--text", "Ravi in Delhi", "--lang", "en", "--format", "table"],
    ["edge-finer", "bundles", "verify"],
    ["edge-finer", "bundles", "list"],
])
def test_cli_imports_no_build_stack(tiny_bundle: Path, isolated_user_dirs: Path, argv):
    code = f"""
import sys
sys.argv = {argv!r}
import cli
try:
    cli.main()
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
"""
    modules, out = _run_child(code, tiny_bundle, isolated_user_dirs)
    if argv[1] == "annotate":
        assert "Delhi" in out
        assert "onnxruntime" in modules
    assert not modules & set(FORBIDDEN), sorted(modules & set(FORBIDDEN))


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            found.add(str(node.args[0].value).split(".")[0])
    return found


def test_runtime_sources_never_import_the_build_stack():
    files = sorted((ROOT / "edge_finer").glob("*.py"))
    assert len(files) >= 10
    for path in files:
        bad = _imported_modules(path) & set(FORBIDDEN)
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_cli_imports_the_build_stack_only_inside_build():
    tree = ast.parse((ROOT / "cli.py").read_text(encoding="utf-8"))
    for node in tree.body:  # module level: nothing from the build stack
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            assert not {n.split(".")[0] for n in names} & set(FORBIDDEN), ast.dump(node)
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name != "build"):
        mods = set()
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and node.module:
                mods.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                mods.update(a.name.split(".")[0] for a in node.names)
        assert not mods & set(FORBIDDEN), (fn.name, mods)


def test_static_check_catches_a_forbidden_import(tmp_path: Path):
    """The checker itself must be able to fail."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from transformers import AutoModel\n    import torch.nn\n"
                   "    importlib.import_module('optimum.onnxruntime')\n", encoding="utf-8")
    assert _imported_modules(bad) >= {"transformers", "torch", "optimum"}


# -- the suite's own network guard (conftest.no_network) -----------------------------------


def test_network_is_blocked_during_tests():
    import socket

    from netguard import NetworkBlocked

    with pytest.raises(NetworkBlocked):
        socket.create_connection(("192.0.2.1", 80), timeout=0.01)
    with pytest.raises(NetworkBlocked):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(NetworkBlocked):
        socket.socket()
    a, b = socket.socketpair()  # local IPC stays allowed
    a.close()
    b.close()


@pytest.mark.allow_network
def test_allow_network_marker_opts_out():
    import socket

    from netguard import NetworkBlocked

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # creating is allowed; nothing connects
    s.close()
    assert not issubclass(socket.socket, NetworkBlocked)
