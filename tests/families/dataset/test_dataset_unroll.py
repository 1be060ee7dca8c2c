"""The trajectory gradient: exact constant-memory sweep = full unrolling; TESLA = MTT only at N = 1."""

import pytest
import torch

from nbdistill.families.dataset.augment import dsa
from nbdistill.families.dataset.losses import normalised_parameter_distance
from nbdistill.families.dataset.nets import FlatModel
from nbdistill.families.dataset.unroll import InnerLoop, matching_loss, plan_steps
from nbdistill.models import ConvNet


def _setup(steps, momentum=0.0, augment=False, soft=True, seed=0):
    torch.manual_seed(seed)
    net = ConvNet((1, 4, 4), num_classes=3, width=3, depth=1).double()
    model = FlatModel(net)
    theta0 = model.flatten()
    target = theta0 + 0.05 * torch.randn_like(theta0)
    images = torch.randn(6, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    if soft:
        labels = torch.softmax(torch.randn(6, 3, dtype=torch.float64), -1).requires_grad_(True)
    else:
        labels = torch.arange(3).repeat(2)
    syn_lr = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    plan = plan_steps(6, 4, steps, torch.Generator().manual_seed(seed))
    loop = InnerLoop(model, plan, augment=(lambda x, s: dsa(x, s)) if augment else None, momentum=momentum)
    return loop, theta0, images, labels, syn_lr, target


def _grads(mode, steps, targets_at=None, **kw):
    loop, theta0, images, labels, syn_lr, target = _setup(steps, **kw)
    targets = {k: target + 0.01 * k for k in (targets_at or [steps])}
    out = matching_loss(loop, theta0, images, labels, syn_lr, targets, gradient=mode)
    wrt = [images, syn_lr] + ([labels] if labels.requires_grad else [])
    return out.loss.detach(), torch.autograd.grad(out.loss, wrt), out.final


def _rel(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("momentum,augment,soft", [(0.0, False, True), (0.5, True, True), (0.0, True, False)])
def test_exact_constant_memory_equals_full_unrolling(momentum, augment, soft):
    loss_u, grads_u, final_u = _grads("unrolled", 6, momentum=momentum, augment=augment, soft=soft)
    loss_e, grads_e, final_e = _grads("exact_constant_memory", 6, momentum=momentum, augment=augment, soft=soft)
    assert torch.allclose(loss_u, loss_e, rtol=1e-10) and torch.allclose(final_u, final_e, rtol=1e-10)
    for gu, ge in zip(grads_u, grads_e):
        assert _rel(ge, gu) <= 1e-10


def test_exact_with_intermediate_targets_equals_unrolling():
    _, grads_u, _ = _grads("unrolled", 6, targets_at=[2, 4, 6], momentum=0.9)
    _, grads_e, _ = _grads("exact_constant_memory", 6, targets_at=[2, 4, 6], momentum=0.9)
    for gu, ge in zip(grads_u, grads_e):
        assert _rel(ge, gu) <= 1e-10


def test_tesla_is_mtt_at_one_step_and_differs_beyond():
    _, grads_u1, _ = _grads("unrolled", 1)
    _, grads_t1, _ = _grads("tesla", 1)
    for gu, gt in zip(grads_u1, grads_t1):
        assert _rel(gt, gu) <= 1e-10
    loss_u, grads_u, _ = _grads("unrolled", 6)
    loss_t, grads_t, _ = _grads("tesla", 6)
    assert torch.allclose(loss_u, loss_t)  # same forward pass, same loss value
    assert _rel(grads_t[0], grads_u[0]) > 1e-3  # the image gradient drops the θ-path terms


def test_tesla_image_gradient_is_its_closed_form():
    """TESLA (plain SGD, one target): dL/dX = Σ_n ∂/∂X <v, g_n> with v = (2/D)(α(θ*−θ0) + α²G)."""
    loop, theta0, images, labels, syn_lr, target = _setup(4)
    out = matching_loss(loop, theta0, images, labels, syn_lr, {4: target}, gradient="tesla")
    (grad_x,) = torch.autograd.grad(out.loss, images)
    alpha = syn_lr.detach()
    thetas, G = [theta0], torch.zeros_like(theta0)
    for n in range(4):
        g = loop.grad(thetas[-1].clone().requires_grad_(True), images.detach(), labels.detach(), n, create_graph=False)
        G += g
        thetas.append(thetas[-1] - alpha * g)
    D = ((theta0 - target) ** 2).sum()
    v = (2 / D) * (alpha * (target - theta0) + alpha**2 * G)
    expected = torch.zeros_like(images)
    for n in range(4):
        x = images.detach().requires_grad_(True)
        g = loop.grad(thetas[n].clone().requires_grad_(True), x, labels.detach(), n, create_graph=True)
        expected += torch.autograd.grad((v * g).sum(), x)[0]
    assert _rel(grad_x, expected) <= 1e-10


def test_unrolled_gradient_matches_finite_differences():
    loop, theta0, images, labels, syn_lr, target = _setup(3, soft=False)
    out = matching_loss(loop, theta0, images, labels, syn_lr, {3: target})
    (grad_x,) = torch.autograd.grad(out.loss, images)
    direction = torch.randn_like(images)
    eps = 1e-6

    def value(x):
        with torch.enable_grad():
            return float(matching_loss(loop, theta0, x, labels, syn_lr.detach(), {3: target}).loss.detach())

    numeric = (value(images.detach() + eps * direction) - value(images.detach() - eps * direction)) / (2 * eps)
    assert numeric == pytest.approx(float((grad_x * direction).sum()), rel=1e-5)


def test_loss_is_one_at_zero_step_size_and_zero_on_target():
    loop, theta0, images, labels, _, target = _setup(3)
    zero = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    for mode in ("unrolled", "tesla", "exact_constant_memory"):
        out = matching_loss(loop, theta0, images, labels, zero, {3: target}, gradient=mode)
        assert float(out.loss.detach()) == pytest.approx(1.0)
    assert float(normalised_parameter_distance(target, target, theta0)) == 0.0
