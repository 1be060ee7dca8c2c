r"""``kd.lelp``: linear projections of teacher embeddings into pseudo-subclasses, for few-class problems.

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

With S = 1 the split is trivial and LELP is Hinton KD exactly. The directions and the widened
student: :mod:`.subclasses`; the loss: :func:`.losses.lelp_loss`.
"""

from __future__ import annotations

from typing import Any

import torch

from ...core.errors import ConfigError
from ...core.registry import HParam, register
from . import losses
from .base import GAP_VIEWS, KDModule
from .subclasses import SubclassStudent, classifier, fit_subclass_directions, null_space_projector


@register("kd.lelp", views=GAP_VIEWS)
class LELP(KDModule):
    """LELP: the student learns pseudo-subclasses cut from the teacher's embeddings by per-class PCA (Loo et al., 2024).

    The student given is copied with its last linear layer widened to C·S outputs
    (:class:`.subclasses.SubclassStudent`); the directions are fitted on the training split when
    fitting starts.
    """

    subclasses = HParam(int, 4, 1, 32, help="pseudo-subclasses S per class")
    temperature = HParam(float, 4.0, 1.0, 20.0, help="distillation temperature T")
    subclass_temperature = HParam(float, 1.0, 0.05, 20.0, log=True, help="β: how sharply a class splits over its subclasses")
    alpha = HParam(float, 0.0, 0.0, 1.0, help="weight of the class CE (the paper uses 0)")
    project = HParam(bool, True, help="project embeddings on the null space of the teacher's classifier")
    rotate = HParam(bool, False, help="mix the S principal directions by a random rotation")

    def build_parts(self) -> None:
        super().build_parts()
        head_name, head = classifier(self.teacher, "teacher")
        rank = head.in_features - (head.out_features if self.project else 0)
        if self.subclasses > rank:
            raise ConfigError(
                f"kd.lelp: subclasses={self.subclasses} exceeds the {rank} directions the teacher's "
                f"{head.in_features}-d embedding leaves{' after projecting out its classifier' if self.project else ''}"
            )
        self.student = SubclassStudent(self.student, head.out_features, self.subclasses)
        self.num_classes = head.out_features
        self._head_name = head_name
        projector = null_space_projector(head.weight.detach().double()).float() if self.project else torch.eye(head.in_features)
        self.register_buffer("projector", projector)
        c, s, d = self.num_classes, self.subclasses, head.in_features
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
        scores = losses.subclass_scores(emb, fitted, self.projector if self.project else None)
        targets = losses.subclass_log_targets(t_logits, scores, self.temperature, self.subclass_temperature)
        return losses.lelp_loss(self.student.subclass_logits(x), targets, y, self.num_classes, self.temperature, self.alpha)
