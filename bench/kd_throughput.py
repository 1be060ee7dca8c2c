"""Training throughput of Hinton KD on digits: a hand-written PyTorch loop, ``nd.fit``, and the live panel.

    python bench/kd_throughput.py                 # defaults: 3 interleaved repetitions
    python bench/kd_throughput.py --reps 5 --epochs 100
    python bench/kd_throughput.py --busy          # one core kept busy by another process in every case

Measures samples/s (training samples seen / wall seconds of the whole call, set-up included) of

  (a) a minimal hand-written loop: same student, teacher, data, batch size, epochs, optimiser and
      loss (``nbdistill.families.kd.losses.hinton_kd``), with the teacher run on every batch and
      one validation pass per epoch, as ``nd.fit`` does;
  (b) ``nd.fit("kd.hinton", ...)``: Lightning, the run logger writing the run folder, gap metrics
      every epoch and on the test split at the end;
  (c) the same through the real live panel, headless: ``Panel(...).start()`` then ``.wait()``,
      with its event observer, progress callback, ticker thread and redraws (in its render
      worker process) at the panel's rate;
  (d) (b) with the teacher-output cache switched off (``cache_teacher=False``): the teacher runs
      on every batch;
  (e) ``nd.fit("kd.student_only", ...)``: the student trained alone (cross-entropy, no teacher
      in the loss), the cost distilling is compared with.

The repetitions are interleaved (a, b, c, d, e, a, b, …) and the medians compared, because a shared
machine is noisy. It prints ``slowdown b/a`` (time ratio, goal <= 1.5), ``throughput c/b``
while training (goal >= 0.95: training samples over each run's own start→end time in run.json, the
same clock for b and c; the whole-call ratio, which adds the panel's one final figure after the
run, is printed beside it), what the cache saves (d/b) and distilling against training alone (b/e, the cache's
goal: about 1). See bench/README.md.

``--busy`` keeps one core busy during every measured case, as a Binder user's or a laptop's is: a
spinning Python process (``while True: pass``) is started just before each case and killed right
after it, outside the case's timing. On a 2-core machine that leaves training one core, which the
panel's ticker and render worker must share with it.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

import nbdistill as nd
from nbdistill.core.gap import classification_gap
from nbdistill.families.kd.losses import hinton_kd

HIDDEN = [32]
TEACHER = "digits-mlp"
HPARAMS = {"temperature": 4.0, "alpha": 0.1, "lr": 1e-2, "weight_decay": 0.0}


def student(seed: int) -> torch.nn.Module:
    pl.seed_everything(seed, verbose=False)
    return nd.models.MLP(64, HIDDEN, 10)


def hand_loop(epochs: int, batch_size: int, seed: int) -> tuple[int, None]:
    """(a): the loop one would write by hand; returns (training samples seen, no run).

    Like ``nd.fit`` it computes the teacher's logits on the training inputs once (the inputs are
    fixed, so this is exact) and measures the gap on the validation split after every epoch.
    """
    model = student(seed)
    teacher = nd.zoo.teacher(TEACHER)
    data = nd.data.Digits(batch_size=batch_size, seed=seed)
    data.setup("fit")
    x_train, y_train = data.dataset("train").tensors
    x_val, y_val = data.dataset("val").tensors
    with torch.no_grad():
        z_train = teacher(x_train)
    train = TensorDataset(x_train, y_train, torch.arange(len(y_train)))
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    opt = torch.optim.Adam(model.parameters(), lr=HPARAMS["lr"], weight_decay=HPARAMS["weight_decay"])
    seen = 0
    for _ in range(epochs):
        model.train()
        for x, y, i in loader:
            loss = hinton_kd(model(x), z_train[i], y, HPARAMS["temperature"], HPARAMS["alpha"])["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(x)
        model.eval()
        with torch.no_grad():
            classification_gap(teacher(x_val), model(x_val), y_val, num_classes=10)
    return seen, None


def with_fit(epochs: int, batch_size: int, seed: int, root: Path, method: str = "kd.hinton", cache: bool = True):
    """(b), (d), (e): ``nd.fit`` with the run logger; returns (training samples seen, the run)."""
    data = nd.data.Digits(batch_size=batch_size, seed=seed)
    hparams = HPARAMS if method == "kd.hinton" else {k: HPARAMS[k] for k in ("lr", "weight_decay")}
    run = nd.fit(
        method,
        student=student(seed),
        teacher=nd.zoo.teacher(TEACHER),
        data=data,
        max_epochs=epochs,
        seed=seed,
        runs_root=root,
        cache_teacher=cache,
        **hparams,
    )
    assert run.status == "finished", run.status
    return epochs * len(data.dataset("train")), run


def make_panel(epochs: int, batch_size: int, seed: int, root: Path):
    from nbdistill.widgets.panel import Panel

    data = nd.data.Digits(batch_size=batch_size, seed=seed)
    panel = Panel(
        "kd",
        teacher=nd.zoo.teacher(TEACHER),
        student=student(seed),
        data=data,
        method="kd.hinton",
        max_epochs=epochs,
        seed=seed,
        runs_root=root,
    )
    return panel, data


def with_panel(panel, data, epochs: int):
    """(c): the live panel's own Start/observer/redraw machinery, headless; returns (samples, run)."""
    panel.start(**HPARAMS)
    run = panel.wait()
    assert run is not None and run.status == "finished", (panel.status, panel.error)
    return epochs * len(data.dataset("train")), run


