"""score.decoupled_dmd: the CA/DM decomposition (Eq. 6) against exact mixture scores, its refusals, and CA
alone raising the samples' variance (the paper's finding)."""

from __future__ import annotations

import pytest
import torch

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.data import ClassRing
from nbdistill.families.score.decoupled_dmd import DecoupledDMD, sample_variances
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.losses.decoupled_dmd import ca_term, cfg, decoupled_direction, dm_term
from nbdistill.families.score.losses.dmd import dmd_gradient
from nbdistill.families.score.schedule import CosineVP

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: one thread is fastest

F64 = torch.float64
REAL = GaussianMixture.ring(k=8, radius=2.0, std=0.3, classes=4)
#: a "fake" conditional density: another class-conditional mixture, off the real one
FAKE = GaussianMixture.ring(k=8, radius=1.3, std=0.5, classes=4)


def _point(seed: int = 0, n: int = 64):
    g = torch.Generator().manual_seed(seed)
    x = 2.5 * torch.randn(n, 2, generator=g, dtype=F64)
    y = torch.randint(4, (n,), generator=g)
    alpha, sigma = torch.tensor(0.8, dtype=F64), torch.tensor(0.6, dtype=F64)
    return x, y, alpha, sigma


@pytest.mark.parametrize("guidance", [1.0, 1.7, 4.0, 7.5])
def test_ca_plus_dm_is_the_guided_dmd_direction_exactly(guidance):
    x, y, a, s = _point()
    cond, uncond, fake = REAL.score(x, a, s, y), REAL.score(x, a, s), FAKE.score(x, a, s, y)
    torch.testing.assert_close(
        ca_term(cond, uncond, guidance) + dm_term(cond, fake), cfg(cond, uncond, guidance) - fake, rtol=0, atol=1e-12
    )
    torch.testing.assert_close(
        decoupled_direction(cond, uncond, fake, guidance), cfg(cond, uncond, guidance) - fake, rtol=0, atol=1e-12
    )


def test_the_decomposition_is_the_same_in_scores_and_in_x0_predictions():
    """s = (α μ − x)/σ² is affine in μ: every term in scores is α/σ² times the term in x0-predictions."""
    x, y, a, s = _point(1)
    scores = decoupled_direction(REAL.score(x, a, s, y), REAL.score(x, a, s), FAKE.score(x, a, s, y), 3.0)
    x0 = decoupled_direction(REAL.denoise(x, a, s, y), REAL.denoise(x, a, s), FAKE.denoise(x, a, s, y), 3.0)
    torch.testing.assert_close(scores, (a / s**2) * x0, rtol=1e-10, atol=1e-10)


def test_guidance_one_removes_ca_and_leaves_plain_dmd():
    x, y, a, s = _point(2)
    cond, uncond, fake = REAL.denoise(x, a, s, y), REAL.denoise(x, a, s), FAKE.denoise(x, a, s, y)
    assert ca_term(cond, uncond, 1.0).abs().max() == 0
    direction = decoupled_direction(cond, uncond, fake, 1.0)
    generated = x / a  # any generated batch
    torch.testing.assert_close(
        dmd_gradient(generated, fake + direction, fake), dmd_gradient(generated, cond, fake), rtol=0, atol=1e-12
    )


def test_switches_select_each_term():
    x, y, a, s = _point(3)
    cond, uncond, fake = REAL.score(x, a, s, y), REAL.score(x, a, s), FAKE.score(x, a, s, y)
    torch.testing.assert_close(decoupled_direction(cond, uncond, fake, 3.0, ca=False), cond - fake, rtol=0, atol=0)
    torch.testing.assert_close(decoupled_direction(cond, uncond, fake, 3.0, dm=False), 2.0 * (cond - uncond), rtol=0, atol=0)


def _module(**hparams):
    student = nd.models.MLPDenoiser(2, hidden=32, depth=2, num_classes=4)
    teacher = ExactDenoiser(REAL, CosineVP())
    return DecoupledDMD(student=student, teacher=teacher, **hparams)


