"""The family contract's example (docs/family-contract.md) runs as written: it registers, trains one
epoch through ``nd.fit``, logs its own evaluation and draws its view. In a fresh interpreter, so
that the example family never joins the registry the other tests see."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "family-contract.md"

CHECK = textwrap.dedent(
    """
    import inspect, json, sys
    import nbdistill as nd
    from matplotlib.figure import Figure

    spec = nd.get_method("logits.matching")
    params = list(inspect.signature(LogitMatching.__init__).parameters)
    run = nd.fit("logits.matching", teacher=nd.zoo.teacher("digits-mlp"), student=nd.models.MLP(64, [16], 10),
                 data=nd.data.Digits(), max_epochs=1, runs_root=sys.argv[1], beta=0.5)
    steps, distance = run.scalars("val/logit_distance")
    fig = run.plot()
    print(json.dumps({"hparams": [h.name for h in spec.hparams], "params": params, "status": run.status,
                      "beta": run.hparams["beta"], "distance": distance, "axes": len(fig.axes),
                      "figure": isinstance(fig, Figure)}))
    """
)


def test_the_example_family_in_the_contract_doc_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    example = next(b for b in blocks if "@register(" in b)
    assert len(example.strip().splitlines()) <= 50, "the example family stays short"
    script = tmp_path / "example.py"
    script.write_text(example + CHECK)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "runs")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["hparams"] == ["beta", "lr", "weight_decay"]
    assert out["params"] == ["self", "student", "teacher", "teachers", "beta", "lr", "weight_decay"]
    assert out["status"] == "finished" and out["beta"] == 0.5
    assert len(out["distance"]) == 1 and 0.0 < out["distance"][0] < 1e4
    assert out["figure"] and out["axes"] >= 2  # the shared losses view and the family's own
