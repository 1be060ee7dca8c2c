r"""Consistency distillation (Song, Dhariwal, Chen & Sutskever, "Consistency Models", ICML 2023, Alg. 2)
in nbdistill's variance-preserving time ``t ∈ [t_min, t_max]``.

**The consistency function.** A consistency model maps any point ``x_t`` of a probability-flow ODE
trajectory to the trajectory's point at the boundary time ``ε``: ``f(x_t, t) = x_ε``, with the boundary
condition ``f(x, ε) = x`` (paper §3). The paper enforces it by ``f_θ(x, t) = c_skip(t)·x + c_out(t)·F_θ(x, t)``
with ``c_skip(ε) = 1``, ``c_out(ε) = 0``. Here ``F_θ`` is the student denoiser ``D_θ`` (an x0-prediction) and
the scalings are those of one DDIM step from ``t`` to the boundary ``b``:

    f_θ(x, t → b) = α_b·D_θ(x, t) + σ_b·(x − α_t·D_θ(x, t))/σ_t,   c_skip = σ_b/σ_t,   c_out = α_b − σ_b·α_t/σ_t,

so ``c_skip(b) = 1`` and ``c_out(b) = 0`` hold exactly, for any weights and any denoiser (:func:`consistency_map`).
With ``b = ε = t_min`` (``α_ε ≈ 1``; ``σ_ε = 1.6e-3`` for the cosine schedule, ``1.05e-2`` for the linear one) ``f_θ`` is the student's
x0-prediction up to ``σ_ε·ε̂``; Hyper-SD's segments (:mod:`.tscd`) use the same map to a segment's lower edge.

**The loss** (Alg. 2): ``x ~ data``, ``n ~ U{0..N−1}`` on the teacher's ``N``-step grid ``t_0 = t_max > … > t_N = ε``,
``x_{t_n} = α x + σ z``, one teacher ODE step ``x̂_{t_{n+1}} = Φ(x_{t_n}; t_n → t_{n+1})`` (:func:`teacher_ode_step`),

    L = d( f_θ(x_{t_n}, t_n), sg f_θ⁻(x̂_{t_{n+1}}, t_{n+1}) ),

with ``d`` the squared error (or the pseudo-Huber distance of Song & Dhariwal 2023, "Improved Techniques for
Training Consistency Models") and uniform ``λ(t) = 1`` (the paper's and openai/consistency_models' CD setting,
``--weight_schedule uniform``), then the target network's EMA ``θ⁻ ← sg(μ θ⁻ + (1 − μ) θ)`` (:func:`ema_update`).

**Multistep sampling** (paper Alg. 1): ``x ← f(z, t_max)``; for each later time ``τ``: re-noise ``x`` (a point at
``ε``) to ``τ`` with fresh noise by the VP transition kernel (:func:`renoise`, the VP form of the paper's
``x + sqrt(τ² − ε²) z``) and apply ``f`` again.
"""

from __future__ import annotations

import math

import torch

from ..schedule import VPSchedule, per_sample

#: The teacher ODE solvers of one consistency step.
SOLVERS = ("ddim", "heun")
#: The distances ``d`` of the consistency loss.
DISTANCES = ("mse", "pseudo_huber")


def boundary_scalings(alpha_t, sigma_t, alpha_b, sigma_b) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(c_skip, c_out) = (σ_b/σ_t, α_b − σ_b α_t/σ_t)``: the DDIM step from ``t`` to the boundary ``b``
    written as the paper's ``f = c_skip·x + c_out·F``; ``c_skip = 1``, ``c_out = 0`` when ``t = b``."""
    c_skip = sigma_b / sigma_t
    return c_skip, alpha_b - c_skip * alpha_t


def consistency_map(x_t: torch.Tensor, x0_hat: torch.Tensor, alpha_t, sigma_t, alpha_b, sigma_b) -> torch.Tensor:
    r"""``f(x_t, t → b) = c_skip·x_t + c_out·x̂_0`` (:func:`boundary_scalings`): the point at the boundary time ``b``
    that one DDIM step with the x0-prediction ``x0_hat`` reaches. Coefficients: scalars or one per sample ``[B]``."""
    c_skip, c_out = boundary_scalings(alpha_t, sigma_t, alpha_b, sigma_b)
    return per_sample(c_skip, x_t) * x_t + per_sample(c_out, x_t) * x0_hat


