"""The 2-D toy data modules: shapes, labels, seeding, the mixture's moments, the checkerboard's squares."""

import numpy as np
import pytest
import torch

from nbdistill.core.errors import ConfigError
from nbdistill.data import Checkerboard, Circles, Mixture2D, SCurve, SwissRoll, TwoMoons
from nbdistill.families.score.exact import GaussianMixture

MODULES = [Mixture2D, TwoMoons, SwissRoll, Checkerboard, Circles, SCurve]
CLASSES = {Mixture2D: 8, TwoMoons: 2, SwissRoll: 1, Checkerboard: 8, Circles: 2, SCurve: 1}


@pytest.mark.parametrize("cls", MODULES, ids=lambda c: c.__name__)
def test_splits_batches_and_labels(cls):
    dm = cls(n_samples=1000, batch_size=64)
    dm.setup()
    sizes = {split: len(dm.dataset(split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 800, "val": 100, "test": 100}
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (64, 2) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert dm.input_shape == (2,) and dm.num_classes == CLASSES[cls]
    labels = torch.cat([dm.dataset(s).tensors[1] for s in ("train", "val", "test")])
    assert set(labels.tolist()) == set(range(CLASSES[cls]))  # every class present; zeros where no label is meaningful
    assert torch.isfinite(dm.points("test")).all()


@pytest.mark.parametrize("cls", MODULES, ids=lambda c: c.__name__)
def test_the_data_seed_fixes_the_points(cls):
    a, b, c = cls(n_samples=200), cls(n_samples=200), cls(n_samples=200, data_seed=1)
    assert torch.equal(a.points("train"), b.points("train")) and torch.equal(a.points("val"), b.points("val"))
    assert not torch.equal(a.points("train"), c.points("train"))


def test_mixture_samples_have_the_density_moments_and_labels():
    dm = Mixture2D(n_samples=40_000)
    x = torch.cat([dm.points(s) for s in ("train", "val", "test")]).double()
    density = dm.density
    assert isinstance(density, GaussianMixture) and density.num_components == 8
    assert torch.allclose(x.mean(0), density.mean(), atol=0.03)  # standard error about 0.007 per axis
    assert torch.allclose(torch.cov(x.T), density.covariance(), atol=0.06)
    y = dm.dataset("train").tensors[1]
    assert (density.component_of(dm.points("train").double()) == y).float().mean() > 0.999
    grid = Mixture2D(GaussianMixture.grid(k=3), n_samples=500)
    assert grid.num_classes == 9 and grid.density.num_components == 9


def test_a_class_conditional_mixture_labels_its_points_by_class():
    dm = Mixture2D(GaussianMixture.ring(k=8, classes=2), n_samples=1000)
    x, y = dm.dataset("train").tensors
    assert dm.num_classes == 2 and set(y.tolist()) == {0, 1}
    assert torch.equal(dm.density.component_of(x.double()) % 2, y)  # component i has class i % 2


def test_checkerboard_points_lie_on_the_dark_squares_evenly():
    dm = Checkerboard(n_samples=8000)
    x = torch.cat([dm.points(s) for s in ("train", "val", "test")]).numpy()
    y = torch.cat([dm.dataset(s).tensors[1] for s in ("train", "val", "test")]).numpy()
    assert (np.abs(x) <= 2).all()
    col_row = dm.square_of(x)
    assert ((col_row.sum(1)) % 2 == 0).all(), "every point lies on a dark square"
    assert (dm.dark_squares()[y] == col_row).all(), "the label is the point's square"
    counts = np.bincount(y, minlength=8)
    assert len(dm.dark_squares()) == 8 and (np.abs(counts - 1000) < 150).all()


def test_sklearn_sets_follow_the_reference_settings():
    from sklearn.datasets import make_moons, make_swiss_roll

    moons = TwoMoons(n_samples=100)
    x, _ = make_moons(100, noise=0.005, random_state=0)
    assert np.allclose(moons.points("train").numpy(), x[:80], atol=1e-6)
    roll = SwissRoll(n_samples=100)
    x, _ = make_swiss_roll(100, noise=0.05, random_state=0)
    assert np.allclose(roll.points("train").numpy(), x[:80, [0, 2]] / 10, atol=1e-6)


def test_bad_toy_settings_are_config_errors():
    with pytest.raises(ConfigError, match="n_samples must be an integer of at least 10"):
        TwoMoons(n_samples=5)
    with pytest.raises(ConfigError, match="2-D GaussianMixture"):
        Mixture2D(GaussianMixture([[0.0, 0.0, 0.0]]))
    with pytest.raises(ConfigError, match="board >= 2"):
        Checkerboard(board=1)
    with pytest.raises(ConfigError, match="val_fraction and test_fraction"):
        SwissRoll(val_fraction=0.6, test_fraction=0.5)
