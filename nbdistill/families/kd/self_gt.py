r"""Iterative self-distillation with ground-truth weighting.

"Even your Teacher Needs Guidance: Ground-Truth Targets Dampen Regularization Imposed by
Self-Distillation", Borup & Andersen, NeurIPS 2021 (arXiv 2102.13088). At step τ a fresh model
of the same architecture is fitted to a mix of the labels and the previous step's predictions:

.. math::
    f^{(\tau)} = \arg\min_f\; \alpha\,\|y - f(X)\|^2 + (1-\alpha)\,\|f^{(\tau-1)}(X) - f(X)\|^2 + \lambda\,\|f\|^2,
    \qquad f^{(1)}\ \text{fitted to}\ y .

For kernel ridge regression (kernel matrix :math:`K = V D V^\top`, :math:`A = D(D+\lambda I)^{-1}`) the
training predictions are :math:`\hat y^{(\tau)} = V B_\tau V^\top y` with the recursion
:math:`B_1 = A,\ B_\tau = A\big((1-\alpha)B_{\tau-1} + \alpha I\big)`, whose closed form is

.. math::
    B_\tau = \big((1-\alpha)A\big)^{\tau-1}A + \alpha A\big(I - ((1-\alpha)A)^{\tau-1}\big)\big(I - (1-\alpha)A\big)^{-1}
    \ \xrightarrow{\tau\to\infty}\ \alpha D(\alpha D + \lambda I)^{-1}:

the limit is the original problem with the regularisation amplified to :math:`\lambda/\alpha`
(non-zero for α > 0); with α = 0 (Mobahi et al., 2020) it collapses to the zero function.

The weight α: the paper gives the α minimising the error at each step in closed form. Its text
could not be read here (only the abstract and the authors' code); what follows from the
analysis above, and what :func:`optimal_alpha` implements, is that one step's prediction is
affine in α — :math:`f^{(\tau)}(\alpha) = f_0 + \alpha\,(f_1 - f_0)` with :math:`f_0` the fit to
the teacher's predictions and :math:`f_1` the fit to the labels — so the squared error against a
reference :math:`y^\star` is minimised at
:math:`\alpha^\star = \langle f_1 - f_0,\ y^\star - f_0\rangle / \|f_1 - f_0\|^2` (clipped to [0, 1]).
The deep module uses a fixed α, default 0.6 (the authors' README command for ResNets), and, as
their ``self_distiller.py`` does, the squared error between softmax outputs and the mixed target,
plus their parameter-norm regulariser :math:`c\sum_p \|p\|_2` (:func:`parameter_norm`: the sum of
the Frobenius norms of the trainable tensors, not squared; ``--reg_coef``, default :math:`c = 10^{-4}`),
in every generation, the first included.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...core.module import freeze
from ...core.registry import HParam, register
from .module import KDModule

# -- kernel ridge regression: the analysed case ------------------------------------------------


def rbf_kernel(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    r""":math:`k(a, b) = \exp(-\gamma\,\|a - b\|^2)` for rows of ``a`` [n, d] and ``b`` [m, d]."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    return np.exp(-gamma * np.maximum(sq, 0.0))


def iterative_self_distillation(K: np.ndarray, y: np.ndarray, lam: float, alpha: float, steps: int) -> list[np.ndarray]:
    """Dual coefficients ``c_τ`` of steps 1..``steps``, each a fresh kernel ridge fit:
    ``c_τ = (K + λI)⁻¹ (α y + (1 − α) ŷ_{τ−1})`` with ``ŷ_{τ−1} = K c_{τ−1}`` and ``ŷ_0 = y``.
    Predictions at new points ``X'`` are ``k(X', X) c_τ``."""
    solve = np.linalg.inv(K + lam * np.eye(len(K)))
    coefs, previous = [], y
    for step in range(steps):
        target = y if step == 0 else alpha * y + (1 - alpha) * previous
        c = solve @ target
        coefs.append(c)
        previous = K @ c
    return coefs


