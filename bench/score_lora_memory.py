"""Memory of distilling into LoRA adapters (``score.lora``) beside full fine-tuning of the same teacher.

    python bench/score_lora_memory.py                          # teacher MLPDenoiser(2, 512, 4), rank 4
    python bench/score_lora_memory.py --hidden 1024 --rank 8 --batch 512

Both cases run the same objective (one progressive-distillation step, :mod:`nbdistill.families.score.progressive`)
on the same random teacher network ``MLPDenoiser(2, hidden, depth)`` with Adam:

- **LoRA**: ``score.lora``, the teacher's copy with rank-``r`` adapters on every linear layer, only ``A``, ``B`` train;
- **full**: ``score.progressive`` with ``init="teacher"``, every weight of the copy trains.

Printed per case, measured in this run: trainable parameters, the optimizer state's bytes after the step
(Adam's two moments a trainable parameter), and the peak memory of the first training step (forward, backward,
Adam's step with its state allocation) above what the process holds just before it: on CPU the rise of the
peak resident set (``ru_maxrss``) in a fresh process per case, glibc mapping each block of 64 KiB or more
on its own so freed memory is returned; on CUDA ``torch.cuda.max_memory_allocated``. Then LoRA / full ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

import torch

from nbdistill.families.score.lora import LoRADistillation
from nbdistill.families.score.progressive import ProgressiveDistillation
from nbdistill.models import MLPDenoiser

MiB = 2**20
#: glibc settings of the measuring processes (see bench/dataset_memory.py): freed blocks go back to the system.
PRECISE_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0", "MALLOC_ARENA_MAX": "1"}
CASES = ("lora", "full")


def build(case: str, args):
    """The module of ``case`` around a random teacher network, its Adam, and a batch."""
    torch.manual_seed(0)
    teacher = MLPDenoiser(2, hidden=args.hidden, depth=args.depth)
    if case == "lora":
        module = LoRADistillation(
            MLPDenoiser(2, 8, 1), teacher=teacher, rank=args.rank, lora_alpha=float(args.rank), teacher_steps=16
        )
    else:
        student = MLPDenoiser(2, hidden=args.hidden, depth=args.depth)
        module = ProgressiveDistillation(student, teacher=teacher, init="teacher", teacher_steps=16)
    module = module.to(args.device)
    params = [p for p in module.parameters() if p.requires_grad]
    return module, torch.optim.Adam(params, lr=1e-3), torch.randn(args.batch, 2, device=args.device)


def step(module, opt, x) -> None:
    opt.zero_grad(set_to_none=True)
    module.loss_terms((x, None))["loss"].backward()
    opt.step()


def state_bytes(opt: torch.optim.Optimizer) -> int:
    return sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values() if torch.is_tensor(v) and v.dim() > 0)


def measure(case: str, args) -> dict:
    """Trainable parameters, optimizer-state bytes and the peak rise of one step, in this process."""
    import ctypes
    import gc

    torch.set_num_threads(1)
    step(*build(case, argparse.Namespace(**{**vars(args), "hidden": 8, "depth": 1})))  # kernels, thread pools
    module, opt, x = build(case, args)
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    gc.collect()
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step(module, opt, x)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        step(module, opt, x)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    return {"trainable": trainable, "optimizer_bytes": state_bytes(opt), "peak_bytes": peak}


def run_case(case: str, args) -> dict:
    if args.device == "cuda":
        return measure(case, args)
    argv = [sys.executable, __file__, "--child", case] + [
        f"--{k}={v}" for k, v in vars(args).items() if k != "child" and v is not None
    ]
    out = subprocess.run(argv, env={**os.environ, **PRECISE_MALLOC}, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", choices=CASES, default=None)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args)))
        return
    res = {case: run_case(case, args) for case in CASES}
    print(f"teacher MLPDenoiser(2, {args.hidden}, {args.depth}), LoRA rank {args.rank}, batch {args.batch}, {args.device}")
    print(f"{'':24}{'LoRA':>14}{'full':>14}{'LoRA / full':>14}")
    for key, label, scale in (
        ("trainable", "trainable parameters", 1),
        ("optimizer_bytes", "optimizer state (MiB)", MiB),
        ("peak_bytes", "peak of one step (MiB)", MiB),
    ):
        a, b = res["lora"][key] / scale, res["full"][key] / scale
        fmt = "{:>14,.0f}" if scale == 1 else "{:>14.2f}"
        print(f"{label:24}" + fmt.format(a) + fmt.format(b) + f"{(a / b if b else float('nan')):>14.4f}")


if __name__ == "__main__":
    main()
