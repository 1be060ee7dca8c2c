"""The math of in-context policy distillation, as pure functions.

DPT ("Supervised Pretraining Can Learn In-Context Reinforcement Learning", Lee et al. 2023) and AD
("In-context Reinforcement Learning with Algorithm Distillation", Laskin et al. 2022) train the same
causal model with the same loss and differ only in the target, as "Transformers as Decision Makers"
(Lin, Bai & Mei 2023) puts it (its code switches them with one flag, ``imit``):

- DPT: ``L = -(1/(T+1)) sum_{j=0}^{T} log pi_theta(a* | D_{<j})``, the optimal action at every prefix;
- AD: ``L = -(1/T) sum_{j=0}^{T-1} log pi_theta(a_j | D_{<j})``, the teacher algorithm's own next action.

nbdistill averages over prefixes and tasks where the authors sum: both ``train.py`` use
``CrossEntropyLoss(reduction='sum')`` over the batch and the scored prefixes. A constant factor that
Adam's scale invariance makes immaterial to the updates, and that keeps the loss readable as a
per-decision cross-entropy (``log K`` for a uniform policy) whatever the context and batch sizes.
The scored prefixes (read in the authors' code; checked in float64 in
``tests/families/policy/test_policy_dpt_ad.py``):

- DPT's ``train.py`` scores ``preds[:, 1:]``, the prefixes of ``1..T`` transitions, not the empty one,
  although its online controller acts first from the empty prefix; nbdistill scores all ``T + 1``
  (``N (T + 1) L = sum_{1..T} + the empty prefix's term``, with ``sum_{1..T}`` their loss);
- Lin, Bai & Mei's ``train.py`` scores the ``T`` prefixes before each transition, ``0..T-1``, for both
  targets: AD here is exactly theirs divided by ``N T``; their DPT target (``imit == 'true'``) leaves out
  the full context's prefix, which nbdistill keeps.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def prefix_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``logits`` ``[N, P, K]`` (one row a prefix) against ``targets``: ``[N]`` (the same
    action at every prefix: DPT's ``a*``) or ``[N, P]`` (one action a prefix: AD's next actions)."""
    n, p, k = logits.shape
    if targets.dim() == 1:
        targets = targets[:, None].expand(n, p)
    return F.cross_entropy(logits.reshape(n * p, k), targets.reshape(n * p))


def dpt_loss(logits: torch.Tensor, optimal: torch.Tensor) -> torch.Tensor:
    """DPT: every prefix's logits ``[N, T + 1, K]`` against the task's optimal action ``[N]``."""
    return prefix_cross_entropy(logits, optimal)


def ad_loss(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """AD: the logits after ``j`` transitions (``[N, T + 1, K]``, the last unused) against the teacher's action ``a_j`` (``[N, T]``)."""
    return prefix_cross_entropy(logits[:, : actions.shape[1]], actions)