def closed_form_coefficients(K: np.ndarray, y: np.ndarray, lam: float, alpha: float, step: int) -> np.ndarray:
    """Dual coefficients of step ``step`` (≥ 1, or ``np.inf`` for the limit) straight from the first fit's
    eigen-decomposition, by the closed form of :math:`B_\\tau` (module docstring):
    ``c_τ = V D⁻¹ B_τ Vᵀ y``."""
    d, V = np.linalg.eigh(K)
    d = np.clip(d, 1e-12, None)
    a = d / (d + lam)
    if step == np.inf:
        b = alpha * d / (alpha * d + lam)
    else:
        r = (1 - alpha) * a  # < 1 for λ > 0
        power = r ** (step - 1)
        b = power * a + alpha * a * (1 - power) / (1 - r)
    return V @ ((b / d) * (V.T @ y))


def optimal_alpha(fit_to_teacher: np.ndarray, fit_to_labels: np.ndarray, reference: np.ndarray, clip: bool = True) -> float:
    r""":math:`\alpha^\star = \langle f_1 - f_0, y^\star - f_0\rangle / \|f_1 - f_0\|^2`, the minimiser of
    :math:`\|y^\star - (f_0 + \alpha (f_1 - f_0))\|^2` (exact when the step is affine in α, as for
    kernel ridge). ``fit_to_teacher`` is :math:`f_0` (α = 0), ``fit_to_labels`` :math:`f_1` (α = 1),
    ``reference`` :math:`y^\star` (held-out targets, or the noise-free function in a toy)."""
    f0, f1, ref = (np.asarray(v, float).ravel() for v in (fit_to_teacher, fit_to_labels, reference))
    direction = f1 - f0
    norm = float(direction @ direction)
    if norm == 0.0:
        return 1.0
    alpha = float(direction @ (ref - f0)) / norm
    return min(max(alpha, 0.0), 1.0) if clip else alpha


# -- deep networks: the squared-error objective of the authors' ResNet experiments ---------------


def self_distillation_loss(
    student_logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor | None, alpha: float
) -> dict[str, torch.Tensor]:
    r""":math:`\alpha\,\mathrm{MSE}(\sigma(z_s), e_y) + (1-\alpha)\,\mathrm{MSE}(\sigma(z_s), \sigma(z_t))`,
    MSE averaged over batch and classes, :math:`\sigma` the softmax; the first step (no teacher) is
    :math:`\mathrm{MSE}(\sigma(z_s), e_y)`. Equal, up to a constant, to the squared error to the
    mixed target :math:`\alpha e_y + (1-\alpha)\sigma(z_t)`."""
    probs = torch.softmax(student_logits, dim=-1)
    onehot = F.one_hot(labels, probs.shape[-1]).to(probs.dtype)
    label_term = F.mse_loss(probs, onehot)
    if teacher_logits is None:
        return {"loss": label_term, "label": label_term}
    teacher_term = F.mse_loss(probs, torch.softmax(teacher_logits, dim=-1))
    return {"loss": alpha * label_term + (1 - alpha) * teacher_term, "label": label_term, "teacher": teacher_term}


def parameter_norm(module: nn.Module) -> torch.Tensor:
    r""":math:`\sum_p \|p\|_2` over the trainable tensors of ``module``: the Frobenius norm of each, not
    squared, summed (the regulariser of Borup & Andersen's ``self_distiller.py``, weighted there by ``--reg_coef``)."""
    norms = [p.norm() for p in module.parameters() if p.requires_grad]
    return torch.stack(norms).sum() if norms else torch.zeros(())