def test_refusals():
    with pytest.raises(ConfigError, match="at least one of its terms"):
        _module(ca=False, dm=False)
    with pytest.raises(ConfigError, match="class-conditional"):
        DecoupledDMD(student=nd.models.MLPDenoiser(2, hidden=8, depth=1), teacher=ExactDenoiser(REAL))
    module = DecoupledDMD(student=nd.models.MLPDenoiser(2, hidden=8, depth=1, num_classes=2))
    data = nd.data.TwoMoons(n_samples=100, batch_size=20)
    data.setup("fit")
    with pytest.raises(ConfigError, match="exact class-conditional"):
        module.check_data(data)
    ring = ClassRing(k=8, classes=4, n_samples=100, batch_size=20)
    ring.setup("fit")
    with pytest.raises(ConfigError, match="class labels 0..1"):
        module.check_data(ring)
    unconditional = DecoupledDMD(
        student=nd.models.MLPDenoiser(2, hidden=8, depth=1, num_classes=2), teacher=nd.zoo.teacher("moons-denoiser")
    )
    with pytest.raises(ConfigError, match="teacher must be class-conditional"):
        unconditional.check_data(data)


def test_without_a_teacher_the_data_density_is_the_real_score():
    module = DecoupledDMD(student=nd.models.MLPDenoiser(2, hidden=8, depth=1, num_classes=4))
    data = nd.data.Mixture2D(REAL, n_samples=100, batch_size=20)
    data.setup("fit")
    module.check_data(data)
    x, y, a, s = _point(4, n=8)
    t = torch.full((8,), 0.4, dtype=F64)
    torch.testing.assert_close(module.real()(x, t, y), ExactDenoiser(REAL, module.noise)(x, t, y), rtol=0, atol=0)


def _train_variance(ca: bool, dm: bool, steps: int = 30, checkpoints=(0, 15, 30)) -> list[float]:
    """The total sample variance at ``checkpoints`` of a short hand-driven training loop (no Lightning)."""
    torch.manual_seed(0)
    module = _module(ca=ca, dm=dm, guidance=3.0)
    opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=3e-3)
    data = REAL.sample(400, torch.Generator().manual_seed(1), return_labels=True)
    x_all, y_all = data[0].float(), REAL.classes[data[1]]
    out = []
    for step in range(steps + 1):
        if step in checkpoints:
            samples = module.draw_samples(400, torch.Generator().manual_seed(0), (2,), torch.float32)
            out.append(samples.double().var(0).sum().item())
        if step == steps:
            break
        idx = torch.randint(400, (100,))
        loss = module.loss_terms((x_all[idx], y_all[idx]))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return out


def test_ca_alone_makes_the_sample_variance_climb():
    """Liu et al. 2025: the CA term alone converts but is unstable, its samples' variance rising monotonically."""
    variances = _train_variance(ca=True, dm=False)
    assert variances[0] < variances[1] < variances[2]
    assert variances[2] > 2 * float(REAL.covariance().trace())


def test_sample_variances_by_hand():
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [0.0, 6.0]])
    y = torch.tensor([0, 0, 1, 1])
    total, within = sample_variances(x, y)
    assert total == pytest.approx(x.double().var(0).sum().item())
    assert within == pytest.approx((2.0 + 2.0) / 2)  # class 0: var of (0, 2) in x = 2; class 1: var of (4, 6) in y = 2


def test_class_conditional_denoiser():
    """MLPDenoiser(num_classes=C): a class embedding with a null class for y=None; without num_classes, unchanged."""
    plain = nd.models.MLPDenoiser(2, hidden=8, depth=2)
    assert all(k.startswith("net.") for k in plain.state_dict())
    with pytest.raises(ValueError, match="unconditional"):
        plain(torch.zeros(3, 2), 0.5, torch.zeros(3, dtype=torch.long))
    torch.manual_seed(0)
    cond = nd.models.MLPDenoiser(2, hidden=8, depth=2, num_classes=3)
    assert cond.class_embedding.num_embeddings == 4 and cond.net[0].in_features == 2 + 32 + 32
    x = torch.randn(3, 2)
    assert not torch.allclose(cond(x, 0.5, torch.tensor([0, 0, 0])), cond(x, 0.5, torch.tensor([1, 1, 1])))
    unconditional = cond(x, 0.5)
    with torch.no_grad():  # y=None reads the last (null) row: copied into class 0's row, class 0 gives the same output
        cond.class_embedding.weight[0] = cond.class_embedding.weight[3]
    torch.testing.assert_close(cond(x, 0.5, torch.tensor([0, 0, 0])), unconditional, rtol=0, atol=0)
    with pytest.raises(ValueError, match="one class in 0..2"):
        cond(x, 0.5, torch.tensor([0, 3, 1]))
    with pytest.raises(ConfigError, match="num_classes"):
        nd.models.MLPDenoiser(2, num_classes=0)
