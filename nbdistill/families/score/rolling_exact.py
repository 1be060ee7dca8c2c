r"""The exact denoiser of a window of Gaussian frames, each frame at its own noise level.

For a zero-mean Gaussian sequence ``x ~ N(0, Σ)`` (flattened frames) noised frame by frame,
``x_t = A x + S ε`` with ``A = diag(α(t_i))`` and ``S = diag(σ(t_i))`` (each frame's level repeated over
its values), the posterior is Gaussian and its mean is linear:

    E[x | x_t] = Σ A (A Σ A + S²)⁻¹ x_t.

A clean frame (``t_i = 0``) is returned as it is (it is conditioned on), a frame at ``t = 1``
(``α = 0``) carries nothing. This is the optimal denoiser of :class:`~nbdistill.data.sequences.SineSequences`
at any per-frame noise levels: the exact teacher of the rolling tests (float64, like :mod:`.exact`).
"""

from __future__ import annotations

import torch
from torch import nn

from ...core.errors import ConfigError
from ...models.window_denoiser import frame_times
from .schedule import CosineVP, VPSchedule

F64 = torch.float64


class ExactWindowDenoiser(nn.Module):
    """``forward(x_t [B, n, frame_dim], t [B, n])``: the exact posterior mean of Gaussian frames.

    Args:
        covariance: ``[L, L]`` covariance of ``L = frames · frame_dim`` values; a window of ``n`` frames uses
            its top-left ``n · frame_dim`` block (for a stationary process, that of any ``n`` consecutive frames).
        frame_dim: values per frame.
        schedule: the VP schedule of the noise levels (cosine by default).
    """

    def __init__(self, covariance: torch.Tensor, frame_dim: int, schedule: VPSchedule | None = None):
        super().__init__()
        covariance = torch.as_tensor(covariance, dtype=F64)
        if covariance.dim() != 2 or covariance.shape[0] != covariance.shape[1] or covariance.shape[0] % frame_dim:
            raise ConfigError(
                f"the covariance must be [L, L] with L a multiple of frame_dim={frame_dim}, got {tuple(covariance.shape)}"
            )
        self.register_buffer("covariance", covariance)
        self.frame_dim = frame_dim
        self.frames = covariance.shape[0] // frame_dim
        self.schedule = schedule or CosineVP()

    @classmethod
    def of(cls, data, schedule: VPSchedule | None = None) -> ExactWindowDenoiser:
        """The exact denoiser of a :class:`~nbdistill.data.sequences.SineSequences` data set's sequences."""
        return cls(data.covariance(data.frames * data.frame_dim), data.frame_dim, schedule)

    def forward(self, x_t: torch.Tensor, t) -> torch.Tensor:
        b, n, d = x_t.shape
        if d != self.frame_dim or n > self.frames:
            raise ValueError(f"ExactWindowDenoiser takes [B, n <= {self.frames}, {self.frame_dim}], got {tuple(x_t.shape)}")
        t = frame_times(t, b, n, x_t).to(F64)
        alpha = self.schedule.alpha(t).repeat_interleave(d, 1)  # [B, n d]
        sigma = self.schedule.sigma(t).repeat_interleave(d, 1)
        cov = self.covariance[: n * d, : n * d]
        noisy = alpha[:, :, None] * cov * alpha[:, None, :] + torch.diag_embed(sigma**2)
        solved = torch.linalg.solve(noisy, x_t.reshape(b, n * d, 1).to(F64))
        x0 = cov @ (alpha[:, :, None] * solved)
        return x0.reshape(b, n, d).to(x_t.dtype)