def generation_bounds(max_epochs: int, steps: int) -> list[int]:
    """First epoch of each generation after the first: ``max_epochs`` split into ``steps + 1`` near-equal
    generations (generation g starts at ⌊g·E/(steps + 1)⌋); too few epochs merge generations."""
    starts = sorted({(g * max_epochs) // (steps + 1) for g in range(1, steps + 1)})
    return [s for s in starts if 0 < s < max_epochs]


@register(
    "kd.self_gt",
    hparams=[
        HParam("alpha", float, 0.6, 0.0, 1.0, help="weight of the ground truth; 1 − alpha weighs the previous generation"),
        HParam("distillation_steps", int, 2, 1, 20, help="generations after the first, each a fresh network"),
        HParam(
            "reg_coef",
            float,
            1e-4,
            0.0,
            1.0,
            help="weight c of the regulariser c·Σ‖p‖₂ over the student's tensors (authors' code: 1e-4)",
        ),
    ],
    views=("losses", "gap", "generations"),
    needs_teacher=False,
)
class SelfDistillationGT(KDModule):
    """Self-distillation with ground-truth weighting (Borup & Andersen, NeurIPS 2021): generation τ ≥ 1
    is a re-initialised copy of the student fitted to α·labels + (1 − α)·generation τ − 1.

    ``max_epochs`` is split into ``distillation_steps + 1`` generations; the first learns the labels
    alone. The loss is :func:`self_distillation_loss` plus ``reg_coef`` × :func:`parameter_norm` of
    the student (term ``reg``, unweighted), as in the authors' ``self_distiller.py``. A teacher, when
    given, is only used to measure the gap. Each generation's final validation accuracy is drawn by
    the ``generations`` view.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None = None,
        alpha: float = 0.6,
        distillation_steps: int = 2,
        reg_coef: float = 1e-4,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        super().__init__(student, teacher, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])
        self.alpha = alpha
        self.distillation_steps = distillation_steps
        self.reg_coef = reg_coef
        self.previous = freeze(copy.deepcopy(student))
        self.register_buffer("generation", torch.zeros((), dtype=torch.long))
        self._generation_acc: list[float] = []

    def train(self, mode: bool = True) -> SelfDistillationGT:
        super().train(mode)
        self.previous.eval()
        return self

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        teacher = None
        if int(self.generation) > 0:
            with torch.no_grad():
                teacher = self.previous(x)
        terms = self_distillation_loss(self.student(x), y, teacher, self.alpha)
        reg = parameter_norm(self.student)
        return {**terms, "loss": terms["loss"] + self.reg_coef * reg, "reg": reg}

    def on_train_epoch_start(self) -> None:
        """A generation ends when the epoch that starts the next one begins (not at the end of its own
        last epoch): the periodic checkpoint, written at an epoch's end before the module's own
        epoch-end hook runs, then holds the generation as it was, and a resumed run switches at the
        same epoch as an uninterrupted one (the buffer ``generation`` says how many switches happened)."""
        bounds = generation_bounds(self.trainer.max_epochs, self.distillation_steps)
        due = sum(1 for b in bounds if b <= self.current_epoch)
        while int(self.generation) < due:
            acc = self.trainer.callback_metrics.get("val/student_acc")
            self._end_generation(None if acc is None else float(acc))

    def on_fit_end(self) -> None:
        super().on_fit_end()
        acc = self.trainer.callback_metrics.get("val/student_acc")
        self._record_generation(None if acc is None else float(acc))

    def _end_generation(self, acc: float | None) -> None:
        self._record_generation(acc)
        self.previous.load_state_dict(self.student.state_dict())
        for module in self.student.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        for optimizer in self.trainer.optimizers:
            optimizer.state.clear()
        self.generation += 1

    def _record_generation(self, acc: float | None) -> None:
        self._generation_acc.append(float("nan") if acc is None else acc)
        writer = self._run_writer()
        if writer is not None:
            gens = list(range(len(self._generation_acc)))
            writer.points("self_gt/generation_acc", gens, self._generation_acc, step=self.global_step, alpha=self.alpha)
