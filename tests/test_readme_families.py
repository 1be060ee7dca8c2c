"""The README and the tour present as available exactly the families that exist (`nd.family_names()`).

When a family lands (score, policy, lm), these fail until the README's first lines, its "What is in
it" table and the tour's family table list it, and its "coming" mentions go.
"""

import re
from pathlib import Path

import nbformat

import nbdistill as nd

ROOT = Path(__file__).resolve().parents[1]
#: how the prose names each family ("knowledge distillation" is `kd`)
PROSE = {"knowledge": "kd", "dataset": "dataset", "graph": "graph", "score/diffusion": "score", "policy": "policy",
         "language-model": "lm"}  # fmt: skip


def prose_list(text: str) -> set[str]:
    """The families of "a, b and c distillation", as keys."""
    names = re.split(r",\s*|\s+and\s+", re.sub(r"\s+distillation$", "", " ".join(text.split())))
    unknown = [n for n in names if n.lower() not in PROSE]
    assert not unknown, f"not a family name: {unknown} in {text!r}"
    return {PROSE[n.lower()] for n in names}


def table_keys(markdown: str, header: str, column: int) -> set[str]:
    """The backticked keys in ``column`` of the table whose header row starts with ``header``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    keys = set()
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        keys.add(line.split("|")[column + 1].strip().strip("`"))
    return keys


def coming_keys(markdown: str) -> set[str]:
    """The backticked keys of the paragraph that starts with "Coming:" (none once every family is in)."""
    if "\nComing:" not in markdown:
        return set()
    paragraph = markdown.split("\nComing:", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"`(\w+)`", paragraph))


def test_readme_first_lines_name_the_families_that_exist_and_those_coming():
    intro = (ROOT / "README.md").read_text().split("\n\n")[1]  # the paragraph under the title
    available = re.findall(r"\*\*([^*]*distillation)\*\*", intro)
    assert len(available) == 1, intro
    assert prose_list(available[0]) == set(nd.family_names())
    coming = re.search(r"([\w/,\s-]+?) distillation (?:is|are) coming", intro)
    coming = prose_list(coming.group(1)) if coming else set()
    assert not coming & set(nd.family_names())
    assert coming | set(nd.family_names()) == set(PROSE.values())  # every family is named, as here or coming


def test_readme_table_lists_the_families_that_exist():
    readme = (ROOT / "README.md").read_text()
    assert table_keys(readme, "| family | methods", 0) == set(nd.family_names())
    assert not coming_keys(readme) & set(nd.family_names())


def test_tour_table_lists_the_families_that_exist():
    nb = nbformat.read(ROOT / "notebooks" / "00_tour.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if c.cell_type == "markdown" and "| family | key |" in c.source]
    assert table_keys(cell.source, "| family | key |", 1) == set(nd.family_names())
    assert not coming_keys(cell.source) & set(nd.family_names())
