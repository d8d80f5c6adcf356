"""The one result type of the runtime."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Entity:
    """A typed span of the ORIGINAL input string: ``text[start:end] == entity.text``.

    Field names follow the transformers NER pipeline (``start``, ``end``, ``score``) so code
    written against it reads naturally; ``label`` is the fine type, ``coarse_label`` its group.
    """

    start: int
    end: int
    text: str
    label: str
    coarse_label: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
