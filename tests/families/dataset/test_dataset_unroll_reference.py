"""The trajectory gradient against an independent reference, finite differences, late targets and dropout.

The reference below is written from the formulas alone (a functional MLP, a loop of SGD steps with
momentum, ``torch.autograd.grad`` through it): it shares no code with ``InnerLoop``, ``FlatModel``
or the dataset losses, so a wrong term in the adjoint sweep cannot be hidden by a shared helper.
Everything is float64; the exact modes must agree with it to 1e-10 (relative), which a Hessian-vector
term scaled by (1 − 1e-4) does not.
"""

import pytest
import torch
from torch import nn

from nbdistill.families.dataset.nets import FlatModel
from nbdistill.families.dataset.unroll import InnerLoop, InnerStep, matching_loss

D, H, C, N_IMAGES = 6, 5, 3, 8
TOL = 1e-10


def _augment(x: torch.Tensor, seed: int) -> torch.Tensor:
    """A deterministic, differentiable augmentation: the seed fixes a scale, a shift and a flip."""
    g = torch.Generator().manual_seed(seed)
    scale = 1 + 0.2 * torch.randn((), generator=g, dtype=x.dtype)
    shift = 0.1 * torch.randn(x.shape[1:], generator=g, dtype=x.dtype)
    out = x * scale + shift
    return out.flip(-1) if bool(torch.rand((), generator=g) < 0.5) else out


def _mlp(dropout: float = 0.0) -> nn.Module:
    layers = [nn.Flatten(), nn.Linear(D, H), nn.Tanh()] + ([nn.Dropout(dropout)] if dropout else []) + [nn.Linear(H, C)]
    return nn.Sequential(*layers).double()


# -- the independent reference -------------------------------------------------------------------


