"""The tutorial notebooks the launcher offers, with their titles.

A wheel carries them inside the package (``nbdistill/notebooks/``, put there by the build's
``force-include`` of the repository's ``notebooks/``); an editable install reads them from
``notebooks/`` of the checkout. :func:`nbdistill.tutorials.folder` finds either.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .. import tutorials

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def tutorials_dir() -> Path | None:
    """Where the tutorial notebooks are, or ``None`` if they are not installed."""
    try:
        return tutorials.folder()
    except FileNotFoundError:
        return None


def notebook_title(path: Path) -> str:
    """The first Markdown heading of a notebook, else its file name made readable."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        cells = []
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        for line in text.splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip()
    return re.sub(r"^\d+[_-]", "", path.stem).replace("_", " ").capitalize()


def list_tutorials(folder: Path | None = None) -> list[dict[str, Any]]:
    """``[{"name", "title", "file"}]`` of every tutorial, in file-name order (``00_tour`` first)."""
    folder = tutorials_dir() if folder is None else folder
    if folder is None:
        return []
    return [
        {"name": p.stem, "title": notebook_title(p), "file": p.name}
        for p in sorted(folder.glob("*.ipynb"))
        if NAME_PATTERN.match(p.stem)
    ]


def tutorial_path(name: str, folder: Path | None = None) -> Path | None:
    """The notebook of tutorial ``name``, or ``None`` if there is no such tutorial."""
    folder = tutorials_dir() if folder is None else folder
    if folder is None or not NAME_PATTERN.match(name):
        return None
    path = folder / f"{name}.ipynb"
    return path if path.is_file() else None


def read_tutorial(path: Path) -> dict[str, Any]:
    """The notebook at ``path`` as a JSON object (what the contents manager saves)."""
    return json.loads(path.read_text(encoding="utf-8"))
