r"""The metrics and losses of ``kd.fair`` (pure functions, tensors in, tensors out).

- :func:`parity_gap`: the demographic-parity gap of hard predictions between two groups;
- :func:`distance_covariance`: the fairness loss, the squared sample distance covariance between a
  representation and the sensitive attribute (Székely, Rizzo & Bakirov, 2007), which Sikder et
  al. (2024) use to make a latent space independent of the sensitive attribute;
- :func:`fair_distillation`: ``kd.fair``'s objective, quality + utility + fairness.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..losses import hinton_kd


def group_rates(pred: torch.Tensor, s: torch.Tensor, num_classes: int) -> torch.Tensor:
    r"""``[2, C]``: row ``g`` holds :math:`P(\hat y = c \mid s = g)` for every class ``c`` (NaN for a
    group with no example)."""
    pred, s = pred.reshape(-1).long(), s.reshape(-1).long()
    rates = torch.full((2, num_classes), float("nan"), dtype=torch.float64)
    for g in (0, 1):
        members = pred[s == g]
        if len(members):
            rates[g] = torch.bincount(members, minlength=num_classes)[:num_classes].double() / len(members)
    return rates


def parity_gap(pred: torch.Tensor, s: torch.Tensor, num_classes: int) -> float:
    r"""Demographic-parity gap of the predictions ``pred`` between the groups ``s ∈ {0, 1}``:

    .. math:: \Delta_{DP} = \max_c \big|P(\hat y = c \mid s = 0) - P(\hat y = c \mid s = 1)\big|,

    which for two classes is the usual :math:`|P(\hat y = 1 \mid s = 0) - P(\hat y = 1 \mid s = 1)|`
    (both classes' differences have the same size). 0 is parity, 1 the largest gap; NaN when a
    group has no example.
    """
    rates = group_rates(pred, s, num_classes)
    return float((rates[0] - rates[1]).abs().max())


def distance_covariance(z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    r"""Squared sample distance covariance (the V-statistic of Székely, Rizzo & Bakirov, 2007):

    .. math::
        \mathrm{dCov}^2_n(Z, S) = \frac{1}{n^2}\sum_{i,j} A_{ij} B_{ij},\qquad
        A_{ij} = a_{ij} - \bar a_{i\cdot} - \bar a_{\cdot j} + \bar a_{\cdot\cdot},\ a_{ij} = \lVert z_i - z_j \rVert_2,

    and :math:`B` the same from :math:`b_{ij} = |s_i - s_j|`. It is 0 when ``z`` and ``s`` are
    independent (in the population) and positive otherwise; differentiable in ``z``. ``z`` is
    ``[n, d]`` (flattened from the second dimension), ``s`` ``[n]`` or ``[n, k]``.
    """
    z = z.reshape(len(z), -1)
    s = s.reshape(len(s), -1).to(z.dtype)
    a, b = torch.cdist(z, z), torch.cdist(s, s)
    a = a - a.mean(0, keepdim=True) - a.mean(1, keepdim=True) + a.mean()
    b = b - b.mean(0, keepdim=True) - b.mean(1, keepdim=True) + b.mean()
    return (a * b).mean()


def fair_distillation(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    student_latent: torch.Tensor,
    projected_latent: torch.Tensor,
    teacher_latent: torch.Tensor,
    sensitive: torch.Tensor,
    quality: float,
    fairness: float,
    temperature: float,
    alpha: float,
) -> dict[str, torch.Tensor]:
    r"""``kd.fair``'s objective, after the fair latent distillation of Sikder et al. (2024):

    .. math::
        \mathcal L = \beta\,\underbrace{\tfrac{1}{B d}\lVert P z_s - z_t \rVert^2}_{\text{quality}}
        + \underbrace{\alpha\,\mathrm{CE}(z, y) + (1-\alpha)\,T^2\,\mathrm{KL}(p_t^T \,\|\, p_s^T)}_{\text{utility}}
        + \lambda\,\underbrace{\mathrm{dCov}^2_n(z_s, s)}_{\text{fairness}},

    where :math:`z_s` is the student's latent (``student_latent``: what its classifier reads),
    :math:`P z_s` that latent mapped to the teacher's width by a learned linear map
    (``projected_latent``), :math:`z_t` the teacher's fair latent (detached) and :math:`z` the
    student's logits. With :math:`\lambda = 0` it is plain latent
    distillation plus utility. The utility term is :func:`~nbdistill.families.kd.losses.hinton_kd`.

    Returns ``quality``, ``utility`` (with ``ce`` and ``kd``), ``fairness`` (the dCov², also when
    :math:`\lambda = 0`, as a diagnostic) and the total ``loss``.
    """
    quality_term = F.mse_loss(projected_latent, teacher_latent.detach())
    utility = hinton_kd(student_logits, teacher_logits, labels, temperature, alpha)
    fair = distance_covariance(student_latent, sensitive)
    loss = quality * quality_term + utility["loss"] + (fairness * fair if fairness else 0.0)
    return {
        "loss": loss,
        "quality": quality_term,
        "utility": utility["loss"],
        "ce": utility["ce"],
        "kd": utility["kd"],
        "fairness": fair.detach(),
    }