def _reference_forward(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """tanh(x W1ᵀ + b1) W2ᵀ + b2 with W1, b1, W2, b2 read from θ in nn.Linear's order."""
    w1, rest = theta[: H * D].view(H, D), theta[H * D :]
    b1, rest = rest[:H], rest[H:]
    w2, b2 = rest[: C * H].view(C, H), rest[C * H :]
    return torch.tanh(x.reshape(len(x), -1) @ w1.T + b1) @ w2.T + b2


def _reference_loss(theta0, images, labels, lr, plan, targets, momentum, weight, augment):
    """L = Σ_k ‖θ_k − θ*_k‖² / ‖θ_0 − θ*_k‖² after SGD steps b ← μb + ∇(w·CE), θ ← θ − lr·b, kept in the graph."""
    theta = theta0.clone().requires_grad_(True)
    b = torch.zeros_like(theta0)
    loss = theta0.new_zeros(())
    for n, (indices, seed) in enumerate(plan, start=1):
        x = images[indices]
        if augment:
            x = _augment(x, seed)
        logp = torch.log_softmax(_reference_forward(theta, x), -1)
        y = labels[indices]
        ce = -logp.gather(1, y[:, None]).mean() if y.dtype == torch.long else -(y * logp).sum(-1).mean()
        g = torch.autograd.grad(weight * ce, theta, create_graph=True)[0]
        b = momentum * b + g
        theta = theta - lr * b
        if n in targets:
            loss = loss + ((theta - targets[n]) ** 2).sum() / ((theta0 - targets[n]) ** 2).sum()
    return loss


# -- the problem ---------------------------------------------------------------------------------


def _problem(steps=5, soft=True, seed=0, dropout=0.0):
    torch.manual_seed(seed)
    template = _mlp(dropout)
    theta0 = torch.cat([p.detach().reshape(-1) for p in template.parameters()])
    images = torch.randn(N_IMAGES, 1, 2, 3, dtype=torch.float64, requires_grad=True)
    if soft:
        labels = torch.softmax(torch.randn(N_IMAGES, C, dtype=torch.float64), -1).requires_grad_(True)
    else:
        labels = torch.arange(C).repeat(3)[:N_IMAGES]
    lr = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    g = torch.Generator().manual_seed(seed + 1)
    plan = [
        (torch.randperm(N_IMAGES, generator=g)[:5].tolist(), int(torch.randint(1000, (1,), generator=g))) for _ in range(steps)
    ]
    far = {k: theta0 + 0.3 * torch.randn(theta0.shape, generator=g, dtype=torch.float64) for k in range(1, steps + 1)}
    return template, theta0, images, labels, lr, plan, far


def _loop(template, plan, momentum, weight, augment):
    steps = [InnerStep(torch.tensor(indices), seed) for indices, seed in plan]
    return InnerLoop(FlatModel(template), steps, augment=_augment if augment else None, momentum=momentum, loss_weight=weight)


def _wrt(images, labels, lr):
    return [images, lr] + ([labels] if labels.requires_grad else [])


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


CASES = [
    # momentum, loss weight, augment, soft labels, target steps
    (0.0, 1.0, False, False, (5,)),
    (0.6, 0.7, True, True, (2, 4, 5)),
    (0.9, 1.3, True, True, (5,)),
    (0.5, 1.0, True, True, (3,)),  # the last target before the last step
]


@pytest.mark.parametrize("mode", ["unrolled", "exact_constant_memory"])
@pytest.mark.parametrize("momentum,weight,augment,soft,at", CASES)
def test_exact_modes_equal_an_independent_unrolled_reference(mode, momentum, weight, augment, soft, at):
    template, theta0, images, labels, lr, plan, far = _problem(soft=soft)
    targets = {k: far[k] for k in at}
    expected_loss = _reference_loss(theta0, images, labels, lr, plan, targets, momentum, weight, augment)
    expected = torch.autograd.grad(expected_loss, _wrt(images, labels, lr))
    out = matching_loss(_loop(template, plan, momentum, weight, augment), theta0, images, labels, lr, targets, gradient=mode)
    got = torch.autograd.grad(out.loss, _wrt(images, labels, lr))
    assert abs(float(out.loss.detach()) - float(expected_loss.detach())) <= TOL * float(expected_loss.detach())
    for name, e, g in zip(["images", "lr", "labels"], expected, got):
        assert _rel(g, e) <= TOL, f"d L / d {name}: relative error {_rel(g, e):.3g}"


@pytest.mark.parametrize("mode", ["exact_constant_memory", "tesla"])
def test_a_last_target_before_the_last_step_is_handled(mode):
    """Targets {3} with N = 6: steps 4–6 do not enter L, so the gradient is that of the first three steps."""
    template, theta0, images, labels, lr, plan, far = _problem(steps=6)
    targets = {3: far[3]}
    out = matching_loss(_loop(template, plan, 0.5, 1.0, True), theta0, images, labels, lr, targets, gradient=mode)
    got = torch.autograd.grad(out.loss, _wrt(images, labels, lr))
    short = matching_loss(_loop(template, plan[:3], 0.5, 1.0, True), theta0, images, labels, lr, targets, gradient=mode)
    expected = torch.autograd.grad(short.loss, _wrt(images, labels, lr))
    for e, g in zip(expected, got):
        assert _rel(g, e) <= TOL
    assert not torch.equal(out.final, short.final)  # the forward pass still takes all six steps


@pytest.mark.parametrize("momentum,targets_at", [(0.6, (2, 4, 5)), (0.9, (5,))])
def test_exact_gradient_matches_finite_differences_on_lr_and_soft_labels(momentum, targets_at):
    """Central differences of the loss value, with momentum, augmentation and a loss weight (float64)."""
    template, theta0, images, labels, lr, plan, far = _problem()
    targets = {k: far[k] for k in targets_at}
    loop = _loop(template, plan, momentum, 0.8, True)
    out = matching_loss(loop, theta0, images, labels, lr, targets, gradient="exact_constant_memory")
    grad_lr, grad_labels, grad_images = torch.autograd.grad(out.loss, [lr, labels, images])

    def value(x, y, a):
        with torch.no_grad():
            return float(matching_loss(loop, theta0, x, y, a, targets, gradient="exact_constant_memory").loss)

    x0, y0, a0 = images.detach(), labels.detach(), lr.detach()
    eps = 1e-5
    numeric_lr = (value(x0, y0, a0 + eps) - value(x0, y0, a0 - eps)) / (2 * eps)
    assert float(grad_lr) == pytest.approx(numeric_lr, rel=1e-7)
    direction = torch.randn(y0.shape, generator=torch.Generator().manual_seed(5), dtype=y0.dtype)
    numeric_y = (value(x0, y0 + eps * direction, a0) - value(x0, y0 - eps * direction, a0)) / (2 * eps)
    assert float((grad_labels * direction).sum()) == pytest.approx(numeric_y, rel=1e-7)
    direction = torch.randn(x0.shape, generator=torch.Generator().manual_seed(6), dtype=x0.dtype)
    numeric_x = (value(x0 + eps * direction, y0, a0) - value(x0 - eps * direction, y0, a0)) / (2 * eps)
    assert float((grad_images * direction).sum()) == pytest.approx(numeric_x, rel=1e-7)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_exact_gradient_with_dropout_equals_unrolled_autograd(device, momentum):
    """Dropout draws a new mask at each call: the sweep must recompute each step with the forward's masks."""
    template, theta0, images, labels, lr, plan, far = _problem(dropout=0.3)
    template = template.to(device).train()
    theta0, lr = theta0.to(device), lr.detach().to(device).requires_grad_(True)
    images = images.detach().to(device).requires_grad_(True)
    labels = labels.detach().to(device).requires_grad_(True)
    targets = {k: far[k].to(device) for k in (3, 5)}
    grads = {}
    for mode in ("unrolled", "exact_constant_memory"):
        torch.manual_seed(123)
        out = matching_loss(_loop(template, plan, momentum, 1.0, True), theta0, images, labels, lr, targets, gradient=mode)
        before = torch.get_rng_state()
        grads[mode] = torch.autograd.grad(out.loss, _wrt(images, labels, lr))
        assert torch.equal(torch.get_rng_state(), before)  # the backward sweep leaves the global random state alone
    for e, g in zip(grads["unrolled"], grads["exact_constant_memory"]):
        assert _rel(g, e) <= TOL
