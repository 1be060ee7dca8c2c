r"""The evaluator of ``kd.autodistiller``: one candidate pipeline run as a short distillation of a
fresh student, scored by its validation accuracy.

A candidate's loss on a (possibly augmented) batch :math:`\tilde x` is

.. math::
    \mathcal{L} = \mathcal{L}_{\mathrm{logits}}(z_s(\tilde x), z_t(\tilde x), y; T)
        + \beta\,[\text{hint}]\;\tfrac12\,\| u_t(\tilde x) - r(v_s(\tilde x)) \|^2,

with :math:`\mathcal{L}_{\mathrm{logits}}` one of Hinton KD (α = ``hinton_alpha``), DKD (α = 1, β = 8),
PLD or OFA's loss plus CE (ε = 1.5), all from :mod:`nbdistill.families.kd.losses`; the hint term is
FitNets' (:func:`~nbdistill.families.kd.losses.hint_loss`) between the teacher's and the student's
penultimate features (:data:`~nbdistill.families.kd.features.PENULTIMATE`) through a linear
regressor :math:`r` trained with the student (FitNets trains it in a stage of its own; here it is an
auxiliary term, as Distiller adds its intermediate objectives to the KD loss).

The augmentations replace the batch, and the teacher labels what the student sees:

- ``noise``: :math:`\tilde x = x + \sigma\,s\,\epsilon`, :math:`\epsilon \sim \mathcal N(0, I)`,
  :math:`s` the standard deviation of the training inputs, σ = ``noise_std``;
- ``mixup`` ("mixup: Beyond Empirical Risk Minimization", Zhang et al., ICLR 2018):
  :math:`\tilde x = \lambda x + (1-\lambda) x_{\pi}`, π a permutation of the batch, with
  :math:`\lambda \sim \mathrm{Beta}(1, 1)` folded to :math:`[\tfrac12, 1]` (uniform there), so the
  example that dominates keeps its label (the losses take hard labels); the soft targets are the
  teacher's on the mixed input, as in MixKD (Liang et al., ICLR 2021).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from ....core.evaluation import accuracy
from ....core.fastpath import adam
from .. import losses
from ..features import PENULTIMATE, capture
from ..heads import HintRegressor
from .autodistiller_search import Candidate


@dataclass(frozen=True)
class InnerSetting:
    """How a candidate is trained: epochs and batch over the training split, Adam, the fixed weights."""

    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-2
    weight_decay: float = 0.0
    hinton_alpha: float = 0.1
    hint_weight: float = 0.1
    noise_std: float = 0.1


def logit_loss(candidate: Candidate, zs: torch.Tensor, zt: torch.Tensor, y: torch.Tensor, hinton_alpha: float) -> dict:
    """The candidate's loss on the logits (see the module docstring), as named terms with ``loss``."""
    t = candidate.temperature
    if candidate.loss == "hinton":
        return losses.hinton_kd(zs, zt, y, t, hinton_alpha)
    if candidate.loss == "dkd":
        return losses.decoupled_kd(zs, zt, y, t)
    if candidate.loss == "pld":
        return losses.plackett_luce_distillation(zs, zt, y, t)
    if candidate.loss == "ofa":
        return losses.one_for_all_kd(zs, [], zt, y, temperature=t)
    raise ValueError(f"unknown loss {candidate.loss!r}")


def augment(candidate: Candidate, x: torch.Tensor, g: torch.Generator, input_std: float, noise_std: float) -> torch.Tensor:
    """The batch the student and the teacher see (see the module docstring)."""
    if candidate.augment == "noise":
        eps = torch.randn(x.shape, generator=g, dtype=x.dtype).to(x.device)
        return x + noise_std * input_std * eps
    if candidate.augment == "mixup":
        n = x.shape[0]
        lam = (0.5 + 0.5 * torch.rand(n, generator=g, dtype=x.dtype)).to(x.device).view(-1, *([1] * (x.dim() - 1)))
        perm = torch.randperm(n, generator=g).to(x.device)
        return lam * x + (1 - lam) * x[perm]
    return x


