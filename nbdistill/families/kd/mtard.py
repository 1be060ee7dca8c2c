r"""MTARD: multi-teacher adversarial robustness distillation.

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
is learned more slowly (:func:`update_temperatures`, :func:`update_weights`).

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
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...core.errors import ConfigError
from ...core.registry import HParam, register
from .module import KDModule

TEMPERATURE_RANGE = (1.0, 10.0)


def pgd_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilon: float,
    step_size: float,
    steps: int,
    random_start: str = "uniform",
    lower: torch.Tensor | None = None,
    upper: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""L∞ projected gradient descent (Madry et al., 2018) on :math:`\mathrm{CE}(\text{model}(x'), y)`:

    .. math::
        x'_{k+1} = \Pi_{B_\infty(x, \epsilon) \cap [l, u]}\big(x'_k + \eta\,\mathrm{sign}\,\nabla_{x'}\mathrm{CE}(f(x'_k), y)\big)

    ``random_start``: ``"uniform"`` in the ε-ball, ``"normal"`` (``0.001·N(0, 1)``, MTARD's
    training attack) or ``"none"``. ``lower``/``upper`` bound every feature (broadcast against
    ``x``), widened to contain ``x``. The model is put in eval mode while attacked; gradients
    flow to the input only, and it works inside Lightning's inference mode.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(False), torch.enable_grad():
            x0 = x.detach().clone()
            y = y.detach().clone()
            if lower is not None:
                lower = torch.minimum(lower.to(x0), x0)
            if upper is not None:
                upper = torch.maximum(upper.to(x0), x0)
            if random_start == "uniform":
                noise = torch.rand(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
                adv = x0 + (2 * noise - 1) * epsilon
            elif random_start == "normal":
                adv = x0 + 0.001 * torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
            elif random_start == "none":
                adv = x0.clone()
            else:
                raise ValueError(f"random_start must be 'uniform', 'normal' or 'none', got {random_start!r}")
            adv = _project(adv, x0, epsilon, lower, upper)
            for _ in range(steps):
                adv.requires_grad_(True)
                (grad,) = torch.autograd.grad(F.cross_entropy(model(adv), y), adv)
                adv = _project(adv.detach() + step_size * grad.sign(), x0, epsilon, lower, upper)
    finally:
        model.train(was_training)
    return adv.detach()


def _project(adv, x0, epsilon, lower, upper):
    adv = torch.clamp(adv, x0 - epsilon, x0 + epsilon)
    if lower is not None:
        adv = torch.maximum(adv, lower)
    if upper is not None:
        adv = torch.minimum(adv, upper)
    return adv


def tempered_teacher_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, tau: float) -> torch.Tensor:
    r""":math:`\frac1B\sum_i \mathrm{KL}\big(\mathrm{softmax}(z_{t,i}/\tau)\,\|\,\mathrm{softmax}(z_{s,i})\big)`: only the teacher is tempered."""
    log_pt = F.log_softmax(teacher_logits / tau, dim=-1)
    log_ps = F.log_softmax(student_logits, dim=-1)
    return (log_pt.exp() * (log_pt - log_ps)).sum(-1).mean()


def teacher_entropy(teacher_logits: torch.Tensor, tau: float) -> torch.Tensor:
    r"""Mean Shannon entropy :math:`H = -\frac1B\sum_i\sum_c p_{ic}\log p_{ic}` of :math:`p = \mathrm{softmax}(z/\tau)`.

    The authors' code averages :math:`p\log p` (a *negative* entropy) over all elements; the
    temperature rule only uses the ratio of two such values, which is the same for both.
    """
    log_p = F.log_softmax(teacher_logits / tau, dim=-1)
    return -(log_p.exp() * log_p).sum(-1).mean()


def update_temperatures(
    tau_adv: float, tau_nat: float, h_adv: float, h_nat: float, lr: float, bounds: tuple[float, float] = TEMPERATURE_RANGE
) -> tuple[float, float]:
    r"""B-MTARD's entropy-based balance, one step:

    .. math::
        \tau_{adv} \leftarrow \mathrm{clip}\big(\tau_{adv} - \eta_\tau\,\mathrm{sign}(H_{adv}/H_{nat} - 1)\big),\quad
        \tau_{nat} \leftarrow \mathrm{clip}\big(\tau_{nat} - \eta_\tau\,\mathrm{sign}(H_{nat}/H_{adv} - 1)\big)

    clipped to ``bounds`` ([1, 10]). The teacher whose tempered prediction is the softer (higher
    entropy) is sharpened, the other softened, so both carry a like amount of information.
    """
    low, high = bounds
    if h_adv <= 0 or h_nat <= 0:  # a one-hot teacher: no ratio to balance, only soften it
        step_adv, step_nat = (-1.0 if h_adv <= 0 else 0.0), (-1.0 if h_nat <= 0 else 0.0)
    else:
        step_adv, step_nat = _sign(h_adv / h_nat - 1.0), _sign(h_nat / h_adv - 1.0)
    tau_adv = min(max(tau_adv - lr * step_adv, low), high)
    tau_nat = min(max(tau_nat - lr * step_nat, low), high)
    return tau_adv, tau_nat


def _sign(v: float) -> float:
    return float(v > 0) - float(v < 0)


def update_weights(weights: torch.Tensor, losses: torch.Tensor, initial_losses: torch.Tensor, lr: float) -> torch.Tensor:
    r"""MTARD's normalised loss balance, one step, for K objectives:

    .. math::
        \hat L_i = L_i / L_i^{init},\quad r_i = \hat L_i \big/ \tfrac1K\textstyle\sum_j \hat L_j,\quad
        w_i \leftarrow w_i - \eta_w\big(w_i - r_i / \textstyle\sum_j r_j\big)

    then clamped at 0 and renormalised to sum 1 (the ECCV code's :math:`\beta = 1`). The objective
    whose loss has fallen least relative to its start gets the larger target share.
    """
    l_hat = losses / initial_losses
    r = l_hat / l_hat.mean()
    weights = weights - lr * (weights - r / r.sum())
    weights = weights.clamp_min(0.0)
    total = weights.sum()
    return weights / total if total > 0 else torch.full_like(weights, 1.0 / len(weights))


#: Views of kd.mtard: the usual gap views and the balance of weights and temperatures.
MTARD_VIEWS = ("losses", "gap", "robustness", "mtard_balance")


@register(
    "kd.mtard",
    hparams=[
        HParam("epsilon", float, 0.5, 0.0, 5.0, help="L∞ radius of PGD, in standardised feature units"),
        HParam("step_size", float, 0.125, 1e-4, 5.0, log=True, help="PGD step of the training attack"),
        HParam("attack_steps", int, 10, 1, 100, help="PGD steps of the training attack"),
        HParam("eval_attack_steps", int, 20, 1, 200, help="PGD steps of the evaluation attack (step 2.5·ε/steps)"),
        HParam("temp_lr", float, 0.001, 0.0, 1.0, help="η_τ of the entropy-based temperature balance"),
        HParam("weight_lr", float, 0.025, 0.0, 1.0, help="η_w of the normalised loss balance"),
        HParam(
            "robust_teacher", str, "digits-mlp-robust", help="zoo teacher used as robust teacher when only one teacher is given"
        ),
    ],
    views=MTARD_VIEWS,
)
class MTARD(KDModule):
    """MTARD: a clean and a robust teacher distilled on clean and PGD inputs, self-balanced (Zhao et al., ECCV 2022).

    Give ``teachers=[clean, robust]``, or one ``teacher`` (the clean one): the robust teacher is
    then the zoo teacher named ``robust_teacher``. Reports clean and PGD accuracy of the student
    (``student_pgd_acc``) at every validation and on the test split, and of both teachers
    (``robust_teacher_pgd_acc``, ``clean_teacher_pgd_acc``) at the first validation and on test.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None = None,
        teachers: Sequence[nn.Module] = (),
        epsilon: float = 0.5,
        step_size: float = 0.125,
        attack_steps: int = 10,
        eval_attack_steps: int = 20,
        temp_lr: float = 0.001,
        weight_lr: float = 0.025,
        robust_teacher: str = "digits-mlp-robust",
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        given = ([teacher] if teacher is not None else []) + list(teachers)
        if len(given) == 1:
            from ... import zoo

            given.append(zoo.teacher(robust_teacher))
        if len(given) != 2:
            raise ConfigError(
                f"kd.mtard takes a clean and a robust teacher (teachers=[clean, robust]), got {len(given)} teacher(s)"
            )
        super().__init__(student, teachers=given, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher", "teachers"])
        self.epsilon, self.step_size, self.attack_steps = epsilon, step_size, attack_steps
        self.eval_attack_steps = eval_attack_steps
        self.temp_lr, self.weight_lr = temp_lr, weight_lr
        # w_adv, w_nat, tau_adv, tau_nat, L_adv^init, L_nat^init: a buffer, so checkpoints resume it
        self.register_buffer("balance", torch.tensor([0.5, 0.5, 1.0, 1.0, float("nan"), float("nan")]))
        self._box: tuple[torch.Tensor, torch.Tensor] | None = None
        self._pgd_outputs: dict[str, list[torch.Tensor]] = {}
        self._teachers_measured = False

    @property
    def clean_teacher(self) -> nn.Module:
        return self.teachers[0]

    @property
    def robust_teacher(self) -> nn.Module:
        return self.teachers[1]

    @torch.no_grad()
    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The clean teacher's logits: the gap metrics compare the student with it on clean inputs."""
        return self.clean_teacher(x)

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
            t_adv = self.robust_teacher(x_adv)
            t_nat = self.clean_teacher(x)
        l_adv = tempered_teacher_kl(t_adv, self.student(x_adv), tau_adv)
        l_nat = tempered_teacher_kl(t_nat, self.student(x), tau_nat)
        tau_adv_next, tau_nat_next = update_temperatures(
            tau_adv, tau_nat, teacher_entropy(t_adv, tau_adv).item(), teacher_entropy(t_nat, tau_nat).item(), self.temp_lr
        )
        losses = torch.stack([l_adv.detach(), l_nat.detach()]).double().clamp_min(1e-12)
        if math.isnan(init_adv):  # the first step fixes the reference losses
            init_adv, init_nat = losses.tolist()
        weights = update_weights(
            torch.tensor([w_adv, w_nat], dtype=torch.float64),
            losses,
            torch.tensor([init_adv, init_nat], dtype=torch.float64),
            self.weight_lr,
        )
        self.balance.copy_(torch.tensor([*weights.tolist(), tau_adv_next, tau_nat_next, init_adv, init_nat]))
        if self._logs_this_step():
            for name, value in zip(("w_adv", "w_nat", "tau_adv", "tau_nat"), self.balance[:4].tolist()):
                self.log(f"mtard/{name}", value, on_step=True, on_epoch=False)
        w = weights.to(l_adv.dtype)
        return {"loss": w[0] * l_adv + w[1] * l_nat, "adv": l_adv, "nat": l_nat}

    # -- clean and PGD accuracy at every evaluation ----------------------------------------------
    def _collect(self, batch: Any, stage: str) -> None:
        super()._collect(batch, stage)
        if self._trainer is not None and self.trainer.sanity_checking:
            return
        x, y = batch[0], batch[1]
        # the frozen teachers' PGD accuracy is the same every epoch: measured at the first validation and on test
        models = [self.student]
        if stage != "val" or not self._teachers_measured:
            models += [self.robust_teacher, self.clean_teacher]
        preds = []
        for model in models:
            with torch.no_grad():
                clean = model(x).argmax(-1)
            adv = self.attack(model, x, y, training=False)
            with torch.no_grad():
                preds += [clean, model(adv).argmax(-1)]
        self._pgd_outputs.setdefault(stage, []).append(torch.stack([*preds, y]).cpu())

    def evaluation_metrics(self, stage: str) -> dict[str, Any]:
        metrics = super().evaluation_metrics(stage)
        parts = self._pgd_outputs.pop(stage, [])
        if parts and len({len(p) for p in parts}) == 1:
            p = torch.cat(parts, dim=1)
            y = p[-1]
            names = (
                "student_acc",
                "student_pgd_acc",
                "robust_teacher_acc",
                "robust_teacher_pgd_acc",
                "clean_teacher_acc",
                "clean_teacher_pgd_acc",
            )
            metrics.update({n: (p[i] == y).float().mean().item() for i, n in enumerate(names[: len(p) - 1])})
            if stage == "val" and len(p) == 7:
                self._teachers_measured = True
        return metrics
