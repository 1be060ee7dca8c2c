r"""Losses on logits alone: Hinton KD and the methods that reshape its target or its divergence (the
formula and the paper in each docstring). Every KL is :func:`nbdistill.core.divergence.kl_divergence`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ....core.divergence import kl_divergence


def hinton_kd(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 4.0,
    alpha: float = 0.1,
) -> dict[str, torch.Tensor]:
    r"""Hinton knowledge distillation ("Distilling the Knowledge in a Neural Network",
    Hinton, Vinyals & Dean, 2015):

    .. math::
        \mathcal{L} = \alpha\,\mathrm{CE}(z_s, y) + (1-\alpha)\,T^2\,
        \frac{1}{B}\sum_{i=1}^{B} \mathrm{KL}\big(p_{t,i}^T \,\|\, p_{s,i}^T\big),
        \qquad p^T = \mathrm{softmax}(z / T).

    The KL is summed over classes and averaged over the batch ("batchmean"); the :math:`T^2`
    keeps the soft term's gradient on the scale of the hard term's as T changes (paper §2).

    Returns the terms ``ce``, ``kd`` (:math:`T^2`·KL, batchmean) and the total ``loss``.
    """
    ce = F.cross_entropy(student_logits, labels)
    kd = temperature**2 * kl_divergence(teacher_logits, student_logits, temperature).mean()
    return {"loss": alpha * ce + (1.0 - alpha) * kd, "ce": ce, "kd": kd}


def cross_entropy(student_logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Plain cross-entropy on the labels: the student trained alone, the reference for every gap."""
    ce = F.cross_entropy(student_logits, labels)
    return {"loss": ce, "ce": ce}


def signal_kd(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 4.0,
    soft_weight: float = 0.7,
) -> dict[str, torch.Tensor]:
    r"""Signal KD of ClST ("ClST: A Convolutional Transformer Framework for Automatic Modulation
    Recognition by Knowledge Distillation", Hou et al., IEEE TWC 2024):
    :math:`\lambda\,T^2\,\mathrm{KL}(p_t^T\|p_s^T) + (1-\lambda)\,\mathrm{CE}(z_s, y)` (batchmean KL),
    λ = ``soft_weight``: :func:`hinton_kd` with α = 1 − λ.

    Returns ``soft`` (:math:`T^2`·KL), ``ce`` and the total ``loss``.
    """
    terms = hinton_kd(student_logits, teacher_logits, labels, temperature, alpha=1.0 - soft_weight)
    return {"loss": terms["loss"], "soft": terms["kd"], "ce": terms["ce"]}


