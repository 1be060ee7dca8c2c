"""Small trained teachers shipped inside the package (no download, no training wait).

``nd.zoo.teacher("digits-mlp")`` returns the network in eval mode; ``nd.zoo.info(name)`` says how
it was made. ``python -m nbdistill.zoo.make_teachers`` remakes the classifiers' checkpoints deterministically,
``python -m nbdistill.zoo.make_score_teachers`` the diffusion teachers' (``nd.zoo.teacher("moons-denoiser")``,
``"swissroll-denoiser"``, ``"checkerboard-denoiser"``: x0-predicting ``MLPDenoiser``s, called ``(x_t, t)``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..core.errors import ConfigError
from .specs import SPECS

CHECKPOINTS = Path(__file__).parent / "checkpoints"


def names() -> list[str]:
    return sorted(SPECS)


def _load(name: str) -> dict:
    if name not in SPECS:
        raise ConfigError(f"unknown teacher {name!r}; the zoo has {names()}")
    path = CHECKPOINTS / f"{name}.pt"
    if not path.exists():
        script = getattr(SPECS[name], "script", "make_teachers")
        raise ConfigError(f"teacher {name!r} has no checkpoint at {path}; run python -m nbdistill.zoo.{script} {name}")
    return torch.load(path, map_location="cpu", weights_only=True)


def teacher(name: str) -> nn.Module:
    """The shipped teacher ``name``, loaded and in eval mode."""
    model = SPECS[name].build() if name in SPECS else None
    state = _load(name)
    model.load_state_dict(state["state_dict"])
    return model.eval()


def info(name: str) -> dict:
    """How teacher ``name`` was made and its measured quality (val/test accuracy; a score teacher's energy distance)."""
    return dict(_load(name)["meta"])


class ZooTeacher(nn.Module):
    """A shipped teacher as a module built from a name: ``teacher: {class_path: nbdistill.zoo.ZooTeacher, init_args: {name: digits-mlp}}`` in a CLI config."""

    def __init__(self, name: str = "digits-mlp"):
        super().__init__()
        self.net = teacher(name)

    def forward(self, *args, **kwargs) -> torch.Tensor:
        # one input for a classifier, (x_t, t) for a score teacher
        return self.net(*args, **kwargs)
