"""CLD3 as one optional vote in routing (``pip install 'edge-finer[cld3]'``).

CLD3 is strong on the ~100 languages it was trained on and blind to most of the languages this
project is for, so it only ever votes among languages it knows (:data:`CLD3_LANGUAGES`); the
router never lets it overrule a language it cannot recognise.  ``gcld3`` is tried first (it
builds on Python 3.11+ when protoc and libprotobuf-dev are installed), then ``pycld3``.
``EDGE_FINER_CLD3=0`` turns the vote off even when a binding is installed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

ENV_VAR = "EDGE_FINER_CLD3"

#: The languages CLD3's released model identifies (its README), as base codes.  "-Latn"
#: variants (romanised Hindi, Russian, ...) are reported by CLD3 but are not votes for a
#: bundle of the native script, so they are left out.
CLD3_LANGUAGES = frozenset("""
af am ar bg bn bs ca ceb co cs cy da de el en eo es et eu fa fi fil fr fy ga gd gl gu ha haw hi
hmn hr ht hu hy id ig is it iw ja jv ka kk km kn ko ku ky la lb lo lt lv mg mi mk ml mn mr ms mt
my ne nl no ny pa pl ps pt ro ru sd si sk sl sm sn so sq sr st su sv sw ta te tg th tr uk ur uz
vi xh yi yo zh zu
""".split())
#: CLD3's codes that differ from the BCP-47 ones bundles use.
_TO_BCP47 = {"iw": "he", "fil": "tl", "jw": "jv"}


@dataclass(frozen=True)
class Cld3Result:
    language: str  # BCP-47 base code, or "" when CLD3 answered a romanised variant
    probability: float
    reliable: bool
    raw: str

    def to_json(self) -> dict[str, object]:
        return {"language": self.raw, "probability": round(self.probability, 4), "reliable": self.reliable}


def knows(language: str) -> bool:
    """Whether CLD3 can recognise ``language`` (a BCP-47 or CLD3 code) at all."""
    base = language.lower().split("-")[0]
    return base in CLD3_LANGUAGES or base in {v for v in _TO_BCP47.values()}


def _normalise(raw: str) -> str:
    if "-" in raw:  # "hi-Latn", "ru-Latn": not the native script
        return ""
    return _TO_BCP47.get(raw, raw)


def load_detector() -> Callable[[str], Cld3Result] | None:
    """A function text → :class:`Cld3Result`, or None when no binding is installed (or it is off)."""
    if os.environ.get(ENV_VAR, "1").strip().lower() in ("0", "no", "false", "off"):
        return None
    try:
        import gcld3  # type: ignore[import-not-found]

        identifier = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=2000)

        def detect(text: str) -> Cld3Result:
            r = identifier.FindLanguage(text=text)
            return Cld3Result(_normalise(r.language), float(r.probability), bool(r.is_reliable), r.language)

        return detect
    except ImportError:
        pass
    try:
        import cld3  # type: ignore[import-not-found]  # pycld3

        def detect_py(text: str) -> Cld3Result:
            r = cld3.get_language(text)
            if r is None:
                return Cld3Result("", 0.0, False, "und")
            return Cld3Result(_normalise(r.language), float(r.probability), bool(r.is_reliable), r.language)

        return detect_py
    except ImportError:
        return None
