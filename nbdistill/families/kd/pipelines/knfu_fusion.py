r"""The fusion rules of ``kd.knfu``: whose knowledge each client distils, and with what weight.

Every client k shares its *knowledge*: its logits :math:`z_k \in \mathbb R^{N\times C}` on the public
transfer set (N examples, C classes). From the stacked knowledge ``[K, N, C]``:

- **knfu** (Seyedmohammadi, Atapour, Abouei & Mohammadi, "KnFu: Effective Knowledge Fusion", 2024):
  each client's *estimated probability distribution* (EPD) of labels, the mean of its tempered
  softmax over the transfer set, :math:`e_k = \frac1N\sum_n \mathrm{softmax}(z_{kn}/T)`, stands for
  what its local data taught it. Clients whose EPDs are close are semantic neighbours:
  :math:`D_{kj} = \mathrm{KL}(e_k \| e_j)` and
  :math:`w_{kj} = \exp(-\beta D_{kj}) / \sum_{j'} \exp(-\beta D_{kj'})` (the paper's Eq. 8, β = 10 in
  all its experiments). Knowledge from a client with a very different label distribution gets a
  weight near 0: only the neighbours' effective knowledge is fused.
- **fedkd**: plain federated KD as in FedMD (Li & Wang, "FedMD: Heterogenous Federated Learning via
  Model Distillation", 2019): one consensus, the uniform average over all clients, :math:`w_{kj}=1/K`.
- **local**: no fusion, :math:`w = I`: each client's target is its own knowledge (local training only).

The fused target of client k is the weighted mixture of the clients' tempered soft predictions,
:math:`\bar p_k = \sum_j w_{kj}\,\mathrm{softmax}(z_j/T)`, handed to the one KL as the logits
:math:`T\log\bar p_k` (whose tempered softmax is :math:`\bar p_k`); client k then minimises
:math:`T^2\,\frac1N\sum_n \mathrm{KL}(\bar p_{kn} \| \mathrm{softmax}(f_k(x_n)/T))` on the transfer set.

Not verified against the paper's text (only its abstract and summaries could be read here): that
the EPD is the mean soft prediction on the transfer set (rather than a count of arg-max labels),
the direction of the KL in :math:`D_{kj}`, that a client counts among its own neighbours
(:math:`D_{kk} = 0`, so its own knowledge weighs most), and that targets are mixed as
probabilities rather than as logits.
"""

from __future__ import annotations

import torch

from ....core.divergence import kl_divergence

#: The fusion rules, in the order the ``fusion`` hyper-parameter lists them.
FUSIONS = ("knfu", "fedkd", "local")
#: Floor of an EPD's entries before its log (a class no client predicts at all).
EPS = 1e-12


def estimated_distributions(knowledge: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``[K, C]``: each client's EPD, the mean tempered softmax of its knowledge ``[K, N, C]``."""
    return torch.softmax(knowledge / temperature, dim=-1).mean(1)


def knowledge_divergence(epd: torch.Tensor) -> torch.Tensor:
    r"""``[K, K]``: :math:`D_{kj} = \mathrm{KL}(e_k \| e_j)` between the clients' EPDs ``[K, C]``."""
    log_e = epd.clamp_min(EPS).log()
    return kl_divergence(log_e[:, None, :], log_e[None, :, :])


def fusion_weights(knowledge: torch.Tensor, fusion: str, beta: float = 10.0, temperature: float = 1.0) -> torch.Tensor:
    """``[K, K]`` row-stochastic weights: row k weighs the clients whose knowledge client k fuses."""
    k = knowledge.shape[0]
    if fusion == "knfu":
        divergence = knowledge_divergence(estimated_distributions(knowledge, temperature))
        return torch.softmax(-beta * divergence, dim=1)
    if fusion == "fedkd":
        return torch.full((k, k), 1.0 / k, dtype=knowledge.dtype, device=knowledge.device)
    if fusion == "local":
        return torch.eye(k, dtype=knowledge.dtype, device=knowledge.device)
    raise ValueError(f"unknown fusion {fusion!r}; use one of {FUSIONS}")


def fused_targets(knowledge: torch.Tensor, weights: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    r"""``[K, N, C]`` target logits :math:`T\log\sum_j w_{kj}\,\mathrm{softmax}(z_j/T)` of every client."""
    probs = torch.softmax(knowledge / temperature, dim=-1)
    mixed = torch.einsum("kj,jnc->knc", weights, probs)
    return temperature * mixed.clamp_min(EPS).log()


def distillation_loss(student_logits: torch.Tensor, target_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    r"""One client's local distillation loss :math:`T^2\,\mathrm{mean}_n\,\mathrm{KL}(\bar p_n \| p^T_{s,n})`."""
    return temperature**2 * kl_divergence(target_logits.detach(), student_logits, temperature).mean()
