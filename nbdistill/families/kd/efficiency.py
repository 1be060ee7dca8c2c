r"""Efficiency of teacher and student on this machine, placed on a roofline.

The roofline model ("Roofline", Williams, Waterman & Patterson, CACM 2009; used for inference in
"LLM Inference Unveiled: Survey and Roofline Model Insights", Yuan et al., 2024): a network that
does :math:`F` FLOPs and moves :math:`M` bytes per sample has arithmetic intensity
:math:`I = F / M` and can run at most at

.. math::
    P(I) = \min\big(P_{peak},\; I \cdot B_{mem}\big)

FLOP/s, with :math:`P_{peak}` the machine's compute peak and :math:`B_{mem}` its memory bandwidth.
Both are *measured* here (:func:`measure_peak`: a large float32 matmul and a large copy), as is the
latency; FLOPs are counted by PyTorch's ``FlopCounterMode`` (a multiply-add is 2 FLOPs) and bytes
are estimated as the float32 weights (read once per batch) plus every layer's output written and
read once, at the given batch size. These are estimates of a simple model, good for comparing a
teacher with its student, not a profiler's measurement.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

COLUMNS = ["model", "params", "flops_per_sample", "bytes_per_sample", "intensity", "latency_ms", "achieved_flops"]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_sample(model: nn.Module, example: torch.Tensor) -> float:
    """Forward FLOPs for one sample (``example`` is one batch; the count is divided by its size)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(example)
    return counter.get_total_flops() / example.shape[0]


def bytes_per_sample(model: nn.Module, example: torch.Tensor) -> float:
    """Estimated bytes moved per sample at ``example``'s batch size: weights once per batch, the
    input read once, each leaf module's output written once and read once."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers()
    )
    moved = [example.numel() * example.element_size()]

    def hook(module, args, output):
        if isinstance(output, torch.Tensor):
            moved.append(2 * output.numel() * output.element_size())

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    return weights / example.shape[0] + sum(moved) / example.shape[0]


def latency(model: nn.Module, example: torch.Tensor, repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time in seconds of one forward pass on ``example`` (a batch), in eval mode, no grad."""
    was_training = model.training
    model.eval()
    times = []
    # a GPU runs asynchronously: wait for its work to end before reading the clock
    sync = (lambda: torch.cuda.synchronize(example.device)) if example.is_cuda else (lambda: None)
    with torch.no_grad():
        for i in range(warmup + repeats):
            sync()
            start = time.perf_counter()
            model(example)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    model.train(was_training)
    times.sort()
    return times[len(times) // 2]


def measure_peak(size: int | None = None, copy_mb: int = 64, repeats: int = 5, device: str = "cpu") -> dict[str, float]:
    """Measured compute peak (float32 FLOP/s of a ``size``³ matmul; 512 on a CPU, 4096 on a GPU,
    which a small one leaves idle) and memory bandwidth (bytes/s of a ``copy_mb`` MB copy, read +
    write) of ``device``, the best of ``repeats``; cached for the process."""
    device = str(torch.device(device))
    return _measure_peak(size or (4096 if device.startswith("cuda") else 512), copy_mb, repeats, device)


@functools.lru_cache(maxsize=4)
def _measure_peak(size: int, copy_mb: int, repeats: int, device: str) -> dict[str, float]:
    # a generator of its own: the global one must not move (a run's later random draws, dropout,
    # re-initialisations, would differ between the first run of a process and the next ones)
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, device=device, generator=g)
    b = torch.randn(size, size, device=device, generator=g)
    src = torch.ones(copy_mb * 2**20 // 4, device=device)
    dst = torch.empty_like(src)
    sync = (lambda: torch.cuda.synchronize(device)) if device.startswith("cuda") else (lambda: None)
    best_mm, best_copy = float("inf"), float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        a @ b
        sync()
        best_mm = min(best_mm, time.perf_counter() - start)
        start = time.perf_counter()
        dst.copy_(src)
        sync()
        best_copy = min(best_copy, time.perf_counter() - start)
    return {"peak_flops": 2 * size**3 / best_mm, "bandwidth": 2 * src.numel() * 4 / best_copy}


def efficiency_rows(models: Mapping[str, nn.Module], example: torch.Tensor, repeats: int = 20) -> list[list]:
    """One row per model (``COLUMNS``): parameters, FLOPs and bytes per sample, arithmetic intensity
    (FLOP/byte), measured latency per batch in ms, achieved FLOP/s."""
    rows = []
    for name, model in models.items():
        was_training = model.training
        model.eval()  # measured as deployed: no dropout, and batch-norm statistics left untouched
        try:
            f = flops_per_sample(model, example)
            m = bytes_per_sample(model, example)
            t = latency(model, example, repeats=repeats)
        finally:
            model.train(was_training)
        rows.append([name, count_params(model), f, m, f / m, 1e3 * t, f * example.shape[0] / t])
    return rows


def attainable(intensity: float, peak_flops: float, bandwidth: float) -> float:
    """The roofline: :math:`\\min(P_{peak}, I \\cdot B_{mem})`."""
    return min(peak_flops, intensity * bandwidth)


def efficiency_event(models: Mapping[str, nn.Module], example: torch.Tensor, repeats: int = 20) -> dict:
    """A ``table`` event named ``efficiency`` (what the ``efficiency`` view draws), with the peak
    of the device ``example`` is on."""
    peak = measure_peak(device=example.device)
    return {
        "step": 0,
        "epoch": 0,
        "time": time.time(),
        "kind": "table",
        "name": "efficiency",
        "columns": COLUMNS,
        "rows": efficiency_rows(models, example, repeats),
        "batch_size": int(example.shape[0]),
        **peak,
    }


def log_efficiency(writer, models: Mapping[str, nn.Module], example: torch.Tensor, repeats: int = 10) -> None:
    """Write the efficiency table (and the measured peak) into a run through its ``RunWriter``."""
    event = efficiency_event(models, example, repeats)
    writer.emit(
        "table",
        "efficiency",
        step=0,
        columns=event["columns"],
        rows=event["rows"],
        batch_size=event["batch_size"],
        peak_flops=event["peak_flops"],
        bandwidth=event["bandwidth"],
    )
