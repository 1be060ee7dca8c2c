r"""The self-supervised encoder shared by ``kd.simclr_v2`` and ``kd.unfused``: SimCLR contrastive
pretraining on unlabelled inputs (Chen et al., "A Simple Framework for Contrastive Learning of Visual
Representations", 2020; the SimCLRv2 recipe of "Big Self-Supervised Models are Strong
Semi-Supervised Learners", 2020).

- :func:`augment`: two random views of a digit: a shift of up to ``shift`` pixels (edges
  replicated), Gaussian noise and pixel drop-out; inputs that are not 8×8 images get noise and
  drop-out only.
- :func:`nt_xent`: the NT-Xent loss of a batch of view pairs.
- :class:`SSLEncoder`: an MLP encoder ``in → w → w`` and SimCLRv2's projection head (two layers
  ``w → w → proj``); fine-tuning starts from the head's first layer (SimCLRv2 §2, "fine-tune from the
  middle layer of the projection head").
- :func:`pretrain`: the seeded pretraining loop, memoised on (inputs, settings, seed) so that both
  methods and several label fractions share one encoder.
"""

from __future__ import annotations

import copy
import hashlib
from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ....core.fastpath import adam
from ....core.registry import HParam

#: Pretrained encoders kept in memory (key -> (state dict, losses)), most recent last.
_CACHE: OrderedDict[tuple, tuple[dict, list[float]]] = OrderedDict()
CACHE_SIZE = 4
PROJECTION_DIM = 32


def encoder_width_hparam(who: str) -> HParam:
    return HParam(int, 256, 8, 2048, help=f"width of the self-supervised encoder ({who})")


def pretrain_epochs_hparam() -> HParam:
    return HParam(int, 30, 1, 1000, help="epochs of SimCLR contrastive pretraining on the unlabelled inputs")


def ssl_temperature_hparam() -> HParam:
    return HParam(float, 0.2, 0.01, 1.0, log=True, help="temperature of the NT-Xent contrastive loss")


def augment(x: torch.Tensor, generator: torch.Generator, shift: int = 1, noise: float = 0.3, drop: float = 0.1) -> torch.Tensor:
    """A random view of each input: shifted by up to ``shift`` pixels (8×8 digits only), plus
    ``N(0, noise²)`` noise, with a ``drop`` share of the features set to 0 (the standardised mean)."""
    flat = x.flatten(1)
    out = flat
    if flat.shape[1] == 64 and shift > 0:
        side = 8
        img = flat.reshape(-1, 1, side, side)
        padded = F.pad(img, (shift, shift, shift, shift), mode="replicate")
        offsets = torch.randint(0, 2 * shift + 1, (len(x), 2), generator=generator)
        rows = (offsets[:, :1] + torch.arange(side)).to(x.device)  # [B, 8]
        cols = (offsets[:, 1:] + torch.arange(side)).to(x.device)
        batch = torch.arange(len(x), device=x.device)[:, None, None]
        out = padded[batch, 0, rows[:, :, None], cols[:, None, :]].reshape(len(x), -1)
    noise_t = torch.randn(out.shape, generator=generator).to(x.device) * noise
    keep = (torch.rand(out.shape, generator=generator) >= drop).to(x.device)
    return ((out + noise_t) * keep).reshape(x.shape)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    r"""NT-Xent (SimCLR, eq. 1): for the ``2N`` views, with :math:`s_{ij}` the cosine similarity,

    .. math:: \ell_{i,j} = -\log \frac{\exp(s_{ij}/\tau)}{\sum_{k \ne i} \exp(s_{ik}/\tau)},\qquad
              L = \frac{1}{2N}\sum_{k=1}^{N} (\ell_{2k-1,2k} + \ell_{2k,2k-1}),

    positives ``(z1[k], z2[k])``, every other view of the batch a negative. (The official TF code,
    ``objective.add_contrastive_loss``, returns the sum of the two directions' means: twice this.)"""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, positives)


class SSLEncoder(nn.Module):
    """``in → w → w`` (ReLU) encoder and the projection head ``w → w → 32`` used while pretraining."""

    def __init__(self, in_features: int, width: int):
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, PROJECTION_DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))

    def classifier(self, classes: int) -> nn.Sequential:
        """A classifier on copies of the encoder and of the head's first layer (SimCLRv2's fine-tuning
        start), with a fresh linear output of ``classes``."""
        width = self.head[0].out_features
        return nn.Sequential(copy.deepcopy(self.encoder), copy.deepcopy(self.head[:2]), nn.Linear(width, classes))


def _fresh_encoder(in_features: int, width: int, seed: int) -> SSLEncoder:
    """An :class:`SSLEncoder` initialised from ``seed``, leaving the global random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SSLEncoder(in_features, width)


def pretrain(
    x: torch.Tensor,
    width: int,
    epochs: int,
    temperature: float,
    seed: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    report: Callable[[int, float], None] | None = None,
) -> tuple[SSLEncoder, list[float]]:
    """Pretrain an :class:`SSLEncoder` with NT-Xent on two :func:`augment` views of ``x`` (Adam,
    ``epochs`` passes in seeded random order); returns it (CPU, eval mode) and the mean loss per epoch.

    Memoised: the same inputs, settings and seed give a copy of the encoder trained before, and
    ``report(epoch, loss)`` is replayed from its record."""
    x = x.detach().float().cpu().flatten(1)
    digest = hashlib.sha1(x.numpy().tobytes()).hexdigest()
    key = (digest, tuple(x.shape), width, epochs, temperature, seed, batch_size, lr)
    model = _fresh_encoder(x.shape[1], width, seed)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        state, losses = _CACHE[key]
        model.load_state_dict(state)
        for epoch, loss in enumerate(losses, 1):
            if report is not None:
                report(epoch, loss)
        return model.eval(), list(losses)
    generator = torch.Generator().manual_seed(seed)
    optimiser = adam(list(model.parameters()), lr=lr)
    losses: list[float] = []
    model.train()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(x), generator=generator)
        total, batches = 0.0, 0
        for start in range(0, len(x), batch_size):
            part = x[order[start : start + batch_size]]
            if len(part) < 2:  # one example has no negative
                continue
            loss = nt_xent(model(augment(part, generator)), model(augment(part, generator)), temperature)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total, batches = total + loss.item(), batches + 1
        losses.append(total / max(1, batches))
        if report is not None:
            report(epoch, losses[-1])
    model.eval()
    _CACHE[key] = ({k: v.clone() for k, v in model.state_dict().items()}, list(losses))
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return model, losses
