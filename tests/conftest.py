"""Shared fixtures for the runtime tests.

Every test runs with its own user data and cache folders (so nothing a test installs leaks into
another test or into the real home folder), with ``EDGE_FINER_BUNDLES`` cleared unless the test
sets it, with the annotator cache empty, and with network sockets refused: the runtime promises
to work offline, and the suite proves it never even tries the network.  A module that needs the
network may opt out with ``pytestmark = pytest.mark.allow_network``.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

from netguard import block_network  # noqa: E402
from tiny_bundle import make_tiny_bundle  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_network: do not block sockets for this test/module")


# -- isolation ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Fresh XDG data/cache folders, no EDGE_FINER_BUNDLES, empty annotator cache."""
    home = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.delenv("EDGE_FINER_BUNDLES", raising=False)
    monkeypatch.setenv("EDGE_FINER_SHIPPED", "0")  # tests of shipped bundles turn them back on
    monkeypatch.setenv("EDGE_FINER_LANGID", "0")  # py3langid (optional) vetoes only where a test asks
    # no catalogue unless a test gives one: the repository's catalogue/ must not change hints
    monkeypatch.setenv("EDGE_FINER_CATALOGUE", str(home / "no-catalogue"))
    from edge_finer.annotator import clear_cache

    clear_cache()
    yield home
    clear_cache()


@pytest.fixture(autouse=True)
def no_network(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Make any attempt to open an internet socket fail loudly.

    Local sockets (AF_UNIX, and sockets wrapping an existing descriptor, as ``socketpair`` and
    asyncio's self-pipe make) stay allowed: they are not network use.
    """
    if request.node.get_closest_marker("allow_network"):
        yield
        return
    block_network(monkeypatch, "a test")
    yield


# -- bundles --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bundles_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the session's tiny bundles (usable as EDGE_FINER_BUNDLES)."""
    return tmp_path_factory.mktemp("bundles")


@pytest.fixture(scope="session")
def tiny_bundle(bundles_root: Path) -> Path:
    """The standard tiny bundle: max_length 16, stride 4, int8, threshold 0."""
    return make_tiny_bundle(bundles_root / "tiny-en")


@pytest.fixture(scope="session")
def wide_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model with a window large enough that no test sentence is ever cut."""
    return make_tiny_bundle(tmp_path_factory.mktemp("wide") / "tiny-wide", name="tiny-wide",
                            max_length=512, stride=0)


@pytest.fixture
def bundle_copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny bundle that a test may tamper with."""
    dest = tmp_path / "copy" / tiny_bundle.name
    shutil.copytree(tiny_bundle, dest)
    return dest


@pytest.fixture
def annotator(tiny_bundle: Path):
    from edge_finer.annotator import Annotator
    from edge_finer.bundle import open_bundle

    return Annotator(open_bundle(tiny_bundle))


@pytest.fixture
def wide_annotator(wide_bundle: Path):
    from edge_finer.annotator import Annotator
    from edge_finer.bundle import open_bundle

    return Annotator(open_bundle(wide_bundle))


@pytest.fixture
def bundles_env(tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """EDGE_FINER_BUNDLES pointing at the folder holding (only) the tiny bundle."""
    monkeypatch.setenv("EDGE_FINER_BUNDLES", str(tiny_bundle.parent))
    return tiny_bundle
