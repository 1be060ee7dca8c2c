"""``dataset.set``: smooth expert trajectories, the components of AST (Shen, Yang & Lam, arXiv 2310.10541)."""

from __future__ import annotations

import copy
import warnings

import torch

from ...core.registry import HParam, register
from .experts import ExpertRecipe
from .nets import embed
from .schedules import ast_balance_weight
from .trajectory_base import VIEWS, TrajectoryMatching


@register("dataset.set", views=VIEWS, needs_teacher=False)
class SET(TrajectoryMatching):
    r"""SET — smooth expert trajectories, the components of AST ("AST: Effective Dataset
    Distillation through Alignment with Smooth and High-Quality Expert Trajectories", Shen, Yang &
    Lam, arXiv 2310.10541; shenjiyuan123/AST-Alignment-with-Smooth-Expert).

    - Smooth experts: SGD with momentum 0.9 and weight decay 1e-3; ``clip_loss`` scales the CE by
      0.5, 0.55, …, 0.95 over the first 10 epochs (:func:`.schedules.ast_clip_factor`);
      ``gradient_penalty`` λ adds :math:`\lambda\,\mathrm{mean}_i(\|\nabla_{x_i}\ell_i\|_2 - 1)^2`
      (:func:`.losses.gradient_penalty`). *Choice:* the paper's penalty is WGAN-GP's; we take the
      gradient of each sample's cross-entropy with respect to its input. The expert lr is
      ``lr_teacher × (1 − 0.9)`` so the momentum expert takes steps of the same size as MTT's;
      the learned inner lr α starts there too.
    - ``init="representative"``: per class, k-means (k = ipc) of the real images' embeddings under
      the first expert's last epoch, and the real image nearest each centre. *Choice:* the paper
      selects representative real images with a trained expert; the exact rule of the code was
      not checked, this is the k-means reading.
    - ``balance_loss``: the inner CE weighed by :func:`.schedules.ast_balance_weight` of the start epoch.
    - ``intermediate_matching``: for j = 1 … M−1, the student after ``round(j·N/M)`` steps is also
      matched to :math:`\theta^*_{t+j}`, each term normalised by its own :math:`\|\theta^*_t - \theta^*_{t+j}\|^2`,
      weight 1. *Choice:* the step ↔ epoch alignment j·N/M is ours.
    - ``weight_perturb`` α: each 4-D convolution kernel W of the start parameters becomes
      :math:`W + \alpha\, (d/\|d\|_F) \odot W`, d standard Gaussian of W's shape; every other tensor
      (biases, norm scales, linear layers) is left as it is. This is the code's ``weightPerturb``
      (``distill.py``: ``len(i.shape) == 4``, no mask — its dropout line is commented out), which
      ``distill.py`` calls with α = 1, the default here. A student without 4-D kernels (an MLP) has
      nothing to perturb: a warning says so once, at construction. The normaliser of the matching
      loss is taken from the perturbed start, as in the code.
    - Inner steps with momentum μ (``inner_momentum``): :math:`b_{n+1} = \mu b_n + g_n`.

    With every switch off and μ = 0, SET is MTT. All three gradient modes handle the momentum and
    the intermediate targets exactly (:mod:`.unroll`).
    """

    init = HParam(str, "representative", choices=("representative", "real", "noise"), help="how the synthetic images start")
    inner_momentum = HParam(float, 0.9, 0.0, 0.99, help="momentum μ of the inner SGD steps")
    clip_loss = HParam(bool, True, help="experts: CE × 0.5, 0.55, … over their first 10 epochs")
    gradient_penalty = HParam(float, 2.0, 0.0, 100.0, help="experts: weight λ of the input-gradient penalty")
    balance_loss = HParam(bool, True, help="weigh the inner loss by the start epoch (log₅ rule)")
    intermediate_matching = HParam(bool, True, help="also match the expert at the intermediate epochs")
    weight_perturb = HParam(
        float, 1.0, 0.0, 2.0, help="scale α of the start-parameter perturbation of the 4-D conv kernels (0: off)"
    )

    def build_parts(self) -> None:
        super().build_parts()
        if self.weight_perturb and not any(len(shape) == 4 for shape in self.flat.shapes):
            warnings.warn(
                f"dataset.set: weight_perturb={self.weight_perturb} perturbs only 4-D convolution kernels, as AST's code "
                f"does, and {type(self.student).__name__} has none: nothing is perturbed (set weight_perturb=0 to silence this)",
                UserWarning,
                stacklevel=4,
            )

    def expert_recipe(self) -> ExpertRecipe:
        return ExpertRecipe(
            epochs=self.expert_train_epochs,
            lr=self.lr_teacher * 0.1,
            momentum=0.9,
            weight_decay=1e-3,
            augment=self.augment,
            clip_loss=self.clip_loss,
            gradient_penalty=self.gradient_penalty,
        )

    def initial_set(self, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if self.init != "representative":
            return super().initial_set(g)
        from sklearn.cluster import KMeans

        final = self.buffer.trajectory(0)[-1]
        net = self.flat.load(copy.deepcopy(self.student), final)
        parts = []
        for c in range(self.num_classes):
            x = self.real.of_class(c)
            with torch.no_grad():
                features = embed(net, x).double().numpy()
            km = KMeans(n_clusters=self.ipc, n_init=3, random_state=int(torch.randint(2**31 - 1, (1,), generator=g))).fit(
                features
            )
            chosen = [int(((features - centre) ** 2).sum(1).argmin()) for centre in km.cluster_centers_]
            parts.append(x[chosen])
        return torch.cat(parts), torch.arange(self.num_classes).repeat_interleave(self.ipc)

    def inner_step_momentum(self) -> float:
        return self.inner_momentum

    def inner_weight(self, start: int) -> float:
        return ast_balance_weight(start, self.max_start_epoch) if self.balance_loss else 1.0

    def targets(self, trajectory: torch.Tensor, start: int) -> dict[int, torch.Tensor]:
        targets = super().targets(trajectory, start)
        if self.intermediate_matching:
            for j in range(1, self.expert_epochs):
                targets[max(1, round(j * self.syn_steps / self.expert_epochs))] = trajectory[start + j]
        return targets

    def start_parameters(self, theta: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        r"""AST's ``weightPerturb``: :math:`W + \alpha (d/\|d\|_F) \odot W` for each 4-D kernel W, the rest unchanged."""
        if not self.weight_perturb:
            return theta
        parts = []
        for part, shape in zip(theta.split(self.flat.numels), self.flat.shapes):
            if len(shape) == 4:
                d = torch.randn(part.shape, generator=g, dtype=part.dtype).to(part.device)
                part = part + self.weight_perturb * d / d.norm().clamp_min(1e-12) * part
            parts.append(part)
        return torch.cat(parts)
