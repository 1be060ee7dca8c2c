"""kd.diswot end to end: the search before training, the chosen student trained and recorded, its
events and view, determinism and resume, and the refusal of a non-MLP student."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import nbdistill as nd  # noqa: E402
from nbdistill.core.errors import ConfigError  # noqa: E402
from nbdistill.core.run import EventLog  # noqa: E402
from nbdistill.core.views import VIEWS  # noqa: E402
from nbdistill.families.kd.pipelines.diswot_search import mlp_params  # noqa: E402

SMALL = {"population": 4, "generations": 6}


def _fit(tmp_path, name, **kwargs):
    torch.manual_seed(0)
    return nd.fit(
        "kd.diswot",
        student=nd.models.MLP(64, [16], 10),
        teacher=nd.zoo.teacher("digits-mlp"),
        data=nd.data.Digits(n_train=60, batch_size=30),
        runs_root=tmp_path,
        run_id=name,
        **{"max_epochs": 1, **SMALL, **kwargs},
    )


def test_a_non_mlp_student_is_refused_before_training(tmp_path):
    with pytest.raises(ConfigError, match=r"must be an nbdistill.models.MLP; got ConvNet.*score_candidates"):
        nd.fit(
            "kd.diswot",
            student=nd.models.ConvNet((1, 8, 8), 10, width=4, depth=1),
            teacher=nd.zoo.teacher("digits-mlp"),
            data=nd.data.Digits(n_train=60, batch_size=30, image=True),
            runs_root=tmp_path,
            max_epochs=1,
        )
    assert not any(tmp_path.iterdir())


def test_training_without_the_search_says_what_to_call():
    module = nd.get_method("kd.diswot").module_class(nd.models.MLP(64, [16], 10), nd.zoo.teacher("digits-mlp"))
    with pytest.raises(RuntimeError, match="call check_compatibility"):
        module.setup("fit")


def test_the_chosen_student_is_trained_recorded_logged_and_drawn(tmp_path):
    run = _fit(tmp_path, "a")
    module = run.module
    chosen = module.chosen
    budget = mlp_params(64, [16], 10)
    assert chosen.params <= budget and module.budget == budget
    assert list(module.student.hidden) == list(chosen.hidden)
    assert run.info["setting"]["student"]["hidden"] == list(chosen.hidden)
    rebuilt = run.student()
    assert list(rebuilt.hidden) == list(chosen.hidden)
    x = torch.randn(5, 64)
    torch.testing.assert_close(rebuilt(x), module.student(x), rtol=1e-5, atol=1e-6)

    table = run.log.last("diswot/search")
    rows = [dict(zip(table["columns"], r)) for r in table["rows"]]
    assert len(rows) == len(module.searched) >= 2 and rows[0]["hidden"] == "16"
    assert [r["chosen"] for r in rows].count(True) == 1
    picked = next(r for r in rows if r["chosen"])
    assert picked["score"] == pytest.approx(max(r["score"] for r in rows))
    assert picked["score"] == pytest.approx(picked["relation"] + picked["semantic"])
    assert run.log.last_value("diswot/budget") == budget
    assert "test/student_acc" in run.metrics

    fig, axes = plt.subplots(1, 2)
    VIEWS["diswot_search"](axes[0], run.log)
    VIEWS["diswot_search"](axes[1], EventLog())
    assert axes[0].get_title() and axes[1].get_title()
    plt.close(fig)


def test_semantic_weight_zero_ranks_by_relation_alone():
    data = nd.data.Digits(n_train=60, batch_size=30)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    method = nd.get_method("kd.diswot").module_class
    module = method(nd.models.MLP(64, [16], 10), nd.zoo.teacher("digits-mlp"), semantic_weight=0.0, **SMALL)
    module.check_compatibility(batch, 10)
    assert all(c.score == c.relation for c in module.searched)
    assert module.chosen.relation == max(c.relation for c in module.searched)
    official = method(nd.models.MLP(64, [16], 10), nd.zoo.teacher("digits-mlp"), **SMALL)
    official.check_compatibility(batch, 10)
    assert all(c.score == pytest.approx(c.relation + c.semantic) for c in official.searched)


@pytest.mark.slow
def test_a_rerun_and_a_resume_choose_the_same_student(tmp_path):
    first = _fit(tmp_path, "a")
    again = _fit(tmp_path, "b")
    assert again.module.chosen.hidden == first.module.chosen.hidden
    torch.manual_seed(0)
    resumed = nd.resume(
        first,
        student=nd.models.MLP(64, [16], 10),
        teacher=nd.zoo.teacher("digits-mlp"),
        data=nd.data.Digits(n_train=60, batch_size=30),
        max_epochs=2,
    )
    assert resumed.module.chosen.hidden == first.module.chosen.hidden
    assert resumed.info["status"] == "finished"
    assert len([e for e in resumed.log.of("diswot/search")]) == 1  # written once, not again on resume
