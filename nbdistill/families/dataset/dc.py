"""``dataset.dc``: Dataset Condensation with gradient matching (Zhao, Mopuri & Bilen, ICLR 2021)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...core.registry import HParam, register
from .base import DatasetDistillModule
from .evaluate import EvalSettings, run_epochs
from .losses import layerwise_cosine_distance
from .nets import fresh_copy

#: DC's (outer_loop, inner_loop) by images per class (VICO-UoE/DatasetCondensation ``get_loops``).
DC_LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}


def dc_loops(ipc: int) -> tuple[int, int]:
    """DC's loop counts for ``ipc``; between the paper's settings, those of the next smaller one."""
    return DC_LOOPS[max(k for k in DC_LOOPS if k <= ipc)]


@register("dataset.dc", views=("losses", "image_grad_and_lr", "distilled_accuracy", "synthetic_images"), needs_teacher=False)
class DC(DatasetDistillModule):
    r"""DC: learn synthetic images whose training gradients match the real data's, layer by layer.

    Each training step is one of DC's outer-loop iterations. A fresh network :math:`\theta` is drawn
    every ``outer_loop`` steps; at each step, for every class c, with the same (Siamese) DSA
    augmentation on both sides,

    .. math:: \mathcal L = \sum_c d\big(\nabla_\theta \ell(\theta; B^{real}_c),\ \nabla_\theta \ell(\theta; S_c)\big)

    with d the layer-wise cosine distance (:func:`.losses.layerwise_cosine_distance`); then the
    network trains ``inner_loop`` epochs on the (detached) synthetic set with SGD at ``lr_net``
    before the next matching ("Dataset Condensation with Gradient Matching", Zhao, Mopuri & Bilen,
    ICLR 2021, Algorithm 1; the loop counts by IPC are the official code's ``get_loops``).
    """

    init = HParam(str, "real", choices=("real", "noise"), help="start from real images or noise (the paper: noise)")
    lr = HParam(float, 0.1, 1e-4, 1e4, log=True, help="learning rate of the synthetic images (SGD, momentum 0.5)")
    lr_net = HParam(float, 0.01, 1e-4, 1.0, log=True, help="learning rate of the network trained between matchings")
    batch_real = HParam(int, 256, 1, 4096, help="real images per class at each matching")
    outer_loop = HParam(int, 0, 0, 1000, help="matchings per fresh network; 0: DC's table for this ipc")
    inner_loop = HParam(int, 0, 0, 1000, help="epochs on the synthetic set between matchings; 0: DC's table")

    def build_parts(self) -> None:
        """The loop counts in effect (DC's table where ``outer_loop``/``inner_loop`` are 0)."""
        super().build_parts()
        default_outer, default_inner = dc_loops(self.ipc)
        self.matchings = self.outer_loop or default_outer
        self.epochs_between = self.inner_loop or default_inner
        self._net: list = []  # [network, its optimiser]: scratch state, not a submodule of this module

    def _network(self, g: torch.Generator) -> nn.Module:
        if self.global_step % self.matchings == 0 or not self._net:
            net = fresh_copy(self.student, int(torch.randint(2**31 - 1, (1,), generator=g))).to(self.device)
            self._net = [net, torch.optim.SGD(net.parameters(), lr=self.lr_net)]
        else:
            net, opt = self._net
            settings = EvalSettings(
                epochs=self.epochs_between, lr=self.lr_net, momentum=0.0, weight_decay=0.0, augment=self.augment
            )
            run_epochs(net, opt, self.images.detach(), self.labels, settings, g, drop_lr=False)
        return self._net[0]

    def loss_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        g = self.step_generator()
        net = self._network(g)
        params = [p for p in net.parameters()]
        loss = self.images.new_zeros(())
        for c, real, syn in self.class_batches(self.batch_real, g):
            target_real = torch.full((len(real),), c, device=self.device)
            target_syn = torch.full((len(syn),), c, device=self.device)
            grad_real = [t.detach() for t in torch.autograd.grad(F.cross_entropy(net(real), target_real), params)]
            grad_syn = torch.autograd.grad(F.cross_entropy(net(syn), target_syn), params, create_graph=True)
            loss = loss + layerwise_cosine_distance(grad_real, grad_syn)
        return {"loss": loss}
