"""``dataset.dm``: Dataset Condensation with Distribution Matching (Zhao & Bilen, WACV 2023)."""

from __future__ import annotations

from typing import Any

import torch

from ...core.registry import HParam, register
from .base import DatasetDistillModule
from .losses import mean_embedding_distance
from .nets import embed, fresh_copy


@register("dataset.dm", views=("losses", "image_grad_and_lr", "distilled_accuracy", "synthetic_images"), needs_teacher=False)
class DM(DatasetDistillModule):
    r"""DM: match the mean embedding of each class under randomly initialised networks.

    Every training step draws a fresh network ψ (its penultimate features: the input of its last
    linear layer, :func:`.nets.embed`) and minimises, with the same (Siamese) DSA augmentation on
    the real and the synthetic batch of each class,

    .. math:: \mathcal L = \sum_c \Big\|\frac1{|B_c|}\sum_{x\in B_c}\psi(x) - \frac1{|S_c|}\sum_{s\in S_c}\psi(s)\Big\|^2

    ("Dataset Condensation with Distribution Matching", Zhao & Bilen, WACV 2023, Algorithm 1;
    :func:`.losses.mean_embedding_distance`). No inner loop, no second-order gradient: the cheapest
    method here.
    """

    init = HParam(str, "real", choices=("real", "noise"), help="start from real images or noise (the paper: real)")
    lr = HParam(float, 1.0, 1e-4, 1e4, log=True, help="learning rate of the synthetic images (SGD, momentum 0.5)")
    batch_real = HParam(int, 256, 1, 4096, help="real images per class at each step")

    def loss_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        g = self.step_generator()
        net = fresh_copy(self.student, int(torch.randint(2**31 - 1, (1,), generator=g))).to(self.device)
        for p in net.parameters():
            p.requires_grad_(False)
        loss = self.images.new_zeros(())
        for _, real, syn in self.class_batches(self.batch_real, g):
            loss = loss + mean_embedding_distance(embed(net, real), embed(net, syn))
        return {"loss": loss}
