"""Digits, the small image case: the pixel scale for diffusion, the shipped teacher, a run, the image grid."""

from __future__ import annotations

import pytest
import torch
from matplotlib.figure import Figure

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.core.views import VIEWS
from nbdistill.families.score.metrics import energy_distance
from nbdistill.families.score.samplers import sample
from nbdistill.families.score.schedule import CosineVP
from nbdistill.families.score.views import image_shape, write_image_samples


def test_unit_scale_maps_gray_levels_to_minus_one_one():
    from sklearn.datasets import load_digits

    data = nd.data.Digits(scale="unit")
    x = data.points("train")
    assert x.shape[1] == 64 and x.min() == -1.0 and x.max() == 1.0
    raw = torch.as_tensor(load_digits().data, dtype=torch.float32)
    torch.testing.assert_close(torch.unique(x), torch.unique(raw) / 8 - 1, rtol=0, atol=1e-6)
    with pytest.raises(ConfigError, match="scale must be one of"):
        nd.data.Digits(scale="pixels")


def test_the_digits_teacher_beats_its_own_one_step_sampler():
    """50 DDIM steps of the shipped teacher land nearer the held-out digits than 1 step (energy distance)."""
    teacher = nd.zoo.teacher("digits-denoiser")
    test = nd.data.Digits(scale="unit").points("test")
    g = torch.Generator().manual_seed(0)
    many = sample(teacher, CosineVP(), 360, 50, generator=g, shape=(64,))
    one = sample(teacher, CosineVP(), 360, 1, generator=torch.Generator().manual_seed(0), shape=(64,))
    assert energy_distance(many, test) < 0.5 * energy_distance(one, test)


def test_a_run_on_digits_writes_an_image_grid_the_view_draws(tmp_path, monkeypatch):
    monkeypatch.setenv("NBDISTILL_RUNS", str(tmp_path))
    run = nd.fit(
        "score.progressive",
        teacher=nd.zoo.teacher("digits-denoiser"),
        student=nd.models.MLPDenoiser(64, hidden=32, depth=2),
        data=nd.data.Digits(scale="unit", n_train=100, batch_size=50),
        max_epochs=1,
        teacher_steps=4,
        steps=1,
        eval_samples=40,
    )
    assert run.status == "finished" and run.metrics["val/energy_distance"] > 0
    event = run.log.last("samples/student_images")
    assert event["kind"] == "image" and event["n"] == 40 and event["png"]
    ax = VIEWS["score_samples"](Figure().add_subplot(), run.log)
    assert ax.images and "student (2 steps)" in ax.get_title()  # teacher_steps=4: the first round samples with 2


def test_image_shapes_and_a_non_image_is_left_alone():
    assert image_shape(torch.zeros(3, 64)) == (8, 8) and image_shape(torch.zeros(3, 1, 8, 8)) == (8, 8)
    assert image_shape(torch.zeros(3, 2)) is None and image_shape(torch.zeros(3, 10)) is None
    assert write_image_samples(object(), "samples/student_images", torch.zeros(3, 2)) is None


def test_the_grid_puts_minus_one_black_and_one_white():
    from nbdistill.families.score.views import image_grid

    x = torch.stack([torch.full((64,), -1.0), torch.full((64,), 1.0), torch.full((64,), 3.0)])
    grid = image_grid(x)
    assert grid.shape == (8, 3 * 9 - 1)
    assert grid[:, :8].max() == 0.0 and grid[:, 9:17].min() == 1.0 and grid[:, 18:].min() == 1.0  # 3 clipped to white
    assert grid[:, 8].min() == 1.0  # the one-pixel gap
