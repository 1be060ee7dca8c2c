"""The evaluation protocol: explicit settings, the three rows, seeds, soft labels, population std."""

import pytest
import torch

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.families.dataset.evaluate import (
    EvalSettings,
    Score,
    evaluate_protocol,
    random_subset,
    train_on,
)
from nbdistill.families.dataset.realdata import RealSet


def test_protocol_reports_distilled_random_and_full_data_the_same_way():
    data = nd.data.Digits(image=True, n_train=100)
    real = RealSet.from_data(data)
    images, labels = random_subset(real, 2, seed=5)
    assert len(images) == 20 and torch.equal(labels, torch.arange(10).repeat_interleave(2))
    settings = EvalSettings(epochs=3, augment=False)
    report = evaluate_protocol(nd.models.ConvNet((1, 8, 8), 10, width=4, depth=1), images, labels, data, settings, k=2)
    names = [name for name, _, _ in report.rows]
    assert names == ["distilled", "random real (2/class)", "full data"]
    assert [n for _, n, _ in report.rows] == [20, 20, 100]
    assert all(len(score.values) == 2 and 0 <= score.mean <= 1 for _, _, score in report.rows)
    text = str(report)
    assert "3 epochs" in text and "augmentation off" in text and "hard labels" in text and "2 networks each" in text
    assert report.as_dict()["rows"][0]["name"] == "distilled"


def test_seeds_make_fresh_networks_reproducible_and_soft_labels_are_used():
    x = torch.randn(20, 1, 8, 8)
    y = torch.arange(10).repeat(2)
    net = nd.models.ConvNet((1, 8, 8), 10, width=4, depth=1)
    settings = EvalSettings(epochs=2, augment=True)
    a, b = train_on(net, x, y, settings, seed=3), train_on(net, x, y, settings, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))  # same seed, same kernels: exact
    soft = torch.softmax(torch.randn(20, 10), -1)
    hard_run = train_on(net, x, soft, EvalSettings(epochs=2, augment=False, labels="hard"), seed=3)
    argmax_run = train_on(net, x, soft.argmax(-1), EvalSettings(epochs=2, augment=False), seed=3)
    soft_run = train_on(net, x, soft, EvalSettings(epochs=2, augment=False, labels="soft"), seed=3)
    # exact: "hard" takes the argmax first, then both runs are the same ops on the same integer labels
    assert all(torch.equal(p, q) for p, q in zip(hard_run.parameters(), argmax_run.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(soft_run.parameters(), argmax_run.parameters()))


def test_score_uses_population_std_and_settings_are_checked():
    score = Score((0.5, 0.7))
    assert score.mean == pytest.approx(0.6) and score.std == pytest.approx(0.1)
    assert str(score) == "60.0 ± 10.0 %"
    with pytest.raises(ConfigError, match="labels"):
        EvalSettings(labels="learned")
