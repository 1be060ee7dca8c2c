"""Where the tutorial notebooks are, and copying them somewhere a user can edit them."""

from __future__ import annotations

import shutil
from pathlib import Path

_PACKAGE = Path(__file__).parent


def folder() -> Path:
    """The installed tutorials (inside the wheel), or ``notebooks/`` of a source checkout."""
    for candidate in (_PACKAGE / "notebooks", _PACKAGE.parent / "notebooks"):
        if candidate.is_dir() and any(candidate.glob("*.ipynb")):
            return candidate
    raise FileNotFoundError("nbdistill's tutorial notebooks are not installed")


def names() -> list[str]:
    return sorted(p.name for p in folder().glob("*.ipynb"))


def copy_to(target: str | Path, overwrite: bool = False) -> list[Path]:
    """Copy every tutorial into ``target`` (kept if already there unless ``overwrite``)."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for nb in sorted(folder().glob("*.ipynb")):
        dest = target / nb.name
        if overwrite or not dest.exists():
            shutil.copyfile(nb, dest)
        copied.append(dest)
    return copied
