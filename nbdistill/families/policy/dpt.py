"""DPT: the Decision-Pretrained Transformer ("Supervised Pretraining Can Learn In-Context Reinforcement
Learning", Lee, Xie, Pacchiano, Chandak, Finn, Nachum & Brunskill, NeurIPS 2023).

Pretraining: sample a task ``M``, an in-context dataset ``D`` of ``T`` transitions collected by a
roll-in policy on it (DPT's bandit roll-in draws a random action distribution ``p ~ Dir(1)`` per task,
optionally mixed toward the optimal arm, ``cov``), and label it with the optimal action ``a*``; minimise

    ``L(theta) = -(1/(T+1)) sum_{j=0}^{T} log pi_theta(a* | D_{<j})``   (every prefix of the context).

Deployed online, the model acts from its own history and behaves like posterior sampling (the paper's
Theorem 1). Compared with the authors' code (jon--lee/decision-pretrained-transformer, read for
understanding only: it has no licence): the same roll-in and label; nbdistill averages over tasks
and prefixes where ``train.py`` sums, and also scores the empty prefix (``train.py`` keeps
``preds[:, 1:]``, yet the online controller's first action comes from that empty prefix; see
:mod:`.losses`); it embeds a bandit step as
``[onehot(a), r]`` (their ``concat(state, action, next state, reward)`` with empty states), and plays a
fresh in-context dataset every step on the data set's tasks instead of one stored dataset a task.
"""

from __future__ import annotations

import torch

from ...core.registry import HParam, register
from .base import POLICY_VIEWS, PolicyModule
from .losses import dpt_loss

#: How DPT's in-context datasets are collected: its Dirichlet roll-in or a bandit algorithm (Lin, Bai & Mei use LinUCB's).
CONTEXT_POLICIES = ("dirichlet", "random", "ucb", "thompson", "greedy", "linucb")


@register("policy.dpt", views=POLICY_VIEWS, needs_teacher=False)
class DPT(PolicyModule):
    """Decision-Pretrained Transformer: predict the task's optimal action from an in-context dataset, at every prefix."""

    context_policy = HParam(str, "dirichlet", choices=CONTEXT_POLICIES, help="how the in-context datasets are collected")

    def context_policies(self) -> tuple[str, ...]:
        return (self.context_policy,)

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        x, optimal = batch[0], batch[1]
        env, played = self.play(x, self.context_policy)
        logits = self.student_logits_on(env, played)
        loss = dpt_loss(logits, optimal.to(logits.device))
        return {"loss": loss, "final_accuracy": (logits[:, -1].argmax(-1) == optimal.to(logits.device)).float().mean()}
