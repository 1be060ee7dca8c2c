"""``dataset.datm``: Towards Lossless Dataset Distillation via Difficulty-Aligned Trajectory Matching (Guo et al., ICLR 2024)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...core.errors import ConfigError
from ...core.registry import HParam, register
from .ftd import DATM_GSAM_ALPHA, FTD
from .schedules import datm_upper_bound
from .trajectory_base import VIEWS


@register("dataset.datm", views=VIEWS, needs_teacher=False)
class DATM(FTD):
    r"""DATM: difficulty-aligned trajectory matching with learned soft labels (Guo et al., "Towards
    Lossless Dataset Distillation via Difficulty-Aligned Trajectory Matching", ICLR 2024).

    Start epochs are drawn from a window [T⁻, T_up) whose upper end grows from
    ``initial_max_start_epoch`` to ``max_start_epoch`` over ``expansion_end`` iterations
    (:func:`.schedules.datm_upper_bound`): small sets match the early, easy part of the
    trajectories. Labels are learned logits Z (inner targets softmax(Z); SGD at ``lr_y``, momentum
    0.9 as in the official configs), initialised to the mean logits, at the experts' last epoch, of
    the experts that classify the image correctly. ``init="correct"`` starts from real images that
    the first expert's last epoch classifies correctly (the official ``samples_predicted_correctly``;
    which epoch is configurable there, the last one here; a class with too few is topped up with
    misclassified images, where the official code moves on to other experts). The experts are FTD's (GSAM) and the
    image EMA is available (off by default; the experts' GSAM α is DATM's 0.3, not FTD's 0.4).

    ``threshold``: as in DATM's ``DATM.py`` (``if grand_loss <= args.threshold: step`` for the images,
    α and the labels, else nothing), an iteration whose matching loss exceeds ``threshold`` updates
    nothing: its gradients are dropped before the optimiser step, so no parameter, momentum buffer or
    weight decay moves; the iteration still counts. Default 1.0 as in DATM's ``cfg.py`` and nearly all
    its configs (CIFAR-10 IPC 1: 1.1): a loss above 1 means the student ended farther from the target
    than it started. ``dd/skipped`` logs 1 for a skipped iteration. With a fixed window, frozen one-hot
    labels, real initialisation and a threshold no loss reaches, DATM is MTT.
    """

    init = HParam(str, "correct", choices=("correct", "real", "noise"), help="how the synthetic images start")
    min_start_epoch = HParam(int, 0, 0, 1000, help="T⁻: the earliest start epoch")
    initial_max_start_epoch = HParam(int, 5, 1, 1000, help="the window's upper end at the start (grows to max_start_epoch)")
    expansion_end = HParam(int, 200, 0, 1000000, help="iteration at which the window reaches max_start_epoch")
    lr_y = HParam(float, 2.0, 0.0, 100.0, help="learning rate of the soft labels (SGD, momentum 0.9)")
    ema_decay = HParam(float, 0.0, 0.0, 0.99999, help="EMA of the images as in FTD (0: off)")
    threshold = HParam(float, 1.0, 0.0, 1e6, help="skip the update (images, α, labels) when the matching loss exceeds this")
    #: The experts' GSAM settings are not hyper-parameters of DATM: FTD's radius, DATM's README's α.
    rho = 0.01
    gsam_alpha = DATM_GSAM_ALPHA

    def build_parts(self) -> None:
        super().build_parts()
        self._skip_update = False

    def check_data(self, data) -> None:
        if not self.min_start_epoch < min(self.initial_max_start_epoch, self.max_start_epoch):
            raise ConfigError(
                f"min_start_epoch={self.min_start_epoch} must be below initial_max_start_epoch="
                f"{self.initial_max_start_epoch} and max_start_epoch={self.max_start_epoch}"
            )
        super().check_data(data)

    def expert_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of every expert's last epoch on ``images``: ``[experts, n, classes]``."""
        with torch.no_grad():
            return torch.stack(
                [self.flat(images, self.buffer.trajectory(i)[-1].to(images.dtype)) for i in range(len(self.buffer))]
            )

    def initial_set(self, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if self.init != "correct":
            return super().initial_set(g)
        parts = []
        for c in range(self.num_classes):
            candidates = self.real.of_class(c)[torch.randperm(len(self.real.indices[c]), generator=g)]
            right = self.expert_logits(candidates)[0].argmax(-1) == c
            parts.append(torch.cat([candidates[right], candidates[~right]])[: self.ipc])
        return torch.cat(parts), torch.arange(self.num_classes).repeat_interleave(self.ipc)

    def add_synthetic_parameters(self) -> None:
        super().add_synthetic_parameters()
        logits = self.expert_logits(self.images.detach())
        right = (logits.argmax(-1) == self.labels).unsqueeze(-1)
        counts = right.sum(0)
        mean_right = (logits * right).sum(0) / counts.clamp_min(1)
        self.label_logits = nn.Parameter(torch.where(counts > 0, mean_right, logits.mean(0)))

    def param_groups(self) -> list[dict]:
        return super().param_groups() + [{"params": [self.label_logits], "lr": self.lr_y, "momentum": 0.9, "weight_decay": 0.0}]

    def start_epoch(self, g: torch.Generator) -> int:
        upper = datm_upper_bound(self.global_step, self.initial_max_start_epoch, self.max_start_epoch, self.expansion_end)
        self.log("dd/window_upper", float(upper), on_step=True, on_epoch=False)
        return int(torch.randint(self.min_start_epoch, upper, (1,), generator=g))

    def inner_labels(self, trajectory: torch.Tensor, start: int) -> torch.Tensor:
        return torch.softmax(self.label_logits, -1)

    def loss_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        terms = super().loss_terms(batch)
        self._skip_update = bool(terms["loss"].detach() > self.threshold)
        self.log("dd/skipped", float(self._skip_update), on_step=True, on_epoch=False)
        return terms

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """DATM's threshold: drop every gradient of an iteration whose loss exceeded it (SGD then skips them)."""
        super().on_before_optimizer_step(optimizer)
        if self._skip_update:
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None

    def distilled(self) -> tuple[torch.Tensor, torch.Tensor]:
        images = self.images_ema if self.ema_decay > 0 else self.images.detach()
        return images, torch.softmax(self.label_logits.detach(), -1)
