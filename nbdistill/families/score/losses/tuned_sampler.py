r"""The tuned few-step schedule of ``score.tuned_sampler``: ``N`` monotone times from learnable logits.

A ``steps = N``-step sampler runs along ``t_0 = t_max > t_1 > ... > t_N = t_min``. Its ``N`` gaps are shares
of the whole span, a softmax of ``N`` free logits ``θ`` mixed with a floor ``δ = MIN_SHARE`` spread evenly
(so that no gap underflows to zero, however far apart the logits), which makes every ``θ`` a strictly
decreasing schedule with the schedule's own end points:

    w_j = (1 − δ) softmax(θ)_j + δ / N,     t_i = t_max − (t_max − t_min) · Σ_{j < i} w_j,     i = 0..N.

``θ = 0`` gives equal gaps, the uniform grid of :meth:`..schedule.VPSchedule.timesteps` (plain DDIM).
:func:`logits_from_times` inverts it: ``θ_j = log((g_j − δ / N) / (1 − δ))`` with ``g_j`` the gap shares
(up to an additive constant), for gaps wider than the floor.
The tuning objective (:func:`paired_endpoint_loss`) is the mean squared distance between the few-step
sampler's endpoint and the teacher's many-step endpoint from the same prior noise.
"""

from __future__ import annotations

import torch

from ....core.errors import ConfigError

#: ``δ``: the share of the span spread evenly over the gaps, the floor of each gap's share (``δ / N``).
MIN_SHARE = 1e-3


def schedule_times(logits: torch.Tensor, t_max: float, t_min: float) -> torch.Tensor:
    """The ``N + 1`` times ``t_max = t_0 > ... > t_N = t_min`` of the ``N`` gap logits (differentiable in them)."""
    shares = (1 - MIN_SHARE) * torch.softmax(logits, dim=0) + MIN_SHARE / len(logits)
    gaps = (t_max - t_min) * shares
    spent = torch.cumsum(gaps, dim=0)[:-1]  # the last cumulative gap is the whole span: t_N is t_min exactly
    start, end = spent.new_full((1,), t_max), spent.new_full((1,), t_min)
    return torch.cat([start, t_max - spent, end])


def logits_from_times(times: torch.Tensor) -> torch.Tensor:
    """Logits whose :func:`schedule_times` are ``times`` (strictly decreasing, from ``t_max`` to ``t_min``), or a
    :class:`ConfigError` for a gap narrower than the floor ``MIN_SHARE / N`` of the span."""
    shares = -times.diff() / (times[0] - times[-1])
    floor = MIN_SHARE / len(shares)
    if not (shares > floor).all():
        raise ConfigError(f"a tuned schedule's gaps must each exceed {floor:.2g} of the span, got times {times.tolist()}")
    return torch.log((shares - floor) / (1 - MIN_SHARE))


def paired_endpoint_loss(fast: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``mean_b ‖x_fast(z_b) − x_ref(z_b)‖²``: the few-step sampler against the teacher's many-step ODE endpoints."""
    return (fast - reference).flatten(1).pow(2).sum(1).mean()
