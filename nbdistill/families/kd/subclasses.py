r"""LELP's pseudo-subclasses: per-class PCA directions of a teacher's embeddings, a student widened to
C·S outputs, and few-class teachers cut from a zoo teacher ("Linear Projections of Teacher Embeddings
for Few-Class Distillation", Loo et al., arXiv 2409.20449; the steps: :mod:`.lelp`)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ...core.errors import ConfigError
from ...models.layers import last_linear
from .losses import class_logits_from_subclasses


def classifier(model: nn.Module, who: str) -> tuple[str, nn.Linear]:
    """The last ``nn.Linear`` registered in ``model`` (its classifier, for the usual networks) and its name."""
    return last_linear(model, f"kd.lelp needs a {who} whose last layer is an nn.Linear (its classifier); found none")


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


def few_class_teacher(teacher: nn.Module, classes: list[int]) -> nn.Module:
    """A copy of ``teacher`` whose last linear layer keeps only the rows of ``classes``, in that order:
    the teacher of the few-class problem ``Digits(classes=classes)`` (relabelled 0..len − 1)."""
    teacher = copy.deepcopy(teacher)
    name, head = classifier(teacher, "teacher")
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
    ``teacher: {class_path: nbdistill.families.kd.subclasses.FewClassZooTeacher, init_args: {name: digits-mlp, classes: [3, 8]}}``."""

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
        name, head = classifier(student, "student")
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
