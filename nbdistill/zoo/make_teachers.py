"""Train the shipped teachers, deterministically, and write ``checkpoints/<name>.pt``.

Run ``python -m nbdistill.zoo.make_teachers`` (all of them) or with names as arguments. The
training is a plain PyTorch loop (Adam, cross-entropy, fixed seed, deterministic algorithms), so
running it again on the same torch build gives the same weights.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data import Digits
from .specs import SPECS, TeacherSpec

CHECKPOINTS = Path(__file__).parent / "checkpoints"


def accuracy(model: torch.nn.Module, dataset) -> float:
    model.eval()
    with torch.no_grad():
        x, y = dataset.tensors
        return (model(x).argmax(-1) == y).float().mean().item()


def train(spec: TeacherSpec) -> tuple[torch.nn.Module, dict]:
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(spec.seed)
    data = Digits(batch_size=spec.batch_size, split_seed=0, seed=spec.seed, **spec.data_kwargs)
    data.setup()
    model = spec.build()
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    for epoch in range(spec.epochs):
        data._sampler.set_epoch(epoch)
        model.train()
        for x, y in data.train_dataloader():
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            if spec.balance_weight:
                loss = loss + spec.balance_weight * model.balance_loss
            loss.backward()
            opt.step()
    meta = {
        "name": spec.name,
        "description": spec.description,
        "data": {"class": "Digits", "split_seed": 0, **spec.data_kwargs},
        "epochs": spec.epochs,
        "lr": spec.lr,
        "seed": spec.seed,
        "val_acc": accuracy(model, data.dataset("val")),
        "test_acc": accuracy(model, data.dataset("test")),
        "torch": str(torch.__version__),
    }
    return model, meta


def main(names: list[str]) -> None:
    CHECKPOINTS.mkdir(exist_ok=True)
    for name in names or list(SPECS):
        model, meta = train(SPECS[name])
        torch.save({"state_dict": model.state_dict(), "meta": meta}, CHECKPOINTS / f"{name}.pt")
        print(f"{name}: val {meta['val_acc']:.4f} test {meta['test_acc']:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
