"""Finding a network's parts by what they are: its classifier, the last ``nn.Linear``."""

from __future__ import annotations

from torch import nn

from ..core.errors import ConfigError


def named_last_linear(model: nn.Module) -> tuple[str, nn.Linear] | None:
    """The name and module of the last ``nn.Linear`` registered in ``model`` (for the usual
    networks its classifier, whose input is the penultimate features), or None."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return found[-1] if found else None


def last_linear(model: nn.Module, missing: str) -> tuple[str, nn.Linear]:
    """:func:`named_last_linear`, or a :class:`ConfigError` with the message ``missing`` (which says
    who needs the layer and what to do) when ``model`` has no ``nn.Linear``."""
    found = named_last_linear(model)
    if found is None:
        raise ConfigError(missing)
    return found
