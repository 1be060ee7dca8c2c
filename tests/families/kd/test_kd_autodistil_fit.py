"""kd.autodistil end to end: a short seeded fit ranks its sub-students without retraining, the run's
student is the super-network, and an extracted sub-student scores what the ranking says."""

import pytest
import pytorch_lightning as pl
import torch

import nbdistill as nd
from nbdistill.core.batches import as_pair
from nbdistill.families.kd.pipelines.autodistil_subnets import extract


def _fit(tmp_path, name):
    pl.seed_everything(0, verbose=False)
    student = nd.models.MLP(64, [16, 8], 10)
    data = nd.data.Digits(n_train=200, batch_size=20)
    run = nd.fit(
        "kd.autodistil",
        teacher=nd.zoo.teacher("digits-mlp"),
        student=student,
        data=data,
        max_epochs=3,
        runs_root=tmp_path / name,
        width_choices=2,
        min_width=0.5,
    )
    return run, data


@pytest.mark.slow  # two short fits
def test_fit_ranks_sub_students_and_keeps_the_supernet(tmp_path):
    run, data = _fit(tmp_path, "a")
    assert run.status == "finished"
    table = run.log.of("autodistil_subnets")[-1]
    rows = [dict(zip(table["columns"], r)) for r in table["rows"]]
    assert sorted(r["widths"] for r in rows) == ["16-4", "16-8", "8-4", "8-8"]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    accs = [r["val_acc"] for r in rows]
    assert accs == sorted(accs, reverse=True)
    assert any(r["pareto"] for r in rows)
    # the sub-students were trained without labels: well above chance (0.1) after 30 steps
    assert max(accs) > 0.3

    supernet = run.student()
    assert supernet.hidden == [16, 8]  # self.student stays the super-network
    # an extracted sub-student scores on the validation split what the ranking recorded
    data.setup("fit")
    best = rows[0]
    sub = extract(supernet, [int(w) for w in best["widths"].split("-")]).eval()
    correct = seen = 0
    with torch.no_grad():
        for batch in data.val_dataloader():
            x, y = as_pair(batch)[:2]
            correct += int((sub(x).argmax(-1) == y).sum())
            seen += len(y)
    assert correct / seen == best["val_acc"]

    # seeded: a rerun gives the same ranking
    again, _ = _fit(tmp_path, "b")
    assert again.log.of("autodistil_subnets")[-1]["rows"] == table["rows"]
