"""Names of the languages the router can recognise, and how to get a bundle for one.

The router names a language even when no bundle for it is installed ("mr (Marathi): no bundle
installed; install it with `edge-finer bundles install mahaner-mr`" when the catalogue lists
one, else "build one with ..."), so it needs a name for every language of its reference
profiles (:mod:`edge_finer.langrefs`): the languages with text in ``../shared/data``.  Codes are
BCP-47 as bundles use them (ISO 639-1 where one exists, else ISO 639-3); ``scripts`` are the
ISO 15924 codes each language is written in, which the reference build records for each
profile.  Plain data and stdlib only: this module is read on every routed start.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import NamedTuple


class Language(NamedTuple):
    name: str
    iso639_3: str
    scripts: tuple[str, ...]


LANGUAGES: dict[str, Language] = {
    # MultiCoNER v2 (train and dev, or dev only)
    "en": Language("English", "eng", ("Latn",)),
    "de": Language("German", "deu", ("Latn",)),
    "sv": Language("Swedish", "swe", ("Latn",)),
    "es": Language("Spanish", "spa", ("Latn",)),
    "fr": Language("French", "fra", ("Latn",)),
    "it": Language("Italian", "ita", ("Latn",)),
    "pt": Language("Portuguese", "por", ("Latn",)),
    "uk": Language("Ukrainian", "ukr", ("Cyrl",)),
    "fa": Language("Persian", "fas", ("Arab",)),
    "zh": Language("Chinese", "zho", ("Hani",)),
    "hi": Language("Hindi", "hin", ("Deva",)),
    "bn": Language("Bengali", "ben", ("Beng",)),
    # IL-NER
    "or": Language("Odia", "ory", ("Orya",)),
    "te": Language("Telugu", "tel", ("Telu",)),
    "ur": Language("Urdu", "urd", ("Arab",)),
    # MasakhaNER 2.0
    "bm": Language("Bambara", "bam", ("Latn",)),
    "bbj": Language("Ghomálá'", "bbj", ("Latn",)),
    "ee": Language("Ewe", "ewe", ("Latn",)),
    "fon": Language("Fon", "fon", ("Latn",)),
    "ha": Language("Hausa", "hau", ("Latn",)),
    "ig": Language("Igbo", "ibo", ("Latn",)),
    "rw": Language("Kinyarwanda", "kin", ("Latn",)),
    "lg": Language("Luganda", "lug", ("Latn",)),
    "luo": Language("Dholuo", "luo", ("Latn",)),
    "mos": Language("Mossi", "mos", ("Latn",)),
    "ny": Language("Chichewa", "nya", ("Latn",)),
    "pcm": Language("Nigerian Pidgin", "pcm", ("Latn",)),
    "sn": Language("Shona", "sna", ("Latn",)),
    "sw": Language("Swahili", "swa", ("Latn",)),
    "tn": Language("Setswana", "tsn", ("Latn",)),
    "tw": Language("Twi", "twi", ("Latn",)),
    "wo": Language("Wolof", "wol", ("Latn",)),
    "xh": Language("Xhosa", "xho", ("Latn",)),
    "yo": Language("Yoruba", "yor", ("Latn",)),
    "zu": Language("Zulu", "zul", ("Latn",)),
    # GUIT-AsTourNE, MahaNER, EverestNER, FiNE-MiBBiC samples
    "as": Language("Assamese", "asm", ("Beng",)),
    "mr": Language("Marathi", "mar", ("Deva",)),
    "ne": Language("Nepali", "nep", ("Deva",)),
    "bho": Language("Bhojpuri", "bho", ("Deva",)),
    "bpy": Language("Bishnupriya Manipuri", "bpy", ("Beng",)),
    "hne": Language("Chhattisgarhi", "hne", ("Deva",)),
    "lus": Language("Mizo", "lus", ("Latn",)),
    # text/ (unlabelled sentences)
    "gu": Language("Gujarati", "guj", ("Gujr",)),
    "kn": Language("Kannada", "kan", ("Knda",)),
    "mag": Language("Magahi", "mag", ("Deva",)),
    "mai": Language("Maithili", "mai", ("Deva",)),
    "ml": Language("Malayalam", "mal", ("Mlym",)),
    "pa": Language("Punjabi", "pan", ("Guru",)),
    "sa": Language("Sanskrit", "san", ("Deva",)),
    "sd": Language("Sindhi", "snd", ("Arab",)),
    "ta": Language("Tamil", "tam", ("Taml",)),
}

_BY_ISO3 = {lang.iso639_3: code for code, lang in LANGUAGES.items()}
_BY_ISO3.update({"ori": "or", "pes": "fa", "cmn": "zh", "npi": "ne", "swh": "sw"})  # macro/individual codes


def canonical(code: str) -> str:
    """The table's code for a BCP-47 or ISO 639-3 code (``hin`` → ``hi``, ``hi-IN`` → ``hi``);
    an unknown code comes back lower-cased, so a bundle of any language can still be routed."""
    c = code.strip().lower().replace("_", "-")
    if c in LANGUAGES:
        return c
    base = c.split("-")[0]
    if base in LANGUAGES:
        return base
    return _BY_ISO3.get(base, c)


def name_of(code: str) -> str:
    """English name of a language code, or the code itself."""
    lang = LANGUAGES.get(canonical(code))
    return lang.name if lang else code


def recipes_dir() -> Path | None:
    """The ``recipes/`` folder of a source checkout (a wheel does not ship one)."""
    here = Path(__file__).resolve().parent.parent / "recipes"
    return here if here.is_dir() else None


_BCP47_LINE = re.compile(r'^\s*bcp47\s*=\s*"([^"]+)"', re.MULTILINE)


@functools.lru_cache(maxsize=None)
def _recipes_by_language(folder: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(Path(folder).glob("*.toml")):
        try:
            m = _BCP47_LINE.search(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
        if m and not path.name.startswith(("demo", "template")):
            found.setdefault(canonical(m.group(1)), path.name)
    return found


def recipe_for(code: str) -> str | None:
    """``recipes/NAME.toml`` when the source checkout holds a recipe for the language."""
    folder = recipes_dir()
    if folder is None:
        return None
    name = _recipes_by_language(str(folder)).get(canonical(code))
    return f"recipes/{name}" if name else None


def no_bundle_line(code: str) -> str:
    """The one line said when a text is named as a language that has no installed bundle: how
    to install one from the catalogue when it lists one, else how to build one."""
    from .catalogue import for_language

    offers = for_language(code)
    if offers:
        names = " or ".join(f"`edge-finer bundles install {e.name}`" for e in offers[:3])
        terms = " (non-commercial licence)" if all(e.non_commercial for e in offers[:3]) else ""
        return f"{code} ({name_of(code)}): no bundle installed; install it with {names}{terms}"
    recipe = recipe_for(code)
    how = f"`edge-finer build {recipe}`" if recipe else "`edge-finer build RECIPE.toml`"
    return f"{code} ({name_of(code)}): no bundle installed; build one with {how} (see README, 'Building bundles')"
