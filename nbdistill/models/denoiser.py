"""A small MLP denoiser for diffusion on 2-D points and flattened 8×8 digits.

``MLPDenoiser(dim)(x_t, t)`` returns the x0-prediction ``D(x_t, t) ≈ E[x | x_t]`` for
``x_t = α(t)·x + σ(t)·ε`` (the score family's convention: t in [0, 1], the score follows from
``D`` as ``−(x_t − α·D) / σ²``).

The time enters as a sinusoidal embedding (Vaswani et al. 2017, as in DDPM, Ho et al. 2020):
``[sin(s·ω_k), cos(s·ω_k)]`` with ``s = 1000·t`` and ``ω_k = 10000^(−k/(E/2))``, k = 0..E/2−1,
concatenated to ``x_t`` and fed to an MLP (the backbone of ``shared/reference/score.md`` §0, narrower).

Output parametrisation (``parametrization``):

- ``"v"`` (default): ``D(x_t, t) = cos(πt/2)·x_t − sin(πt/2)·F(x_t, t)``, the network F predicts
  the velocity ``v = α·ε − σ·x`` of the cosine variance-preserving schedule (Salimans & Ho 2022,
  "Progressive distillation", §4). For data of unit scale this is EDM's preconditioning
  (Karras et al. 2022: ``c_skip = α²`` in VE coordinates, σ_data = 1): D → x_t as t → 0 without
  the network having to learn the identity, and D → −F (a learnt mean) as t → 1. The output is an
  x0-prediction under any schedule; it is best conditioned under the cosine one.
- ``"x0"``: ``D = F(x_t, t)``, the network predicts x0 directly.

Class conditioning (optional, ``num_classes``): a learnt class embedding of ``time_embedding`` numbers
is concatenated beside the time's, with one extra *null* class (index ``num_classes``) for
``y=None``: the unconditional model of classifier-free guidance (Ho & Salimans 2022), trained by label
dropout. ``num_classes=None`` (the default) builds exactly the unconditional network (same layers,
same state dict), and ``forward(x_t, t)`` is unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core.errors import ConfigError

PARAMETRIZATIONS = ("v", "x0")


def sinusoidal_embedding(t: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    """``[sin(scale·t·ω_k), cos(scale·t·ω_k)]`` with ``ω_k = 10000^(−k/(dim/2))``; t of shape [B] → [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=t.dtype, device=t.device) / half)
    angles = scale * t[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class MLPDenoiser(nn.Module):
    """x0-predicting MLP ``forward(x_t, t)`` for ``dim``-dimensional points (2 for the toy sets, 64 for digits).

    ``Linear(dim + time_embedding, hidden)``, SiLU, ``depth − 1`` × (``Linear(hidden, hidden)``, SiLU),
    ``Linear(hidden, dim)``. ``t`` is a float in [0, 1], a tensor of shape [] or [B]. Inputs of shape
    [B, *shape] with ``prod(shape) == dim`` are flattened and the output has the input's shape.
    Example: ``MLPDenoiser(2, hidden=128, depth=4)`` is the shipped 2-D teacher's network (54 k weights).
    With ``num_classes=C``, ``forward(x_t, t, y)`` takes one class in ``0..C-1`` per sample (``y=None``: the
    null class, the unconditional model).
    """

    def __init__(
        self,
        dim: int = 2,
        hidden: int = 128,
        depth: int = 4,
        time_embedding: int = 32,
        parametrization: str = "v",
        num_classes: int | None = None,
    ):
        super().__init__()
        if parametrization not in PARAMETRIZATIONS:
            raise ConfigError(f"MLPDenoiser parametrization must be one of {PARAMETRIZATIONS}, got {parametrization!r}")
        if dim < 1 or hidden < 1 or depth < 1:
            raise ConfigError(f"MLPDenoiser needs dim, hidden and depth >= 1, got dim={dim}, hidden={hidden}, depth={depth}")
        if time_embedding < 2 or time_embedding % 2:
            raise ConfigError(f"MLPDenoiser time_embedding must be an even number >= 2, got {time_embedding}")
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1):
            raise ConfigError(f"MLPDenoiser num_classes must be None (unconditional) or an integer >= 1, got {num_classes!r}")
        # kept as attributes so that a run records them and rebuilds the network
        self.dim = dim
        self.hidden = hidden
        self.depth = depth
        self.time_embedding = time_embedding
        self.parametrization = parametrization
        self.num_classes = num_classes
        conditioning = time_embedding
        if num_classes is not None:
            #: one row per class and a last one, the null class of ``y=None``
            self.class_embedding = nn.Embedding(num_classes + 1, time_embedding)
            conditioning += time_embedding
        layers: list[nn.Module] = [nn.Linear(dim + conditioning, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor | float, y: torch.Tensor | None = None) -> torch.Tensor:
        shape = x_t.shape
        x = x_t.reshape(shape[0], -1)
        if x.shape[1] != self.dim:
            raise ValueError(f"MLPDenoiser expects {self.dim} features per sample, got {x.shape[1]} (input shape {tuple(shape)})")
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if t.ndim == 0:
            t = t.expand(shape[0])
        t = t.reshape(shape[0])
        features = [x, sinusoidal_embedding(t, self.time_embedding)]
        if self.num_classes is not None:
            features.append(self.class_embedding(self._class_index(y, shape[0], x.device)))
        elif y is not None:
            raise ValueError("this MLPDenoiser is unconditional (num_classes=None) and takes no classes y")
        out = self.net(torch.cat(features, dim=1))
        if self.parametrization == "v":
            angle = (0.5 * math.pi) * t[:, None]
            out = angle.cos() * x - angle.sin() * out
        return out.reshape(shape)

    def _class_index(self, y: torch.Tensor | None, n: int, device: torch.device) -> torch.Tensor:
        """``y`` as ``n`` class indices, the null class ``num_classes`` where ``y`` is None."""
        if y is None:
            return torch.full((n,), self.num_classes, dtype=torch.long, device=device)
        y = torch.as_tensor(y, device=device).long().reshape(-1)
        if y.numel() == 1:
            y = y.expand(n)
        if y.numel() != n or (y < 0).any() or (y >= self.num_classes).any():
            raise ValueError(f"y must give one class in 0..{self.num_classes - 1} per sample ({n}), got {y.tolist()[:8]}")
        return y
