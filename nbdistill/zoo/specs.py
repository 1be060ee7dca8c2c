"""What each shipped teacher is: its network, its data and how it was trained."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from ..models import MLP, ConvNet, MLPDenoiser, MoEMLP
from ..models.signal import ConvTransformer1D


@dataclass(frozen=True)
class TeacherSpec:
    name: str
    build: Callable[[], nn.Module]
    description: str
    data_kwargs: dict = field(default_factory=dict)
    epochs: int = 60
    lr: float = 1e-3
    batch_size: int = 64
    seed: int = 0
    #: weight of the model's ``balance_loss`` (mixture-of-experts load balancing) added to the CE
    balance_weight: float = 0.0
    #: the data module class: ``"Digits"`` (always ``split_seed=0``) or ``"MNIST1D"``
    data_class: str = "Digits"
    #: PGD adversarial training (``epsilon``, ``step_size``, ``steps``) when not ``None``
    adversarial: dict | None = None


@dataclass(frozen=True)
class ScoreTeacherSpec:
    """A diffusion teacher: an x0-predicting denoiser trained by ``families.score.teacher_training.train_denoiser``
    under the cosine VP schedule on the training points of ``data_class(**data_kwargs)`` (``nbdistill.data``);
    ``python -m nbdistill.zoo.make_score_teachers`` makes it."""

    name: str
    build: Callable[[], nn.Module]
    description: str
    #: the data module class in ``nbdistill.data`` (``"TwoMoons"``, ``"SwissRoll"``, ``"Checkerboard"``, ``"Digits"``, ...)
    data_class: str
    data_kwargs: dict = field(default_factory=dict)
    steps: int = 8000
    batch_size: int = 256
    lr: float = 2e-3
    seed: int = 0
    #: ``train_denoiser``'s loss weighting and weight average
    weighting: str = "snr+1"
    ema_decay: float | None = 0.999
    #: the script that remakes the checkpoint (module of ``nbdistill.zoo``)
    script: str = "make_score_teachers"


SPECS = {
    "digits-mlp": TeacherSpec(
        "digits-mlp",
        lambda: MLP(64, [256, 128], 10),
        "MLP 64-256-128-10 trained on the training part of Digits(split_seed=0)",
    ),
    "digits-convnet": TeacherSpec(
        "digits-convnet",
        lambda: ConvNet((1, 8, 8), 10, width=32, depth=2),
        "ConvNet (2 blocks of 32 channels) trained on the training part of Digits(split_seed=0, image=True)",
        data_kwargs={"image": True},
    ),
    "digits-moe": TeacherSpec(
        "digits-moe",
        lambda: MoEMLP(64, hidden=64, num_experts=4, expert_hidden=64, out_features=10, top_k=1),
        "Mixture-of-experts MLP (stem 64-64, 4 experts 64-64-64 routed top-1, head 64-10) trained with "
        "Switch load balancing on the training part of Digits(split_seed=0)",
        balance_weight=0.05,
    ),
    "digits-mlp-robust": TeacherSpec(
        "digits-mlp-robust",
        lambda: MLP(64, [256, 128], 10),
        "MLP 64-256-128-10 adversarially trained (PGD-10, L∞ ε = 0.5 in standardised feature units, step 0.125, "
        "inputs kept in the training features' range) on the training part of Digits(split_seed=0)",
        adversarial={"epsilon": 0.5, "step_size": 0.125, "steps": 10},
    ),
    "mnist1d-convtransformer": TeacherSpec(
        "mnist1d-convtransformer",
        lambda: ConvTransformer1D((1, 40), 10, width=32, depth=2, heads=4),
        "Convolution-transformer (conv stem, 2 blocks of width 32 with convolutional Q/K/V projections) "
        "trained on the training part of MNIST1D(num_samples=5000, data_seed=42)",
        data_class="MNIST1D",
        epochs=40,
        lr=3e-3,
        batch_size=100,
    ),
}

#: the denoiser of every shipped 2-D score teacher: 128 wide, 4 layers, 32-dim time embedding (54 k weights)
_DENOISER_2D = "MLPDenoiser(dim=2, hidden=128, depth=4, time_embedding=32), v-parametrised"


def _denoiser_2d(name: str, data_class: str) -> ScoreTeacherSpec:
    """The spec of a shipped 2-D denoiser trained on ``data_class(n_samples=10000, data_seed=0)``."""
    return ScoreTeacherSpec(
        name,
        lambda: MLPDenoiser(2, hidden=128, depth=4, time_embedding=32),
        f"{_DENOISER_2D}, trained on the training points of {data_class}(n_samples=10000, data_seed=0)",
        data_class,
        {"n_samples": 10_000, "data_seed": 0},
    )


SCORE_SPECS = {
    spec.name: spec
    for spec in (
        _denoiser_2d("moons-denoiser", "TwoMoons"),
        _denoiser_2d("swissroll-denoiser", "SwissRoll"),
        _denoiser_2d("checkerboard-denoiser", "Checkerboard"),
        ScoreTeacherSpec(
            "digits-denoiser",
            lambda: MLPDenoiser(64, hidden=128, depth=3, time_embedding=32),
            "MLPDenoiser(64, hidden=128, depth=3, time_embedding=32), v-parametrised, trained on the training part of "
            "Digits(scale='unit', split_seed=0): 8x8 digits with gray levels in [-1, 1]",
            "Digits",
            {"scale": "unit"},
            steps=8000,
        ),
    )
}
SPECS.update(SCORE_SPECS)
