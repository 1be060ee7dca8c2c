"""The input checks of :mod:`.metrics`: points as float64 ``[n, d]`` tensors, pairs of the same
dimension, and the generator used when none is given."""

from __future__ import annotations

import math
from typing import Any

import torch

from ...core.errors import ConfigError

#: Seed of the generator used when none is given, so that a metric is reproducible run to run.
DEFAULT_SEED = 0


def as_points(x: Any, name: str = "x") -> torch.Tensor:
    """``x`` as a float64 ``[n, d]`` tensor; :class:`ConfigError` if it is empty or not finite."""
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ConfigError(
                f"{name} must be points of shape [n, d] (a tensor or array), got {type(x).__name__}: {exc}"
            ) from exc
    x = x.detach()
    if x.dtype == torch.bool or x.is_complex():
        raise ConfigError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.device.type == "mps":  # no float64 there
        x = x.cpu()
    if x.dim() == 0:
        raise ConfigError(f"{name} must be points of shape [n, d], got a scalar")
    x = x.to(torch.float64)
    x = x.reshape(len(x), math.prod(x.shape[1:])) if x.dim() > 1 else x.reshape(-1, 1)
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ConfigError(f"{name} is empty (shape {tuple(x.shape)}); pass at least one point with at least one coordinate")
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        rows = int(bad.any(1).sum())
        raise ConfigError(
            f"{name} has {int(bad.sum())} non-finite value(s) (NaN or inf) in {rows} of its {len(x)} points; "
            "a sampler diverged or the data has holes: drop or fix those points first"
        )
    return x


def _pair(x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = as_points(x, "x"), as_points(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ConfigError(
            f"x and y have different dimensions ({x.shape[1]} vs {y.shape[1]} coordinates per point); "
            "compare samples and data of the same shape [n, d]"
        )
    return x, y.to(x.device)


def _generator(generator: torch.Generator | None) -> torch.Generator:
    if generator is None:
        return torch.Generator().manual_seed(DEFAULT_SEED)
    if not isinstance(generator, torch.Generator):
        raise ConfigError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return generator
