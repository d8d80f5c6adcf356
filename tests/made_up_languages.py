"""Text in made-up languages for routing tests: each language is a set of syllables, so its
character n-grams are its own and any amount of held-out text can be drawn (seeded)."""
from __future__ import annotations

import random


class MadeUpLanguages:
    """Sentences of ``words`` words, each word 2-4 syllables of its language."""

    def __init__(self, syllables: dict[str, list[str]], words: int) -> None:
        self.syllables, self.words = syllables, words

    def sentence(self, lang: str, rng: random.Random) -> str:
        syl = self.syllables[lang]
        return " ".join("".join(rng.choice(syl) for _ in range(rng.randint(2, 4))) for _ in range(self.words)) + "."

    def corpus(self, lang: str, n: int = 400, seed: int = 0) -> list[str]:
        rng = random.Random(f"{lang}-{seed}")
        return [self.sentence(lang, rng) for _ in range(n)]
