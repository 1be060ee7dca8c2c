r"""LELP: linear projections of teacher embeddings into pseudo-subclasses, for few-class problems.

"Linear Projections of Teacher Embeddings for Few-Class Distillation", Loo, Iliopoulos, Hu & Vee,
arXiv 2409.20449. With few classes a teacher's output carries little of what it knows; LELP finds
informative linear directions in the teacher's final-layer embedding space, splits every class
into S pseudo-subclasses along them, and trains a student with S·C outputs to reproduce the
subclass distribution; the student's class probability is the sum of its subclass probabilities.

What is implemented. The paper's §3 could not be read here; several reviews of its ICLR 2025
submission quote §3.1–3.2, and agree with the steps below: per-class PCA of the teacher's
final-layer embeddings, optionally after projecting them on the null space of the output layer
("we have found that it often helps"), S directions per class, the split of step 4 with a subclass
temperature β, a KL over the S·C subclasses and α = 0 in every experiment. Two choices are ours:
the paper then rotates the top-S directions by a random orthonormal matrix "to equalize variance";
here each score is divided by its direction's standard deviation instead (which equalises the
variances too), and ``rotate=True`` adds the seeded rotation. Whether the paper centres on the class
mean and whether it keeps T² is not in what could be read; both are kept here (T² as in Hinton KD).

1. Teacher embeddings :math:`h(x)` are the input of the teacher's last linear layer (logits
   :math:`z_t = W h + b`), collected on the training split once, at the start of fitting.
2. Optionally (``project``) they are projected on the null space of :math:`W`,
   :math:`P = I - W^\top (W W^\top)^{+} W`, so the directions carry what the logits do not.
3. Per class c (by label), PCA of :math:`P(h - \mu_c)` keeps the top S directions
   :math:`v_{c,1..S}` (sign fixed so each direction's largest entry is positive) and their
   standard deviations :math:`\sigma_{c,k}`; ``rotate`` mixes them by a seeded random rotation.
4. Subclass scores :math:`s_{c,k}(x) = \langle v_{c,k}, P(h(x) - \mu_c)\rangle / \sigma_{c,k}` split class
   c's teacher probability over its subclasses with a subclass temperature β:

   .. math::
       p_{c,k}(x) = p^T_{t,c}(x)\cdot \mathrm{softmax}_k\big(s_{c,\cdot}(x)/\beta\big),
       \qquad \textstyle\sum_k p_{c,k} = p^T_{t,c}.

5. The student's S·C logits :math:`u` give :math:`q = \mathrm{softmax}(u/T)`; the loss is
   :math:`\alpha\,\mathrm{CE}(\tilde z_s, y) + (1-\alpha)\,T^2\,\mathrm{KL}(p\,\|\,q)` with class logits
   :math:`\tilde z_{s,c} = \log\sum_k e^{u_{c,k}}` (so :math:`\mathrm{softmax}(\tilde z_s) = \sum_k q_{c,k}`).
   The paper's experiments use α = 0.

With S = 1 the split is trivial and LELP is Hinton KD exactly.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...core.errors import ConfigError
from ...core.registry import HParam, register
from .module import GAP_VIEWS, KDModule


def last_linear(model: nn.Module, who: str) -> tuple[str, nn.Linear]:
    """The last ``nn.Linear`` registered in ``model`` (its classifier, for the usual networks)."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ConfigError(f"kd.lelp needs a {who} whose last layer is an nn.Linear (its classifier); found none")
    return found[-1]


def class_logits_from_subclasses(subclass_logits: torch.Tensor, num_classes: int) -> torch.Tensor:
    r""":math:`\tilde z_c = \log\sum_k \exp(u_{c,k})`: the logits whose softmax is the sum of each class's
    subclass probabilities. Subclass ``k`` of class ``c`` is column ``c·S + k``."""
    b = subclass_logits.shape[0]
    return torch.logsumexp(subclass_logits.view(b, num_classes, -1), dim=-1)


def subclass_log_targets(
    teacher_logits: torch.Tensor, scores: torch.Tensor, temperature: float, subclass_temperature: float
) -> torch.Tensor:
    r""":math:`\log p_{c,k} = \log\mathrm{softmax}(z_t/T)_c + \log\mathrm{softmax}_k(s_{c,\cdot}/\beta)`, shape
    ``[B, C·S]``; ``scores`` is ``[B, C, S]``. Exponentiated and summed over k it gives back
    :math:`\mathrm{softmax}(z_t/T)`."""
    log_class = F.log_softmax(teacher_logits / temperature, dim=-1)
    log_split = F.log_softmax(scores / subclass_temperature, dim=-1)
    return (log_class.unsqueeze(-1) + log_split).flatten(1)