def _non_target(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The logits of the non-target classes only, ``[B, C - 1]`` (each row without its label's column)."""
    keep = ~F.one_hot(labels, logits.shape[-1]).bool()
    return logits[keep].view(logits.shape[0], -1)


def dkd_parts(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float = 4.0
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-sample TCKD and NCKD of Decoupled KD, both with the :math:`T^2` factor, shapes ``[B]``.

    With :math:`p = \mathrm{softmax}(z/T)`, the binary target/non-target split
    :math:`b = [p_y,\, 1 - p_y]` and :math:`\hat p` the softmax over the non-target classes only:

    .. math::
        \mathrm{TCKD} = T^2\,\mathrm{KL}(b_t \| b_s), \qquad
        \mathrm{NCKD} = T^2\,\mathrm{KL}(\hat p_t \| \hat p_s).

    Both are :func:`~nbdistill.core.divergence.kl_divergence` at T = 1 of logits already divided by
    T: :math:`b` is the softmax of the two logits :math:`[z_y,\ \log\sum_{c \ne y} e^{z_c}]` (no
    cancellation), :math:`\hat p` the softmax of the :math:`C - 1` non-target logits, the target
    left out (the official code subtracts 1000 from it instead), so that the chain rule of KL holds
    exactly: :math:`T^2\,\mathrm{KL}(p_t \| p_s) = \mathrm{TCKD} + (1 - p_{t,y})\,\mathrm{NCKD}`.
    """
    zs, zt = student_logits / temperature, teacher_logits / temperature
    idx = labels.unsqueeze(-1)

    def binary(z: torch.Tensor) -> torch.Tensor:  # logits of [p_y, 1 - p_y]
        return torch.cat([z.gather(-1, idx), torch.logsumexp(z.scatter(-1, idx, float("-inf")), -1, keepdim=True)], -1)

    tckd = kl_divergence(binary(zt), binary(zs))
    nckd = kl_divergence(_non_target(zt, labels), _non_target(zs, labels))
    return temperature**2 * tckd, temperature**2 * nckd


def decoupled_kd(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 4.0,
    alpha: float = 1.0,
    beta: float | torch.Tensor = 8.0,
    ce_weight: float = 1.0,
    warmup_factor: float = 1.0,
) -> dict[str, torch.Tensor]:
    r"""Decoupled knowledge distillation ("Decoupled Knowledge Distillation", Zhao, Cui, Song,
    Qiu & Liang, CVPR 2022):

    .. math::
        \mathcal{L} = w_{\mathrm{CE}}\,\mathrm{CE}(z_s, y) + \omega\,
        \frac{1}{B}\sum_{i=1}^{B} \big(\alpha\,\mathrm{TCKD}_i + \beta\,\mathrm{NCKD}_i\big),

    TCKD and NCKD as in :func:`dkd_parts`, :math:`\omega = \min(\text{epoch}/\text{warmup}, 1)` the
    warm-up factor (given here as ``warmup_factor``). ``beta`` may be a per-sample tensor ``[B]``.

    Returns ``loss``, ``ce`` and the batch means of ``tckd`` and ``nckd`` (unweighted).
    """
    tckd, nckd = dkd_parts(student_logits, teacher_logits, labels, temperature)
    ce = F.cross_entropy(student_logits, labels)
    dkd = (alpha * tckd + beta * nckd).mean()
    return {"loss": ce_weight * ce + warmup_factor * dkd, "ce": ce, "tckd": tckd.mean(), "nckd": nckd.mean()}


def teacher_optimal_order(teacher_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """PLD's teacher-optimal permutation ``[B, C]``: the true label first, then the other classes by
    descending teacher logit."""
    key = teacher_logits.scatter(-1, labels.unsqueeze(-1), float("inf"))
    return key.argsort(dim=-1, descending=True, stable=True)


def weighted_plackett_luce_nll(scores: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    r"""Per-sample weighted negative Plackett–Luce log-likelihood of the order the columns are in:

    .. math::
        \ell(s, w) = \sum_{k=1}^{C} w_k \Big[ -s_k + \log \sum_{l=k}^{C} e^{s_l} \Big],

    ``scores`` ``[B, C]`` already in the ranked order (rank 1 first). The k-th bracket is minus the
    log-probability that class k is chosen among those not yet ranked (weighted ListMLE).
    """
    suffix_lse = torch.logcumsumexp(scores.flip(-1), dim=-1).flip(-1)
    return (weights * (suffix_lse - scores)).sum(-1)


def plackett_luce_distillation(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float = 4.0
) -> dict[str, torch.Tensor]:
    r"""Plackett–Luce distillation ("PLD: A Choice-Theoretic List-Wise Knowledge Distillation",
    Bassam, Zhu & Bian, 2025, arXiv 2506.12542):

    .. math::
        \mathcal{L}_{\mathrm{PLD}} = \frac{1}{B}\sum_{i=1}^{B} \sum_{k=1}^{C} q^{\tau}_{\pi^*_k}
        \Big[ -s_{\pi^*_k} + \log \sum_{l=k}^{C} e^{s_{\pi^*_l}} \Big],

    :math:`\pi^*` the teacher-optimal permutation (:func:`teacher_optimal_order`),
    :math:`q^\tau = \mathrm{softmax}(z_t/\tau)` the teacher's confidences and :math:`s` the
    student's logits. It replaces CE + KD: no separate CE term, no mixing weight.

    The temperature :math:`\tau` softens only the teacher's weights; the student's logits enter at
    :math:`T = 1`, so that the weights :math:`(1, 0, \dots, 0)` give exactly :math:`\mathrm{CE}(s, y)`.
    Checked against the paper's text: §1 imposes the ranking "using the unsoftened Plackett-Luce
    likelihood", §4.2 sets the weight at rank k to the teacher's probability
    :math:`q^{\tau}_{\pi^*_k}` and states the CE reduction, and its appendix code softmaxes only the
    teacher's permuted logits by the temperature. Its CIFAR-100 setting is τ = 4 ("same as DIST",
    our default); on ImageNet its sweep was best at τ = 1.
    """
    order = teacher_optimal_order(teacher_logits, labels)
    scores = student_logits.gather(-1, order)
    weights = F.softmax(teacher_logits / temperature, dim=-1).gather(-1, order)
    return {"loss": weighted_plackett_luce_nll(scores, weights).mean()}


def ofa_target_weights(teacher_probs: torch.Tensor, labels: torch.Tensor, eps: float) -> torch.Tensor:
    r"""OFA's enhanced target :math:`w_c = (p_{t,c} + \mathbb{1}[c=y])^{\epsilon} - \mathbb{1}[c=y]`
    (non-negative for :math:`\epsilon > 0`; :math:`\epsilon = 1` gives :math:`p_t` back)."""
    onehot = F.one_hot(labels, teacher_probs.shape[-1]).to(teacher_probs.dtype)
    return (teacher_probs + onehot) ** eps - onehot


def ofa_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, eps: float = 1.5, temperature: float = 1.0
) -> torch.Tensor:
    r"""One-for-All's distillation loss ("One-for-All: Bridge the Gap Between Heterogeneous
    Architectures in Knowledge Distillation", Hao et al., NeurIPS 2023):

    .. math::
        \mathcal{L}_{\mathrm{OFA}} = -\frac{1}{B}\sum_{i=1}^{B}\sum_{c=1}^{C}
        \Big[(p_{t,c} + \mathbb{1}[c=y])^{\epsilon} - \mathbb{1}[c=y]\Big] \log p_{s,c},
        \qquad p = \mathrm{softmax}(z/T).

    :math:`\epsilon > 1` adaptively enhances the target class: its weight
    :math:`(p_{t,y}+1)^\epsilon - 1` grows faster than the others' :math:`p_{t,c}^\epsilon`, most
    where the teacher is unsure.
    """
    weights = ofa_target_weights(F.softmax(teacher_logits / temperature, dim=-1), labels, eps)
    return -(weights * F.log_softmax(student_logits / temperature, dim=-1)).sum(-1).mean()


def one_for_all_kd(
    student_logits: torch.Tensor,
    stage_logits: list[torch.Tensor],
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    eps: float = 1.5,
    temperature: float = 1.0,
    gt_weight: float = 1.0,
    kd_weight: float = 1.0,
    ofa_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    r"""OFA-KD's total: :math:`w_{gt}\,\mathrm{CE}(z_s, y) + w_{kd}\,\mathcal{L}_{\mathrm{OFA}}(z_s)
    + w_{ofa}\sum_{k}\mathcal{L}_{\mathrm{OFA}}(z_k)`, where :math:`z_k` are the logits that the
    projector heads make from intermediate student stages (each against the teacher's final logits).
    """
    ce = F.cross_entropy(student_logits, labels)
    kd = ofa_loss(student_logits, teacher_logits, labels, eps, temperature)
    stages = sum((ofa_loss(z, teacher_logits, labels, eps, temperature) for z in stage_logits), torch.zeros_like(ce))
    return {"loss": gt_weight * ce + kd_weight * kd + ofa_weight * stages, "ce": ce, "ofa": kd, "ofa_stages": stages}


def switch_distillation(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, teacher_weight: float = 0.25
) -> dict[str, torch.Tensor]:
    r"""Distillation of a sparse mixture-of-experts teacher into a dense student as in "Switch
    Transformers: Scaling to Trillion Parameter Models with Simple and Efficient Sparsity" (Fedus,
    Zoph & Shazeer, JMLR 2022, §4.2): cross-entropy against a mixture of the teacher's probabilities
    and the one-hot label,

    .. math::
        \mathcal{L} = -\frac1B \sum_{i=1}^{B} \sum_{c} \big[\lambda\, p_{t,c} + (1-\lambda)\,\mathbb{1}[c=y]\big]
        \log p_{s,c} = (1-\lambda)\,\mathrm{CE}(z_s, y) + \lambda\,\mathrm{CE}(p_t, p_s),

    at temperature 1, with the paper's :math:`\lambda = 0.25` ("0.25 teacher probability, 0.75
    ground truth"). It equals Hinton KD at T = 1 with α = 1 − λ plus λ times the teacher's entropy,
    a constant.

    Returns ``loss``, ``ce`` (hard labels) and ``soft_ce`` (against the teacher's probabilities).
    """
    log_ps = F.log_softmax(student_logits, dim=-1)
    ce = F.nll_loss(log_ps, labels)
    soft_ce = -(F.softmax(teacher_logits, dim=-1) * log_ps).sum(-1).mean()
    return {"loss": (1 - teacher_weight) * ce + teacher_weight * soft_ce, "ce": ce, "soft_ce": soft_ce}
