"""score.disback: the generator loss equals DMD's with N = 0, stage 1 records the fake score without moving the
generator, stage 2 matches s^{N−1}, …, s^0 in turn, the recorded scores' samples lie on a path from the
generator to the data, the stage state survives a checkpoint, and the refusals."""

from __future__ import annotations

import pytest
import torch
from matplotlib.figure import Figure

from nbdistill.core.errors import ConfigError
from nbdistill.core.run import EventLog
from nbdistill.families.score.disback import DisBack
from nbdistill.families.score.disback_views import PATH_POINTS, disback_path, write_path
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.losses.disback import backtracking_target
from nbdistill.families.score.losses.dmd import dmd_gradient, dmd_loss
from nbdistill.families.score.metrics import energy_distance
from nbdistill.families.score.schedule import CosineVP
from nbdistill.families.score.teacher_training import train_denoiser
from nbdistill.models import MLPDenoiser

RING = GaussianMixture.ring(k=4, radius=1.5, std=0.2)


def _module(teacher=None, **hparams) -> DisBack:
    teacher = ExactDenoiser(RING) if teacher is None else teacher
    return DisBack(MLPDenoiser(2, hidden=16, depth=2), teacher=teacher, **hparams)


def _train(m: DisBack, steps: int, batch: int = 64, lr: float = 1e-3) -> None:
    """``steps`` training steps as the trainer takes them: loss_terms, one Adam step over the trainable weights, the hook."""
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=lr)
    data = (torch.zeros(batch, 2, dtype=next(m.student.parameters()).dtype), None)
    for i in range(steps):
        opt.zero_grad(set_to_none=True)
        m.loss_terms(data)["loss"].backward()
        opt.step()
        m.on_train_batch_end(None, data, i)


def _state(net: torch.nn.Module) -> list[torch.Tensor]:
    return [v.clone() for v in net.state_dict().values()]


def test_schedule_walks_the_checkpoints_back_to_the_teacher():
    """N = 3, R = 2, S = 3: 6 recording steps (None), then s^2, s^1 three steps each, then the teacher for good."""
    targets = [backtracking_target(n, 3, 2, 3) for n in range(16)]
    assert targets == [None] * 6 + [2] * 3 + [1] * 3 + [0] * 4
    assert [backtracking_target(n, 0, 5, 7) for n in range(3)] == [0, 0, 0]


def test_without_checkpoints_the_generator_loss_is_the_dmd_surrogate():
    """checkpoints = 0 is DMD from the first step: L_DM = dmd_loss(x, dmd_gradient(x, μ_real, μ_fake)) with the
    module's draws (z, t, ε) replayed from the seed, μ_real the exact ring's denoiser (float64)."""
    m = _module(checkpoints=0, t_low=0.1, t_high=0.9, fake_init="student").double()
    data = (torch.zeros(32, 2, dtype=torch.float64), None)
    torch.manual_seed(7)
    terms = m.loss_terms(data)
    assert terms["disback_target"] == 0.0
    torch.manual_seed(7)
    with torch.no_grad():
        x = m.generate(torch.randn(32, 2, dtype=torch.float64))
        t = 0.1 + 0.8 * torch.rand(32, dtype=torch.float64)
        noise = CosineVP()
        x_t = noise.alpha(t)[:, None] * x + noise.sigma(t)[:, None] * torch.randn(32, 2, dtype=torch.float64)
        real = RING.denoise(x_t, noise.alpha(t), noise.sigma(t))
        expected = dmd_loss(x, dmd_gradient(x, real, m.fake_score(x_t, t)))
    torch.testing.assert_close(terms["dm"], expected, rtol=1e-12, atol=1e-15)
    grad = dmd_gradient(x, real, m.fake_score(x_t, t))
    assert grad.abs().max() > 1e-3  # a real push, not a vanishing term


