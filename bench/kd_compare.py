"""The KD comparison table on digits: every registered kd method, 5 seeds, the student alone and the teacher.

    python bench/kd_compare.py                     # all kd methods, 5 seeds, 60 epochs
    python bench/kd_compare.py --seeds 2 --epochs 20 --methods kd.hinton kd.dkd
    python bench/kd_compare.py --json table.json   # also save the rows (the notebook's comparison view reads them)

The setting is the tutorials' (``nbdistill.demo.SETTING``): student MLP 64-32-10 trained on **100
labelled digits** (10 per class), teacher ``digits-mlp`` (trained on all 1 078), Adam 1e-2,
batch 64, each method with its registered defaults. Methods that need another teacher or input
form get it, and their row says so: ``kd.ofa`` distils the conv teacher ``digits-convnet`` on
8×8 images (the MLP student flattens them), ``kd.moe_teacher`` the mixture-of-experts teacher
``digits-moe``; their gap closed is measured against their own teacher. ``kd.signal`` works on
1-D signals only and is compared on MNIST-1D (SignalCNN student, ``mnist1d-convtransformer``
teacher, 400 training signals) in a second table, and ``kd.lelp`` against ``kd.hinton`` on the
few-class problem digits 3 against 8 (40 labels, MLP 64-8-2) in a third; a fourth gives the clean
and PGD-20 accuracy of the student-only, Hinton and MTARD students. Accuracy is the student's test accuracy after
the last epoch (not the best epoch), mean ± std over seeds; seconds per epoch is the wall time of
the run (training, validation, set-up) divided by its epochs, on this machine, under its load.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import pytorch_lightning as pl
import torch

import nbdistill as nd
from nbdistill.families.kd.compare import (
    BASELINE,
    Result,
    comparison_rows,
    format_table,
    run_comparison,
)

DIGITS_TEACHER = "digits-mlp"
#: per-method differences from the default setting: teacher, data options
SETTINGS = {
    "kd.ofa": {"teacher": "digits-convnet", "data": {"image": True}},
    "kd.moe_teacher": {"teacher": "digits-moe"},
}
SIGNAL_ONLY = {"kd.signal"}
FEW_CLASSES = [3, 8]


def digits_student(seed: int):
    pl.seed_everything(seed, verbose=False)
    return nd.models.MLP(64, [32], 10)


def run_digits(methods, seeds, epochs, progress) -> list[Result]:
    results: list[Result] = []
    for method in methods:
        s = SETTINGS.get(method, {})
        teacher_name = s.get("teacher", DIGITS_TEACHER)
        data_kw = s.get("data", {})
        try:
            got = run_comparison(
                [method],
                digits_student,
                nd.zoo.teacher(teacher_name),
                lambda seed, data_kw=data_kw: nd.data.Digits(n_train=100, seed=seed, **data_kw),
                seeds=seeds,
                max_epochs=epochs,
                baseline=method == BASELINE,
                progress=progress,
            )
        except nd.ConfigError as exc:
            print(f"  {method}: skipped ({exc})", flush=True)
            continue
        for r in got:
            if teacher_name != DIGITS_TEACHER:
                r.method = f"{r.method} (teacher {teacher_name})"
            results.append(r)
    return results


def run_signal(seeds, epochs, progress) -> list[Result]:
    def student(seed):
        pl.seed_everything(seed, verbose=False)
        return nd.models.SignalCNN((1, 40), 10, width=8)

    return run_comparison(
        ["kd.hinton", "kd.signal"],
        student,
        nd.zoo.teacher("mnist1d-convtransformer"),
        lambda seed: nd.data.MNIST1D(n_train=400, seed=seed),
        seeds=seeds,
        max_epochs=epochs,
        progress=progress,
    )


def run_few_class(seeds, epochs, progress) -> list[Result]:
    """Digits 3 against 8, 40 labels in batches of 8, MLP 64-8-2, the ten-class teacher's head restricted to the pair."""
    from nbdistill.families.kd.subclasses import few_class_teacher

    def student(seed):
        pl.seed_everything(seed, verbose=False)
        return nd.models.MLP(64, [8], len(FEW_CLASSES))

    return run_comparison(
        ["kd.hinton", "kd.lelp"],
        student,
        few_class_teacher(nd.zoo.teacher(DIGITS_TEACHER), FEW_CLASSES),
        lambda seed: nd.data.Digits(classes=FEW_CLASSES, n_train=40, batch_size=8, seed=seed),
        seeds=seeds,
        max_epochs=epochs,
        progress=progress,
    )