def lelp_loss(
    student_subclass_logits: torch.Tensor,
    log_targets: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    temperature: float,
    alpha: float = 0.0,
) -> dict[str, torch.Tensor]:
    r""":math:`\alpha\,\mathrm{CE}(\tilde z_s, y) + (1-\alpha)\,T^2\,\frac1B\sum_i\mathrm{KL}(p_i\,\|\,\mathrm{softmax}(u_i/T))`
    over the C·S pseudo-subclasses (``log_targets`` from :func:`subclass_log_targets`)."""
    log_q = F.log_softmax(student_subclass_logits / temperature, dim=-1)
    kd = temperature**2 * (log_targets.exp() * (log_targets - log_q)).sum(-1).mean()
    ce = F.cross_entropy(class_logits_from_subclasses(student_subclass_logits, num_classes), labels)
    return {"loss": alpha * ce + (1 - alpha) * kd, "ce": ce, "kd": kd}


def null_space_projector(weight: torch.Tensor) -> torch.Tensor:
    r""":math:`P = I - W^\top (W W^\top)^{+} W` for the classifier weight ``W`` [C, d]: :math:`WP = 0`."""
    d = weight.shape[1]
    return torch.eye(d, dtype=weight.dtype) - weight.T @ torch.linalg.pinv(weight @ weight.T) @ weight


def fit_subclass_directions(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    subclasses: int,
    projector: torch.Tensor | None = None,
    rotation_seed: int | None = None,
) -> dict[str, torch.Tensor]:
    """Per-class means ``mean`` [C, d], top-``subclasses`` PCA directions ``directions`` [C, S, d] (of the
    projected, centred embeddings) and their standard deviations ``scale`` [C, S]."""
    d = embeddings.shape[1]
    p = projector if projector is not None else torch.eye(d, dtype=embeddings.dtype)
    means, dirs, scales = [], [], []
    g = torch.Generator().manual_seed(rotation_seed) if rotation_seed is not None else None
    for c in range(num_classes):
        e = embeddings[labels == c]
        if len(e) < 2:
            raise ConfigError(f"kd.lelp needs at least two training examples of class {c} to find its directions")
        mu = e.mean(0)
        centred = (e - mu) @ p.T
        vh = torch.linalg.svd(centred, full_matrices=False).Vh
        if vh.shape[0] < subclasses:
            raise ConfigError(f"kd.lelp: class {c} has only {vh.shape[0]} directions, fewer than subclasses={subclasses}")
        v = vh[:subclasses]
        sign = torch.sign(v.gather(1, v.abs().argmax(1, keepdim=True)))
        v = v * sign
        if g is not None and subclasses > 1:
            q, _ = torch.linalg.qr(torch.randn(subclasses, subclasses, generator=g, dtype=v.dtype))
            v = q @ v
        std = (centred @ v.T).std(0, unbiased=False).clamp_min(1e-8)
        means.append(mu)
        dirs.append(v)
        scales.append(std)
    return {"mean": torch.stack(means), "directions": torch.stack(dirs), "scale": torch.stack(scales)}


def subclass_scores(embeddings: torch.Tensor, fitted: dict[str, torch.Tensor], projector: torch.Tensor | None) -> torch.Tensor:
    r""":math:`s_{c,k}(x) = \langle v_{c,k}, P(h(x) - \mu_c)\rangle / \sigma_{c,k}`, shape ``[B, C, S]``."""
    centred = embeddings.unsqueeze(1) - fitted["mean"].unsqueeze(0)  # [B, C, d]
    if projector is not None:
        centred = centred @ projector.T
    return torch.einsum("bcd,csd->bcs", centred, fitted["directions"]) / fitted["scale"].unsqueeze(0)


def few_class_teacher(teacher: nn.Module, classes: list[int]) -> nn.Module:
    """A copy of ``teacher`` whose last linear layer keeps only the rows of ``classes``, in that order:
    the teacher of the few-class problem ``Digits(classes=classes)`` (relabelled 0..len − 1)."""
    teacher = copy.deepcopy(teacher)
    name, head = last_linear(teacher, "teacher")
    if not classes or max(classes) >= head.out_features or min(classes) < 0:
        raise ConfigError(f"classes must be among the teacher's {head.out_features} outputs, got {classes}")
    small = nn.Linear(head.in_features, len(classes), bias=head.bias is not None)
    with torch.no_grad():
        small.weight.copy_(head.weight[classes])
        if head.bias is not None:
            small.bias.copy_(head.bias[classes])
    parent = teacher.get_submodule(name.rsplit(".", 1)[0]) if "." in name else teacher
    setattr(parent, name.rsplit(".", 1)[-1], small)
    return teacher.eval()


