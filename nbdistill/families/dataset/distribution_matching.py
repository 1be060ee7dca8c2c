"""``dataset.dm``: Dataset Condensation with Distribution Matching (Zhao & Bilen, WACV 2023)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...core.registry import HParam, register
from .augment import dsa
from .losses import mean_embedding_distance
from .module import COMMON, DatasetDistillModule
from .nets import embed, fresh_copy


@register(
    "dataset.dm",
    hparams=[
        *COMMON,
        HParam("init", str, "real", choices=("real", "noise"), help="start from real images or noise (the paper: real)"),
        HParam("lr", float, 1.0, 1e-4, 1e4, log=True, help="learning rate of the synthetic images (SGD, momentum 0.5)"),
        HParam("batch_real", int, 256, 1, 4096, help="real images per class at each step"),
    ],
    views=("losses", "image_grad_and_lr", "distilled_accuracy", "synthetic_images"),
    needs_teacher=False,
)
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

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None = None,
        ipc: int = 10,
        init: str = "real",
        augment: bool = True,
        eval_epochs: int = 300,
        lr: float = 1.0,
        weight_decay: float = 0.0,
        batch_real: int = 256,
    ):
        super().__init__(student, teacher, ipc, init, augment, eval_epochs, lr, weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])
        self.batch_real = batch_real

    def loss_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        g = self.step_generator()
        net = fresh_copy(self.student, int(torch.randint(2**31 - 1, (1,), generator=g))).to(self.device)
        for p in net.parameters():
            p.requires_grad_(False)
        loss = self.images.new_zeros(())
        for c in range(self.num_classes):
            real = self.real_batch(c, self.batch_real, g)
            syn = self.images[c * self.ipc : (c + 1) * self.ipc]
            if self.augment:
                seed = int(torch.randint(2**31 - 1, (1,), generator=g))
                real, syn = dsa(real, seed, batchwise=True), dsa(syn, seed, batchwise=True)
            loss = loss + mean_embedding_distance(embed(net, real), embed(net, syn))
        return {"loss": loss}