def run_robustness(seeds, epochs, progress) -> dict[str, dict[str, list[float]]]:
    """Clean and PGD-20 test accuracy (ε = 0.5, the same white-box attack on every student) of the
    student-only, Hinton KD and MTARD students of the digits setting."""
    from nbdistill.families.kd.attacks import pgd_attack

    data = nd.data.Digits()
    x, y = data.dataset("test").tensors
    x_train = data.dataset("train").tensors[0]
    box = (x_train.min(0).values, x_train.max(0).values)
    out: dict[str, dict[str, list[float]]] = {}
    for method in (BASELINE, "kd.hinton", "kd.mtard"):
        for seed in seeds:
            run = nd.fit(
                method,
                student=digits_student(seed),
                teacher=nd.zoo.teacher(DIGITS_TEACHER),
                data=nd.data.Digits(n_train=100, seed=seed),
                max_epochs=epochs,
                seed=seed,
            )
            net = run.module.student.eval()
            adv = pgd_attack(net, x, y, 0.5, 2.5 * 0.5 / 20, 20, "uniform", *box, generator=torch.Generator().manual_seed(seed))
            with torch.no_grad():
                clean, attacked = ((net(v).argmax(-1) == y).float().mean().item() for v in (x, adv))
            out.setdefault(method, {"clean": [], "pgd": []})
            out[method]["clean"].append(clean)
            out[method]["pgd"].append(attacked)
            print(f"  {method:<16} seed {seed}  clean {clean:.4f}  PGD-20 {attacked:.4f}", flush=True)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--methods", nargs="*", default=None, help="default: every registered kd method")
    parser.add_argument("--no-signal", action="store_true", help="skip the MNIST-1D table")
    parser.add_argument("--no-few-class", action="store_true", help="skip the two-class (LELP) table")
    parser.add_argument("--no-robustness", action="store_true", help="skip the clean/PGD table (MTARD)")
    parser.add_argument("--json", default=None, help="save the rows of both tables to this file")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = args.methods or nd.methods("kd")
    digits_methods = [BASELINE] + [m for m in methods if m != BASELINE and m not in SIGNAL_ONLY]
    seeds = list(range(args.seeds))
    start = time.time()

    def progress(r: Result) -> None:
        print(
            f"  {r.method:<40} seed {r.seed}  student {r.student_acc:.4f}  teacher {r.teacher_acc:.4f}  "
            f"{r.seconds_per_epoch:.2f} s/epoch   [{time.time() - start:.0f} s]",
            flush=True,
        )

    print(f"digits, 100 labels, student MLP 64-32-10, {args.epochs} epochs, seeds {seeds}")
    results = run_digits(digits_methods, seeds, args.epochs, progress)
    rows = per_teacher_rows(results)
    print()
    print(format_table(rows))
    out = {"digits": rows}
    if not args.no_signal and any(m in SIGNAL_ONLY for m in methods):
        print(f"\nMNIST-1D, 400 training signals, student SignalCNN, teacher mnist1d-convtransformer, {args.epochs} epochs")
        signal_rows, _ = comparison_rows(run_signal(seeds, args.epochs, progress))
        print()
        print(format_table(signal_rows))
        out["mnist1d"] = signal_rows
    if not args.no_few_class and "kd.lelp" in methods:
        print(
            f"\ndigits {FEW_CLASSES[0]} against {FEW_CLASSES[1]}, 40 labels, batch 8, student MLP 64-8-2, "
            f"teacher {DIGITS_TEACHER} restricted to the pair, {args.epochs} epochs"
        )
        few_rows, _ = comparison_rows(run_few_class(seeds, args.epochs, progress))
        print()
        print(format_table(few_rows))
        out["few_class"] = few_rows
    if not args.no_robustness and "kd.mtard" in methods:
        print(f"\ndigits, 100 labels: clean and PGD-20 (ε = 0.5, standardised units) test accuracy, {args.epochs} epochs")
        rob = run_robustness(seeds, args.epochs, progress)
        print("\n| method | clean acc (%) | PGD-20 acc (%) |\n|---|---|---|")
        for method, accs in rob.items():
            cells = [
                f"{100 * statistics.fmean(v):.2f} ± {100 * (statistics.stdev(v) if len(v) > 1 else float('nan')):.2f}"
                for v in accs.values()
            ]
            print(f"| {method} | {cells[0]} | {cells[1]} |")
        out["robustness"] = rob
    print(f"\n({time.time() - start:.0f} s in all)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=lambda v: None if isinstance(v, float) and not math.isfinite(v) else v)


def per_teacher_rows(results: list[Result]) -> list[list]:
    """Comparison rows where each method's gap closed is measured against its own teacher."""
    rows, _ = comparison_rows(results)
    own_teacher = [r.teacher_acc for r in results if r.method == BASELINE]
    rows[0][1] = sum(own_teacher) / len(own_teacher)  # the default teacher, as the baseline runs measured it
    base = next(r for r in rows if r[0] == BASELINE)[1]
    for row in rows[2:]:
        own = [r.teacher_acc for r in results if r.method == row[0]]
        teacher = sum(own) / len(own)
        row[3] = (row[1] - base) / (teacher - base) if teacher > base else float("nan")
    return rows


if __name__ == "__main__":
    main()
