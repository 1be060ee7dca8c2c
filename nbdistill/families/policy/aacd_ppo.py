"""PPO's pieces as pure functions (Schulman et al. 2017, "Proximal Policy Optimization Algorithms"; GAE:
Schulman et al. 2016, "High-Dimensional Continuous Control Using Generalized Advantage Estimation").

Used by ``policy.aacd`` (:mod:`.aacd`) for both of its stages. Tensors are time-major ``[T, N]``.
"""

from __future__ import annotations

import math

import torch


def gae(rewards: torch.Tensor, values: torch.Tensor, last_value: torch.Tensor, done: torch.Tensor, gamma: float, lam: float):
    """Generalised advantage estimation: ``delta_t = r_t + gamma (1 - d_t) V(s_{t+1}) - V(s_t)``,
    ``A_t = delta_t + gamma lam (1 - d_t) A_{t+1}``; returns ``(advantages, returns = A + V)``, each ``[T, N]``.

    ``done[t]`` is 1 where the episode ended at step ``t`` (then nothing after it is bootstrapped);
    ``last_value`` ``[N]`` is ``V(s_T)``, the value after the last step.
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(last_value)
    for t in reversed(range(steps)):
        following = last_value if t == steps - 1 else values[t + 1]
        keep = 1.0 - done[t].to(rewards.dtype)
        delta = rewards[t] + gamma * keep * following - values[t]
        running = delta + gamma * lam * keep * running
        advantages[t] = running
    return advantages, advantages + values


def gaussian_log_prob(actions: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """``log N(a; mean, diag(exp(log_std)^2))`` summed over the last dimension."""
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def ppo_clip_loss(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, clip: float) -> torch.Tensor:
    """PPO's clipped surrogate, as a loss to minimise:
    ``-mean(min(rho A, clip(rho, 1 - eps, 1 + eps) A))`` with ``rho = exp(log pi - log pi_old)``."""
    ratio = torch.exp(log_prob - old_log_prob)
    return -torch.minimum(ratio * advantages, ratio.clamp(1.0 - clip, 1.0 + clip) * advantages).mean()


def value_loss(values: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """The critic's regression to the GAE returns (the paper's "Bellman loss"): ``mean((V(s) - R)^2) / 2``."""
    return 0.5 * (values - returns).pow(2).mean()