class FewClassZooTeacher(nn.Module):
    """A zoo teacher restricted to ``classes`` (:func:`few_class_teacher`), buildable from a CLI config:
    ``teacher: {class_path: nbdistill.families.kd.lelp.FewClassZooTeacher, init_args: {name: digits-mlp, classes: [3, 8]}}``."""

    def __init__(self, name: str = "digits-mlp", classes: list[int] = (3, 8)):
        super().__init__()
        from ... import zoo

        self.net = few_class_teacher(zoo.teacher(name), list(classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SubclassStudent(nn.Module):
    """A copy of the student whose last linear layer is widened to C·S outputs (the trained network
    is ``module.student``, not the one given); calling it gives the C class
    logits :math:`\\log\\sum_k e^{u_{c,k}}`, :meth:`subclass_logits` the C·S subclass logits."""

    def __init__(self, student: nn.Module, num_classes: int, subclasses: int):
        super().__init__()
        student = copy.deepcopy(student)  # the network given stays as it was (the panel builds twice from it)
        name, head = last_linear(student, "student")
        if head.out_features != num_classes:
            raise ConfigError(
                f"the student's last linear layer ({name}) has {head.out_features} outputs; kd.lelp expects one per class ({num_classes})"
            )
        wide = nn.Linear(head.in_features, num_classes * subclasses, bias=head.bias is not None)
        parent = student.get_submodule(name.rsplit(".", 1)[0]) if "." in name else student
        setattr(parent, name.rsplit(".", 1)[-1], wide)
        self.net = student
        self.num_classes = num_classes

    def subclass_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return class_logits_from_subclasses(self.net(x), self.num_classes)


@register(
    "kd.lelp",
    hparams=[
        HParam("subclasses", int, 4, 1, 32, help="pseudo-subclasses S per class"),
        HParam("temperature", float, 4.0, 1.0, 20.0, help="distillation temperature T"),
        HParam(
            "subclass_temperature", float, 1.0, 0.05, 20.0, log=True, help="β: how sharply a class splits over its subclasses"
        ),
        HParam("alpha", float, 0.0, 0.0, 1.0, help="weight of the class CE (the paper uses 0)"),
        HParam("project", bool, True, help="project embeddings on the null space of the teacher's classifier"),
        HParam("rotate", bool, False, help="mix the S principal directions by a random rotation"),
    ],
    views=GAP_VIEWS,
)
class LELP(KDModule):
    """LELP: the student learns pseudo-subclasses cut from the teacher's embeddings by per-class PCA (Loo et al., 2024)."""

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        subclasses: int = 4,
        temperature: float = 4.0,
        subclass_temperature: float = 1.0,
        alpha: float = 0.0,
        project: bool = True,
        rotate: bool = False,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        head_name, head = last_linear(teacher, "teacher")
        rank = head.in_features - (head.out_features if project else 0)
        if subclasses > rank:
            raise ConfigError(
                f"kd.lelp: subclasses={subclasses} exceeds the {rank} directions the teacher's "
                f"{head.in_features}-d embedding leaves{' after projecting out its classifier' if project else ''}"
            )
        super().__init__(SubclassStudent(student, head.out_features, subclasses), teacher, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])
        self.subclasses, self.temperature, self.subclass_temperature = subclasses, temperature, subclass_temperature
        self.alpha, self.project, self.rotate = alpha, project, rotate
        self.num_classes = head.out_features
        self._head_name = head_name
        self.register_buffer(
            "projector", null_space_projector(head.weight.detach().double()).float() if project else torch.eye(head.in_features)
        )
        c, s, d = self.num_classes, subclasses, head.in_features
        self.register_buffer("sub_mean", torch.zeros(c, d))
        self.register_buffer("sub_directions", torch.zeros(c, s, d))
        self.register_buffer("sub_scale", torch.ones(c, s))
        self._fitted = False

    @torch.no_grad()
    def teacher_embeddings_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The input of the teacher's last linear layer and its logits, from one forward pass."""
        seen: list[torch.Tensor] = []
        handle = self.teacher.get_submodule(self._head_name).register_forward_pre_hook(lambda module, args: seen.append(args[0]))
        try:
            logits = self.teacher(x)
        finally:
            handle.remove()
        return seen[-1].flatten(1), logits

    def fit_directions(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Find the per-class directions from the teacher's embeddings of the training inputs ``x``."""
        parts = [self.teacher_embeddings_and_logits(x[i : i + 1024])[0] for i in range(0, len(x), 1024)]
        fitted = fit_subclass_directions(
            torch.cat(parts).double(),
            y,
            self.num_classes,
            self.subclasses,
            self.projector.double() if self.project else None,
            rotation_seed=0 if self.rotate else None,
        )
        self.sub_mean.copy_(fitted["mean"])
        self.sub_directions.copy_(fitted["directions"])
        self.sub_scale.copy_(fitted["scale"])
        self._fitted = True

    def on_fit_start(self) -> None:
        super().on_fit_start()  # the efficiency table
        if self._fitted:
            return
        dm = getattr(self.trainer, "datamodule", None)
        if dm is not None and hasattr(dm, "dataset"):
            x, y = dm.dataset("train").tensors[:2]
        else:
            batches = list(self.trainer.train_dataloader)
            x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
        self.fit_directions(x.to(self.device), y.to(self.device))

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        emb, t_logits = self.teacher_embeddings_and_logits(x)
        fitted = {"mean": self.sub_mean, "directions": self.sub_directions, "scale": self.sub_scale}
        scores = subclass_scores(emb, fitted, self.projector if self.project else None)
        targets = subclass_log_targets(t_logits, scores, self.temperature, self.subclass_temperature)
        return lelp_loss(self.student.subclass_logits(x), targets, y, self.num_classes, self.temperature, self.alpha)
