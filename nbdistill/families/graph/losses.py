r"""Graph-distillation losses: pure functions, tensors in, named scalar tensors out.

GNN to MLP (GLNN, FF-G2M): the per-node :math:`\mathrm{KL}(p_t \| p_s)` is
:func:`nbdistill.core.divergence.kl_divergence` (one source for the formula); these losses choose
which pairs of nodes it compares. Mirage: class-balanced cross-entropy on the distilled graphs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...core.divergence import kl_divergence


def labelled_ce(student_logits: torch.Tensor, labels: torch.Tensor, label_mask: torch.Tensor) -> dict[str, torch.Tensor]:
    r"""The MLP alone (GLNN's baseline, :math:`\lambda = 1`): :math:`\frac{1}{|V_L|}\sum_{v \in V_L} \mathrm{CE}(z_v, y_v)`
    over the labelled nodes :math:`V_L` (``label_mask``). Returns ``loss`` and ``ce`` (the same value)."""
    ce = F.cross_entropy(student_logits[label_mask], labels[label_mask])
    return {"loss": ce, "ce": ce}


def glnn(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    label_mask: torch.Tensor,
    lam: float = 0.5,
) -> dict[str, torch.Tensor]:
    r"""GLNN ("Graph-less Neural Networks: Teaching Old MLPs New Tricks via Distillation",
    Zhang, Liu, Sun & Shah, ICLR 2022):

    .. math::
        \mathcal{L} = \lambda\,\frac{1}{|V_L|}\sum_{v \in V_L} \mathrm{CE}(z_v, y_v)
        + (1-\lambda)\,\frac{1}{|V|}\sum_{v \in V} \mathrm{KL}\big(p_{t,v} \,\|\, p_{s,v}\big)

    over the labelled nodes :math:`V_L` (``label_mask``) and every node given (the official code's
    ``KLDivLoss(reduction="batchmean", log_target=True)`` on log-softmaxes, temperature 1).
    Pass only the nodes the student may see while training (all of them when transductive).
    Returns ``loss``, ``ce`` and ``kd`` (the KL term, unweighted).
    """
    ce = F.cross_entropy(student_logits[label_mask], labels[label_mask])
    kd = kl_divergence(teacher_logits, student_logits).mean()
    return {"loss": lam * ce + (1.0 - lam) * kd, "ce": ce, "kd": kd}


def low_frequency_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    r"""FF-G2M's low-frequency distillation (LFD): over the messages :math:`j \to i` of ``edge_index``
    (``edge_index[0]`` = j, the sender; ``edge_index[1]`` = i, the receiver),

    .. math:: \mathcal{L}_\text{LFD} = \frac{1}{|E|} \sum_{(j \to i) \in E} \mathrm{KL}\big(p_{t,j} \,\|\, p_{s,i}\big):

    the student at node i matches the teacher's prediction at each neighbour j. With self-loops
    (as the official code's graph carries them) the j = i terms are GLNN's node-level KL. 0 with no edges.
    """
    if edge_index.shape[1] == 0:
        return student_logits.sum() * 0.0
    src, dst = edge_index
    return kl_divergence(teacher_logits[src], student_logits[dst]).mean()


def high_frequency_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, edge_index: torch.Tensor, tau: float = 1.5
) -> torch.Tensor:
    r"""FF-G2M's high-frequency distillation (HFD): for each edge (i, j), the distribution of the
    *difference* of the two endpoints' logits,

    .. math::
        q_{ij} = \mathrm{softmax}\big(|z_i - z_j| / \tau\big), \qquad
        \mathcal{L}_\text{HFD} = \frac{1}{|E|} \sum_{(i,j) \in E} \mathrm{KL}\big(q^t_{ij} \,\|\, q^s_{ij}\big),

    so the student reproduces how the teacher's predictions change across each edge. A self-loop
    gives :math:`|z_i - z_i| = 0`, a uniform q for both models and a zero term. 0 with no edges.
    """
    if edge_index.shape[1] == 0:
        return student_logits.sum() * 0.0
    src, dst = edge_index
    teacher_diff = (teacher_logits[src] - teacher_logits[dst]).abs()
    student_diff = (student_logits[src] - student_logits[dst]).abs()
    return kl_divergence(teacher_diff, student_diff, temperature=tau).mean()


def ff_g2m(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    label_mask: torch.Tensor,
    edge_index: torch.Tensor,
    lam: float = 0.4,
    tau: float = 1.5,
) -> dict[str, torch.Tensor]:
    r"""FF-G2M ("Extracting Low-/High-Frequency Knowledge from Graph Neural Networks and Injecting it
    into MLPs: An Effective GNN-to-MLP Distillation Framework", Wu, Lin, Huang, Fan & Li, AAAI 2023):

    .. math::
        \mathcal{L} = \lambda\,\mathrm{CE}_{V_L} + (1-\lambda)\,\big(\mathcal{L}_\text{LFD} + \mathcal{L}_\text{HFD}\big)

    with :func:`low_frequency_kl` over ``edge_index`` plus a self-loop on every node (the official
    ``dgl.add_self_loop``) and :func:`high_frequency_kl` over ``edge_index`` without self-loops.
    ``edge_index`` must hold no self-loops itself. Returns ``loss``, ``ce``, ``lfd``, ``hfd``.
    """
    loops = torch.arange(student_logits.shape[0], device=edge_index.device).repeat(2, 1)
    ce = F.cross_entropy(student_logits[label_mask], labels[label_mask])
    lfd = low_frequency_kl(student_logits, teacher_logits, torch.cat([edge_index, loops], 1))
    hfd = high_frequency_kl(student_logits, teacher_logits, edge_index, tau)
    return {"loss": lam * ce + (1.0 - lam) * (lfd + hfd), "ce": ce, "lfd": lfd, "hfd": hfd}


def class_weights(classes: list[int], num_classes: int) -> torch.Tensor:
    r"""Cross-entropy weights that give each class the same total weight in Mirage's distilled set,
    :math:`w_c = n / (C' \, n_c)` for the :math:`C'` classes with :math:`n_c > 0` tree sets (0 for
    the others): a class that happens to have many frequent tree sets would otherwise dominate."""
    counts = torch.bincount(torch.tensor(classes, dtype=torch.long), minlength=num_classes).float()
    present = counts > 0
    weight = torch.zeros(num_classes)
    weight[present] = counts.sum() / (present.sum() * counts[present])
    return weight


def mirage(
    distilled_logits: torch.Tensor,
    distilled_labels: torch.Tensor,
    class_weight: torch.Tensor | None = None,
    full_logits: torch.Tensor | None = None,
    full_labels: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    r"""Mirage's training loss ("Mirage: Model-agnostic Graph Distillation for Graph Classification",
    Gupta, Manchanda, Kodamana & Ranu, ICLR 2024), with the full-data baseline trained side by side:

    .. math:: \mathcal{L} = \mathrm{CE}_w(\text{distilled graphs}) + \mathrm{CE}(\text{real graphs})

    the first weighted per class by ``class_weight`` (:func:`class_weights`), the second only when
    ``full_logits`` are given (the copy of the GNN trained on the real graphs; the two share no
    parameter, so each learns from its own term). Returns ``loss``, ``distilled_ce`` and ``full_ce``.
    """
    terms = {"distilled_ce": F.cross_entropy(distilled_logits, distilled_labels, weight=class_weight)}
    if full_logits is not None:
        terms["full_ce"] = F.cross_entropy(full_logits, full_labels)
    terms["loss"] = sum(terms.values())
    return terms
