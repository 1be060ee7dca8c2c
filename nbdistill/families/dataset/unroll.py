r"""The inner loop of trajectory matching and three ways to take its gradient.

Starting from an expert's parameters :math:`\hat\theta_0 = \theta^*_t`, N steps of (momentum) SGD
on minibatches of the synthetic set :math:`(X, Y)` with a learnable step size α:

.. math::
    g_n = \nabla_\theta\, w\,\ell\big(f(A_n(X_{I_n}); \hat\theta_n),\, Y_{I_n}\big),\qquad
    b_{n+1} = \mu\, b_n + g_n,\qquad \hat\theta_{n+1} = \hat\theta_n - \alpha\, b_{n+1}

(:math:`I_n` a minibatch, :math:`A_n` a seeded augmentation, μ = 0 in MTT), then the matching loss
:math:`L = \sum_k \|\hat\theta_k - \theta^*_k\|^2 / \|\hat\theta_0 - \theta^*_k\|^2` over the targets
(MTT: the single target :math:`\theta^*_{t+M}` at k = N). We need :math:`\partial L/\partial X`,
:math:`\partial L/\partial Y` (learned labels) and :math:`\partial L/\partial\alpha`:

``"unrolled"``
    MTT's way: keep the graph of every step (``create_graph=True``) and backpropagate through all
    of them. Exact; memory grows linearly with N (every step's activations and second-order graph).
``"exact_constant_memory"``
    The same gradient, to rounding, by a reverse (adjoint) sweep. The forward pass keeps only the
    N+1 parameter vectors (and the momentum vectors when μ > 0). Going backward one step at a
    time, it rebuilds that step's graph, takes the vector-Jacobian product of
    :math:`s_n = \langle \bar b_{n+1}, g_n\rangle` with respect to X, Y and :math:`\hat\theta_n`
    (the latter a Hessian-vector product), and frees the graph:

    .. math::
        \bar b_{n+1} = \mu\,\bar b_{n+2} - \alpha\,\bar\theta_{n+1},\quad
        \bar\alpha \mathrel{-}= \langle\bar\theta_{n+1}, b_{n+1}\rangle,\quad
        \bar X \mathrel{+}= \partial_X s_n,\quad
        \bar\theta_n = \bar\theta_{n+1} + \partial_{\theta} s_n + \partial L/\partial\hat\theta_n .

    Activation memory is one step's, whatever N; the stored vectors cost N·P numbers. The sweep
    starts at the last target :math:`K = \max_k k` (steps after it do not enter L). Each step is
    recomputed with the random state it was first run with (CPU and CUDA generators, saved before
    the step and restored around the recomputation, the global state left as it was), so a student
    with dropout sees the same masks going backward as forward and the gradient stays exact.
``"tesla"``
    TESLA's gradient (Cui et al., "Scaling Up Dataset Distillation to ImageNet-1K with Constant
    Memory", ICML 2023): the same sweep without the Hessian-vector term, i.e. every
    :math:`\hat\theta_n` treated as a constant. For plain SGD and one target this is TESLA's
    closed form — every step gets the same :math:`v = -\alpha\,\partial L/\partial\hat\theta_N` and
    :math:`\partial L/\partial X = \sum_n \partial_X\langle v, g_n\rangle` — and it drops the
    path :math:`X \to \hat\theta_n \to g_n` through earlier steps (justincui03/tesla issue #4), so
    for N > 1 it is not MTT's gradient; for N = 1 it is. It carries the full factor 2 of the
    squared norm that TESLA's code loses (tesla issue #5).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ...core.errors import ConfigError
from .losses import normalised_parameter_distance, soft_cross_entropy
from .nets import FlatModel

GRADIENT_MODES = ("unrolled", "tesla", "exact_constant_memory")


@dataclass(frozen=True)
class InnerStep:
    """One inner step: which synthetic images it trains on and the seed of their augmentation."""

    indices: torch.Tensor
    seed: int


def plan_steps(num_images: int, batch_size: int, num_steps: int, generator: torch.Generator) -> list[InnerStep]:
    """MTT's minibatches: chunks of a random permutation of the synthetic set, a new one when used up."""
    steps: list[InnerStep] = []
    chunks: list[torch.Tensor] = []
    for _ in range(num_steps):
        if not chunks:
            chunks = list(torch.randperm(num_images, generator=generator).split(batch_size))
        steps.append(InnerStep(chunks.pop(), int(torch.randint(2**31 - 1, (1,), generator=generator))))
    return steps


