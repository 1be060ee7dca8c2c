r"""``score.lora``: few-step distillation of the teacher into LoRA adapters on a copy of itself (LCM-LoRA).

Luo et al., "LCM-LoRA: A Universal Stable-Diffusion Acceleration Module" (arXiv 2311.05556, 2023) distil a
diffusion teacher into *low-rank adapters* (Hu et al. 2021, :mod:`.lora_layers`) on the teacher's own
network: the student is ``W₀ + (α/r)·B A`` on each linear layer, the base weights ``W₀`` frozen, ``B = 0`` at
the start so the student starts as the teacher; only ``r·(in + out)`` parameters a layer train (and need
optimizer state), and the adapter merges back into a plain network of the teacher's architecture
(:meth:`LoRADistillation.merged_student`). LCM-LoRA trains the adapters with latent consistency
distillation; here the objective is an hparam: ``"progressive"`` (Salimans & Ho 2022, the rounds and
target of :mod:`.progressive` / :mod:`.losses.progressive`) or ``"consistency"`` (Song et al. 2023,
:mod:`.consistency` / :mod:`.losses.consistency`, with its EMA target network and multistep sampler).

The student network is built here, not given: a deep copy of the teacher's network (a
:class:`~nbdistill.zoo.ZooTeacher`'s ``.net``, else the teacher itself) with LoRA on every ``nn.Linear``.
The ``student`` argument every method takes is therefore **ignored** (any denoiser, e.g. the contract's
small ``MLPDenoiser``, is accepted and replaced); a teacher without linear layers (the exact mixture
teacher) is refused. The run's checkpoint keeps the merged network as its student: ``run.student(net)`` with ``net`` of
the teacher's architecture gives the distilled network. Where nbdistill differs from LCM-LoRA: no latent space, no guidance-scale
conditioning, the VP-time consistency function of :mod:`.consistency` instead of LCM's skip scalings.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ...core.errors import ConfigError
from ...core.registry import HParam, register
from ...zoo import ZooTeacher
from .base import SCORE_VIEWS, ScoreModule
from .consistency import ConsistencyDistillation
from .lora_layers import add_lora, merge_lora
from .progressive import ProgressiveDistillation

#: The distillation objectives the adapters can be trained with.
OBJECTIVES = ("progressive", "consistency")


def lora_copy(teacher: nn.Module | None, rank: int, alpha: float) -> nn.Module:
    """A deep copy of ``teacher``'s network (a :class:`~nbdistill.zoo.ZooTeacher`'s ``.net``, else ``teacher``) with LoRA
    adapters of rank ``rank`` and scale ``alpha/rank`` on each ``nn.Linear``; only the adapters train."""
    if teacher is None:
        raise ConfigError(
            "score.lora adapts a copy of the teacher's network: pass teacher=... (e.g. nd.zoo.teacher('moons-denoiser'))"
        )
    source = teacher.net if isinstance(teacher, ZooTeacher) else teacher
    network = copy.deepcopy(source)
    try:
        return add_lora(network, rank, alpha)
    except ConfigError as exc:
        raise ConfigError(f"score.lora cannot adapt the teacher: {exc}; give a teacher network with linear layers") from None


@register("score.lora", views=SCORE_VIEWS)
class LoRADistillation(ProgressiveDistillation, ConsistencyDistillation):
    """LoRA distillation: the teacher plus trainable low-rank adapters, distilled to few steps with a progressive or consistency objective (LCM-LoRA, Luo et al., 2023).

    The student is built from the teacher (the given ``student`` is ignored); ``rank`` and ``lora_alpha`` set
    the adapters, ``objective`` the loss; the objective's own hyper-parameters (``teacher_steps``, ``steps``,
    ``round_steps`` for progressive; ``solver``, ``ema_decay``, ``distance`` for consistency) apply.
    """

    rank = HParam(int, 4, 1, 512, help="r: rank of each LoRA adapter B A")
    lora_alpha = HParam(float, 4.0, 1e-3, 1024.0, log=True, help="α: the adapters' update is scaled by α / r")
    objective = HParam(str, "progressive", choices=OBJECTIVES, help="the distillation loss the adapters are trained with")
    teacher_steps = HParam(
        int, 16, 2, 4096, help="the teacher's DDIM steps (progressive: the first round's; consistency: its grid N)"
    )
    init = None  # the student always starts as the teacher (B = 0)

    def build_parts(self) -> None:
        #: the teacher's network with LoRA adapters (replaces the given student)
        self.student = lora_copy(self.teacher, self.rank, self.lora_alpha)
        super().build_parts()  # the progressive rounds, then the consistency target network
        if self.objective != "consistency":
            del self.target

    @property
    def _objective(self) -> type[ScoreModule]:
        return ConsistencyDistillation if self.objective == "consistency" else ProgressiveDistillation

    @property
    def sampling_steps(self) -> int:
        return self._objective.sampling_steps.fget(self)

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        return self._objective.loss_terms(self, batch)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self._objective.on_train_batch_end(self, outputs, batch, batch_idx)

    @torch.no_grad()
    def draw_samples(self, n: int, generator: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        if self.objective == "consistency":
            return ConsistencyDistillation.draw_samples(self, n, generator, shape, dtype)
        return ScoreModule.draw_samples(self, n, generator, shape, dtype)

    def merged_student(self) -> nn.Module:
        """The student with its adapters merged, ``W = W₀ + (α/r)·B A``: the teacher's architecture, no LoRA."""
        return merge_lora(self.student)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Besides the objective's state, the merged network's weights as the run's student: ``run.student(net)``
        with ``net`` of the teacher's architecture (e.g. ``MLPDenoiser(2, 128, 4)``) loads the distilled network."""
        super().on_save_checkpoint(checkpoint)
        checkpoint["student_export"] = {k: v.detach().cpu() for k, v in self.merged_student().state_dict().items()}
