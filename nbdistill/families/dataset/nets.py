"""Network helpers: ``f(x; θ)`` of one flat parameter vector, fresh copies, embeddings.

Trajectory matching steps a network's parameters inside a differentiable inner loop, so the
network must be callable with parameters that are tensors of a graph rather than its own
``nn.Parameter`` s. :class:`FlatModel` does this with :func:`torch.func.functional_call` over the
template network (the module is never modified), and converts between a network's parameters and
the flat vector used by expert trajectories (:mod:`.experts`) and the inner loop (:mod:`.unroll`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call

from ...core.errors import ConfigError
from ...models.layers import last_linear


class FlatModel:
    """``f(x; θ)`` of ``template`` with every parameter taken from the flat vector ``θ``.

    The order of θ is ``template.named_parameters()``; buffers are the template's own.
    """

    def __init__(self, template: nn.Module):
        self.template = template
        params = list(template.named_parameters())
        self.names = [name for name, _ in params]
        self.shapes = [tuple(p.shape) for _, p in params]
        self.numels = [p.numel() for _, p in params]
        self.size = sum(self.numels)

    def flatten(self, net: nn.Module | None = None) -> torch.Tensor:
        """The parameters of ``net`` (default: the template) as one detached vector."""
        net = self.template if net is None else net
        return torch.cat([p.detach().reshape(-1) for p in net.parameters()])

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        if theta.dim() != 1 or theta.numel() != self.size:
            raise ConfigError(f"a parameter vector of this network has {self.size} entries, got shape {tuple(theta.shape)}")
        return {name: part.view(shape) for name, part, shape in zip(self.names, theta.split(self.numels), self.shapes)}

    def __call__(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return functional_call(self.template, self.unflatten(theta), (x,))

    def load(self, net: nn.Module, theta: torch.Tensor) -> nn.Module:
        """Copy ``theta`` into the parameters of ``net`` (same architecture as the template)."""
        with torch.no_grad():
            for p, value in zip(net.parameters(), self.unflatten(theta.to(next(net.parameters()).dtype)).values()):
                p.copy_(value)
        return net


def fresh_copy(template: nn.Module, seed: int) -> nn.Module:
    """A copy of ``template`` with every layer re-initialised from ``seed`` (global RNG untouched)."""
    net = copy.deepcopy(template)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in net.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    for p in net.parameters():
        p.requires_grad_(True)
    return net


def has_batch_norm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def classifier(net: nn.Module) -> nn.Linear:
    """The network's last ``nn.Linear`` (its classifier): its input is the embedding DM and DATM use."""
    return last_linear(net, f"{type(net).__name__} has no nn.Linear classifier layer to take an embedding from")[1]


def embed(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input of the network's last linear layer on ``x``: its penultimate features, ``[B, D]``."""
    captured: list[torch.Tensor] = []
    handle = classifier(net).register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    try:
        net(x)
    finally:
        handle.remove()
    return captured[-1].flatten(1)
