"""The labelled fraction shared by kd.simclr_v2 and kd.unfused: stratified, of the right size, refused
when it leaves a class without a label."""

import numpy as np
import pytest
import torch

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.families.kd.pipelines.label_fraction import LabelledOnly, labelled_counts, labelled_subset


def test_counts_are_largest_remainder_apportionment():
    # f = 0.1 of [15, 12, 3]: quotas 1.5, 1.2, 0.3 -> floors 1, 1, 0; total round(3.0) = 3: one more to class 0
    assert labelled_counts(np.array([15, 12, 3]), 0.1).tolist() == [2, 1, 0]
    # 1% of 10 x 108: 11 in all, one each plus the tie on the remainders 0.08 broken by class index
    assert labelled_counts(np.array([108] * 10), 0.01).tolist() == [2] + [1] * 9
    counts = labelled_counts(np.array([108, 107, 109, 110, 106, 108, 108, 107, 107, 108]), 0.01)
    assert counts.sum() == 11 and counts.min() == 1
    assert labelled_counts(np.array([5, 7]), 1.0).tolist() == [5, 7]


def test_subset_is_stratified_sized_and_seeded():
    labels = np.repeat(np.arange(10), [100, 90, 110, 100, 100, 95, 105, 100, 100, 100])
    picked = labelled_subset(labels, 0.1)
    assert len(picked) == round(0.1 * len(labels)) == 100
    per_class = np.bincount(labels[picked], minlength=10)
    assert np.all(np.abs(per_class - 0.1 * np.bincount(labels)) < 1)  # each class within one of its share
    assert len(set(picked.tolist())) == len(picked)
    assert np.array_equal(picked, labelled_subset(labels, 0.1))
    assert not np.array_equal(picked, labelled_subset(labels, 0.1, seed=1))
    assert len(labelled_subset(torch.as_tensor(labels), 1.0)) == len(labels)


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_a_fraction_outside_0_1_is_refused(fraction):
    with pytest.raises(ConfigError, match=f"label_fraction = {fraction} leaves no labelled example: give a fraction in"):
        labelled_subset(np.arange(10) % 2, fraction)


def test_a_fraction_leaving_a_class_unlabelled_names_it():
    labels = np.repeat(np.arange(3), [50, 50, 4])
    with pytest.raises(ConfigError, match=r"leaves class\(es\) \[2\] with no labelled example .* at least 0.25"):
        labelled_subset(labels, 0.05)


def test_labelled_only_is_the_same_subset_with_the_other_splits():
    digits = nd.data.Digits()
    only = LabelledOnly(digits, 0.1)
    x, y = only.dataset("train").tensors
    xt, yt = digits.dataset("train").tensors
    keep = labelled_subset(yt, 0.1)
    assert torch.equal(x, xt[keep]) and torch.equal(y, yt[keep])
    assert torch.equal(only.dataset("test").tensors[0], digits.dataset("test").tensors[0])
    assert only.num_classes == 10
    with pytest.raises(ConfigError, match="label_fraction = 0"):
        LabelledOnly(digits, 0)