class Spinner:
    """Another process keeping one core busy while it lives: ``with Spinner(on): ...``."""

    def __init__(self, on: bool = True):
        self.on = on
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Spinner:
        if self.on:
            self.proc = subprocess.Popen([sys.executable, "-S", "-c", "while True: pass"])
            time.sleep(0.2)  # (outside the timing) let it start and take its core
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60, help="epochs per measurement (each should last 2-3 s or more)")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions of a, b, c")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (tiny networks: 1 is fastest)")
    parser.add_argument("--no-panel", action="store_true", help="skip (c)")
    parser.add_argument("--busy", action="store_true", help="keep one core busy by another process during every case")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    nd.zoo.teacher(TEACHER)  # warm the imports and the checkpoint read outside the timings
    root = Path(tempfile.mkdtemp(prefix="nbdistill-bench-"))
    panel = data = None
    if not args.no_panel:
        panel, data = make_panel(args.epochs, args.batch_size, 0, root)
        panel.redraw()  # start the render worker outside the timings, as an open panel has it running

    times: dict[str, list[float]] = {k: [] for k in "abcde"}
    cpu: dict[str, list[float]] = {k: [] for k in "abcde"}
    in_run: dict[str, list[float]] = {k: [] for k in "bcde"}
    samples: dict[str, int] = {}
    redraws: list[int] = []
    final_draw: list[float] = []
    print(
        f"digits, student MLP 64-{'-'.join(map(str, HIDDEN))}-10, teacher {TEACHER}, batch {args.batch_size}, "
        f"{args.epochs} epochs, {args.reps} reps, {torch.get_num_threads()} thread(s)"
        + (", one core kept busy by another process" if args.busy else "")
    )
    for rep in range(args.reps):
        cases = [
            ("a", lambda rep=rep: hand_loop(args.epochs, args.batch_size, rep)),
            ("b", lambda rep=rep: with_fit(args.epochs, args.batch_size, rep, root)),
        ]
        if panel is not None:
            cases.append(("c", lambda: with_panel(panel, data, args.epochs)))
        cases += [
            ("d", lambda rep=rep: with_fit(args.epochs, args.batch_size, rep, root, cache=False)),
            ("e", lambda rep=rep: with_fit(args.epochs, args.batch_size, rep, root, method="kd.student_only")),
        ]
        for key, call in cases:
            with Spinner(args.busy):
                start, start_cpu = time.perf_counter(), time.process_time()
                seen, run = call()
                elapsed = time.perf_counter() - start
                spent_cpu = time.process_time() - start_cpu
            cpu[key].append(spent_cpu)
            samples[key] = seen
            times[key].append(elapsed)
            note = ""
            if run is not None:
                in_run[key].append(run.info["ended"] - run.info["started"])
                note = f"   (run.json start→end {in_run[key][-1]:.2f} s)"
            if key == "c":
                redraws.append(panel.redraws)
                final_draw.append(panel.renderer.final_cost)
                note += f"   {panel.redraws} redraws"
            print(
                f"  rep {rep} ({key}) {elapsed:7.2f} s  {seen / elapsed:9.0f} samples/s   cpu {cpu[key][-1]:6.2f} s{note}",
                flush=True,
            )

    names = {
        "a": "hand-written loop",
        "b": "nd.fit + run logger",
        "c": "nd.fit + live panel",
        "d": "nd.fit, cache off",
        "e": "nd.fit student alone",
    }
    median = {k: statistics.median(v) for k, v in times.items() if v}
    rate = {k: samples[k] / median[k] for k in median}
    print()
    for key in median:
        extra = f"   ({statistics.median(redraws):.0f} redraws a run)" if key == "c" else ""
        print(
            f"({key}) {names[key]:<22} median {median[key]:7.2f} s   {rate[key]:9.0f} samples/s   "
            f"cpu {statistics.median(cpu[key]):6.2f} s{extra}"
        )
    print()
    print(
        f"slowdown b/a   (time ratio, goal <= 1.5):        {median['b'] / median['a']:.2f}"
        f"   (cpu time ratio {statistics.median(cpu['b']) / statistics.median(cpu['a']):.2f})"
    )
    if "c" in median:
        train_only = statistics.median(in_run["b"]) / statistics.median(in_run["c"])
        print(f"throughput c/b while training (samples/s ratio over run.json start→end, goal >= 0.95): {train_only:.3f}")
        print(
            f"  the whole call, with the panel's start and its final figure: {rate['c'] / rate['b']:.3f}"
            f"   (the panel adds {median['c'] - median['b']:+.2f} s a run outside training; its final "
            f"figure, drawn after the run ends with every view's margins fitted, took {statistics.median(final_draw):.2f} s)"
        )
        panel.close()
    print(f"teacher cache  (time ratio d/b, cache off / on):  {median['d'] / median['b']:.2f}")
    print(
        f"distilling vs training alone (time ratio b/e, goal about 1): {median['b'] / median['e']:.2f}"
        f"   (without the cache d/e: {median['d'] / median['e']:.2f})"
    )
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
