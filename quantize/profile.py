"""The bundle's language profile, computed from its own training text (numpy and stdlib only).

Every tenth training sentence is held out: the profile is counted from the rest and the
held-out sentences calibrate it, i.e. record how well real text of the language scores.  The
router uses that calibration to say "unknown" for text that fits no installed language, so it
must come from text the counts never saw (the dev split stays untouched for the benchmarks).
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

import numpy as np

from edge_finer.langprofile import ORDERS, TOP_NGRAMS, average_logp, ngrams, parse_profile, profile_to_json

#: Sentences this long or longer are "long" in the calibration (and in the routing benchmark).
LONG_CHARS = 20
PERCENTILES = (0.5, 1, 2, 5, 10, 50)


def build_profile(sentences: Iterable[str], language: dict[str, Any], top: int = TOP_NGRAMS) -> dict[str, Any]:
    """The ``profile.json`` document for a language, from its training sentences."""
    texts = [s for s in sentences if s.strip()]
    held = texts[9::10]
    counted = [s for i, s in enumerate(texts) if i % 10 != 9] or texts
    counts: Counter[str] = Counter()
    for s in counted:
        counts.update(ngrams(s, ORDERS))
    if not counts:
        raise ValueError("no letters in the training text; cannot build a language profile")
    total = sum(counts.values())
    # ties broken by the n-gram itself so the same text always gives the same file
    kept = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    doc = profile_to_json(dict(kept), total, {}, {"language": language, "sentences": len(counted),
                                                  "held_out": len(held)})
    profile = parse_profile(doc, "<new profile>")
    calibration: dict[str, dict[str, float]] = {}
    for name, group in (("long", [s for s in held if len(s.strip()) >= LONG_CHARS]),
                        ("short", [s for s in held if len(s.strip()) < LONG_CHARS])):
        scores = [average_logp(profile, s)[0] for s in group if ngrams(s)]
        if len(scores) >= 20:
            values = np.percentile(np.asarray(scores, dtype=np.float64), PERCENTILES)
            calibration[name] = {f"p{p:g}": round(float(v), 4) for p, v in zip(PERCENTILES, values)}
            calibration[name]["sentences"] = len(scores)
    doc["calibration"] = calibration
    return doc
