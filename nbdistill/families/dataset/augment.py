r"""Differentiable Siamese Augmentation (DSA; Zhao & Bilen, "Dataset Condensation with
Differentiable Siamese Augmentation", ICML 2021), written for this kit.

Each call applies ONE transform drawn at random from ``strategy`` (DSA's single mode), with
parameters drawn from a generator seeded by ``seed``: the same seed gives the same transform, which
is what makes it *Siamese* (DC and DM augment the real and the synthetic batch with the same
seed, ``batchwise=True`` so both share one parameter) and what lets the exact trajectory gradient
rebuild a step's augmented batch on its backward sweep. Every transform is differentiable in the
pixels. Ranges follow DSA's ``ParamDiffAug``: scale in [1/1.2, 1.2] per axis, rotation within
±15°, translation by up to 1/8 of the side (zero padding), a cutout of half the side. Flips and
colour jitter are left out of the default strategy: digits are not mirror-symmetric and the kit's
images are standardised grey levels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...core.errors import ConfigError

TRANSFORMS = ("scale", "rotate", "crop", "cutout", "flip")
DEFAULT_STRATEGY = "scale_rotate_crop_cutout"


def parse_strategy(strategy: str) -> tuple[str, ...]:
    parts = tuple(p for p in strategy.split("_") if p)
    unknown = [p for p in parts if p not in TRANSFORMS]
    if not parts or unknown:
        raise ConfigError(f"augmentation strategy {strategy!r}: use '_'-joined names from {list(TRANSFORMS)}")
    return parts


def dsa(x: torch.Tensor, seed: int, strategy: str = DEFAULT_STRATEGY, batchwise: bool = False) -> torch.Tensor:
    """Augment images ``x`` of shape ``[B, C, H, W]`` with one seeded transform of ``strategy``."""
    if x.dim() != 4:
        raise ConfigError(f"augmentation needs images [batch, channels, height, width], got shape {tuple(x.shape)}")
    g = torch.Generator().manual_seed(int(seed))
    parts = parse_strategy(strategy)
    kind = parts[int(torch.randint(len(parts), (1,), generator=g))]
    n = 1 if batchwise else x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        u = torch.rand(n, generator=g, dtype=torch.float64) * (high - low) + low
        return u.expand(x.shape[0]) if batchwise else u

    if kind == "cutout":
        return x * _cutout_mask(x, uniform(0, 1), uniform(0, 1))
    if kind == "flip":
        flip = uniform(0, 1) < 0.5
        return torch.where(flip.to(x.device).view(-1, 1, 1, 1), x.flip(3), x)
    eye = torch.zeros(x.shape[0], 2, 3, dtype=torch.float64)
    eye[:, 0, 0] = eye[:, 1, 1] = 1.0
    if kind == "scale":
        eye[:, 0, 0], eye[:, 1, 1] = uniform(1 / 1.2, 1.2), uniform(1 / 1.2, 1.2)
    elif kind == "rotate":
        angle = uniform(-15.0, 15.0) * math.pi / 180
        eye[:, 0, 0], eye[:, 0, 1] = torch.cos(angle), -torch.sin(angle)
        eye[:, 1, 0], eye[:, 1, 1] = torch.sin(angle), torch.cos(angle)
    else:  # crop: an integer translation, exact under align_corners=True
        h, w = x.shape[2], x.shape[3]
        sh, sw = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
        ty = torch.round(uniform(-sh - 0.5, sh + 0.5)).clamp(-sh, sh)
        tx = torch.round(uniform(-sw - 0.5, sw + 0.5)).clamp(-sw, sw)
        eye[:, 0, 2] = 2 * tx / max(w - 1, 1)
        eye[:, 1, 2] = 2 * ty / max(h - 1, 1)
    grid = F.affine_grid(eye.to(x.dtype).to(x.device), list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, align_corners=True, padding_mode="zeros")


def _cutout_mask(x: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[2], x.shape[3]
    size_h, size_w = max(1, int(h * 0.5 + 0.5)), max(1, int(w * 0.5 + 0.5))
    top = (cy * h).long().view(-1, 1, 1) - size_h // 2
    left = (cx * w).long().view(-1, 1, 1) - size_w // 2
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    inside = (rows >= top) & (rows < top + size_h) & (cols >= left) & (cols < left + size_w)
    return (~inside).to(x.dtype).to(x.device).unsqueeze(1)


def random_resized_crop(x: torch.Tensor, min_scale: float, seed: int, max_scale: float = 1.0) -> torch.Tensor:
    """``RandomResizedCrop`` as a differentiable resampling: per image, a crop of area fraction
    U(min_scale, max_scale) and aspect ratio log-U(3/4, 4/3) at a random place, resized (bilinear)
    to the full size. Unlike torchvision, which retries a draw that does not fit, a side longer
    than the image is clamped to the image."""
    g = torch.Generator().manual_seed(int(seed))
    n = x.shape[0]
    area = torch.rand(n, generator=g, dtype=torch.float64) * (max_scale - min_scale) + min_scale
    ratio = torch.exp(torch.rand(n, generator=g, dtype=torch.float64) * (math.log(4 / 3) - math.log(3 / 4)) + math.log(3 / 4))
    w, h = torch.sqrt(area * ratio).clamp(max=1.0), torch.sqrt(area / ratio).clamp(max=1.0)
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 1, 1] = w, h
    theta[:, 0, 2] = (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * (1 - w)
    theta[:, 1, 2] = (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * (1 - h)
    grid = F.affine_grid(theta.to(x.dtype).to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)
