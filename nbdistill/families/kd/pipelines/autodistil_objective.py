r"""AutoDistil's task-agnostic distillation objective, for MLPs (``kd.autodistil``).

AutoDistil (Xu et al., *AutoDistil: Few-shot Task-agnostic Neural Architecture Search for Distilling
Large Language Models*, NeurIPS 2022) trains every sampled sub-network of a super-LM with no labels:
MiniLM's self-attention *relation* distillation on the last layer (the query–query, key–key and
value–value relations, which have the same shape for any student width), plus a soft cross-entropy
on the teacher's logits (``depth_lambda1 · logit_loss + depth_lambda3 · att_loss`` in the official
``run_wiki_plus_book_NoAssist_RndSampl.py``).

An MLP on digits has no tokens to relate, so the relation here is between the *examples of a
batch*: for last-hidden activations :math:`H \in \mathbb{R}^{B \times d}`,

.. math::
    R(H)_{ij} = \frac{h_i \cdot h_j}{\sqrt{d}}, \quad j \ne i, \qquad
    \mathcal{L}_{rel} = \frac{1}{B} \sum_i \mathrm{KL}\big(\mathrm{softmax}(R(H_t)_{i\cdot}) \,\|\,
    \mathrm{softmax}(R(H_s)_{i\cdot})\big),

MiniLM's scaled dot-product relation and its row-wise KL, with examples in place of tokens. Like
MiniLM's, it compares students of any width with a teacher of any width (a ``B × B`` matrix each).
A sample's relation to itself (its squared norm) is left out: it would dominate every row's
softmax. The logit term is :math:`\mathrm{KL}(p_t^T \| p_s^T)`, the soft cross-entropy less the
teacher's entropy (a constant), so it has the same gradient at :math:`T = 1`. The official code's
last-hidden-state MSE (``depth_lambda2 · rep_loss``) needs equal widths and is not used.
"""

from __future__ import annotations

import math

import torch

from ....core.divergence import kl_divergence


def relation_logits(hidden: torch.Tensor) -> torch.Tensor:
    r"""The off-diagonal scaled dot products :math:`h_i \cdot h_j / \sqrt{d}`, shape ``[B, B − 1]`` (row ``i``
    lists ``j ≠ i`` in order)."""
    hidden = hidden.flatten(1)
    b, d = hidden.shape
    scores = hidden @ hidden.T / math.sqrt(d)
    off_diagonal = ~torch.eye(b, dtype=torch.bool, device=hidden.device)
    return scores[off_diagonal].view(b, b - 1)


def relation_kl(teacher_hidden: torch.Tensor, student_hidden: torch.Tensor) -> torch.Tensor:
    r"""Mean over the batch of :math:`\mathrm{KL}(\mathrm{softmax}(R(H_t)_{i\cdot}) \| \mathrm{softmax}(R(H_s)_{i\cdot}))`
    (see the module's docstring); 0 for a batch of one example, which has no relation."""
    if teacher_hidden.shape[0] < 2:
        return student_hidden.sum() * 0.0
    return kl_divergence(relation_logits(teacher_hidden), relation_logits(student_hidden), 1.0).mean()


def autodistil_objective(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    student_hidden: torch.Tensor,
    teacher_hidden: torch.Tensor,
    temperature: float,
    relation_weight: float,
) -> dict[str, torch.Tensor]:
    r"""One sub-network's task-agnostic loss :math:`T^2\,\mathrm{KL}(p_t^T \| p_s^T) + \lambda\,\mathcal{L}_{rel}`
    (no labels); returns ``{"logit_kl", "relation", "loss"}``."""
    logit_kl = kl_divergence(teacher_logits.detach(), student_logits, temperature).mean() * temperature**2
    relation = relation_kl(teacher_hidden.detach(), student_hidden)
    return {"logit_kl": logit_kl, "relation": relation, "loss": logit_kl + relation_weight * relation}
