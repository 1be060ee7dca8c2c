"""What the README, the tutorials and nbdistill's own messages write as ``nd.<...>`` resolves after a
bare ``import nbdistill as nd``, in a fresh interpreter, without importing any submodule first."""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
CHAIN = re.compile(r"(?<![\w.])nd((?:\.[A-Za-z_]\w*)+)")
FROM_IMPORT = re.compile(r"from (nbdistill(?:\.\w+)*) import \(?([\w, ]+)")


def _texts() -> dict[str, str]:
    """Every text a user reads: README, docs, the notebooks' cells, and nbdistill's own sources (messages)."""
    texts = {"README.md": (ROOT / "README.md").read_text()}
    for path in sorted((ROOT / "docs").rglob("*.md")):
        texts[str(path.relative_to(ROOT))] = path.read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        texts[str(path.relative_to(ROOT))] = "\n".join("".join(c["source"]) for c in cells)
    for path in sorted((ROOT / "nbdistill").rglob("*.py")):
        texts[str(path.relative_to(ROOT))] = path.read_text()
    return texts


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)


def test_gnn_models_resolve_from_the_package_in_a_fresh_process():
    code = (
        "import sys\n"
        "import nbdistill as nd\n"
        "assert nd.models.gnn.GCN is nd.models.GCN and nd.models.GIN is nd.models.gnn.GIN\n"
        "assert nd.models.GAT is nd.models.gnn.GAT and issubclass(nd.models.GCN, nd.models.GNN)\n"
        "assert {'GCN', 'GIN', 'GAT'} <= set(nd.models.__all__)\n"
        "print('torch_geometric' in sys.modules)\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False", "nd.models must not import PyTorch Geometric before a GNN is built"


def test_every_nd_name_the_docs_and_tutorials_use_resolves_in_a_fresh_process():
    chains: dict[str, str] = {}
    imports: dict[str, str] = {}
    for where, text in _texts().items():
        for match in CHAIN.finditer(text):
            chains.setdefault("nd" + match.group(1), where)
        if where.endswith((".md", ".ipynb")):
            for module, names in FROM_IMPORT.findall(text):
                for name in filter(None, (n.strip() for n in names.split(","))):
                    imports.setdefault(f"{module}:{name}", where)
    assert "nd.fit" in chains and "nd.models.MLP" in chains, "the scan found nothing: is the pattern broken?"
    code = (
        "import json\n"
        "import nbdistill as nd\n"
        f"chains, imports = {sorted(chains)!r}, {sorted(imports)!r}\n"
        "bad = []\n"
        "for chain in chains:\n"
        "    obj = nd\n"
        "    try:\n"
        "        for part in chain.split('.')[1:]:\n"
        "            obj = getattr(obj, part)\n"
        "    except Exception as exc:\n"
        "        bad.append(f'{chain}: {type(exc).__name__}: {exc}')\n"
        "for item in imports:\n"
        "    module, name = item.split(':')\n"
        "    try:\n"
        "        exec(f'from {module} import {name}', {})\n"
        "    except Exception as exc:\n"
        "        bad.append(f'from {module} import {name}: {type(exc).__name__}: {exc}')\n"
        "print(json.dumps(bad))\n"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr[-3000:]
    bad = json.loads(out.stdout.strip().splitlines()[-1])
    where = {**chains, **{f"from {k.split(':')[0]} import {k.split(':')[1]}": v for k, v in imports.items()}}
    assert not bad, "\n".join(f"{b}  (used in {where.get(b.split(':')[0], '?')})" for b in bad)
