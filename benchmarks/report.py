"""Where every benchmark leaves its results: ``NAME.json`` and ``NAME.md`` side by side."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def save_results(folder: Path, name: str, data: Any, markdown: str) -> None:
    """Write the figures (JSON, UTF-8) and their table (Markdown), then print the table."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    text = markdown if markdown.endswith("\n") else markdown + "\n"
    (folder / f"{name}.md").write_text(text, encoding="utf-8")
    print(text, end="")
