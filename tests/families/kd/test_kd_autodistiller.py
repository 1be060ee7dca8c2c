"""kd.autodistiller: the evaluator against a direct Hinton KD loop, the augmentations, the bad
inputs, and a short seeded search run end to end through nd.fit."""

from __future__ import annotations

import copy

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import nbdistill as nd  # noqa: E402
from nbdistill.core.errors import ConfigError  # noqa: E402
from nbdistill.core.run import EventLog  # noqa: E402
from nbdistill.families.kd.pipelines.autodistiller_evaluate import (  # noqa: E402
    InnerSetting,
    augment,
    evaluate_candidate,
    teacher_outputs,
    train_candidate,
)
from nbdistill.families.kd.pipelines.autodistiller_search import Candidate  # noqa: E402
from nbdistill.families.kd.pipelines.autodistiller_views import autodistiller_search  # noqa: E402


def toy(seed=0, n=90):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g, dtype=torch.float64)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    torch.manual_seed(seed)
    teacher = nd.models.MLP(6, [12], 3).double().eval()
    student = nd.models.MLP(6, [5], 3).double()
    return x, y, teacher, student


def direct_hinton(student, teacher, x, y, epochs, batch, lr, T, alpha, seed):
    """Hinton KD written out: randperm epochs, torch.optim.Adam (unfused), F.kl_div batchmean."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            zs = student(x[idx])
            with torch.no_grad():
                zt = teacher(x[idx])
            kl = F.kl_div(F.log_softmax(zs / T, -1), F.softmax(zt / T, -1), reduction="batchmean")
            loss = alpha * F.cross_entropy(zs, y[idx]) + (1 - alpha) * T * T * kl
            opt.zero_grad()
            loss.backward()
            opt.step()
    return student


@pytest.mark.parametrize("cached", [False, True])
def test_a_hinton_candidate_is_a_direct_hinton_loop(cached):
    x, y, teacher, student = toy()
    initial = copy.deepcopy(student.state_dict())
    setting = InnerSetting(epochs=3, batch_size=16, lr=0.01, hinton_alpha=0.3)
    out = teacher_outputs(teacher, x) if cached else None
    score, trained = evaluate_candidate(
        Candidate("hinton", 2.0, "none", "none"), student, initial, teacher, (x, y), (x[:40], y[:40]), setting, 5, out
    )
    reference = copy.deepcopy(student)
    reference.load_state_dict(initial)
    direct_hinton(reference, teacher, x, y, 3, 16, 0.01, 2.0, 0.3, seed=5)
    # float64, fused vs unfused Adam over 18 steps: equal to rounding
    torch.testing.assert_close(trained(x), reference(x), rtol=0, atol=1e-9)
    assert score == pytest.approx((reference(x[:40]).argmax(-1) == y[:40]).double().mean().item())
    # the template itself is untouched: each candidate starts from the same initial weights
    assert all(torch.equal(student.state_dict()[k], initial[k]) for k in initial)


def test_every_candidate_trains_and_is_seeded():
    x, y, teacher, student = toy(1)
    initial = copy.deepcopy(student.state_dict())
    setting = InnerSetting(epochs=2, batch_size=32)
    for c in [
        Candidate("dkd", 4.0, "hint", "mixup"),
        Candidate("pld", 1.0, "none", "noise"),
        Candidate("ofa", 8.0, "hint", "none"),
    ]:
        runs = [evaluate_candidate(c, student, initial, teacher, (x, y), (x, y), setting, 11)[1](x) for _ in range(2)]
        torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)
        start = copy.deepcopy(student)
        assert not torch.allclose(runs[0], start(x))  # it did train


def test_augmentations():
    x = torch.eye(6, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    mixed = augment(Candidate("hinton", 4.0, "none", "mixup"), x, g, 1.0, 0.1)
    own = mixed.diagonal()
    # each row is a convex combination in which its own example weighs lambda in [1/2, 1]
    assert torch.allclose(mixed.sum(1), torch.ones(6, dtype=torch.float64)) and bool(((own >= 0.5) & (own <= 1)).all())
    noisy = augment(Candidate("hinton", 4.0, "none", "noise"), torch.zeros(20000, 1), torch.Generator().manual_seed(0), 2.0, 0.1)
    assert noisy.std().item() == pytest.approx(0.2, rel=0.03)  # sigma * input std
    assert augment(Candidate("hinton", 4.0, "none", "none"), x, g, 1.0, 0.1) is x


def test_a_hint_candidate_uses_the_regressor():
    x, y, teacher, student = toy(2)
    setting = InnerSetting(epochs=1, batch_size=30, hint_weight=0.0)
    a = train_candidate(Candidate("hinton", 4.0, "hint", "none"), copy.deepcopy(student), teacher, x, y, setting, 3)
    b = train_candidate(Candidate("hinton", 4.0, "none", "none"), copy.deepcopy(student), teacher, x, y, setting, 3)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=1e-12)  # weight 0: the hint changes nothing
    setting = InnerSetting(epochs=1, batch_size=30, hint_weight=1.0)
    c = train_candidate(Candidate("hinton", 4.0, "hint", "none"), copy.deepcopy(student), teacher, x, y, setting, 3)
    assert not torch.allclose(c(x), b(x))


def digits_setup():
    pl.seed_everything(0, verbose=False)
    return nd.zoo.teacher("digits-mlp"), nd.models.MLP(64, [8], 10)


@pytest.mark.parametrize(
    ("hparams", "message"),
    [
        (
            {"budget": 50, "temperatures": "4", "augments": "none"},
            "budget=50 is more than the 8 distinct pipelines of the search space; lower budget to at most 8",
        ),
        ({"losses": "hinton,mse"}, r"unknown loss choice\(s\) \['mse'\]"),
        ({"temperatures": "0.5,4"}, r"temperatures \[0.5\] are outside \[1, 20\]"),
        ({"temperatures": "four"}, "temperatures must be comma-separated numbers"),
        ({"augments": ""}, "the search space has no augment choice"),
    ],
)
def test_bad_inputs_are_refused_before_training(hparams, message, tmp_path):
    teacher, student = digits_setup()
    with pytest.raises(ConfigError, match=message):
        nd.fit(
            "kd.autodistiller", teacher=teacher, student=student, data=nd.data.Digits(n_train=60), runs_root=tmp_path, **hparams
        )
    assert not any(tmp_path.iterdir())  # nothing started


def test_no_teacher_is_refused():
    with pytest.raises(ConfigError, match="distils from a teacher"):
        nd.get_method("kd.autodistiller").module_class(nd.models.MLP(64, [8], 10))


def fit_search(tmp_path, name):
    teacher, student = digits_setup()
    return nd.fit(
        "kd.autodistiller",
        teacher=teacher,
        student=student,
        data=nd.data.Digits(n_train=100, batch_size=50),
        max_epochs=2,
        budget=5,
        initial=3,
        candidate_epochs=2,
        runs_root=tmp_path,
        run_id=name,
        progress_bar=False,
        seed=0,
    )


@pytest.mark.slow
def test_a_seeded_search_end_to_end(tmp_path):
    run = fit_search(tmp_path, "a")
    rows = run.log.of("search/candidates")[-1]["rows"]
    steps, scores = run.scalars("search/score")
    assert steps == [1, 2, 3, 4, 5] and len(rows) == 5 and [r[-2] for r in rows] == pytest.approx(scores, abs=1e-6)
    assert [r[5] for r in rows[:3]] == ["initial"] * 3 and all(r[5].startswith("refine") for r in rows[3:])
    assert run.scalars("search/best_so_far")[1] == pytest.approx([max(scores[: k + 1]) for k in range(5)])
    # 4 training steps (2 epochs x 2 batches), the 5 evaluations spread over them
    assert run.log.last("search/candidates")["step"] == 5
    # self.student is the best candidate's student: its validation accuracy is the best score
    assert run.metrics["val/student_acc"] == pytest.approx(max(scores), abs=1e-6)
    assert run.student() is not None
    # a second run with the same seed makes the same search
    again = fit_search(tmp_path, "b")
    assert again.log.of("search/candidates")[-1]["rows"] == rows
    fig, axes = plt.subplots(1, 2)
    autodistiller_search(axes[0], run.log)
    assert len(axes[0].collections) >= 1 and axes[0].get_xlim()[1] >= 5
    autodistiller_search(axes[1], EventLog([]))  # empty: draws its placeholder
    plt.close(fig)


def test_a_resumed_search_continues_as_the_uninterrupted_one():
    data = nd.data.Digits(n_train=60, batch_size=30)
    kwargs = dict(budget=4, initial=2, candidate_epochs=1, temperatures="2,4", augments="none,noise")

    def module():
        teacher, student = digits_setup()
        m = nd.get_method("kd.autodistiller").module_class(student, teacher, **kwargs)
        m.check_data(data)
        return m

    a = module()
    assert a.evaluate_next() and a.evaluate_next()
    checkpoint = {"state_dict": copy.deepcopy(a.state_dict())}
    a.on_save_checkpoint(checkpoint)
    b = module()
    b.seed += 1  # the checkpoint's seed wins
    b.load_state_dict(checkpoint["state_dict"])
    b.on_load_checkpoint(checkpoint)
    for m in (a, b):
        assert m.evaluate_next() and m.evaluate_next()
    assert b.history.candidates == a.history.candidates and b.history.scores == a.history.scores
    torch.testing.assert_close(b.student.state_dict(), a.student.state_dict(), rtol=0, atol=0)
    # self.student is the best candidate's student: retraining that candidate from the initial weights gives it back
    best = a.history.best_index()
    _, again = evaluate_candidate(
        a.history.candidates[best],
        a.student,
        a.initial_state,
        a.teacher,
        a.splits["train"],
        a.splits["val"],
        a.inner_setting(),
        a.candidate_seed(best),
        a.teacher_out,
    )
    torch.testing.assert_close(again.state_dict(), a.student.state_dict(), rtol=0, atol=0)


class NoLinear(torch.nn.Module):
    """A classifier without an nn.Linear layer, so it has no 'penultimate' features."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(64, 10) * 0.1)

    def forward(self, x):
        return x.flatten(1) @ self.w


def test_a_hint_needs_penultimate_features_and_none_does_not(tmp_path):
    teacher, _ = digits_setup()
    with pytest.raises(ConfigError, match="the student has no nn.Linear layer, so it has no 'penultimate' features"):
        nd.get_method("kd.autodistiller").module_class(NoLinear(), teacher)
    run = nd.fit(
        "kd.autodistiller",
        teacher=teacher,
        student=NoLinear(),
        data=nd.data.Digits(n_train=60, batch_size=30),
        budget=2,
        candidate_epochs=1,
        intermediates="none",
        runs_root=tmp_path,
        progress_bar=False,
    )
    assert len(run.scalars("search/score")[0]) == 2
