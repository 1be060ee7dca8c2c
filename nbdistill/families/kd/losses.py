r"""Knowledge-distillation losses: pure functions, tensors in, tensors out (the formula and the paper in each docstring)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def kl_divergence(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    r"""Per-sample :math:`\mathrm{KL}(p_t^T \| p_s^T)`, shape ``[B]``, with :math:`p^T = \mathrm{softmax}(z/T)`."""
    log_pt = F.log_softmax(teacher_logits / temperature, dim=-1)
    log_ps = F.log_softmax(student_logits / temperature, dim=-1)
    return (log_pt.exp() * (log_pt - log_ps)).sum(-1)


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


def _log_softmax_without_target(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the non-target classes only; the target class gets -inf (probability 0 exactly)."""
    target = F.one_hot(labels, logits.shape[-1]).bool()
    return F.log_softmax(logits.masked_fill(target, float("-inf")), dim=-1)


def dkd_parts(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float = 4.0
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-sample TCKD and NCKD of Decoupled KD, both with the :math:`T^2` factor, shapes ``[B]``.

    With :math:`p = \mathrm{softmax}(z/T)`, the binary target/non-target split
    :math:`b = [p_y,\, 1 - p_y]` and :math:`\hat p` the softmax over the non-target classes only:

    .. math::
        \mathrm{TCKD} = T^2\,\mathrm{KL}(b_t \| b_s), \qquad
        \mathrm{NCKD} = T^2\,\mathrm{KL}(\hat p_t \| \hat p_s).

    :math:`\hat p` masks the target logit with :math:`-\infty` (the official code subtracts 1000
    instead), so that the chain rule of KL holds exactly:
    :math:`T^2\,\mathrm{KL}(p_t \| p_s) = \mathrm{TCKD} + (1 - p_{t,y})\,\mathrm{NCKD}`.
    """
    zs, zt = student_logits / temperature, teacher_logits / temperature
    idx = labels.unsqueeze(-1)

    def binary(z: torch.Tensor) -> torch.Tensor:  # log [p_y, 1 - p_y], computed without cancellation
        log_all = torch.logsumexp(z, -1, keepdim=True)
        log_rest = torch.logsumexp(z.scatter(-1, idx, float("-inf")), -1, keepdim=True)
        return torch.cat([z.gather(-1, idx), log_rest], -1) - log_all

    log_bs, log_bt = binary(zs), binary(zt)
    tckd = (log_bt.exp() * (log_bt - log_bs)).sum(-1)
    log_qs, log_qt = _log_softmax_without_target(zs, labels), _log_softmax_without_target(zt, labels)
    non_target = log_qt.isfinite()
    nckd = torch.where(non_target, log_qt.exp() * (log_qt - log_qs), torch.zeros_like(log_qt)).sum(-1)
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


def hint_loss(regressed: torch.Tensor, hint: torch.Tensor) -> torch.Tensor:
    r"""FitNets' hint loss ("FitNets: Hints for Thin Deep Nets", Romero et al., ICLR 2015):
    :math:`\mathcal{L}_{HT} = \frac{1}{B}\sum_i \tfrac12 \| u_h(x_i) - r(v_g(x_i)) \|^2`, the teacher's
    hint :math:`u_h` against the regressed student guided layer :math:`r(v_g)`, summed over features."""
    return 0.5 * (regressed - hint).pow(2).flatten(1).sum(-1).mean()


def mi_alpha_bound(scores: torch.Tensor, log_baseline: torch.Tensor | float, alpha: float) -> torch.Tensor:
    r"""The α-interpolated lower bound on the mutual information between student and teacher
    representations, the MI-α objective of Distiller ("Distiller: A Systematic Study of Model
    Distillation Methods in Natural Language Processing", He et al., SustaiNLP 2021), which is the
    interpolated bound :math:`I_\alpha` of Poole et al. ("On Variational Bounds of Mutual
    Information", ICML 2019):

    .. math::
        I_\alpha = 1 + \mathbb{E}_{p(x, y)}\Big[\log \frac{e^{f(x, y)}}{\alpha\, m(y) + (1-\alpha)\, q(y)}\Big]
                 - \mathbb{E}_{p(x)p(y)}\Big[\frac{e^{f(x, y)}}{\alpha\, m(y) + (1-\alpha)\, q(y)}\Big],

    with :math:`m(y) = \frac1K\sum_k e^{f(x_k, y)}` the in-batch mean and :math:`q` a learned
    baseline. α = 1 is InfoNCE (low variance, capped at log K); α = 0 is TUBA, which with
    :math:`\log q = 1` is NWJ (unbiased, high variance).

    ``scores[i, j] = f(x_i, y_j)`` for ``K`` pairs, the positives on the diagonal (x the student's
    representation, y the teacher's). Batch estimator chosen here: the joint term uses
    :math:`m(y_j)` over all K students (InfoNCE's denominator); the marginal term pairs
    :math:`y_j` with the K − 1 students independent of it, and uses their mean as :math:`m`, so that
    at α = 1 it equals 1 exactly and :math:`I_1` is exactly InfoNCE.

    Sources and choices. The paper's text could not be read here, only its abstract (MI-α: "a class
    of MI objectives with better bias/variance trade-off"). A stored copy of a loss file that looks
    like Distiller's own code (derived from TextBrewer; its repository could not be identified)
    ports Poole et al.'s ``interpolated_lower_bound`` and differs from this function in four ways,
    kept here on purpose and listed so that nobody mistakes this for a line-by-line port:

    - its α is a logit (the mixing weight is σ(α)); here α is the weight itself, in [0, 1]
      (the same family of bounds, reparameterised: α_here = σ(α_there));
    - its baseline :math:`\log q(y)` is a learned function of the teacher's representation; here
      the caller passes it (``kd.mi_alpha`` learns one scalar);
    - its joint term uses the leave-one-out mean :math:`m` (Poole et al.'s estimator); here the
      mean over all K, so that α = 1 is InfoNCE exactly (tested);
    - its critic is an MLP on the [CLS] states; ``kd.mi_alpha`` uses a cosine critic on learned
      projections.
    """
    k = scores.shape[0]
    if k < 2:
        raise ValueError("the MI bound needs at least two pairs in the batch")
    log_baseline = torch.as_tensor(log_baseline, dtype=scores.dtype, device=scores.device).expand(k)

    def log_denominator(log_m: torch.Tensor) -> torch.Tensor:  # log(α m + (1 − α) q), exact at α = 0 and 1
        if alpha == 1:
            return log_m
        if alpha == 0:
            return log_baseline
        return torch.logaddexp(math.log(alpha) + log_m, math.log(1 - alpha) + log_baseline)

    diagonal = torch.eye(k, dtype=torch.bool, device=scores.device)
    joint = (scores.diagonal() - log_denominator(torch.logsumexp(scores, 0) - math.log(k))).mean()
    negatives = scores.masked_fill(diagonal, float("-inf"))
    log_m_neg = torch.logsumexp(negatives, 0) - math.log(k - 1)
    marginal = (log_m_neg - log_denominator(log_m_neg)).exp().mean()
    return 1 + joint - marginal


def self_distillation(
    final_logits: torch.Tensor,
    final_feature: torch.Tensor,
    exit_logits: list[torch.Tensor],
    exit_features: list[torch.Tensor],
    labels: torch.Tensor,
    temperature: float = 3.0,
    alpha: float = 0.3,
    feature_weight: float = 0.03,
) -> dict[str, torch.Tensor]:
    r"""Self-distillation of early exits from the deepest one ("Be Your Own Teacher: Improve the
    Performance of Convolutional Neural Networks via Self Distillation", Zhang et al., ICCV 2019):

    .. math::
        \mathcal{L} = \mathrm{CE}(q^C, y) + \sum_{i=1}^{C-1} \Big[(1-\alpha)\,\mathrm{CE}(q^i, y)
        + \alpha\,T^2\,\mathrm{KL}(q^{C,T} \| q^{i,T}) + \lambda\,\| F_i - F_C \|_2^2\Big],

    :math:`q^i` the softmax of exit i, :math:`q^C` of the deepest classifier (the network's own
    output), :math:`F_i` the bottleneck feature of exit i and :math:`F_C` the deepest feature. The
    deepest outputs are the teachers: gradients of the KL and L2 terms do not flow into them. The
    squared L2 is summed over features and averaged over the batch.

    *The deepest classifier's weight.* The paper writes the loss as one sum over all C classifiers,
    :math:`\sum_{i=1}^{C}[(1-\alpha)\mathrm{CE}(q^i, y) + \alpha\,\mathrm{KL}(q^i, q^C) + \lambda\|F_i - F_C\|^2]`,
    whose i = C term is :math:`(1-\alpha)\,\mathrm{CE}(q^C, y)`; the authors' code
    (ArchipLab-LinfengZhang/pytorch-self-distillation-final ``train.py``) adds the deepest CE with
    weight 1 (``loss += criterion(outputs[0], labels)``) and (1 − α) only to the shallow exits. We
    follow the code: weight 1, whatever α. The defaults T = 3, α = 0.3, λ = 0.03 are that code's
    (``--temperature``, ``--loss_coefficient``, ``--feature_loss_coefficient``). Where we still differ
    from it: its KD term is the cross-entropy to :math:`q^{C,T}` without the :math:`T^2` factor (the
    same gradient as our KL divided by :math:`T^2`); its feature term is ``torch.dist``, the
    *unsquared* L2 norm over the whole batch, of an adaptation layer's output, and it skips the
    shallowest exit; ours is the paper's squared L2, batch-averaged, for every exit.

    Returns ``loss``, ``ce`` (deepest) and, summed over exits, ``exit_ce``, ``exit_kd`` and ``exit_hint``.

    On the paper the seeds name for hierarchical self-distillation ("One Model to Train them All" /
    "MoSE", Gurioli et al., arXiv 2503.03008): from notes on it (its text could not be read here) it
    trains exits at several depths of one shared network with the task loss at each exit weighted by
    depth (:math:`\alpha_i = i/L`), without a distillation term between exits. The issue asks for
    exits *distilled from the last layer*, which is Zhang et al.'s loss above; that is what
    ``kd.hierarchical_self`` implements.
    """
    ce = F.cross_entropy(final_logits, labels)
    zero = torch.zeros_like(ce)
    teacher_logits, teacher_feature = final_logits.detach(), final_feature.detach().flatten(1)
    exit_ce = sum((F.cross_entropy(z, labels) for z in exit_logits), zero)
    exit_kd = sum((temperature**2 * kl_divergence(teacher_logits, z, temperature).mean() for z in exit_logits), zero)
    exit_hint = sum(((f.flatten(1) - teacher_feature).pow(2).sum(-1).mean() for f in exit_features), zero)
    loss = ce + (1 - alpha) * exit_ce + alpha * exit_kd + feature_weight * exit_hint
    return {"loss": loss, "ce": ce, "exit_ce": exit_ce, "exit_kd": exit_kd, "exit_hint": exit_hint}


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
