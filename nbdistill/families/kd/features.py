"""Intermediate features of any network, picked by module name with forward hooks.

Feature-based distillation (FitNets, OFA, MI-α, self-distillation) needs what a layer outputs in
the middle of a forward pass. Hooks read it without touching the model's code, so any student and
teacher pair works: a layer is named as in ``model.named_modules()`` (``"net.1"``, ``"features.3"``),
or as :data:`PENULTIMATE`, the input of the model's last ``nn.Linear`` (the representation the
classifier reads). The hooks live only for the one forward pass of :func:`capture`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ...core.errors import ConfigError
from ...models.layers import last_linear

#: The name of the input of the model's last ``nn.Linear`` layer.
PENULTIMATE = "penultimate"


def layer_names(model: nn.Module) -> list[str]:
    """Every named submodule of ``model`` (what a layer name may be), plus :data:`PENULTIMATE`."""
    return [name for name, _ in model.named_modules() if name] + [PENULTIMATE]


def split_names(names: str) -> list[str]:
    """``"net.1, net.3"`` → ``["net.1", "net.3"]`` (a comma-separated hyper-parameter)."""
    return [n.strip() for n in names.split(",") if n.strip()]


def resolve_all(model: nn.Module, names: str, who: str, none_named: str) -> list[str]:
    """The comma-separated layer ``names``, each checked with :func:`resolve`; a :class:`ConfigError`
    saying ``none_named`` when there is none."""
    layers = split_names(names)
    if not layers:
        raise ConfigError(none_named)
    for name in layers:
        resolve(model, name, who)
    return layers


def penultimate_layer(model: nn.Module, who: str = "model") -> nn.Linear:
    """The last ``nn.Linear`` of ``model``, whose input is its :data:`PENULTIMATE` features."""
    missing = (
        f"the {who} has no nn.Linear layer, so it has no {PENULTIMATE!r} features; "
        f"name a layer instead, one of {layer_names(model)[:-1]}"
    )
    return last_linear(model, missing)[1]


def resolve(model: nn.Module, name: str, who: str = "model") -> nn.Module:
    """The submodule called ``name``; a :class:`ConfigError` listing the valid names otherwise."""
    if name == PENULTIMATE:
        return penultimate_layer(model, who)
    modules = dict(model.named_modules())
    if not name or name not in modules:
        raise ConfigError(f"the {who} has no layer {name!r}; its layers are {layer_names(model)}")
    return modules[name]


def capture(
    model: nn.Module, x: torch.Tensor, names: Sequence[str], who: str = "model"
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run ``model(x)`` once and return its output and the features of the layers ``names``.

    A named layer gives its output; :data:`PENULTIMATE` gives the input of the last ``nn.Linear``.
    Gradients flow through the features exactly as through the output.
    """
    found: dict[str, torch.Tensor] = {}
    handles = []

    def keep(name: str, value) -> None:
        if not isinstance(value, torch.Tensor):
            raise ConfigError(f"layer {name!r} of the {who} outputs a {type(value).__name__}, not a tensor; name another layer")
        found[name] = value

    try:
        for name in names:
            module = resolve(model, name, who)
            if name == PENULTIMATE:
                handles.append(module.register_forward_pre_hook(lambda m, args, name=name: keep(name, args[0])))
            else:
                handles.append(module.register_forward_hook(lambda m, args, out, name=name: keep(name, out)))
        out = model(x)
    finally:
        for h in handles:
            h.remove()
    unused = [n for n in names if n not in found]
    if unused:
        raise ConfigError(f"layer(s) {unused} of the {who} did not run in its forward pass; name layers that do")
    return out, [found[n] for n in names]
