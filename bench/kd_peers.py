"""Hinton KD on digits three ways, side by side: a plain PyTorch loop, torchdistill's KDLoss, nd.fit.

    python bench/kd_peers.py                  # 5 interleaved repetitions of 60 epochs
    python bench/kd_peers.py --reps 8 --epochs 100

Same task and student in every case: Digits (1 078 training images, batch 64), student MLP
64-32-10, teacher ``digits-mlp``, T = 4, CE weight 0.1 and T²·KL weight 0.9, Adam 1e-2, the
student's accuracy on the validation split after every epoch and on the test split at the end.

  (a) plain loop: PyTorch only, the loss written out (``F.cross_entropy`` + ``F.kl_div``
      batchmean), the teacher run on every batch under ``no_grad``;
  (b) torchdistill: its ``KDLoss`` (torchdistill 1.1.5, ``torchdistill.losses.mid_level``) driven
      as its training harness drives it — forward hooks fill the student's and teacher's I/O
      dicts with the logit modules' outputs and the loss reads them — in a plain loop: the
      harness itself (``DistillationBox``) imports torchvision, which is not needed otherwise and
      is not installed here. The teacher runs on every batch, as in torchdistill. Mind its
      parameters: ``alpha`` weighs the CE and ``beta`` the T²·KL (with alpha = 0 it returns the
      bare KL, without T² or beta), so alpha = 0.1, beta = 0.9 here;
  (c) nd.fit("kd.hinton"): Lightning, the run folder, gap metrics every epoch and on the test
      split, and the teacher-output cache (the teacher's logits on the fixed training inputs
      computed once);
  (d) the plain loop of (a) with the teacher's logits computed once, the same cache as (c): how
      much of (c)'s speed is the cache and how much the framework costs.

Each case's samples/s is training samples seen / wall time of the whole call (set-up included).
The cases are interleaved, their order rotated every repetition (a b c d, b c d a, …), and
medians compared. Prints accuracies and the
ratios: goals are nbdistill faster than torchdistill (b/c time > 1) and within 1.3 × the plain loop
(c/a time ≤ 1.3). Needs ``pip install torchdistill`` (run with ``--no-deps`` if pip would replace
your torch build); without it, (b) is skipped.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import nbdistill as nd

TEACHER = "digits-mlp"
HIDDEN = [32]
T, CE_WEIGHT, LR = 4.0, 0.1, 1e-2


def setup(seed: int, batch_size: int):
    pl.seed_everything(seed, verbose=False)
    student = nd.models.MLP(64, HIDDEN, 10)
    data = nd.data.Digits(batch_size=batch_size, seed=seed)
    data.setup("fit")
    return student, nd.zoo.teacher(TEACHER), data


def accuracy(model, x, y) -> float:
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(-1) == y).float().mean().item()


def plain_kd_loss(zs, zt, y):
    soft = F.kl_div(F.log_softmax(zs / T, -1), F.softmax(zt / T, -1), reduction="batchmean")
    return CE_WEIGHT * F.cross_entropy(zs, y) + (1 - CE_WEIGHT) * T**2 * soft


def loop(epochs: int, batch_size: int, seed: int, step, cache: bool = False) -> tuple[int, float]:
    """The shared training loop; ``step(student, teacher, x, y, z_cached)`` returns the loss."""
    student, teacher, data = setup(seed, batch_size)
    (x_tr, y_tr), (x_val, y_val), (x_te, y_te) = (data.dataset(s).tensors for s in ("train", "val", "test"))
    cached = None
    if cache:
        with torch.no_grad():
            cached = teacher(x_tr)
    loader = DataLoader(
        TensorDataset(x_tr, y_tr, torch.arange(len(y_tr))),
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    opt = torch.optim.Adam(student.parameters(), lr=LR)
    seen = 0
    for _ in range(epochs):
        student.train()
        for x, y, i in loader:
            loss = step(student, teacher, x, y, None if cached is None else cached[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(x)
        accuracy(student, x_val, y_val)
    return seen, accuracy(student, x_te, y_te)


def plain_step(student, teacher, x, y, cached):
    if cached is None:
        with torch.no_grad():
            cached = teacher(x)
    return plain_kd_loss(student(x), cached, y)


class TorchdistillStep:
    """torchdistill's KDLoss fed by forward hooks that store the logit modules' outputs in I/O dicts."""

    def __init__(self):
        from torchdistill.losses.mid_level import KDLoss

        self.loss = KDLoss("net.2", "output", "net.4", "output", temperature=T, alpha=CE_WEIGHT, beta=1 - CE_WEIGHT)
        self.io = {"student": {}, "teacher": {}}
        self.hooked: set[int] = set()

    def _hook(self, model, path, who):
        if id(model) in self.hooked:
            return

        def store(module, inputs, output):
            self.io[who][path] = {"output": output}

        model.get_submodule(path).register_forward_hook(store)
        self.hooked.add(id(model))

    def __call__(self, student, teacher, x, y, cached):
        self._hook(student, "net.2", "student")
        self._hook(teacher, "net.4", "teacher")
        with torch.no_grad():
            teacher(x)
        student(x)
        return self.loss(self.io["student"], self.io["teacher"], y)


def with_fit(epochs: int, batch_size: int, seed: int, root: Path) -> tuple[int, float]:
    student, teacher, data = setup(seed, batch_size)
    run = nd.fit(
        "kd.hinton",
        student=student,
        teacher=teacher,
        data=data,
        max_epochs=epochs,
        seed=seed,
        runs_root=root,
        temperature=T,
        alpha=CE_WEIGHT,
        lr=LR,
    )
    assert run.status == "finished", run.status
    return epochs * len(data.dataset("train")), run.metrics["test/student_acc"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (tiny networks: 1 is fastest)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        TorchdistillStep()
        have_td = True
    except ImportError:
        have_td = False
        print("torchdistill is not installed (pip install torchdistill): case (b) skipped")
    root = Path(tempfile.mkdtemp(prefix="nbdistill-peers-"))
    names = {"a": "plain loop", "b": "torchdistill KDLoss", "c": "nd.fit kd.hinton", "d": "plain loop + cache"}
    times: dict[str, list[float]] = {k: [] for k in names}
    accs: dict[str, list[float]] = {k: [] for k in names}
    samples = {}
    print(
        f"digits, student MLP 64-{'-'.join(map(str, HIDDEN))}-10, teacher {TEACHER}, T={T}, CE weight {CE_WEIGHT}, "
        f"batch {args.batch_size}, {args.epochs} epochs, {args.reps} reps, {torch.get_num_threads()} thread(s)"
    )
    # warm every path once (imports, first-call costs) outside the timings
    loop(1, args.batch_size, 0, plain_step)
    if have_td:
        loop(1, args.batch_size, 0, TorchdistillStep())
    with_fit(1, args.batch_size, 0, root)
    for rep in range(args.reps):
        cases = [("a", lambda rep=rep: loop(args.epochs, args.batch_size, rep, plain_step))]
        if have_td:
            cases.append(("b", lambda rep=rep: loop(args.epochs, args.batch_size, rep, TorchdistillStep())))
        cases += [
            ("c", lambda rep=rep: with_fit(args.epochs, args.batch_size, rep, root)),
            ("d", lambda rep=rep: loop(args.epochs, args.batch_size, rep, plain_step, cache=True)),
        ]
        cases = cases[rep % len(cases) :] + cases[: rep % len(cases)]  # rotate: no case always runs first
        for key, call in cases:
            start = time.perf_counter()
            seen, acc = call()
            elapsed = time.perf_counter() - start
            times[key].append(elapsed)
            accs[key].append(acc)
            samples[key] = seen
            print(
                f"  rep {rep} ({key}) {names[key]:<22} {elapsed:7.2f} s  {seen / elapsed:8.0f} samples/s  test acc {acc:.4f}",
                flush=True,
            )
    median = {k: statistics.median(v) for k, v in times.items() if v}
    print()
    for key, value in median.items():
        print(
            f"({key}) {names[key]:<22} median {value:7.2f} s  {samples[key] / value:8.0f} samples/s  "
            f"test acc {statistics.fmean(accs[key]):.4f} (mean of {len(accs[key])})"
        )
    print()
    print(f"nd.fit / plain loop        time ratio c/a: {median['c'] / median['a']:.2f}   (goal <= 1.3)")
    if "b" in median:
        print(f"torchdistill / nd.fit      time ratio b/c: {median['b'] / median['c']:.2f}   (goal > 1: nbdistill faster)")
        print(f"torchdistill / plain loop  time ratio b/a: {median['b'] / median['a']:.2f}")
    print(f"nd.fit / cached plain loop time ratio c/d: {median['c'] / median['d']:.2f}   (the framework's own cost)")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
