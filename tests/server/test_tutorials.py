"""Tutorial listing and copying (what the launcher and palette entries call)."""

import json
from pathlib import Path

import nbformat
import pytest
from tornado.httpclient import HTTPClientError

import nbdistill
from nbdistill.server import tutorials


def notebook(title: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\nSome words."), nbformat.v4.new_code_cell("import nbdistill as nd")]
    return nbformat.writes(nb)


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    folder = tmp_path / "shipped"
    folder.mkdir()
    (folder / "00_tour.ipynb").write_text(notebook("A tour of nbdistill"))
    (folder / "01_knowledge_distillation.ipynb").write_text(
        json.dumps({"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {}})
    )
    monkeypatch.setattr(tutorials, "tutorials_dir", lambda: folder)
    return folder


def test_titles_come_from_the_first_heading_else_the_file_name(shipped):
    assert tutorials.list_tutorials() == [
        {"name": "00_tour", "title": "A tour of nbdistill", "file": "00_tour.ipynb"},
        {"name": "01_knowledge_distillation", "title": "Knowledge distillation", "file": "01_knowledge_distillation.ipynb"},
    ]


def test_unknown_or_path_like_names_are_not_tutorials(shipped):
    assert tutorials.tutorial_path("00_tour") == shipped / "00_tour.ipynb"
    for name in ("nope", "../00_tour", "/etc/passwd", ".hidden"):
        assert tutorials.tutorial_path(name) is None


def test_the_installed_notebooks_are_listed():
    folder = tutorials.tutorials_dir()
    assert folder is not None, "the tutorial notebooks are neither installed nor in the checkout"
    assert folder.parent in (Path(nbdistill.__file__).parent, Path(nbdistill.__file__).parent.parent)
    assert {t["file"] for t in tutorials.list_tutorials()} == {p.name for p in folder.glob("*.ipynb")}


async def test_list_endpoint(jp_fetch, shipped):
    reply = json.loads((await jp_fetch("nbdistill", "api", "tutorials")).body)
    assert [t["name"] for t in reply["tutorials"]] == ["00_tour", "01_knowledge_distillation"]


async def copy(jp_fetch, name, **body):
    response = await jp_fetch("nbdistill", "api", "tutorials", name, "copy", method="POST", body=json.dumps(body))
    return json.loads(response.body)


async def test_copy_into_the_working_directory_keeps_the_users_edits(jp_fetch, jp_root_dir, shipped):
    assert await copy(jp_fetch, "00_tour") == {"path": "00_tour.ipynb", "created": True}
    copied = jp_root_dir / "00_tour.ipynb"
    assert nbformat.read(copied, 4).cells[0].source.startswith("# A tour of nbdistill")
    nb = nbformat.read(copied, 4)
    nb.cells.append(nbformat.v4.new_code_cell("my_work = 1"))
    nbformat.write(nb, copied)
    assert await copy(jp_fetch, "00_tour") == {"path": "00_tour.ipynb", "created": False}
    assert "my_work" in copied.read_text()
    assert await copy(jp_fetch, "00_tour", overwrite=True) == {"path": "00_tour.ipynb", "created": True}
    assert "my_work" not in copied.read_text()


async def test_copy_into_a_subfolder(jp_fetch, jp_root_dir, shipped):
    (jp_root_dir / "work").mkdir()
    assert (await copy(jp_fetch, "01_knowledge_distillation", dir="work"))["path"] == "work/01_knowledge_distillation.ipynb"
    assert (jp_root_dir / "work" / "01_knowledge_distillation.ipynb").is_file()


@pytest.mark.parametrize("name, body", [("nope", {}), ("00_tour", {"dir": "../.."}), ("00_tour", {"dir": "missing"})])
async def test_copy_refuses_unknown_tutorials_and_folders_outside_the_root(jp_fetch, jp_root_dir, shipped, name, body):
    with pytest.raises(HTTPClientError) as info:
        await copy(jp_fetch, name, **body)
    assert info.value.code in (400, 403, 404)
    assert not list(jp_root_dir.parent.glob("*.ipynb"))
