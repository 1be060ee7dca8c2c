"""AD: Algorithm Distillation ("In-context Reinforcement Learning with Algorithm Distillation", Laskin et
al., ICLR 2023), in the bandit form of "Transformers as Decision Makers: Provable In-Context
Reinforcement Learning via Supervised Pretraining" (Lin, Bai & Mei, ICLR 2024).

A source algorithm learns each task; its learning history ``(a_0, r_0, ..., a_{T-1}, r_{T-1})`` is the
context, and the model imitates the algorithm's next action:

    ``L(theta) = -(1/T) sum_{t=0}^{T-1} log pi_theta(a_t | a_0, r_0, ..., a_{t-1}, r_{t-1})``.

On a bandit every step is an episode, so a learning history across episodes (what AD's context must
span) is the bandit trajectory itself. Lin, Bai & Mei's code (licong-lin/in-context-rl, read for
understanding only: no licence) trains AD and DPT with one model and one loss, switching the target
with a flag (``imit``): the expert's own context action (AD, with LinUCB or Thompson sampling as the
expert) or the optimal action (DPT). The model's regret tracks the expert's, up to how well it fits
(their Theorem 6). Their model scores the prefixes ``0..T-1`` (a token before each transition), as
here; nbdistill averages over tasks and steps where their ``train.py`` sums (``reduction='sum'``): its
loss is theirs divided by ``N T`` (see :mod:`.losses`).
"""

from __future__ import annotations

import torch

from ...core.registry import HParam, register
from .base import POLICY_VIEWS, PolicyModule
from .losses import ad_loss

#: The source algorithms AD can distil.
TEACHERS = ("thompson", "ucb", "linucb", "greedy", "oracle")


@register("policy.ad", views=POLICY_VIEWS, needs_teacher=False)
class AD(PolicyModule):
    """Algorithm Distillation: imitate a bandit algorithm's next action from its own learning history."""

    teacher_algorithm = HParam(str, "thompson", choices=TEACHERS, help="the algorithm whose learning histories are distilled")

    def context_policies(self) -> tuple[str, ...]:
        return (self.teacher_algorithm,)

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        env, played = self.play(batch[0], self.teacher_algorithm)
        logits = self.student_logits_on(env, played)
        actions = played.actions.to(logits.device)
        loss = ad_loss(logits, actions)
        agreement = (logits[:, : actions.shape[1]].argmax(-1) == actions).float().mean()
        return {"loss": loss, "teacher_agreement": agreement}