def fresh_student(template: nn.Module, initial_state: dict) -> nn.Module:
    """A new copy of the student with its initial weights (``copy.deepcopy`` then the saved state)."""
    student = copy.deepcopy(template)
    student.load_state_dict(initial_state)
    return student


def train_candidate(
    candidate: Candidate,
    student: nn.Module,
    teacher: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    setting: InnerSetting,
    seed: int,
    teacher_out: tuple[torch.Tensor, torch.Tensor | None] | None = None,
) -> nn.Module:
    """Distil ``student`` (trained in place and returned) with the ``candidate`` pipeline: ``setting.epochs``
    epochs of Adam over ``(x, y)`` in batches of ``setting.batch_size``, each epoch in the order of a
    ``torch.randperm`` from a generator seeded with ``seed``, which also draws the augmentations.
    The hint regressor is initialised under ``seed`` too; it is thrown away afterwards.

    ``teacher_out``: the teacher's logits and penultimate features of all of ``x``
    (:func:`teacher_outputs`), read instead of a teacher forward pass where the candidate does not
    augment (the same numbers, computed once for every candidate)."""
    g = torch.Generator().manual_seed(int(seed))
    hint = candidate.intermediate == "hint"
    teacher.eval()
    params = [p for p in student.parameters() if p.requires_grad]
    regressor = None
    if hint:
        with torch.no_grad():
            s_shape = capture(student, x[:2], [PENULTIMATE], "student")[1][0].shape[1:]
            t_shape = capture(teacher, x[:2], [PENULTIMATE], "teacher")[1][0].shape[1:]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            regressor = HintRegressor(s_shape, t_shape).to(device=x.device, dtype=x.dtype)
        params += list(regressor.parameters())
    optimizer = adam(params, lr=setting.lr, weight_decay=setting.weight_decay)
    input_std = float(x.std()) if candidate.augment == "noise" else 0.0
    student.train()
    for _ in range(setting.epochs):
        order = torch.randperm(len(x), generator=g).to(x.device)
        for i in range(0, len(x), setting.batch_size):
            idx = order[i : i + setting.batch_size]
            xb = augment(candidate, x[idx], g, input_std, setting.noise_std)
            yb = y[idx]
            if hint:
                zs, (vs,) = capture(student, xb, [PENULTIMATE], "student")
            else:
                zs = student(xb)
            if teacher_out is not None and candidate.augment == "none":
                zt = teacher_out[0][idx]
                ut = teacher_out[1][idx] if hint else None
            elif hint:
                with torch.no_grad():
                    zt, (ut,) = capture(teacher, xb, [PENULTIMATE], "teacher")
            else:
                with torch.no_grad():
                    zt = teacher(xb)
            loss = logit_loss(candidate, zs, zt, yb, setting.hinton_alpha)["loss"]
            if hint:
                loss = loss + setting.hint_weight * losses.hint_loss(regressor(vs), ut)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return student


@torch.no_grad()
def teacher_outputs(
    teacher: nn.Module, x: torch.Tensor, features: bool = True, batch_size: int = 1024
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The teacher's logits and penultimate features of ``x`` (in eval mode), in batches; the features
    None when ``features`` is False (no candidate uses a hint: the teacher needs no ``nn.Linear``)."""
    teacher.eval()
    names = [PENULTIMATE] if features else []
    parts = [capture(teacher, x[i : i + batch_size], names, "teacher") for i in range(0, len(x), batch_size)]
    return torch.cat([z for z, _ in parts]), torch.cat([f[0] for _, f in parts]) if features else None


def evaluate_candidate(
    candidate: Candidate,
    template: nn.Module,
    initial_state: dict,
    teacher: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    setting: InnerSetting,
    seed: int,
    teacher_out: tuple[torch.Tensor, torch.Tensor | None] | None = None,
) -> tuple[float, nn.Module]:
    """``(validation accuracy, trained student)`` of the ``candidate`` pipeline run on a fresh copy of
    the student (:func:`fresh_student`, :func:`train_candidate`)."""
    student = fresh_student(template, initial_state)
    train_candidate(candidate, student, teacher, train[0], train[1], setting, seed, teacher_out)
    return accuracy(student, *val), student
