"""``TrajectoryMatching``: the base of ``dataset.mtt`` and its successors (TESLA, FTD, DATM, SET).

All five learn a synthetic set whose N training steps, started from an expert's parameters at
epoch t, land near the expert's parameters at epoch t + M (:mod:`.unroll`). They differ in their
experts, in where on the trajectories they match, in their labels and in small additions; each
method's class says what it adds to MTT, which is this class as it is.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...core.batches import split_tensors
from ...core.errors import ConfigError
from ...core.logger import RunLogger
from ...core.registry import HParam
from .augment import dsa
from .base import DatasetDistillModule
from .experts import ExpertBuffer, ExpertRecipe, train_experts
from .nets import FlatModel
from .unroll import GRADIENT_MODES, InnerLoop, matching_loss, plan_steps

#: The live views of every trajectory method.
VIEWS = ("trajectory_match", "image_grad_and_lr", "distilled_accuracy", "synthetic_images")


class TrajectoryMatching(DatasetDistillModule):
    r"""Match segments of expert training trajectories (MTT, Cazenavette et al., CVPR 2022, Algorithm 1).

    Each training step: draw an expert τ* and a start epoch t ∈ {0 … T⁺−1}; from
    :math:`\hat\theta_0 = \theta^*_t` take N SGD steps on DSA-augmented minibatches of the synthetic
    set with the learned step size α; minimise
    :math:`\|\hat\theta_N - \theta^*_{t+M}\|^2 / \|\theta^*_t - \theta^*_{t+M}\|^2` over the images and α
    (SGD, momentum 0.5, at ``lr`` and ``lr_lr``). ``gradient`` picks how the gradient through the
    N steps is taken (:mod:`.unroll`). The hooks a successor overrides: :meth:`expert_recipe`,
    :meth:`start_epoch`, :meth:`start_parameters`, :meth:`targets`, :meth:`inner_labels`,
    :meth:`inner_step_momentum`, :meth:`inner_weight` (and the base's :meth:`initial_set`,
    :meth:`distilled`).

    α is kept at least :attr:`MIN_SYN_LR_FRACTION` × its start value (see ``dataset.mtt``).
    """

    #: The learned inner lr α is kept ≥ this fraction of its start value (``lr_teacher``).
    MIN_SYN_LR_FRACTION = 1e-3

    lr = HParam(
        float, 100.0, 1e-3, 1e6, log=True, help="learning rate of the synthetic images (lr_img; depends on the pixel scale)"
    )
    syn_steps = HParam(int, 20, 1, 1000, help="N: inner SGD steps on the synthetic set")
    expert_epochs = HParam(int, 2, 1, 100, help="M: the target is the expert M epochs after the start")
    max_start_epoch = HParam(int, 10, 1, 1000, help="T⁺: start epochs are drawn from 0 … T⁺−1")
    lr_lr = HParam(float, 1e-5, 0.0, 1.0, help="learning rate of the learned inner lr α")
    lr_teacher = HParam(float, 0.03, 1e-5, 1.0, log=True, help="the experts' learning rate and α's start")
    batch_syn = HParam(int, 100, 1, 100000, help="synthetic images per inner step (at most all of them)")
    gradient = HParam(str, "unrolled", choices=GRADIENT_MODES, help="how the gradient through the N steps is taken")
    num_experts = HParam(int, 5, 1, 1000, help="expert trajectories to match")
    expert_train_epochs = HParam(int, 20, 1, 1000, help="epochs each expert trains (at least T⁺ − 1 + M)")
    experts = HParam(str, "", help="an expert buffer folder; empty: reuse or train one under <runs root>/experts")

    needs_functional_student = True

    def build_parts(self) -> None:
        """The functional view of the student (the inner loop steps a flat parameter vector)."""
        super().build_parts()
        self.buffer: ExpertBuffer | None = None
        self.flat = FlatModel(self.student)

    # -- experts --------------------------------------------------------------------------------
    def last_start_epoch(self) -> int:
        """The latest start epoch this method may draw (MTT: T⁺ − 1)."""
        return self.max_start_epoch - 1

    def expert_recipe(self) -> ExpertRecipe:
        return ExpertRecipe(epochs=self.expert_train_epochs, lr=self.lr_teacher, augment=self.augment)

    def check_data(self, data) -> None:
        super().check_data(data)
        needed = self.last_start_epoch() + self.expert_epochs
        if self.experts:
            ExpertBuffer(self.experts).check(self.student, needed, 1)
        elif self.expert_train_epochs < needed:
            raise ConfigError(
                f"expert_train_epochs={self.expert_train_epochs} but the latest target is epoch {needed} "
                f"(start ≤ {self.last_start_epoch()} plus expert_epochs={self.expert_epochs}); raise expert_train_epochs"
            )

    def prepare(self) -> None:
        if self.experts:
            self.buffer = ExpertBuffer(self.experts)
        else:
            root = next((Path(lg.root_dir) for lg in self.trainer.loggers if isinstance(lg, RunLogger)), None)
            val = split_tensors(self.trainer.datamodule, "val")
            self.buffer = train_experts(
                self.student, self.real, self.expert_recipe(), self.num_experts, root, progress=False, val=val
            )
        self.buffer.check(self.student, self.last_start_epoch() + self.expert_epochs)
        writer = self._run_writer()
        if writer is not None:
            rows = [[i, e["val_acc"][-1] if e.get("val_acc") else None] for i, e in enumerate(self.buffer.meta["experts"])]
            writer.table("dd/experts", ["expert", "final val acc"], rows, step=0)
            writer.write_info(experts=str(self.buffer.folder))

    def trajectory(self, i: int) -> torch.Tensor:
        return self.buffer.trajectory(i).to(self.device, self.images.dtype)

    # -- the synthetic set ----------------------------------------------------------------------
    def add_synthetic_parameters(self) -> None:
        start = float(self.expert_recipe().lr)
        self.syn_lr = nn.Parameter(torch.tensor(start))
        self.min_syn_lr = self.MIN_SYN_LR_FRACTION * start

    def param_groups(self) -> list[dict]:
        return super().param_groups() + [{"params": [self.syn_lr], "lr": self.lr_lr, "weight_decay": 0.0}]

    def keep_syn_lr_positive(self) -> None:
        """Project the learned inner lr α onto [floor, ∞) (see ``dataset.mtt``)."""
        with torch.no_grad():
            self.syn_lr.clamp_(min=self.min_syn_lr)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        super().on_train_batch_end(outputs, batch, batch_idx)
        self.keep_syn_lr_positive()

    def eval_settings(self):
        return replace(super().eval_settings(), lr=float(self.syn_lr.detach()))

    # -- one outer iteration --------------------------------------------------------------------
    def start_epoch(self, g: torch.Generator) -> int:
        return int(torch.randint(0, self.last_start_epoch() + 1, (1,), generator=g))

    def start_parameters(self, theta: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return theta

    def targets(self, trajectory: torch.Tensor, start: int) -> dict[int, torch.Tensor]:
        return {self.syn_steps: trajectory[start + self.expert_epochs]}

    def inner_labels(self, trajectory: torch.Tensor, start: int) -> torch.Tensor:
        return self.labels

    def inner_step_momentum(self) -> float:
        """Momentum μ of the inner SGD steps (MTT: none)."""
        return 0.0

    def inner_weight(self, start: int) -> float:
        return 1.0

    def loss_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        self.keep_syn_lr_positive()
        g = self.step_generator()
        trajectory = self.trajectory(int(torch.randint(len(self.buffer), (1,), generator=g)))
        start = self.start_epoch(g)
        theta0 = self.start_parameters(trajectory[start], g)
        n = len(self.images)
        loop = InnerLoop(
            self.flat,
            plan_steps(n, min(self.batch_syn, n), self.syn_steps, g),
            augment=(lambda x, seed: dsa(x, seed)) if self.augment else None,
            momentum=self.inner_step_momentum(),
            loss_weight=self.inner_weight(start),
        )
        labels = self.inner_labels(trajectory, start)
        out = matching_loss(loop, theta0, self.images, labels, self.syn_lr, self.targets(trajectory, start), self.gradient)
        target = trajectory[start + self.expert_epochs]
        with torch.no_grad():
            self.log("dd/remaining", (out.final - target).norm() / (theta0 - target).norm(), on_step=True, on_epoch=False)
            self.log("dd/moved", (out.final - theta0).norm() / (target - theta0).norm(), on_step=True, on_epoch=False)
            self.log("dd/syn_lr", self.syn_lr.detach(), on_step=True, on_epoch=False)
            self.log("dd/start_epoch", float(start), on_step=True, on_epoch=False)
        return {"loss": out.loss}
