"""Accuracy of distilled digits: MTT and DATM at 1 and 10 images per class, beside a random real
subset of the same size and the full training data, all evaluated the same way.

    python bench/dataset_digits_accuracy.py                 # about half an hour on 2 CPU cores
    python bench/dataset_digits_accuracy.py --iterations 20 --k 2 --eval-epochs 50   # a quick look

Each distillation runs ``--iterations`` outer iterations through ``nd.fit`` (experts trained once,
then reused from the runs root). Every set is then scored by
:func:`nbdistill.families.dataset.evaluate.evaluate_set`: ``--k`` fresh ConvNets (seeds 0…k−1),
the settings printed with the table. DATM's set is evaluated with its learned soft labels (its
design) and with their argmax (hard labels), so the label effect is visible; the real sets carry
their true labels. Every number printed comes from this run.
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ipc", type=int, nargs="+", default=[1, 10])
    p.add_argument("--methods", nargs="+", default=["dataset.mtt", "dataset.datm"])
    p.add_argument("--iterations", type=int, default=200, help="outer iterations per distillation")
    p.add_argument("--k", type=int, default=5, help="fresh networks per evaluation")
    p.add_argument("--eval-epochs", type=int, default=300)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--runs-root", default=None)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    data = nd.data.Digits(image=True, batch_size=256)
    student = nd.models.ConvNet((1, 8, 8), 10, width=args.width, depth=args.depth)
    real = RealSet.from_data(data)
    test = split_tensors(data, "test")
    settings = EvalSettings(epochs=args.eval_epochs, augment=True, labels="hard")
    print(f"digits: {len(real.y)} training, {len(test[1])} test images; ConvNet width {args.width} depth {args.depth}")
    print(f"evaluation: {args.k} networks each; {settings.describe()}\n", flush=True)

    rows: list[tuple[str, int | None, object, str]] = []
    for ipc in args.ipc:
        for method in args.methods:
            started = time.time()
            run = nd.fit(
                method,
                student=student,
                data=data,
                ipc=ipc,
                max_epochs=10**6,
                eval_epochs=args.eval_epochs,
                runs_root=args.runs_root,
                trainer_kwargs={"max_steps": args.iterations, "check_val_every_n_epoch": 10**6},
            )
            images, labels = run.module.distilled()
            minutes = (time.time() - started) / 60
            if labels.dtype == torch.long:
                rows.append(
                    (
                        method,
                        ipc,
                        evaluate_set(student, images, labels, test, settings, args.k),
                        f"{minutes:.1f} min, run {run.id}",
                    )
                )
            else:
                soft = evaluate_set(student, images, labels, test, replace(settings, labels="soft"), args.k)
                hard = evaluate_set(student, images, labels, test, settings, args.k)
                rows.append((method + " (soft labels)", ipc, soft, f"{minutes:.1f} min, run {run.id}"))
                rows.append((method + " (hard labels)", ipc, hard, ""))
            print(f"{rows[-1][0]:<28} ipc {ipc:>3}: {rows[-1][2]}", flush=True)
        x, y = random_subset(real, ipc, seed=0)
        rows.append(("random real subset", ipc, evaluate_set(student, x, y, test, settings, args.k), ""))
        print(f"{'random real subset':<28} ipc {ipc:>3}: {rows[-1][2]}", flush=True)
    full = evaluate_set(student, real.x, real.y, test, settings, args.k)
    rows.append(("full data", None, full, f"all {len(real.y)} images"))

    print(f"\n{'set':<28} {'ipc':>5}  {'test accuracy (mean ± std)':>26}  {'vs random':>9}  note")
    random_mean = {ipc: s.mean for name, ipc, s, _ in rows if name == "random real subset"}
    for name, ipc, score, note in rows:
        gain = f"{100 * (score.mean - random_mean[ipc]):+.1f}" if ipc in random_mean and name != "random real subset" else ""
        print(f"{name:<28} {ipc:>5}  {score!s:>26}  {gain:>9}  {note}")
    print(f"\nfull data / random subset at ipc {args.ipc[0]}: {full.mean / random_mean[args.ipc[0]]:.2f}x")


if __name__ == "__main__":
    main()
