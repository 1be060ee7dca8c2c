"""Train the shipped teachers, deterministically, and write ``checkpoints/<name>.pt``.

Run ``python -m nbdistill.zoo.make_teachers`` (all of them) or with names as arguments. The
training is a plain PyTorch loop (Adam, cross-entropy, fixed seed, deterministic algorithms), so
running it again on the same machine and torch build gives the same weights, bit for bit. torch
does not promise that across CPUs (other kernels round differently, and 60 epochs amplify it): on
another machine the retrained teacher's weights differ slightly from the shipped ones, its test
accuracy is the same within a few test examples and its predictions agree with the shipped
teacher's on nearly every test input (tests/data/test_data_models_zoo.py states the margins).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data import MNIST1D, Digits
from ..families.kd.attacks import pgd_attack
from .specs import SPECS, TeacherSpec

CHECKPOINTS = Path(__file__).parent / "checkpoints"


def accuracy(model: torch.nn.Module, dataset) -> float:
    model.eval()
    with torch.no_grad():
        x, y = dataset.tensors
        return (model(x).argmax(-1) == y).float().mean().item()


def train(spec: TeacherSpec) -> tuple[torch.nn.Module, dict]:
    """Train ``spec``'s teacher with deterministic algorithms (the caller's setting is restored)."""
    previous = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        return _train(spec)
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


def _train(spec: TeacherSpec) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(spec.seed)
    data, fixed = make_data(spec)
    data.setup()
    model = spec.build()
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    box = _box(data) if spec.adversarial else None
    for epoch in range(spec.epochs):
        data._sampler.set_epoch(epoch)
        model.train()
        for x, y in data.train_dataloader():
            if spec.adversarial:  # Madry et al.'s adversarial training: fit the PGD inputs
                x = pgd_attack(model, x, y, random_start="normal", lower=box[0], upper=box[1], **spec.adversarial)
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            if spec.balance_weight:
                loss = loss + spec.balance_weight * model.balance_loss
            loss.backward()
            opt.step()
    meta = {
        "name": spec.name,
        "description": spec.description,
        "data": {"class": spec.data_class, **fixed, **spec.data_kwargs},
        "epochs": spec.epochs,
        "lr": spec.lr,
        "seed": spec.seed,
        "val_acc": accuracy(model, data.dataset("val")),
        "test_acc": accuracy(model, data.dataset("test")),
        "torch": str(torch.__version__),
    }
    if spec.adversarial:
        meta["adversarial"] = dict(spec.adversarial)
        meta["test_pgd20_acc"] = pgd_accuracy(model, data.dataset("test"), spec.adversarial["epsilon"], box)
    return model, meta


def make_data(spec: TeacherSpec):
    """The spec's data module (Digits with ``split_seed=0``, or MNIST1D) and the fixed arguments used."""
    fixed = {"split_seed": 0} if spec.data_class == "Digits" else {}
    classes = {"Digits": Digits, "MNIST1D": MNIST1D}
    return classes[spec.data_class](batch_size=spec.batch_size, seed=spec.seed, **fixed, **spec.data_kwargs), fixed


def _box(data) -> tuple[torch.Tensor, torch.Tensor]:
    x = data.dataset("train").tensors[0]
    return x.min(0).values, x.max(0).values


def pgd_accuracy(model: torch.nn.Module, dataset, epsilon: float, box, steps: int = 20) -> float:
    """Accuracy under PGD-``steps`` (step ε/8, uniform start from a generator seeded 0)."""
    x, y = dataset.tensors
    g = torch.Generator().manual_seed(0)
    adv = pgd_attack(model, x, y, epsilon, epsilon / 8, steps, "uniform", box[0], box[1], generator=g)
    return accuracy(model, torch.utils.data.TensorDataset(adv, y))


def main(names: list[str]) -> None:
    CHECKPOINTS.mkdir(exist_ok=True)
    # the score teachers (ScoreTeacherSpec) are made by make_score_teachers
    for name in names or [n for n, spec in SPECS.items() if isinstance(spec, TeacherSpec)]:
        model, meta = train(SPECS[name])
        torch.save({"state_dict": model.state_dict(), "meta": meta}, CHECKPOINTS / f"{name}.pt")
        print(f"{name}: val {meta['val_acc']:.4f} test {meta['test_acc']:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
