"""FairTabular: seeded synthetic tabular data whose batches are (x, y, s), s correlated with y and x."""

import pytest
import torch

import nbdistill as nd


def test_batches_are_inputs_labels_and_groups_and_the_data_is_a_function_of_its_seed():
    data = nd.data.FairTabular(num_samples=400, batch_size=32)
    data.setup()
    x, y, s = next(iter(data.train_dataloader()))
    assert x.shape == (32, 8) and x.dtype == torch.float32
    assert y.dtype == s.dtype == torch.int64 and set(s.tolist()) <= {0, 1}
    again = nd.data.FairTabular(num_samples=400, batch_size=32)
    for split in ("train", "val", "test"):
        for a, b in zip(data.dataset(split).tensors, again.dataset(split).tensors):
            assert torch.equal(a, b)
    other = nd.data.FairTabular(num_samples=400, split_seed=1).dataset("train").tensors[0]
    assert not torch.equal(other, data.dataset("train").tensors[0])


def test_the_label_and_the_proxy_features_depend_on_the_group():
    x, y, s = nd.data.FairTabular().dataset("train").tensors
    rate = [y[s == g].float().mean().item() for g in (0, 1)]
    assert rate[1] - rate[0] > 0.4  # base rates differ by group
    proxy = x[:, -1]
    assert proxy[s == 1].mean() - proxy[s == 0].mean() > 1.0  # the last features reveal the group
    fair = nd.data.FairTabular(label_bias=0.0, proxy_strength=0.0).dataset("train").tensors
    rate = [fair[1][fair[2] == g].float().mean().item() for g in (0, 1)]
    assert abs(rate[1] - rate[0]) < 0.1


def test_every_split_holds_both_groups_and_both_labels():
    data = nd.data.FairTabular(num_samples=100)
    for split in ("train", "val", "test"):
        _, y, s = data.dataset(split).tensors
        assert set(y.tolist()) == {0, 1} and set(s.tolist()) == {0, 1}


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"num_proxies": 8}, "num_proxies must be in [0, num_features)"),
        ({"num_samples": 10}, "num_samples must be at least 40"),
        ({"val_fraction": 0.7, "test_fraction": 0.5}, "sum below 1"),
    ],
)
def test_bad_arguments_are_refused(kwargs, words):
    with pytest.raises(nd.ConfigError, match=words.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        nd.data.FairTabular(**kwargs)


def test_n_train_keeps_that_many_training_examples():
    data = nd.data.FairTabular(num_samples=400, n_train=50)
    assert len(data.dataset("train")) == 50
    with pytest.raises(nd.ConfigError, match="n_train must be between 8 and"):
        nd.data.FairTabular(num_samples=400, n_train=2).setup()


def test_indexed_batches_keep_the_group_third_and_the_index_last():
    """The teacher cache reads a batch's index from its last element: (x, y, s, index)."""
    data = nd.data.FairTabular(num_samples=200, batch_size=16)
    data.with_index(True)
    x, y, s, index = next(iter(data.train_dataloader()))
    x_all, y_all, s_all = data.dataset("train").tensors
    assert torch.equal(x, x_all[index]) and torch.equal(y, y_all[index]) and torch.equal(s, s_all[index])
