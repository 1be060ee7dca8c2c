r"""``kd.mtard``: multi-teacher adversarial robustness distillation.

"Enhanced Accuracy and Robustness via Multi-Teacher Adversarial Distillation", Zhao et al.,
ECCV 2022, with the entropy-based temperature balance of its extension B-MTARD (arXiv 2306.16170).
A clean teacher :math:`T_{nat}` guides the student on clean inputs, an adversarially trained
teacher :math:`T_{adv}` guides it on PGD adversarial inputs made against the student:

.. math::
    x_{adv} &= \mathrm{PGD}_{\epsilon}\big(\mathrm{CE}(S(\cdot), y)\big)(x) \\
    \mathcal{L}_{adv} &= \mathrm{KL}\big(\mathrm{softmax}(T_{adv}(x_{adv})/\tau_{adv}) \,\|\, \mathrm{softmax}(S(x_{adv}))\big) \\
    \mathcal{L}_{nat} &= \mathrm{KL}\big(\mathrm{softmax}(T_{nat}(x)/\tau_{nat}) \,\|\, \mathrm{softmax}(S(x))\big) \\
    \mathcal{L} &= w_{adv}\,\mathcal{L}_{adv} + w_{nat}\,\mathcal{L}_{nat}

Only the teachers are tempered; the student stays at temperature 1. After every step the
temperatures move towards equal teacher entropies and the weights towards the objective that
is learned more slowly (:func:`.losses.update_temperatures`, :func:`.losses.update_weights`). The
attack is :func:`.attacks.pgd_attack`.

Choices (the authors' code read for understanding only, re-implemented from the update rules):

* KL reduction: summed over classes, averaged over the batch ("batchmean"). The ECCV code
  averages over batch *and* classes, a constant factor C smaller; the balance rules divide
  each loss by its first value, so the factor does not change them, only the loss scale.
* The training attack starts at ``x + 0.001·N(0, 1)`` and takes ``attack_steps`` signed-gradient
  steps of ``step_size`` (the code's 10 steps of 2/255 for ε = 8/255); the evaluation attack
  (PGD-20 by default) starts uniformly in the ε-ball and takes steps of 2.5·ε/steps (Madry et
  al.'s rule; ε/8 for 20 steps), with its own seeded generator so measuring does not disturb
  training's random stream.
* ε = 0.5 by default, in the units of Digits' standardised features (each pixel divided by its
  training standard deviation, about 4–6 of the 0–16 intensity levels): about 2–3 intensity
  levels, 15 % of the range — between CIFAR's 8/255 (3 %) and MNIST's usual 0.3 (30 %). At this
  ε the zoo's clean teacher keeps 14 % of its test accuracy under PGD-20, the robust one 64 %.
* Box constraint: the paper clamps images to [0, 1]. Digits features are standardised, so the
  valid box is each feature's range over the training split, widened to contain the clean
  point itself (the ε-ball is always respected).
* η_w is constant (the paper decays it with the SGD learning rate; here Adam's rate is constant).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ...core.errors import ConfigError
from ...core.evaluation import ClassificationGap
from ...core.module import freeze
from ...core.registry import HParam, register
from . import losses
from .attacks import pgd_attack
from .base import KDModule

#: Views of kd.mtard: the usual gap views and the balance of weights and temperatures.
MTARD_VIEWS = ("losses", "gap", "robustness", "mtard_balance")
#: The accuracies the robustness evaluation reports, in the order of the models it attacks.
ROBUSTNESS_METRICS = (
    "student_acc",
    "student_pgd_acc",
    "robust_teacher_acc",
    "robust_teacher_pgd_acc",
    "clean_teacher_acc",
    "clean_teacher_pgd_acc",
)


class Robustness(ClassificationGap):
    """The classification gap plus clean and PGD accuracy of the student at every evaluation, and of
    both teachers at the first validation and on the test split (frozen, they do not change)."""

    def __init__(self) -> None:
        super().__init__()
        self.predictions: dict[str, list[torch.Tensor]] = {}
        self.teachers_measured = False

    def collect(self, module: Any, batch: Any, stage: str) -> None:
        super().collect(module, batch, stage)
        if module._trainer is not None and module.trainer.sanity_checking:
            return
        x, y = batch[0], batch[1]
        models = [module.student]
        if stage != "val" or not self.teachers_measured:
            models += [module.robust_model, module.clean_model]
        preds = []
        for model in models:
            with torch.no_grad():
                clean = model(x).argmax(-1)
            adv = module.attack(model, x, y, training=False)
            with torch.no_grad():
                preds += [clean, model(adv).argmax(-1)]
        self.predictions.setdefault(stage, []).append(torch.stack([*preds, y]).cpu())

    def discard(self, stage: str) -> None:
        super().discard(stage)
        self.predictions.pop(stage, None)

    def compute(self, module: Any, stage: str) -> dict[str, Any]:
        metrics = super().compute(module, stage)
        parts = self.predictions.pop(stage, [])
        if parts and len({len(p) for p in parts}) == 1:
            p = torch.cat(parts, dim=1)
            y = p[-1]
            metrics.update({n: (p[i] == y).float().mean().item() for i, n in enumerate(ROBUSTNESS_METRICS[: len(p) - 1])})
            if stage == "val" and len(p) == 7:
                self.teachers_measured = True
        return metrics


@register("kd.mtard", views=MTARD_VIEWS)
class MTARD(KDModule):
    """MTARD: a clean and a robust teacher distilled on clean and PGD inputs, self-balanced (Zhao et al., ECCV 2022).

    Give ``teachers=[clean, robust]``, or one ``teacher`` (the clean one): the robust teacher is
    then the zoo teacher named ``robust_teacher``. Reports clean and PGD accuracy of the student
    (``student_pgd_acc``) at every validation and on the test split, and of both teachers
    (``robust_teacher_pgd_acc``, ``clean_teacher_pgd_acc``) at the first validation and on test.
    """

    evaluation_class = Robustness
    epsilon = HParam(float, 0.5, 0.0, 5.0, help="L∞ radius of PGD, in standardised feature units")
    step_size = HParam(float, 0.125, 1e-4, 5.0, log=True, help="PGD step of the training attack")
    attack_steps = HParam(int, 10, 1, 100, help="PGD steps of the training attack")
    eval_attack_steps = HParam(int, 20, 1, 200, help="PGD steps of the evaluation attack (step 2.5·ε/steps)")
    temp_lr = HParam(float, 0.001, 0.0, 1.0, help="η_τ of the entropy-based temperature balance")
    weight_lr = HParam(float, 0.025, 0.0, 1.0, help="η_w of the normalised loss balance")
    robust_teacher = HParam(str, "digits-mlp-robust", help="zoo teacher used as robust teacher when only one teacher is given")

    def build_parts(self) -> None:
        super().build_parts()
        if len(self.teachers) == 1:
            from ... import zoo

            self.teachers.append(freeze(zoo.teacher(self.robust_teacher)))
        if len(self.teachers) != 2:
            raise ConfigError(
                f"kd.mtard takes a clean and a robust teacher (teachers=[clean, robust]), got {len(self.teachers)} teacher(s)"
            )
        # w_adv, w_nat, tau_adv, tau_nat, L_adv^init, L_nat^init: a buffer, so checkpoints resume it
        self.register_buffer("balance", torch.tensor([0.5, 0.5, 1.0, 1.0, float("nan"), float("nan")]))
        self._box: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def clean_model(self) -> nn.Module:
        """The clean teacher (``teachers[0]``)."""
        return self.teachers[0]

    @property
    def robust_model(self) -> nn.Module:
        """The adversarially trained teacher (``teachers[1]``)."""
        return self.teachers[1]

    @torch.no_grad()
    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The clean teacher's logits: the gap metrics compare the student with it on clean inputs."""
        return self.clean_model(x)

    def on_fit_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is not None and hasattr(dm, "dataset"):
            x = dm.dataset("train").tensors[0].to(self.device)
            self._box = (x.min(0).values, x.max(0).values)

    def attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, training: bool = True) -> torch.Tensor:
        lower, upper = self._box if self._box is not None else (None, None)
        if training:
            return pgd_attack(model, x, y, self.epsilon, self.step_size, self.attack_steps, "normal", lower, upper)
        g = torch.Generator(device=x.device).manual_seed(0)
        steps = self.eval_attack_steps
        return pgd_attack(model, x, y, self.epsilon, 2.5 * self.epsilon / steps, steps, "uniform", lower, upper, generator=g)

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        x_adv = self.attack(self.student, x, y)
        w_adv, w_nat, tau_adv, tau_nat, init_adv, init_nat = self.balance.tolist()
        with torch.no_grad():
            t_adv = self.robust_model(x_adv)
            t_nat = self.clean_model(x)
        l_adv = losses.tempered_teacher_kl(t_adv, self.student(x_adv), tau_adv)
        l_nat = losses.tempered_teacher_kl(t_nat, self.student(x), tau_nat)
        tau_adv_next, tau_nat_next = losses.update_temperatures(
            tau_adv,
            tau_nat,
            losses.teacher_entropy(t_adv, tau_adv).item(),
            losses.teacher_entropy(t_nat, tau_nat).item(),
            self.temp_lr,
        )
        current = torch.stack([l_adv.detach(), l_nat.detach()]).double().clamp_min(1e-12)
        if math.isnan(init_adv):  # the first step fixes the reference losses
            init_adv, init_nat = current.tolist()
        weights = losses.update_weights(
            torch.tensor([w_adv, w_nat], dtype=torch.float64),
            current,
            torch.tensor([init_adv, init_nat], dtype=torch.float64),
            self.weight_lr,
        )
        self.balance.copy_(torch.tensor([*weights.tolist(), tau_adv_next, tau_nat_next, init_adv, init_nat]))
        if self._logs_this_step():
            for name, value in zip(("w_adv", "w_nat", "tau_adv", "tau_nat"), self.balance[:4].tolist()):
                self.log(f"mtard/{name}", value, on_step=True, on_epoch=False)
        w = weights.to(l_adv.dtype)
        return {"loss": w[0] * l_adv + w[1] * l_nat, "adv": l_adv, "nat": l_nat}
