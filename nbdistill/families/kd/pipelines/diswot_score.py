r"""DisWOT's training-free score of a student for a teacher (Dong, Li & Wei, "DisWOT: Student
Architecture Search for Distillation WithOut Training", CVPR 2023).

Both networks are randomly initialised (weights :math:`\mathcal{N}(0, 1)`, biases 0, norm layers
1/0: ``network_weight_gaussian_init`` of the official code) and see one labelled batch
:math:`(x, y)` of :math:`B` examples. Two similarities are measured, higher meaning closer:

- **relation** (sample relations): the :math:`B\times B` Gram matrix of the flattened features
  :math:`F` the classifier reads, each row L2-normalised, :math:`G = \mathrm{rownorm}(F F^\top)`;
  :math:`M_r = -\lVert G_t - G_s\rVert_F^2 / B^2` (the README's ``batch_similarity``).
- **semantic** (feature semantics): one backward pass of the cross-entropy gives the gradient
  :math:`g \in \mathbb{R}^{K\times C}` of the last ``nn.Linear``'s weight (the README's "Grad-CAM
  of the fc layer"); for every class :math:`k` the channel Gram :math:`E_k = \mathrm{rownorm}(g_k
  g_k^\top) \in \mathbb{R}^{C\times C}`; :math:`M_s = -\sum_k \lVert E_{s,k} - E_{t,k}\rVert_F^2 /
  (C K)` (the README's ``channel_similarity``).

The DisWOT score is :math:`M = M_r + M_s`, an unweighted sum: that is what the official repository's
``compute_diswot_procedure`` (``exps/parse_nb201_distill.py``: ``result = score_sp + score_ickd``)
computes. UNVERIFIED: the paper's text could not be read here, so whether the paper weighs the two
terms is not checked; the README gives the two metrics but not their combination. On these scales
:math:`M_s` (a mean over :math:`K C` unit rows) is of order 1 while :math:`M_r` (:math:`B` unit rows
over :math:`B^2`) is of order :math:`1/B`, so the sum ranks students mostly by :math:`M_s`;
``semantic_weight`` :math:`w` (:math:`M = M_r + w M_s`, 1 by default: the official sum) changes that.

How nbdistill differs, and why:

- Features are the input of the model's last ``nn.Linear`` (:data:`..features.PENULTIMATE`). For an
  MLP that is its last hidden layer; for a CNN it is the pooled vector, where the README takes the
  map before global pooling.
- The official ``channel_similarity`` needs the teacher's and the student's classifier inputs to have
  the same width :math:`C` (true of its NAS-Bench-201 and ResNet-20 spaces, not of MLPs of any
  width). When they differ, nbdistill compares the first :math:`m = \min(C_t, C_s)` channels of both
  gradients: under an i.i.d. random initialisation every set of :math:`m` channels is distributed as
  any other, and with equal widths it is exactly the README's formula. Caveat: the distance's
  expected value then depends on :math:`m` (with :math:`m = 1` it is 0), which favours students whose
  classifier reads few features.
- The models run in train mode (as freshly built networks do in the official code) under a seeded
  RNG, on copies: the given modules are not touched and a score is a function of the architecture,
  the batch and the seed.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ....core.batches import as_pair
from ....core.errors import ConfigError
from ..features import PENULTIMATE, capture, penultimate_layer

#: How the teacher is initialised before scoring: the paper's random init, or as given (trained).
INITS = ("random", "trained")
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm1d, nn.InstanceNorm2d)


@dataclass(frozen=True)
class DisWOTScore:
    """The two similarities of one student to the teacher; ``score`` is
    ``relation + semantic_weight * semantic`` (higher: closer)."""

    relation: float
    semantic: float
    semantic_weight: float = 1.0

    @property
    def score(self) -> float:
        return self.relation + self.semantic_weight * self.semantic


def gaussian_init(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """In place: Linear and Conv weights drawn from N(0, 1), their biases 0, norm layers' weight 1 and
    bias 0 (the official ``network_weight_gaussian_init``); other parameters are left as they are."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, *_CONV)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator, dtype=m.weight.dtype))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, _NORM) and getattr(m, "weight", None) is not None:
                m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()
    return model


def prepared(model: nn.Module, seed: int, init: str = "random") -> nn.Module:
    """A trainable copy of ``model`` in train mode, Gaussian-initialised from ``seed`` when ``init`` is
    ``"random"``, as it is when ``"trained"``."""
    if init not in INITS:
        raise ConfigError(f"teacher_init must be one of {INITS}, got {init!r}")
    clone = copy.deepcopy(model)
    for p in clone.parameters():
        p.requires_grad_(True)
    if init == "random":
        gaussian_init(clone, torch.Generator().manual_seed(int(seed)))
    return clone.train()


def relation_distance(f_t: torch.Tensor, f_s: torch.Tensor) -> torch.Tensor:
    r""":math:`\lVert \mathrm{rownorm}(F_t F_t^\top) - \mathrm{rownorm}(F_s F_s^\top)\rVert_F^2 / B^2`
    of features flattened to :math:`B \times D` (widths may differ); :math:`-M_r`."""
    f_t, f_s = f_t.flatten(1), f_s.flatten(1)
    if f_t.shape[0] != f_s.shape[0]:
        raise ValueError(f"teacher and student features of different batch sizes: {f_t.shape[0]} and {f_s.shape[0]}")
    g_t, g_s = F.normalize(f_t @ f_t.T), F.normalize(f_s @ f_s.T)
    return (g_t - g_s).pow(2).sum() / f_t.shape[0] ** 2


