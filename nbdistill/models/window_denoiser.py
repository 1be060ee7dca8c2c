"""A small denoiser over a window of frames, each frame at its own noise level (diffusion forcing's network).

``WindowDenoiser(frame_dim, frames)(x_t, t)`` takes ``x_t`` ``[B, n, frame_dim]`` (``n <= frames``) and the
noise levels ``t`` ``[B, n]`` (one time per frame; a ``[B]`` or scalar time is shared by every frame) and
returns the x0-prediction of every frame, ``[B, n, frame_dim]``: frame ``i`` of ``x_t`` is
``α(t_i) x_i + σ(t_i) ε_i``. It is bidirectional: every output frame reads every input frame.

Each frame's time enters as the sinusoidal embedding of :func:`.denoiser.sinusoidal_embedding`; the
flattened frames and their embeddings feed an MLP. The output is v-parametrised per frame as in
:class:`~.denoiser.MLPDenoiser`: ``D_i = cos(π t_i / 2) x_i − sin(π t_i / 2) F_i``, so a clean frame
(``t_i = 0``, e.g. a frame of context) comes back as it went in.

A window shorter than ``frames`` is padded on the left with *absent* frames: zeros at ``t = 1``
(:data:`ABSENT_TIME`), where ``α = 0`` and a frame carries no information about the data — the same
convention the rolling generator uses for the slots of context it does not have yet.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core.errors import ConfigError
from .denoiser import sinusoidal_embedding

#: The noise level of an absent frame (pure noise: ``α(1) = 0``); such a frame is passed as zeros.
ABSENT_TIME = 1.0


def frame_times(t: torch.Tensor | float, batch: int, frames: int, like: torch.Tensor) -> torch.Tensor:
    """``t`` (a scalar, ``[B]`` or ``[B, frames]``) as one time per frame ``[B, frames]``."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.dim() == 0:
        t = t.expand(batch)
    if t.dim() == 1:
        t = t.reshape(batch, 1).expand(batch, frames)
    if t.shape != (batch, frames):
        raise ValueError(f"the noise levels must be a scalar, [B] or [B, frames] = [{batch}, {frames}], got {tuple(t.shape)}")
    return t


class WindowDenoiser(nn.Module):
    """x0-predicting MLP over a window of up to ``frames`` frames of ``frame_dim`` values, one noise level per frame.

    ``Linear(frames · (frame_dim + time_embedding), hidden)``, SiLU, ``depth − 1`` × (``Linear(hidden, hidden)``, SiLU),
    ``Linear(hidden, frames · frame_dim)``. Example: ``WindowDenoiser(frame_dim=4, frames=8)`` denoises 8 frames of 4 values.
    """

    def __init__(self, frame_dim: int = 4, frames: int = 8, hidden: int = 128, depth: int = 3, time_embedding: int = 16):
        super().__init__()
        if frame_dim < 1 or frames < 1 or hidden < 1 or depth < 1:
            raise ConfigError(
                f"WindowDenoiser needs frame_dim, frames, hidden and depth >= 1, got {frame_dim}, {frames}, {hidden}, {depth}"
            )
        if time_embedding < 2 or time_embedding % 2:
            raise ConfigError(f"WindowDenoiser time_embedding must be an even number >= 2, got {time_embedding}")
        self.frame_dim, self.frames, self.hidden, self.depth, self.time_embedding = (
            frame_dim,
            frames,
            hidden,
            depth,
            time_embedding,
        )
        layers: list[nn.Module] = [nn.Linear(frames * (frame_dim + time_embedding), hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, frames * frame_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        if x_t.dim() != 3 or x_t.shape[2] != self.frame_dim or not 1 <= x_t.shape[1] <= self.frames:
            raise ValueError(
                f"WindowDenoiser expects [B, n, {self.frame_dim}] with 1 <= n <= {self.frames} frames, got {tuple(x_t.shape)}"
            )
        b, n, _ = x_t.shape
        t = frame_times(t, b, n, x_t)
        pad = self.frames - n
        if pad:
            x_t = torch.cat([x_t.new_zeros(b, pad, self.frame_dim), x_t], 1)
            t = torch.cat([t.new_full((b, pad), ABSENT_TIME), t], 1)
        embedding = sinusoidal_embedding(t.reshape(-1), self.time_embedding).reshape(b, -1)
        out = self.net(torch.cat([x_t.reshape(b, -1), embedding], 1)).reshape(b, self.frames, self.frame_dim)
        angle = (0.5 * math.pi) * t[..., None]
        out = angle.cos() * x_t - angle.sin() * out
        return out[:, pad:]
