"""Train the shipped score (diffusion) teachers, deterministically, and write ``checkpoints/<name>.pt``.

Run ``python -m nbdistill.zoo.make_score_teachers`` (all of them, a few minutes on 2 CPU cores) or with
names as arguments. Each teacher is an :class:`~nbdistill.models.MLPDenoiser` fitted by
:func:`~nbdistill.families.score.teacher_training.train_denoiser` (the SNR + 1 weighted denoising loss,
i.e. the v-prediction MSE; Adam with a cosine learning-rate decay; a weight EMA) under the cosine VP
schedule, on the training points of its data set (:attr:`.specs.ScoreTeacherSpec.data_class`), one
torch thread, deterministic algorithms, every random draw from generators seeded by the spec. So the
same machine and torch build give the same weights bit for bit; on another CPU the kernels round
differently and the weights differ slightly (the sample quality stays the same: see
tests/families/score/test_score_teacher_zoo.py).

The checkpoint's ``meta`` records how it was made and its sample quality: the energy distance (V-statistic,
:func:`~nbdistill.families.score.metrics.energy_distance`) between samples of a :data:`QUALITY_STEPS`-step
DDIM run of the teacher (prior noise seeded :data:`SAMPLE_SEED`) and as many held-out data points
(:func:`reference_points`: :data:`N_QUALITY` fresh points), beside the floor: the same distance between
two such sets of data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from .. import data as data_modules
from ..families.score.metrics import energy_distance
from ..families.score.samplers import sample
from ..families.score.schedule import CosineVP
from ..families.score.teacher_training import train_denoiser
from .specs import SCORE_SPECS, ScoreTeacherSpec

CHECKPOINTS = Path(__file__).parent / "checkpoints"
#: samples and DDIM steps of the quality figure, and the seeds of its draws
N_QUALITY, QUALITY_STEPS, SAMPLE_SEED = 2000, 50, 1234
#: fresh data points are a seeded random subset of a draw of this many with these data seeds (not the training seed)
POOL, REFERENCE_SEEDS = 20_000, (1001, 1002)


def data_module(spec: ScoreTeacherSpec):
    return getattr(data_modules, spec.data_class)(**spec.data_kwargs)


def training_points(spec: ScoreTeacherSpec) -> torch.Tensor:
    """The ``[N, dim]`` float32 training points the teacher is fitted to."""
    return data_module(spec).points("train").reshape(-1, spec.build().dim)


def fresh_points(spec: ScoreTeacherSpec, seed: int, n: int = N_QUALITY) -> torch.Tensor:
    """``n`` data points not used in training: a random subset (seeded ``seed``) of a draw of :data:`POOL`
    points with data seed ``seed`` (a subset, because scikit-learn's moons are evenly spaced along the arcs:
    two draws of the same size would be the same points up to the noise)."""
    module = data_module(spec)
    x, _ = module.generate(POOL, seed)
    x = torch.as_tensor(x, dtype=torch.float32)
    return x[torch.randperm(POOL, generator=torch.Generator().manual_seed(seed))[:n]]


def reference_points(spec: ScoreTeacherSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Two sets of data points held out of training: :data:`N_QUALITY` fresh points each (:func:`fresh_points`
    with the :data:`REFERENCE_SEEDS`) for a generated data set, the test and validation splits for a fixed one
    (digits)."""
    module = data_module(spec)
    if not hasattr(module, "generate"):
        return module.points("test").reshape(-1, spec.build().dim), module.points("val").reshape(-1, spec.build().dim)
    return fresh_points(spec, REFERENCE_SEEDS[0]), fresh_points(spec, REFERENCE_SEEDS[1])


def teacher_samples(
    model: torch.nn.Module, n: int = N_QUALITY, steps: int = QUALITY_STEPS, seed: int = SAMPLE_SEED
) -> torch.Tensor:
    """``n`` samples of a ``steps``-step DDIM run of the denoiser under the cosine VP schedule."""
    gen = torch.Generator().manual_seed(seed)
    return sample(model.eval(), CosineVP(), n, steps, "ddim", gen, shape=(model.dim,))


def quality(model: torch.nn.Module, spec: ScoreTeacherSpec) -> dict:
    """The teacher's energy distance to fresh data and the floor (data against a second draw of data)."""
    reference, second = reference_points(spec)
    return {
        "energy_distance": energy_distance(teacher_samples(model), reference),
        "energy_distance_floor": energy_distance(second, reference),
    }


def train(spec: ScoreTeacherSpec) -> tuple[torch.nn.Module, dict]:
    """Train ``spec``'s teacher on one thread with deterministic algorithms (the caller's settings are restored)."""
    previous = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        return _train(spec)
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.set_num_threads(threads)


def _train(spec: ScoreTeacherSpec) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(spec.seed)
    model = spec.build()
    x = training_points(spec)
    schedule = CosineVP()
    losses = train_denoiser(
        model,
        x,
        schedule,
        spec.steps,
        spec.batch_size,
        spec.lr,
        torch.Generator().manual_seed(spec.seed),
        weighting=spec.weighting,
        ema_decay=spec.ema_decay,
    )
    meta = {
        "name": spec.name,
        "description": spec.description,
        "kind": "score",
        "data": {"class": spec.data_class, **spec.data_kwargs},
        "network": {k: getattr(model, k) for k in ("dim", "hidden", "depth", "time_embedding", "parametrization")},
        "schedule": repr(schedule),
        "steps": spec.steps,
        "batch_size": spec.batch_size,
        "lr": spec.lr,
        "seed": spec.seed,
        "weighting": spec.weighting,
        "ema_decay": spec.ema_decay,
        "final_loss": sum(losses[-100:]) / len(losses[-100:]),
        "quality": {"samples": N_QUALITY, "sampler": "ddim", "steps": QUALITY_STEPS, "sample_seed": SAMPLE_SEED},
        **quality(model, spec),
        "torch": str(torch.__version__),
    }
    return model.eval(), meta


def main(names: list[str]) -> None:
    CHECKPOINTS.mkdir(exist_ok=True)
    for name in names or list(SCORE_SPECS):
        model, meta = train(SCORE_SPECS[name])
        torch.save({"state_dict": model.state_dict(), "meta": meta}, CHECKPOINTS / f"{name}.pt")
        print(
            f"{name}: energy distance {meta['energy_distance']:.5f} (floor {meta['energy_distance_floor']:.5f}), loss {meta['final_loss']:.4f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