def semantic_distance(g_t: torch.Tensor, g_s: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_k \lVert \mathrm{rownorm}(g_{t,k} g_{t,k}^\top) - \mathrm{rownorm}(g_{s,k} g_{s,k}^\top)
    \rVert_F^2 / (m K)` of classifier-weight gradients :math:`K \times C` (the README's
    ``channel_similarity``), on their first :math:`m = \min(C_t, C_s)` channels; :math:`-M_s`."""
    if g_t.shape[0] != g_s.shape[0]:
        raise ValueError(f"teacher and student classifiers of different class counts: {g_t.shape[0]} and {g_s.shape[0]}")
    k, m = g_t.shape[0], min(g_t[0].numel(), g_s[0].numel())
    g_t, g_s = g_t.reshape(k, -1)[:, :m, None], g_s.reshape(k, -1)[:, :m, None]
    e_t = F.normalize(torch.bmm(g_t, g_t.transpose(1, 2)), dim=2)
    e_s = F.normalize(torch.bmm(g_s, g_s.transpose(1, 2)), dim=2)
    return (e_s - e_t).pow(2).sum() / (m * k)


def probe(model: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int, who: str = "model") -> tuple[torch.Tensor, torch.Tensor]:
    """The features ``model`` feeds its last ``nn.Linear`` on ``x`` (flattened) and the gradient of
    that layer's weight of the mean cross-entropy on ``(x, y)``, from one forward and one backward
    pass (dropout, if any, drawn from ``seed``; the global RNG is left as it was)."""
    layer = penultimate_layer(model, who)
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(int(seed))
        out, (features,) = capture(model, x, [PENULTIMATE], who)
        (grad,) = torch.autograd.grad(F.cross_entropy(out, y), layer.weight)
    return features.detach().flatten(1), grad.detach()


class TeacherReference:
    """The teacher's features and classifier gradient on one batch, computed once; :meth:`score` then
    scores any student against them. The teacher is Gaussian-initialised from ``seed`` (the paper)
    when ``teacher_init`` is ``"random"``, used as given when ``"trained"``; a student is always
    Gaussian-initialised, from ``seed + 1``."""

    def __init__(
        self,
        teacher: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        seed: int = 0,
        teacher_init: str = "random",
        semantic_weight: float = 1.0,
    ):
        self.x, self.y, self.seed, self.semantic_weight = x, y, int(seed), float(semantic_weight)
        self.features, self.grad = probe(prepared(teacher, self.seed, teacher_init), x, y, self.seed, "teacher")

    @property
    def num_classes(self) -> int:
        return self.grad.shape[0]

    def score(self, student: nn.Module, who: str = "student") -> DisWOTScore:
        """The DisWOT similarities of ``student`` (a copy initialised from ``seed + 1``) to the teacher."""
        features, grad = probe(prepared(student, self.seed + 1), self.x, self.y, self.seed + 1, who)
        return DisWOTScore(
            relation=-float(relation_distance(self.features, features)),
            semantic=-float(semantic_distance(self.grad, grad)),
            semantic_weight=self.semantic_weight,
        )


def check_candidate(candidate: Any, index: int, x: torch.Tensor, num_classes: int) -> str:
    """Raise :class:`ConfigError` unless ``candidate`` is a network with a last ``nn.Linear`` that takes
    ``x`` and gives one logit per class; return how it is named in messages."""
    name = f"candidate {index} ({type(candidate).__name__})"
    if not isinstance(candidate, nn.Module):
        raise ConfigError(f"{name} is not a torch.nn.Module; give networks, e.g. nd.models.MLP(64, [32], 10)")
    penultimate_layer(candidate, name)
    try:
        with torch.no_grad():
            out = candidate(x)
    except Exception as exc:  # noqa: BLE001 (a user's network: say which one and the shapes)
        raise ConfigError(
            f"{name} cannot take the data's inputs of shape {tuple(x.shape)}: {type(exc).__name__}: {exc}; "
            "give it the data's input size"
        ) from exc
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (x.shape[0], num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(
            f"{name} outputs {shape} for inputs of shape {tuple(x.shape)}; it must output one logit per class, "
            f"shape ({x.shape[0]}, {num_classes}), as the teacher does"
        )
    return name


def score_candidates(
    teacher: nn.Module,
    candidates: Sequence[nn.Module],
    batch: Any,
    seed: int = 0,
    teacher_init: str = "random",
    semantic_weight: float = 1.0,
) -> list[DisWOTScore]:
    """The DisWOT score of each candidate student for ``teacher`` on one labelled ``batch`` ``(x, y)``,
    without training (see the module's docstring; ``seed``, ``teacher_init`` and ``semantic_weight`` as in
    :class:`TeacherReference`). Every candidate is checked first, so a candidate
    that cannot take the data's inputs raises :class:`ConfigError`, naming it, before any scoring."""
    x, y = as_pair(batch)[:2]
    if isinstance(candidates, nn.Module) or not isinstance(candidates, Sequence) or not candidates:
        raise ConfigError("candidates must be a non-empty list of networks, e.g. [nd.models.MLP(64, [h], 10) for h in (8, 32)]")
    reference = TeacherReference(teacher, x, y, seed, teacher_init, semantic_weight)
    names = [check_candidate(c, i, x, reference.num_classes) for i, c in enumerate(candidates)]
    return [reference.score(c, name) for c, name in zip(candidates, names)]