@dataclass
class InnerLoop:
    """The N inner steps: network, minibatches, augmentation, momentum μ and loss weight w."""

    model: FlatModel
    steps: Sequence[InnerStep]
    augment: Callable[[torch.Tensor, int], torch.Tensor] | None = None
    momentum: float = 0.0
    loss_weight: float = 1.0

    def loss(self, theta: torch.Tensor, images: torch.Tensor, labels: torch.Tensor, n: int) -> torch.Tensor:
        step = self.steps[n]
        x = images[step.indices]
        if self.augment is not None:
            x = self.augment(x, step.seed)
        return self.loss_weight * soft_cross_entropy(self.model(x, theta), labels[step.indices])

    def grad(self, theta: torch.Tensor, images: torch.Tensor, labels: torch.Tensor, n: int, create_graph: bool) -> torch.Tensor:
        return torch.autograd.grad(self.loss(theta, images, labels, n), theta, create_graph=create_graph)[0]


@dataclass
class Matched:
    """The matching loss (differentiable in images, labels and α) and the student's last parameters."""

    loss: torch.Tensor
    final: torch.Tensor


def matching_loss(
    loop: InnerLoop,
    theta0: torch.Tensor,
    images: torch.Tensor,
    labels: torch.Tensor,
    syn_lr: torch.Tensor,
    targets: Mapping[int, torch.Tensor],
    gradient: str = "unrolled",
) -> Matched:
    """Run the inner loop from ``theta0`` and return :math:`L = \\sum_k` normalised distance of
    :math:`\\hat\\theta_k` to ``targets[k]`` (k in 1..N), with its gradient taken the ``gradient`` way."""
    if gradient not in GRADIENT_MODES:
        raise ConfigError(f"gradient {gradient!r} is not one of {list(GRADIENT_MODES)}")
    n_steps = len(loop.steps)
    if not targets or any(not 1 <= k <= n_steps for k in targets):
        raise ConfigError(f"matching targets must be at inner steps 1..{n_steps}, got {sorted(targets)}")
    theta0 = theta0.detach()
    if gradient == "unrolled":
        return _unrolled(loop, theta0, images, labels, syn_lr, targets)
    final: list[torch.Tensor] = []
    loss = _AdjointSweep.apply(images, labels, syn_lr, loop, theta0, dict(targets), gradient == "exact_constant_memory", final)
    return Matched(loss, final[0])


def _target_terms(k: int, theta: torch.Tensor, targets: Mapping[int, torch.Tensor], theta0: torch.Tensor) -> torch.Tensor | None:
    return normalised_parameter_distance(theta, targets[k], theta0) if k in targets else None


def _unrolled(loop, theta0, images, labels, syn_lr, targets) -> Matched:
    theta = theta0.clone().requires_grad_(True)
    b = torch.zeros_like(theta0)
    loss = theta0.new_zeros(())
    for n in range(len(loop.steps)):
        g = loop.grad(theta, images, labels, n, create_graph=True)
        b = loop.momentum * b + g if loop.momentum else g
        theta = theta - syn_lr * b
        term = _target_terms(n + 1, theta, targets, theta0)
        if term is not None:
            loss = loss + term
    return Matched(loss, theta.detach())


def _direct(k: int, theta: torch.Tensor, targets, theta0) -> torch.Tensor | None:
    """:math:`\\partial L/\\partial\\hat\\theta_k` of the target term at step k alone (None if none)."""
    if k not in targets:
        return None
    with torch.enable_grad():
        leaf = theta.detach().requires_grad_(True)
        return torch.autograd.grad(_target_terms(k, leaf, targets, theta0), leaf)[0]


