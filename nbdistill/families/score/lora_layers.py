r"""Low-rank adapters (LoRA; Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", 2021, §4.1).

A frozen linear layer ``h = W₀x + b`` gets a trainable low-rank update

    h = W₀x + b + (α/r)·B A x,    A ∈ ℝ^{r×in},  B ∈ ℝ^{out×r},

with ``A`` random (the paper: Gaussian; here Kaiming-uniform, as ``nn.Linear`` and Microsoft's ``loralib``) and ``B = 0``, so the
adapted network starts as the base network exactly; only ``A`` and ``B`` train: ``r·(in + out)``
parameters a layer instead of ``in·out + out``. The update merges into the weight for deployment,
``W = W₀ + (α/r)·B A`` (:func:`merge_lora`), with no extra cost at inference.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ...core.errors import ConfigError


class LoRALinear(nn.Module):
    """``base(x) + (alpha/rank)·(x Aᵀ) Bᵀ`` around a frozen ``nn.Linear`` ``base`` (module docstring)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        if rank < 1:
            raise ConfigError(f"a LoRA rank must be >= 1, got rank={rank}")
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.rank, self.alpha = int(rank), float(alpha)
        like = dict(dtype=base.weight.dtype, device=base.weight.device)
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, **like))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, **like))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    @property
    def scaling(self) -> float:
        """``α/r``."""
        return self.alpha / self.rank

    def delta_weight(self) -> torch.Tensor:
        """The low-rank update ``(α/r)·B A`` of the weight, ``[out, in]``."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scaling * ((x @ self.lora_A.T) @ self.lora_B.T)

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with the weight ``W₀ + (α/r)·B A`` and the base's bias."""
        layer = copy.deepcopy(self.base)
        with torch.no_grad():
            layer.weight.add_(self.delta_weight())
        for p in layer.parameters():
            p.requires_grad_(True)
        return layer

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha:g}"


def add_lora(model: nn.Module, rank: int, alpha: float) -> nn.Module:
    """``model`` with every ``nn.Linear`` replaced by a :class:`LoRALinear` around it (in place) and every
    other parameter frozen: only the adapters train. Returns ``model``; a model without a linear layer is a
    :class:`ConfigError`."""
    for p in model.parameters():
        p.requires_grad_(False)
    replaced = _replace(model, lambda layer: LoRALinear(layer, rank, alpha) if isinstance(layer, nn.Linear) else None)
    if not replaced:
        raise ConfigError(f"LoRA adapts nn.Linear layers, and {type(model).__name__} has none")
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with each :class:`LoRALinear` merged into a plain ``nn.Linear`` (``W₀ + (α/r)·B A``):
    the same function, the base architecture, no adapters."""
    merged = copy.deepcopy(model)
    _replace(merged, lambda layer: layer.merged() if isinstance(layer, LoRALinear) else None)
    return merged


def lora_layers(model: nn.Module) -> list[LoRALinear]:
    """The adapters of ``model``, in module order."""
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def trainable_parameters(model: nn.Module) -> int:
    """The number of parameters with ``requires_grad`` (``Σ r·(in + out)`` over the adapters of a LoRA model)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _replace(module: nn.Module, swap) -> int:
    """Replace each descendant ``c`` of ``module`` by ``swap(c)`` where that is not None (not descending into a
    replaced one); returns how many were replaced."""
    count = 0
    for name, child in module.named_children():
        new = swap(child)
        if new is not None:
            setattr(module, name, new)
            count += 1
        else:
            count += _replace(child, swap)
    return count
