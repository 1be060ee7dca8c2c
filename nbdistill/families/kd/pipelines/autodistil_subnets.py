"""The weight-sharing sub-networks of an AutoDistil super-student (``kd.autodistil``).

A super-network is an :class:`nbdistill.models.MLP` ``in → h_1 → … → h_L → out``. Its sub-network
of widths ``(w_1, …, w_L)`` (``1 ≤ w_i ≤ h_i``) keeps the *first* ``w_i`` units of each hidden layer:
hidden layer ``i`` uses the rows ``[:w_i]`` of its weight, columns ``[:w_{i-1}]``, and the output layer
uses the columns ``[:w_L]``. Every sub-network therefore shares its weights with the super-network
(and with every wider sub-network), as DynaBERT / AutoDistil slice the width of a Transformer
(``width_mult``, ``hidden_mult``, ``intermediate_mult``: the leading heads and neurons are kept).

- :func:`sliced_forward` runs a sub-network inside the super-network (what training uses);
- :func:`extract` copies one out as a standalone ``MLP`` (what a user deploys);
- :func:`sub_space` lists the sub-space's architectures sorted by parameter count, and
  :func:`sample_subnets` draws a step's sub-networks with the sandwich rule;
- :func:`pareto_front` marks the ranked sub-students no other beats on both accuracy and size.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ....core.errors import ConfigError
from ....models.mlp import MLP

Widths = tuple[int, ...]


def check_supernet(model: nn.Module) -> MLP:
    """``model`` if it is an :class:`MLP` with at least one hidden layer; a :class:`ConfigError` otherwise."""
    if not isinstance(model, MLP):
        raise ConfigError(
            f"kd.autodistil slices the hidden layers of a weight-sharing super-network: the student must be an "
            f"nbdistill.models.MLP, got {type(model).__name__}; pass e.g. nd.models.MLP(64, [64], 10), whose hidden "
            "widths are the largest of the sub-space"
        )
    if not model.hidden:
        raise ConfigError(
            "kd.autodistil needs a super-network with at least one hidden layer to slice, got an MLP with hidden=[]; "
            "pass e.g. nd.models.MLP(64, [64], 10)"
        )
    return model


def check_widths(supernet: MLP, widths: Sequence[int]) -> Widths:
    """``widths`` as a tuple once it names one width ``1 ≤ w_i ≤ h_i`` per hidden layer; a ConfigError otherwise."""
    widths = tuple(int(w) for w in widths)
    hidden = tuple(supernet.hidden)
    if len(widths) != len(hidden) or any(not 1 <= w <= h for w, h in zip(widths, hidden)):
        raise ConfigError(
            f"sub-network widths {list(widths)} do not fit the super-network's hidden widths {list(hidden)}: "
            f"give one width per hidden layer ({len(hidden)}), each between 1 and that layer's width"
        )
    return widths


def sliced_forward(supernet: MLP, x: torch.Tensor, widths: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and last hidden activations (the input of the output layer) of the sub-network ``widths``,
    computed with slices of the super-network's own parameters (gradients flow into them)."""
    widths = tuple(widths)
    h = x.flatten(1)
    hidden = h
    width_in, layer = supernet.in_features, 0
    linears = [m for m in supernet.net if isinstance(m, nn.Linear)]
    for module in supernet.net:
        if isinstance(module, nn.Linear):
            last = layer == len(linears) - 1
            width_out = module.out_features if last else widths[layer]
            if last:
                hidden = h
            h = F.linear(h, module.weight[:width_out, :width_in], module.bias[:width_out] if module.bias is not None else None)
            width_in, layer = width_out, layer + 1
        else:  # ReLU, Dropout: shape-agnostic
            h = module(h)
    return h, hidden


def extract(supernet: MLP, widths: Sequence[int]) -> MLP:
    """A standalone ``MLP(in, widths, out)`` holding copies of the super-network's shared weights for ``widths``.

    Its outputs equal :func:`sliced_forward` ``(supernet, x, widths)``; with the full widths it is a
    copy of the super-network itself. It takes the super-network's device, dtype and train/eval mode.
    """
    check_supernet(supernet)
    widths = check_widths(supernet, widths)
    sub = MLP(supernet.in_features, list(widths), supernet.out_features, dropout=supernet.dropout)
    reference = next(supernet.parameters())
    sub.to(device=reference.device, dtype=reference.dtype)
    sizes = [supernet.in_features, *widths, supernet.out_features]
    source = [m for m in supernet.net if isinstance(m, nn.Linear)]
    target = [m for m in sub.net if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for i, (src, dst) in enumerate(zip(source, target)):
            dst.weight.copy_(src.weight[: sizes[i + 1], : sizes[i]])
            if src.bias is not None:
                dst.bias.copy_(src.bias[: sizes[i + 1]])
    sub.train(supernet.training)
    return sub


def mlp_params(in_features: int, widths: Sequence[int], out_features: int) -> int:
    """Parameters (weights and biases) of ``MLP(in_features, widths, out_features)``."""
    sizes = [in_features, *widths, out_features]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def width_options(width: int, min_width: float, choices: int) -> list[int]:
    """``choices`` widths evenly spaced from ``round(min_width · width)`` (at least 1) to ``width``, distinct, ascending."""
    low = max(1, round(min_width * width))
    if choices <= 1 or low >= width:
        return [width]
    return sorted({round(low + (width - low) * k / (choices - 1)) for k in range(choices)})


def sub_space(supernet: MLP, min_width: float, choices: int) -> list[Widths]:
    """Every sub-network of the sub-space (all combinations of :func:`width_options` per hidden layer),
    sorted by parameter count (ties by widths): the first is the smallest, the last the super-network,
    as AutoDistil's ``subs_para_range`` sorts the sub-networks of a sub-space."""
    options = [width_options(h, min_width, choices) for h in supernet.hidden]
    space = list(itertools.product(*options))
    return sorted(space, key=lambda w: (mlp_params(supernet.in_features, w, supernet.out_features), w))


def sample_subnets(space: Sequence[Widths], count: int, generator: torch.Generator) -> list[Widths]:
    """The sandwich rule of AutoDistil's training loop: the largest and the smallest sub-network, then
    ``count − 2`` others drawn at random without replacement (fewer where the sub-space has fewer)."""
    if len(space) <= 2:
        return list(dict.fromkeys([space[-1], space[0]]))
    middle = list(space[1:-1])
    picks = torch.randperm(len(middle), generator=generator)[: max(0, count - 2)].tolist()
    return [space[-1], space[0], *(middle[i] for i in picks)]


def spread(space: Sequence[Widths], most: int) -> list[Widths]:
    """At most ``most`` architectures of ``space`` (sorted by size), evenly spread, smallest and largest kept."""
    if len(space) <= most:
        return list(space)
    if most == 1:
        return [space[-1]]
    return [space[round(i * (len(space) - 1) / (most - 1))] for i in range(most)]


def pareto_front(params: Sequence[float], accuracy: Sequence[float]) -> list[bool]:
    """Whether each point is on the Pareto front: no other point has fewer-or-equal parameters and
    higher-or-equal accuracy with at least one of the two strictly better."""
    points = list(zip(params, accuracy))
    return [
        not any(p2 <= p and a2 >= a and (p2 < p or a2 > a) for j, (p2, a2) in enumerate(points) if j != i)
        for i, (p, a) in enumerate(points)
    ]