@dataclass(frozen=True)
class _RandomState:
    """The CPU generator's state and, where CUDA is in use, every CUDA device's, before one inner step."""

    cpu: torch.Tensor
    cuda: tuple[torch.Tensor, ...]

    @staticmethod
    def capture() -> _RandomState:
        cuda = tuple(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() and torch.cuda.is_initialized() else ()
        return _RandomState(torch.get_rng_state(), cuda)

    @contextmanager
    def replay(self) -> Iterator[None]:
        """Run the block from this state; the global random state is restored afterwards."""
        with torch.random.fork_rng(devices=list(range(len(self.cuda)))):
            torch.set_rng_state(self.cpu)
            if self.cuda:
                torch.cuda.set_rng_state_all(list(self.cuda))
            yield


class _AdjointSweep(torch.autograd.Function):
    """Forward: the inner loop without a graph, keeping the parameter vectors. Backward: the sweep."""

    @staticmethod
    def forward(ctx, images, labels, syn_lr, loop: InnerLoop, theta0, targets, hessian: bool, final: list):
        alpha = syn_lr.detach()
        thetas, momenta, states = [theta0], [], []
        b = torch.zeros_like(theta0)
        for n in range(len(loop.steps)):
            states.append(_RandomState.capture())
            with torch.enable_grad():
                g = loop.grad(thetas[-1].detach().requires_grad_(True), images.detach(), labels.detach(), n, create_graph=False)
            b = loop.momentum * b + g if loop.momentum else g
            if loop.momentum:
                momenta.append(b)
            thetas.append((thetas[-1] - alpha * b).detach())
        loss = sum(_target_terms(k, thetas[k], targets, theta0) for k in targets)
        final.append(thetas[-1])
        ctx.loop, ctx.thetas, ctx.momenta, ctx.states, ctx.targets, ctx.hessian = loop, thetas, momenta, states, targets, hessian
        ctx.save_for_backward(images, labels, syn_lr)
        return loss.detach()

    @staticmethod
    def backward(ctx, grad_loss):
        images, labels, syn_lr = ctx.saved_tensors
        loop, thetas, momenta, states, targets = ctx.loop, ctx.thetas, ctx.momenta, ctx.states, ctx.targets
        want_labels = ctx.needs_input_grad[1]
        alpha = syn_lr.detach()
        theta0 = thetas[0]
        last = max(targets)  # steps after the last target do not enter the loss
        adj_theta = _direct(last, thetas[last], targets, theta0)
        adj_b = torch.zeros_like(theta0)
        grad_images = torch.zeros_like(images)
        grad_labels = torch.zeros_like(labels) if want_labels else None
        grad_alpha = torch.zeros_like(alpha)
        for n in reversed(range(last)):
            with torch.enable_grad(), states[n].replay():
                theta = thetas[n].detach().requires_grad_(True)
                x = images.detach().requires_grad_(True)
                y = labels.detach().requires_grad_(True) if want_labels else labels
                g = loop.grad(theta, x, y, n, create_graph=True)
                b_next = momenta[n] if momenta else g.detach()
                grad_alpha = grad_alpha - (adj_theta * b_next).sum()
                adj_b_next = adj_b - alpha * adj_theta
                wrt = [x] + ([y] if want_labels else []) + ([theta] if ctx.hessian else [])
                parts = torch.autograd.grad((adj_b_next * g).sum(), wrt)
            grad_images += parts[0]
            if want_labels:
                grad_labels += parts[1]
            if ctx.hessian:
                adj_theta = adj_theta + parts[-1]
            direct = _direct(n, thetas[n], targets, theta0) if n > 0 else None
            if direct is not None:
                adj_theta = adj_theta + direct
            adj_b = loop.momentum * adj_b_next
        ctx.thetas = ctx.momenta = ctx.states = None
        return (
            grad_loss * grad_images,
            grad_loss * grad_labels if want_labels else None,
            grad_loss * grad_alpha,
            None,
            None,
            None,
            None,
            None,
        )