def teacher_ode_step(
    teacher, schedule: VPSchedule, x: torch.Tensor, t: torch.Tensor, s: torch.Tensor, solver: str = "ddim"
) -> torch.Tensor:
    r"""One probability-flow ODE step of ``teacher`` from ``t`` to ``s < t`` (one time per sample ``[B]``).

    ``"ddim"``: ``x_s = α_s x̂_0 + σ_s (x − α_t x̂_0)/σ_t`` (one evaluation). ``"heun"``: Heun's method on
    ``dx/dt = α'(t) x̂_0 + σ'(t) ε̂`` (EDM Alg. 1; the paper's CD solver; two evaluations), as
    openai/consistency_models' ``heun_solver``, in VP time.
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown ODE solver {solver!r}; use one of {SOLVERS}")

    def denoise_at(z, time):
        x0 = teacher(z, time)
        return x0, (z - per_sample(schedule.alpha(time), z) * x0) / per_sample(schedule.sigma(time), z)

    x0, eps = denoise_at(x, t)
    if solver == "ddim":
        return per_sample(schedule.alpha(s), x) * x0 + per_sample(schedule.sigma(s), x) * eps
    h = per_sample(s - t, x)
    slope = per_sample(schedule.d_alpha(t), x) * x0 + per_sample(schedule.d_sigma(t), x) * eps
    x_euler = x + h * slope
    x0_s, eps_s = denoise_at(x_euler, s)
    slope_s = per_sample(schedule.d_alpha(s), x) * x0_s + per_sample(schedule.d_sigma(s), x) * eps_s
    return x + h * 0.5 * (slope + slope_s)


def pseudo_huber(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""``d(a, b) = sqrt(‖a − b‖² + c²) − c`` per sample with ``c = 0.00054·sqrt(dim)`` (Song & Dhariwal 2023, §3.3)."""
    diff = (a - b).reshape(a.shape[0], -1)
    c = 0.00054 * math.sqrt(diff.shape[1])
    return torch.sqrt(diff.pow(2).sum(1) + c * c) - c


def consistency_loss(online: torch.Tensor, target: torch.Tensor, distance: str = "mse") -> dict[str, torch.Tensor]:
    r"""``L = mean_b d(f_θ(x_{t_n}, t_n), sg target)`` with ``λ = 1``; ``target`` is detached.

    Returns ``{"consistency_mse": the mean squared error (always), "loss": the loss under ``distance``}``
    (``"mse"``: the mean over samples and coordinates of the squared error, openai/consistency_models' ``l2``)."""
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; use one of {DISTANCES}")
    target = target.detach()
    mse = (online - target).pow(2).mean()
    loss = mse if distance == "mse" else pseudo_huber(online, target).mean()
    return {"consistency_mse": mse, "loss": loss}


@torch.no_grad()
def ema_update(target: torch.nn.Module, online: torch.nn.Module, decay: float) -> None:
    r"""``θ⁻ ← μ θ⁻ + (1 − μ) θ`` in place (paper Alg. 2, the target network; ``μ = decay``), buffers copied."""
    for p_target, p_online in zip(target.parameters(), online.parameters()):
        p_target.lerp_(p_online.detach(), 1.0 - decay)
    for b_target, b_online in zip(target.buffers(), online.buffers()):
        b_target.copy_(b_online)


def renoise(x_b: torch.Tensor, alpha_b, sigma_b, alpha_t, sigma_t, z: torch.Tensor) -> torch.Tensor:
    r"""A point at time ``b`` carried forward to a later time ``t`` by the VP transition kernel with noise ``z``:

        x_t = (α_t/α_b)·x_b + sqrt(σ_t² − (α_t σ_b/α_b)²)·z,

    so that ``x_b = α_b x + σ_b ε`` gives ``x_t ~ α_t x + σ_t ε'`` (the VP form of the paper's Alg. 1 step
    ``x + sqrt(τ² − ε²) z``; needs ``SNR_t ≤ SNR_b``, i.e. ``t ≥ b``)."""
    ratio = alpha_t / alpha_b
    std = (sigma_t**2 - (ratio * sigma_b) ** 2).clamp(min=0).sqrt()
    return per_sample(ratio, x_b) * x_b + per_sample(std, x_b) * z
