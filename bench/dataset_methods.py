"""Every dataset-distillation method on digits, side by side: same student, same number of outer
iterations, every set scored the same way beside a random real subset of the same size.

    python bench/dataset_methods.py                       # about 20 minutes on 2 CPU cores
    python bench/dataset_methods.py --iterations 5 --k 1 --eval-epochs 10 --methods dataset.dm dataset.mtt

Each method runs ``--iterations`` outer iterations through ``nd.fit`` with its registered defaults
(trajectory methods train or reuse their experts first; CDA squeezes a batch-norm copy of the
student into its teacher). The table gives the test accuracy of ``--k`` fresh networks trained on
each set (with the labels the method produces), the gain over the random subset, and the
wall-clock seconds per outer iteration measured in this run (experts excluded).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

import nbdistill as nd
from nbdistill.families.dataset.evaluate import (
    EvalSettings,
    evaluate_set,
    random_subset,
)
from nbdistill.families.dataset.realdata import RealSet, split_tensors


class Timer:
    """Seconds between the ends of the first and the last training batch (``nd.fit``'s ``progress`` hook)."""

    def __init__(self):
        self.first = self.last = 0.0

    def __call__(self, done: int, total: int, metrics: dict) -> None:
        self.last = time.perf_counter()
        self.first = self.first or self.last


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=nd.methods("dataset"))
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--iterations", type=int, default=60)
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--eval-epochs", type=int, default=200)
    p.add_argument("--runs-root", default=None)
    args = p.parse_args()
    torch.set_num_threads(1)

    data = nd.data.Digits(image=True, batch_size=256)
    real = RealSet.from_data(data)
    test = split_tensors(data, "test")
    settings = EvalSettings(epochs=args.eval_epochs)
    print(
        f"digits, ipc {args.ipc}, {args.iterations} outer iterations each; evaluation: {args.k} networks, {settings.describe()}\n"
    )
    x, y = random_subset(real, args.ipc, seed=0)
    baseline = evaluate_set(nd.models.ConvNet((1, 8, 8), 10, width=32, depth=2), x, y, test, settings, args.k)
    print(f"{'method':<16} {'test accuracy':>16} {'vs random':>10} {'s / iteration':>14}")
    print(f"{'random real':<16} {baseline!s:>16} {'':>10} {'':>14}", flush=True)
    for method in args.methods:
        norm = "batch" if method == "dataset.cda" else "instance"
        student = nd.models.ConvNet((1, 8, 8), 10, width=32, depth=2, norm=norm)
        timer = Timer()
        run = nd.fit(
            method,
            student=student,
            data=data,
            ipc=args.ipc,
            max_epochs=10**6,
            eval_epochs=args.eval_epochs,
            runs_root=args.runs_root,
            progress=timer,
            trainer_kwargs={"max_steps": args.iterations, "check_val_every_n_epoch": 10**6},
        )
        images, labels = run.module.distilled()
        mode = "hard" if labels.dtype == torch.long else "soft"
        teacher = run.module.relabel_teacher()
        score = evaluate_set(student, images, labels, test, replace(settings, labels=mode), args.k, teacher=teacher)
        per_iteration = (timer.last - timer.first) / max(1, args.iterations - 1)
        label_note = "teacher relabel" if teacher is not None else f"{mode} labels"
        print(
            f"{method:<16} {score!s:>16} {100 * (score.mean - baseline.mean):>+9.1f}  {per_iteration:>13.2f}  ({label_note})",
            flush=True,
        )


if __name__ == "__main__":
    main()
