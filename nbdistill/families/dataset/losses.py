r"""Dataset-distillation losses: pure functions, tensors in, tensor out (one source for each formula)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    r"""Cross-entropy against hard labels (``long`` indices) or soft labels (rows of probabilities):
    :math:`-\frac1B\sum_i \sum_c p_{ic}\log \mathrm{softmax}(z_i)_c`, with :math:`p_i` one-hot for hard labels."""
    if targets.dtype == torch.long:
        return F.cross_entropy(logits, targets)
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def layerwise_cosine_distance(grads_real: Sequence[torch.Tensor], grads_syn: Sequence[torch.Tensor]) -> torch.Tensor:
    r"""DC's gradient-matching distance ("Dataset Condensation with Gradient Matching", Zhao,
    Mopuri & Bilen, ICLR 2021; VICO-UoE/DatasetCondensation ``distance_wb``):

    .. math::
        d(\nabla\theta^{\mathcal T}, \nabla\theta^{\mathcal S}) = \sum_{l}\sum_{o}
        \Big(1 - \frac{\langle A^l_{o}, B^l_{o}\rangle}{\|A^l_{o}\|\,\|B^l_{o}\| + 10^{-6}}\Big)

    where layer l's gradient is reshaped to ``[out, in·k·k]`` and :math:`A^l_o` is its row of output
    unit o. One-dimensional gradients (biases, normalisation scales) contribute 0, as in the paper.
    """
    total = grads_real[0].new_zeros(())
    for a, b in zip(grads_real, grads_syn):
        if a.dim() == 1:
            continue
        a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
        cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + 1e-6)
        total = total + (1 - cos).sum()
    return total


def mean_embedding_distance(emb_real: torch.Tensor, emb_syn: torch.Tensor) -> torch.Tensor:
    r"""DM's per-class loss ("Dataset Condensation with Distribution Matching", Zhao & Bilen,
    WACV 2023, with its linear kernel):
    :math:`\big\|\frac1{|B^{\mathcal T}|}\sum_i \psi(x_i) - \frac1{|B^{\mathcal S}|}\sum_j \psi(s_j)\big\|^2`."""
    return ((emb_real.mean(0) - emb_syn.mean(0)) ** 2).sum()


def normalised_parameter_distance(theta: torch.Tensor, target: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    r"""MTT's matching loss ("Dataset Distillation by Matching Training Trajectories",
    Cazenavette et al., CVPR 2022):
    :math:`\|\hat\theta_{t+N} - \theta^*_{t+M}\|^2 \,/\, \|\theta^*_t - \theta^*_{t+M}\|^2`,
    the student's distance to the expert's target, divided by how far the expert itself moved."""
    return ((theta - target) ** 2).sum() / ((start - target) ** 2).sum()


def bn_statistics_loss(
    means: Sequence[torch.Tensor],
    variances: Sequence[torch.Tensor],
    running_means: Sequence[torch.Tensor],
    running_vars: Sequence[torch.Tensor],
    first_multiplier: float = 10.0,
) -> torch.Tensor:
    r"""SRe²L/CDA's batch-norm statistic matching (Yin, Xing & Shen, "Squeeze, Recover and Relabel",
    NeurIPS 2023; VILA-Lab/SRe2L ``BNFeatureHook``):

    .. math:: \sum_l m_l \big(\|\mu_l(\tilde x) - \mu_l^{BN}\|_2 + \|\sigma^2_l(\tilde x) - \sigma^{2,BN}_l\|_2\big),

    the per-channel batch statistics of the synthetic batch at the input of each BN layer l against
    the layer's running statistics; :math:`m_1` = ``first_multiplier``, the other :math:`m_l` = 1.
    """
    total = means[0].new_zeros(())
    for i, (mu, var, rm, rv) in enumerate(zip(means, variances, running_means, running_vars)):
        weight = first_multiplier if i == 0 else 1.0
        total = total + weight * ((mu - rm).norm(2) + (var - rv).norm(2))
    return total


def gradient_penalty(input_grads: torch.Tensor) -> torch.Tensor:
    r"""The gradient penalty AST adds to its experts' loss (Shen, Yang & Lam, arXiv 2310.10541, after
    WGAN-GP): :math:`\frac1B\sum_i (\|\nabla_{x_i}\ell\|_2 - 1)^2` over the per-sample input gradients."""
    norms = input_grads.reshape(input_grads.shape[0], -1).norm(dim=-1)
    return ((norms - 1) ** 2).mean()
