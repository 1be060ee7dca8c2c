"""Peak memory and time of one trajectory-matching iteration for the three gradient modes.

    python bench/dataset_memory.py                      # CPU: peak resident memory, one process per point
    python bench/dataset_memory.py --device cuda        # GPU: torch.cuda peak allocated memory
    python bench/dataset_memory.py --image 32 --channels 3 --width 128 --depth 3 --batch 100   # MTT's CIFAR-10 network

One outer iteration = N inner steps on ``--batch`` synthetic images of a ConvNet from
``nbdistill.models`` (instance norm) and the backward pass to the images, the labels and the
learned lr (:func:`nbdistill.families.dataset.unroll.matching_loss`). The expert parameters are
random: memory and time do not depend on their values. Peak memory is measured above what the
process holds just before the iteration (set-up, model, synthetic set): on CUDA with
``torch.cuda.max_memory_allocated``; on CPU as the rise of the peak resident set size
(``ru_maxrss``) in a fresh process per (mode, N), after a one-step warm-up and ``malloc_trim``,
with glibc told to map every block of 64 KiB or more on its own (:data:`PRECISE_MALLOC`), so one
measurement cannot hide in another's freed pages.

What to expect: unrolling keeps every step's graph, so its memory grows about linearly in N; the
constant-memory modes keep one step's graph plus N parameter vectors (4·P bytes each), so theirs
grows by 4·P·ΔN — small when one step's activations (synthetic batch × feature maps) dwarf the
parameter vector, which is the regime of dataset distillation; the table prints that prediction. Every number printed is measured in this run; ratios are taken between them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

from nbdistill.families.dataset.nets import FlatModel
from nbdistill.families.dataset.unroll import (
    GRADIENT_MODES,
    InnerLoop,
    matching_loss,
    plan_steps,
)
from nbdistill.models import ConvNet

MiB = 2**20
#: glibc settings of the CPU measuring processes: blocks of 64 KiB and more are mapped and unmapped
#: one by one, so the resident set follows the tensors alive (glibc's default adaptive threshold
#: keeps freed blocks and adds tens of MiB of noise to a measurement).
PRECISE_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0", "MALLOC_ARENA_MAX": "1"}


def build(args, steps: int):
    torch.manual_seed(0)
    device = torch.device(args.device)
    net = ConvNet((args.channels, args.image, args.image), args.classes, width=args.width, depth=args.depth).to(device)
    model = FlatModel(net)
    theta0 = model.flatten().to(device)
    target = theta0 + 0.01 * torch.randn_like(theta0)
    images = torch.randn(args.batch, args.channels, args.image, args.image, device=device, requires_grad=True)
    labels = torch.arange(args.batch, device=device) % args.classes
    syn_lr = torch.tensor(0.01, device=device, requires_grad=True)
    loop = InnerLoop(model, plan_steps(args.batch, args.batch, steps, torch.Generator().manual_seed(0)))
    return loop, theta0, images, labels, syn_lr, {steps: target}


def iteration(mode: str, parts) -> None:
    loop, theta0, images, labels, syn_lr, targets = parts
    out = matching_loss(loop, theta0, images, labels, syn_lr, targets, gradient=mode)
    out.loss.backward()
    images.grad = syn_lr.grad = None


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_cpu_child(args) -> None:
    """In a fresh process: the rise of peak RSS during one iteration (printed as JSON).

    A one-step iteration of the same mode runs first, so that one-time costs (kernels, thread
    pools) are not counted, then ``malloc_trim`` hands its freed memory back to the system, so
    the measured iteration cannot reuse pages that the baseline already counts."""
    import ctypes
    import gc

    torch.set_num_threads(args.threads)
    iteration(args.child_mode, build(args, 1))
    parts = build(args, args.child_steps)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    before = rss_bytes()
    iteration(args.child_mode, parts)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"peak": max(0, peak - before)}))


def peak_memory(args, mode: str, steps: int) -> int:
    if args.device == "cuda":
        parts = build(args, steps)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        iteration(mode, parts)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    cmd = [sys.executable, __file__, *sys.argv[1:], "--child-mode", mode, "--child-steps", str(steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, **PRECISE_MALLOC})
    return json.loads(out.stdout.strip().splitlines()[-1])["peak"]


def seconds_per_iteration(args, mode: str, steps: int, repeats: int) -> float:
    parts = build(args, steps)
    iteration(mode, parts)  # warm-up
    if args.device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        iteration(mode, parts)
    if args.device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--steps", type=int, nargs="+", default=[10, 20, 40, 80])
    p.add_argument("--image", type=int, default=16)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--batch", type=int, default=200, help="synthetic images per inner step")
    p.add_argument("--time-steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--child-mode", help=argparse.SUPPRESS)
    p.add_argument("--child-steps", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_mode:
        return peak_cpu_child(args)
    torch.set_num_threads(args.threads)
    size = FlatModel(ConvNet((args.channels, args.image, args.image), args.classes, width=args.width, depth=args.depth)).size
    what = "peak CUDA memory allocated" if args.device == "cuda" else "rise of peak resident memory (fresh process each)"
    print(
        f"ConvNet width {args.width} depth {args.depth} on {args.channels}×{args.image}×{args.image}, "
        f"{args.batch} synthetic images a step, P = {size} parameters ({4 * size / MiB:.2f} MiB a vector), {args.device}"
    )
    print(f"\n{what}, one outer iteration, MiB:")
    print(f"{'N':>4} " + " ".join(f"{m:>22}" for m in GRADIENT_MODES))
    peaks = {m: {} for m in GRADIENT_MODES}
    for steps in args.steps:
        for mode in GRADIENT_MODES:
            peaks[mode][steps] = peak_memory(args, mode, steps)
        print(f"{steps:>4} " + " ".join(f"{peaks[m][steps] / MiB:>22.1f}" for m in GRADIENT_MODES), flush=True)
    first, last = args.steps[0], args.steps[-1]
    print(f"\npeak at N={last} / peak at N={first}:")
    for mode in GRADIENT_MODES:
        print(f"  {mode:<22} {peaks[mode][last] / peaks[mode][first]:.2f}x")
    print(f"exact_constant_memory / unrolled at N={last}: {peaks['exact_constant_memory'][last] / peaks['unrolled'][last]:.3f}")
    grown = (peaks["exact_constant_memory"][last] - peaks["exact_constant_memory"][first]) / MiB
    print(
        f"exact_constant_memory grew {grown:.1f} MiB from N={first} to N={last}; "
        f"{last - first} more parameter vectors are {(last - first) * 4 * size / MiB:.1f} MiB"
    )
    print(f"\nseconds per outer iteration at N={args.time_steps} (mean of {args.repeats}, after one warm-up):")
    times = {mode: seconds_per_iteration(args, mode, args.time_steps, args.repeats) for mode in GRADIENT_MODES}
    for mode in GRADIENT_MODES:
        print(f"  {mode:<22} {times[mode]:.3f} s   ({times[mode] / times['unrolled']:.2f}x unrolled)")
    print(
        f"exact_constant_memory overhead: {times['exact_constant_memory'] / times['unrolled']:.2f}x unrolled, "
        f"{times['exact_constant_memory'] / times['tesla']:.2f}x tesla"
    )


if __name__ == "__main__":
    main()
