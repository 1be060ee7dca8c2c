r"""The bucketed uniform quantiser of quantized distillation (Polino, Pascanu & Alistarh,
"Model compression via distillation and quantization", ICLR 2018, §2).

A tensor is flattened and cut into buckets of ``bucket_size`` consecutive values. Each bucket is
scaled linearly onto [0, 1] with its own minimum :math:`\alpha` and maximum :math:`\beta`,
:math:`v' = (v - \alpha)/(\beta - \alpha)`, rounded onto :math:`s = 2^{b}` evenly spaced levels
:math:`\{0, \tfrac{1}{s-1}, \dots, 1\}`, and scaled back:

.. math::
    Q(v) = \alpha + (\beta - \alpha)\,\frac{\hat Q\big(v'(s-1)\big)}{s-1},

with :math:`\hat Q` = round to nearest (deterministic) or floor plus a Bernoulli draw of the
fractional part (stochastic, unbiased: :math:`\mathbb{E}[Q(v)] = v`). Both ends of every bucket
are levels, so :math:`Q(Q(v)) = Q(v)`. A quantised network stores ``b`` bits per value and the two
32-bit floats :math:`\alpha, \beta` per bucket (:func:`quantized_size_bits`).

Training follows the paper's quantized distillation: the forward and backward passes run at the
quantised weights, and the gradient they give is applied to the full-precision weights, which is
the straight-through estimator :func:`quantize_ste`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

FLOAT_BITS = 32


def quantize(v: torch.Tensor, bits: int, bucket_size: int = 256, stochastic: bool = False) -> torch.Tensor:
    """:math:`Q(v)`: ``v`` with each bucket of ``bucket_size`` values rounded onto ``2**bits`` levels."""
    if bits < 1 or bucket_size < 1:
        raise ValueError(f"bits and bucket_size must be at least 1, got {bits} and {bucket_size}")
    flat = v.detach().reshape(-1)
    n = flat.numel()
    pad = -n % bucket_size
    # padding repeats the last value, which is in the last bucket: it moves neither its min nor its max
    buckets = torch.cat([flat, flat[-1:].expand(pad)]).view(-1, bucket_size)
    low = buckets.min(1, keepdim=True).values
    span = buckets.max(1, keepdim=True).values - low
    intervals = 2**bits - 1
    scaled = (buckets - low) / torch.where(span > 0, span, torch.ones_like(span)) * intervals
    if stochastic:
        floor = scaled.floor()
        levels = floor + torch.bernoulli((scaled - floor).clamp(0, 1))
    else:
        levels = scaled.round()
    return (low + levels / intervals * span).reshape(-1)[:n].view_as(v)


def quantize_ste(v: torch.Tensor, bits: int, bucket_size: int = 256, stochastic: bool = False) -> torch.Tensor:
    """:math:`Q(v)` forward, identity backward: the gradient at the quantised values reaches ``v`` unchanged."""
    return v + (quantize(v, bits, bucket_size, stochastic) - v).detach()


def quantized_parameters(
    model: nn.Module, bits: int, bucket_size: int = 256, stochastic: bool = False, straight_through: bool = False
) -> dict[str, torch.Tensor]:
    """Every parameter of ``model`` quantised (with the straight-through gradient if asked), by name."""
    q = quantize_ste if straight_through else quantize
    return {name: q(p, bits, bucket_size, stochastic) for name, p in model.named_parameters()}


def quantized_size_bits(model: nn.Module, bits: int, bucket_size: int = 256) -> int:
    """Bits to store ``model`` quantised: ``bits`` per parameter plus two 32-bit floats per bucket."""
    return sum(p.numel() * bits + math.ceil(p.numel() / bucket_size) * 2 * FLOAT_BITS for p in model.parameters())


def full_precision_bits(model: nn.Module) -> int:
    """Bits to store ``model`` in 32-bit floats."""
    return sum(p.numel() for p in model.parameters()) * FLOAT_BITS


def load_quantized(model: nn.Module, params: Mapping[str, torch.Tensor]) -> nn.Module:
    """Copy quantised ``params`` into ``model`` in place (a deployable quantised network)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name])
    return model
