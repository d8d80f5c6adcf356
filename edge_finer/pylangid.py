"""py3langid as an optional veto in routing (``pip install 'edge-finer[langid]'``).

Why: our reference profiles cover the 51 languages with text in ``../shared/data``; a text in
a language outside them (Dutch, Polish, Indonesian ...) is matched to its closest reference
language, and when that is an installed one, the only guard left is the calibration of that
language.  py3langid ships its model inside its wheel (no download) and knows 97+ languages, so
when the n-grams pick an installed language for text that is not typical of it, and py3langid
is sure of another language it knows, the router answers "unknown" instead.  Measured by
``benchmarks/routing.py`` (scenario "never seen"): it halves the share of such text routed to an
installed bundle and changes nothing for the languages of the references.

Only a veto, never a vote: it misreads the low-resource languages this project is for.  The
model (~1 s to load) is read on the first text that needs it, not on start.
``EDGE_FINER_LANGID=0`` turns it off even when installed.
"""
from __future__ import annotations

import importlib.util
import os
import threading
from typing import Any

from .cld3 import Cld3Result
from .languages import canonical

ENV_VAR = "EDGE_FINER_LANGID"


class LangidVoter:
    """text → :class:`~edge_finer.cld3.Cld3Result` (normalised probability), loaded lazily."""

    name = "py3langid"

    def __init__(self) -> None:
        self._ident: Any = None
        self._known: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._ident is None:
            with self._lock:
                if self._ident is None:
                    from py3langid import langid  # type: ignore[import-not-found]

                    # 0.4 reads its model as plain arrays (no pickle); older releases unpickled it
                    # and are not used (load_voter checks)
                    ident = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)
                    self._known = frozenset(canonical(c) for c in ident.nb_classes)
                    self._ident = ident
        return self._ident

    def knows(self, language: str) -> bool:
        self._load()
        return canonical(language) in self._known

    def __call__(self, text: str) -> Cld3Result:
        lang, prob = self._load().classify(text)
        return Cld3Result(canonical(str(lang)), float(prob), float(prob) >= 0.5, str(lang))


def load_voter() -> LangidVoter | None:
    """The voter when py3langid is installed and not turned off (nothing is loaded yet)."""
    if os.environ.get(ENV_VAR, "1").strip().lower() in ("0", "no", "false", "off"):
        return None
    if importlib.util.find_spec("py3langid") is None:
        return None
    try:
        from importlib.metadata import version

        major, minor = (int(x) for x in version("py3langid").split(".")[:2])
    except (ValueError, ImportError, LookupError):
        return None
    if (major, minor) < (0, 4):  # unpickles its model
        return None
    return LangidVoter()
