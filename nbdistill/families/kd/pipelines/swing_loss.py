r"""The loss of Swing distillation and its per-example temperature rule (pure functions).

Swing distillation (Li, Wu, Dong, Wu, Bian & Xiong, "Swing Distillation: A Privacy-Preserving
Knowledge Distillation Framework", arXiv 2212.08349, 2022) softens each example's soft target by a
temperature set from how likely the example is to carry private information, and adds noise to the
soft targets; see :mod:`.swing` for what is followed from the paper and what could not be verified.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ....core.divergence import kl_divergence


def nearest_distances(x: torch.Tensor, reference: torch.Tensor, exclude_below: float = 1e-6) -> torch.Tensor:
    r"""Per-example Euclidean distance :math:`d(x_i) = \min_{r \in R,\ \|x_i - r\| > \epsilon} \|x_i - r\|`
    from each row of ``x`` (flattened) to its nearest row of ``reference``, shape ``[B]``.

    Rows of ``reference`` closer than ``exclude_below`` (the example itself, or an inserted copy
    of it) are skipped, so an example of the reference set is measured against the others.
    """
    d = torch.cdist(x.flatten(1).to(reference.dtype), reference.flatten(1))
    return d.masked_fill(d <= exclude_below, float("inf")).min(dim=1).values


def privacy_scores(distances: torch.Tensor, reference_distances: torch.Tensor, public_quantile: float) -> torch.Tensor:
    r"""The likelihood :math:`p_i \in [0, 1]` that example i carries private information, from its rarity.

    With :math:`F` the empirical CDF of the nearest-neighbour distances of the distillation set
    (``reference_distances``, sorted ascending) and :math:`q` = ``public_quantile``:

    .. math::
        p_i = \mathrm{clip}\Big(\frac{F(d_i) - q}{1 - q},\ 0,\ 1\Big),
        \qquad F(d) = \frac{|\{j : d_j < d\}|}{N},

    so the fraction :math:`q` of most typical examples is treated as public (:math:`p = 0`), and an
    example as isolated as the rarest of the set, or more (an inserted canary), as private (:math:`p \to 1`).
    """
    rank = torch.searchsorted(reference_distances.contiguous(), distances.to(reference_distances.dtype).contiguous())
    cdf = rank.to(distances.dtype) / len(reference_distances)
    return ((cdf - public_quantile) / (1.0 - public_quantile)).clamp(0.0, 1.0)


def swing_temperatures(privacy: torch.Tensor, temperature: float, tau_max: float) -> torch.Tensor:
    r"""Per-example temperatures :math:`\tau_i = \tau + (\tau_{\max} - \tau)\,p_i`: the base temperature
    :math:`\tau` for a public example, rising to :math:`\tau_{\max}` for one that surely carries private
    information, whose soft target is then nearly uniform and tells the student little about it."""
    return temperature + (tau_max - temperature) * privacy


def swing_kd(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperatures: torch.Tensor,
    noise: torch.Tensor | None = None,
    alpha: float = 0.0,
) -> dict[str, torch.Tensor]:
    r"""Swing distillation's loss (Li et al., 2022), with the batch mean of Hinton KD:

    .. math::
        \mathcal{L} = \alpha\,\mathrm{CE}(z_s, y) + (1 - \alpha)\,\frac{1}{B}\sum_{i=1}^{B} \tau_i^2\,
        \mathrm{KL}\big(\mathrm{softmax}(z_{t,i}/\tau_i + \varepsilon_i)\ \|\ \mathrm{softmax}(z_{s,i}/\tau_i)\big),

    with the noise :math:`\varepsilon_i` (``noise``, shape ``[B, C]``; ``None`` for none) added to the
    teacher's tempered logits. The KL is :func:`~nbdistill.core.divergence.kl_divergence` at
    temperature :math:`\tau_i`, with the teacher's logits :math:`z_{t,i} + \tau_i \varepsilon_i`
    (:math:`(z + \tau\varepsilon)/\tau = z/\tau + \varepsilon`). With no noise and every
    :math:`\tau_i = T` it is :func:`~nbdistill.families.kd.losses.hinton_kd` at temperature T.

    Returns ``loss``, ``ce`` and ``kd`` (the batch mean of :math:`\tau_i^2`·KL).
    """
    tau = temperatures.to(teacher_logits.dtype).reshape(-1, 1)
    targets = teacher_logits if noise is None else teacher_logits + tau * noise.to(teacher_logits.dtype)
    kd = (tau.squeeze(1) ** 2 * kl_divergence(targets, student_logits, tau)).mean()
    ce = F.cross_entropy(student_logits, labels)
    return {"loss": alpha * ce + (1.0 - alpha) * kd, "ce": ce, "kd": kd}
