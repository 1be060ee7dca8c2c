"""score.dmd2: DMD without regression as its special case, the two time-scale steps, the GAN classifier on the fake
score's features (its gradients and its separation of real from fake), backward simulation and the refusals."""

from __future__ import annotations

import copy

import pytest
import torch

from nbdistill.core.errors import ConfigError
from nbdistill.families.score.dmd import DMD
from nbdistill.families.score.dmd2 import DMD2
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.losses.dmd2 import gan_classifier_loss, gan_generator_loss
from nbdistill.models import MLPDenoiser

RING = GaussianMixture.ring(k=4, radius=1.5, std=0.2)


def _module(student=None, **hparams) -> DMD2:
    student = MLPDenoiser(2, hidden=16, depth=2) if student is None else student
    return DMD2(student, teacher=ExactDenoiser(RING), **hparams)


def _grads(net: torch.nn.Module) -> list[torch.Tensor | None]:
    return [p.grad for p in net.parameters()]


def test_gan_losses_are_the_softplus_log_sigmoid_forms():
    real, fake = torch.tensor([2.0, -1.0], dtype=torch.float64), torch.tensor([0.5, -3.0], dtype=torch.float64)
    expected = -(torch.sigmoid(real).log().mean() + (1 - torch.sigmoid(fake)).log().mean())
    torch.testing.assert_close(gan_classifier_loss(real, fake), expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(gan_generator_loss(fake), -torch.sigmoid(fake).log().mean(), rtol=1e-12, atol=0)


def test_without_gan_and_ttur_the_generator_loss_is_dmds_without_regression():
    """gan_weight=0, fake_steps=1: the same seed gives DMD2 the same terms as DMD with regression_weight=0 (float64)."""
    torch.manual_seed(0)
    student = MLPDenoiser(2, hidden=16, depth=2).double()
    dmd = DMD(copy.deepcopy(student), teacher=ExactDenoiser(RING), regression_weight=0.0).double()
    dmd2 = _module(copy.deepcopy(student), gan_weight=0.0, fake_steps=1).double()
    dmd2.fake_score.load_state_dict(dmd.fake_score.state_dict())
    batch = (torch.randn(64, 2, dtype=torch.float64), None)
    torch.manual_seed(7)
    one = dmd.loss_terms(batch)
    torch.manual_seed(7)
    two = dmd2.loss_terms(batch)
    for name in ("dm", "fake", "loss"):
        torch.testing.assert_close(two[name], one[name], rtol=1e-12, atol=0)
    one["loss"].backward()
    two["loss"].backward()
    for a, b in zip(dmd.student.parameters(), dmd2.student.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-10, atol=1e-14)


def test_generator_steps_only_every_fake_steps(monkeypatch):
    """TTUR: on steps 1..fake_steps−1 the generator has no term and its weights get no gradient; step fake_steps has one."""
    m = _module(fake_steps=5)
    batch = (RING.sample(32, torch.Generator().manual_seed(0)).float(), None)
    for step, turn in ((0, True), (1, False), (4, False), (5, True)):
        monkeypatch.setattr(DMD2, "global_step", property(lambda self, s=step: s))
        m.zero_grad(set_to_none=True)
        terms = m.loss_terms(batch)
        terms["loss"].backward()
        assert ("dm" in terms) == turn and ("gan_generator" in terms) == turn
        assert all((g is not None) == turn for g in _grads(m.student))
        assert all(g is not None for g in _grads(m.fake_score))


def test_generator_gan_term_reaches_the_generator_only_and_the_classifier_term_not_the_generator():
    m = _module(gan_weight=1.0)
    batch = (RING.sample(32, torch.Generator().manual_seed(0)).float(), None)
    m.loss_terms(batch)["gan_generator"].backward()
    assert all(g is None for g in _grads(m.fake_score) + _grads(m.classifier))
    assert sum(g.abs().sum() for g in _grads(m.student)) > 0
    m.zero_grad(set_to_none=True)
    m.loss_terms(batch)["classifier"].backward()
    assert all(g is None for g in _grads(m.student))
    assert all(g is not None for g in _grads(m.classifier))
    trunk = _grads(m.fake_score)[:-2]  # the classifier trains the fake score's layers below its output layer too
    assert all(g is not None for g in trunk) and sum(g.abs().sum() for g in trunk) > 0


def test_classifier_reads_the_fake_scores_last_hidden_features():
    m = _module()
    x, t = torch.randn(8, 2), torch.full((8,), 0.3)
    hidden = m.fake_score.net[:-1](torch.cat([x, _embedding(m.fake_score, t)], 1))
    torch.testing.assert_close(m.classifier_logits(x, t), m.classifier(hidden).reshape(-1), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(m.classifier_logits(x, t, frozen=True), m.classifier_logits(x, t), rtol=0, atol=0)


def _embedding(net: MLPDenoiser, t: torch.Tensor) -> torch.Tensor:
    from nbdistill.models.denoiser import sinusoidal_embedding

    return sinusoidal_embedding(t, net.time_embedding)


def test_classifier_logits_separate_real_from_fake_on_a_toy_mixture():
    """The generator untrained (its points far from the ring): 30 classifier steps put the real logits above
    the fake ones on fresh noisy batches."""
    torch.manual_seed(0)
    m = _module(fake_steps=100, gan_weight=1.0, classifier_weight=1.0, t_low=0.02, t_high=0.3)
    opt = torch.optim.Adam(list(m.classifier.parameters()) + list(m.fake_score.parameters()), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        m.loss_terms((RING.sample(64).float(), None))["classifier"].backward()
        opt.step()
    with torch.no_grad():
        terms = m.loss_terms((RING.sample(256, torch.Generator().manual_seed(9)).float(), None))
    assert terms["real_logit"] > terms["fake_logit"] + 1.0, (terms["real_logit"], terms["fake_logit"])


def test_backward_simulation_and_sampling_run_the_generators_own_chain():
    """steps=2: the samples are G(α x̂0 + σ ε, t_1) with x̂0 = G(z, t_max) and fresh ε; training draws k ∈ {0, 1}."""
    m = _module(steps=2)
    assert m.sampling_steps == 2
    g = torch.Generator().manual_seed(0)
    z, eps = torch.randn(16, 2, generator=g), torch.randn(16, 2, generator=g)
    times = m.noise.timesteps(2)
    with torch.no_grad():
        x0 = m.student(z, times[0].expand(16))
        expected = m.student(m.noise.alpha(times[1]) * x0 + m.noise.sigma(times[1]) * eps, times[1].expand(16))
    torch.testing.assert_close(m.draw_samples(16, torch.Generator().manual_seed(0), (2,), torch.float32), expected)
    torch.manual_seed(1)
    out = m.simulated_generation(torch.randn(16, 2))
    assert out.shape == (16, 2) and out.requires_grad


@pytest.mark.parametrize(
    ("hparams", "match"), [({"t_low": 0.9, "t_high": 0.1}, "t_low < t_high"), ({"fake_init": "teacher"}, "no weights")]
)
def test_refusals(hparams, match):
    with pytest.raises(ConfigError, match=match):
        _module(**hparams)


def test_refuses_a_fake_score_without_a_linear_layer():
    class Scale(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward(self, x_t, t):
            return self.w * x_t

    with pytest.raises(ConfigError, match="nn.Linear"):
        _module(student=Scale())