def test_stage_one_records_the_fake_score_and_leaves_the_generator():
    """N = 3, R = 4: during the 12 recording steps the generator's weights stay, the fake score's move, and the
    recorded weights are the fake score's at steps 4, 8 and 12 (the last one is the fake score at the end)."""
    torch.manual_seed(0)
    m = _module(checkpoints=3, record_steps=4, fake_init="student")
    generator = _state(m.student)
    seen = []
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    data = (torch.zeros(16, 2), None)
    for i in range(12):
        assert m.target_index is None
        terms = m.loss_terms(data)
        assert "dm" not in terms
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        assert all(p.grad is None for p in m.student.parameters())
        opt.step()
        m.on_train_batch_end(None, data, i)
        seen.append(_state(m.fake_score))
        assert len(m.recorded) == (i + 1) // 4
    for a, b in zip(generator, _state(m.student)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for k, step in enumerate((4, 8, 12)):
        for a, b in zip(m.recorded[k].values(), seen[step - 1]):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (seen[0][0] - seen[-1][0]).abs().max() > 1e-3
    assert m.target_index == 2


def test_stage_two_matches_the_recorded_scores_in_reverse_then_the_teacher():
    """After recording N = 3 scores, each stage-2 step's real x0-prediction is that of s^2, s^1, then the teacher
    (the generator's DM term recomputed with that network and the same draws; float64)."""
    torch.manual_seed(1)
    m = _module(checkpoints=3, record_steps=2, stage_steps=2, fake_init="student").double()
    _train(m, 6, lr=1e-2)
    assert len(m.recorded) == 3
    data = (torch.zeros(16, 2, dtype=torch.float64), None)
    order = []
    for i in range(7):
        k = m.target_index
        order.append(k)
        real = m.score_network(k)
        if k > 0:
            for a, b in zip(real.state_dict().values(), m.recorded[k - 1].values()):
                torch.testing.assert_close(a, b, rtol=0, atol=0)
        else:
            assert real is m.teacher
        torch.manual_seed(i)
        terms = m.loss_terms(data)
        torch.manual_seed(i)
        x = m.generate(torch.randn(16, 2, dtype=torch.float64))
        torch.testing.assert_close(terms["dm"], m.dm_term(x, real), rtol=1e-12, atol=1e-15)
        assert terms["disback_target"] == float(k)
        m.on_train_batch_end(None, data, 6 + i)
    assert order == [2, 2, 1, 1, 0, 0, 0]
    differs = [torch.norm(a - b) for a, b in zip(m.recorded[0].values(), m.recorded[2].values())]
    assert max(differs) > 1e-3  # the recorded scores are different networks


def test_recorded_scores_lie_between_the_generator_and_the_data():
    """A small teacher fitted to a 4-mode ring, a fresh generator far from it: the DDIM samples of s^0 … s^3 move
    away from the data (energy distance increasing with k) and close in on the initial generator."""
    gen = torch.Generator().manual_seed(0)
    noise = CosineVP()
    torch.manual_seed(0)
    teacher = MLPDenoiser(2, hidden=32, depth=2)
    train_denoiser(teacher, RING.sample(2000, generator=gen).float(), noise, steps=600, batch_size=128, lr=1e-2, generator=gen)
    torch.manual_seed(1)
    m = _module(teacher=teacher.requires_grad_(False), checkpoints=3, record_steps=40)
    _train(m, 120, batch=128, lr=5e-3)
    generator, *path = m.path_samples(400, 16, seed=5, shape=(2,), dtype=torch.float32)
    data = RING.sample(400, generator=gen).float()
    to_data = [energy_distance(x, data) for x in path]
    to_generator = [energy_distance(x, generator) for x in path]
    assert all(a < b for a, b in zip(to_data, to_data[1:])), to_data
    assert to_data[-1] > 4 * to_data[0]
    # the generator is nearly a point: the last checkpoints approach it, not necessarily in order
    assert all(d < 0.5 * to_generator[0] for d in to_generator[1:]), to_generator
    assert to_generator[-1] < 0.1 * to_generator[0], to_generator


def test_stage_state_survives_a_checkpoint():
    """The step count and the recorded weights round-trip through on_save/on_load_checkpoint; the loaded module
    then matches the same recorded s^k."""
    torch.manual_seed(2)
    m = _module(checkpoints=2, record_steps=3, stage_steps=5, fake_init="student")
    _train(m, 8, lr=1e-2)
    checkpoint: dict = {}
    m.on_save_checkpoint(checkpoint)
    fresh = _module(checkpoints=2, record_steps=3, stage_steps=5, fake_init="student")
    fresh.on_load_checkpoint(checkpoint)
    assert fresh.steps_done == 8 and fresh.target_index == m.target_index == 1
    assert len(fresh.recorded) == 2
    for a, b in zip(fresh.score_network(1).state_dict().values(), m.score_network(1).state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize(
    "hparams, words",
    [
        ({"record_steps": 0}, "record_steps"),
        ({"stage_steps": 0}, "stage_steps"),
        ({"checkpoints": -1}, "checkpoints"),
        ({"t_low": 0.5, "t_high": 0.4}, "t_low < t_high"),
    ],
)
def test_refuses_bad_settings(hparams, words):
    with pytest.raises(ConfigError, match=words):
        _module(**hparams)


def test_refuses_a_missing_teacher():
    with pytest.raises(ConfigError, match="teacher"):
        DisBack(MLPDenoiser(2, hidden=16, depth=2))


class _Writer:
    """Collects the ``points`` events :func:`write_path` emits, as the run writer would store them."""

    def __init__(self):
        self.events: list[dict] = []

    def points(self, name, x, y, step=None, **extra):
        self.events.append({"kind": "points", "name": name, "x": x, "y": y, "step": step, **extra})


def test_the_path_view_draws_the_recorded_scores_and_an_empty_log():
    """At the end of stage 1 the module writes the generator's and s^0 … s^N's samples (≤ PATH_POINTS each); the
    view draws one scatter per distribution, and an empty log without error."""
    torch.manual_seed(3)
    m = _module(checkpoints=2, record_steps=2, fake_init="student")
    _train(m, 4, lr=1e-2)
    writer = _Writer()
    write_path(writer, m, 4, torch.zeros(8, 2))
    names = [e["name"] for e in writer.events]
    assert names == ["disback/generator", "disback/s0", "disback/s1", "disback/s2"]
    assert all(len(e["x"]) == len(e["y"]) == PATH_POINTS for e in writer.events)
    full, blank = Figure().subplots(1, 2)
    disback_path(full, EventLog(writer.events))
    assert len(full.collections) == 4
    disback_path(blank, EventLog())
    assert len(blank.collections) == 0
