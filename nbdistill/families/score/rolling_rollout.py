"""Rolling out a window generator into a sequence of frames: Rolling Forcing's rolling window, or frame by frame.

The generator is a denoiser over frames with one noise level each (:class:`~nbdistill.models.WindowDenoiser`).
At every call it reads ``sink + context + window`` frames, in this order:

- ``sink``: the first ``sink`` frames it emitted, clean (``t = 0``): the paper's *attention sink*, the
  key-value states of the initial frames kept as a global anchor;
- ``context``: the ``context`` most recent emitted frames after the sink, clean (the paper's local
  attention window over the clean KV cache, ``context_noise = 0``);
- ``window``: the ``W`` frames being denoised.

Slots with no frame yet (the start of a sequence) are *absent*: zeros at ``t = 1`` (:data:`ABSENT_TIME`).

Two ways to roll out (``mode``), both ``W`` denoiser levels per frame (:func:`.losses.rolling.window_levels`):

- ``"rolling"`` (Rolling Forcing): the window holds ``W`` frames at the rising levels ``τ_0 < ... < τ_{W-1}``,
  all denoised jointly by one call; slot 0's prediction is emitted, the rest re-noised one level down and
  shifted, a new noise frame appended (one call per frame once the window is full);
- ``"causal"`` (Self Forcing, strict causality): each frame alone (slot 0, the other slots absent) goes
  through the ``W`` levels before the next one starts (``W`` calls per frame). The naive baseline.

With ``grad_phase`` (training) only some calls keep their gradients and the rollout also returns their
x0-predictions, one per frame, as the paper's training pipeline does: in ``"rolling"`` mode the
non-overlapping windows of :func:`.losses.rolling.gradient_windows`, in ``"causal"`` mode the
``grad_phase``-th level of every frame (``same_step_across_blocks``); a frame whose prediction stops
there is what the following frames read as context. Every other call runs without gradients.
"""

from __future__ import annotations

import torch

from ...models.window_denoiser import ABSENT_TIME
from .losses.rolling import gradient_windows, renoise, window_levels, window_times

MODES = ("rolling", "causal")


def assemble(emitted: list[torch.Tensor], sink: int, context: int, window: torch.Tensor, times: torch.Tensor):
    """The generator's input ``(x [B, sink + context + W, d], t [B, sink + context + W])`` from the emitted clean
    frames (each ``[B, d]``), the window ``[B, W, d]`` and its levels ``[W]``; absent slots on the left of each part."""
    b, _, d = window.shape
    parts, levels = [], []
    for frames, slots in ((emitted[:sink], sink), (emitted[sink:][-context:] if context else [], context)):
        missing = slots - len(frames)
        parts += [window.new_zeros(b, missing, d)] + [f[:, None] for f in frames]
        levels.append(torch.cat([times.new_full((missing,), ABSENT_TIME), times.new_zeros(len(frames))]))
    x = torch.cat(parts + [window], 1)
    t = torch.cat(levels + [times]).expand(b, -1)
    return x, t


def roll_out(
    generator_net,
    schedule,
    batch: int,
    frames: int,
    frame_dim: int,
    *,
    window: int,
    sink: int = 1,
    context: int = 3,
    mode: str = "rolling",
    renoise_with: str = "fresh",
    noise: torch.Generator | None = None,
    grad_phase: int | None = None,
    dtype: torch.dtype = torch.float32,
    device=None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(clean [batch, frames, d], predictions [batch, frames, d] or None)``: ``frames`` frames rolled out by
    ``generator_net`` from noise (drawn on the CPU from ``noise`` when given), see the module docstring.
    ``renoise_with``: ``"fresh"`` noise (the paper) or ``"ddim"`` (each frame's own predicted noise)."""
    levels = window_levels(schedule, window, dtype=dtype, device=device)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=noise, dtype=dtype).to(device)

    def fresh(*shape: int) -> torch.Tensor | None:
        return randn(*shape) if renoise_with == "fresh" else None

    def denoise(x_win: torch.Tensor, t_win: torch.Tensor, emitted: list, grad: bool) -> torch.Tensor:
        x, t = assemble(emitted, sink, context, x_win, t_win)
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            return generator_net(x, t)[:, -window:]

    emitted: list[torch.Tensor] = []
    predictions = [None] * frames if grad_phase is not None else None
    if mode == "rolling":
        grad_steps = set(gradient_windows(frames, window, grad_phase)) if grad_phase is not None else set()
        state = torch.zeros(batch, window - 1, frame_dim, dtype=dtype, device=device)
        for step in range(frames + window - 1):
            x_win = torch.cat([state, randn(batch, 1, frame_dim)], 1)
            t_win = window_times(levels, step)
            x0 = denoise(x_win, t_win, emitted, step in grad_steps)
            first = step - window + 1
            if step in grad_steps:
                for s in range(max(0, -first), min(window, frames - first)):
                    predictions[first + s] = x0[:, s]
            x0 = x0.detach()
            if 0 <= first < frames:
                emitted.append(x0[:, 0])
            moved = renoise(x0[:, 1:], x_win[:, 1:], t_win[1:], levels[:-1], schedule, fresh(batch, window - 1, frame_dim))
            exists = (t_win[1:] != ABSENT_TIME)[None, :, None]
            state = torch.where(exists, moved, torch.zeros_like(moved))
    else:
        grid = levels.flip(0)
        last = window - 1 if grad_phase is None else grad_phase
        absent = torch.full((window - 1,), ABSENT_TIME, dtype=dtype, device=device)
        for f in range(frames):
            x = randn(batch, frame_dim)
            for i in range(last + 1):
                x_win = torch.cat([x[:, None], x.new_zeros(batch, window - 1, frame_dim)], 1)
                x0 = denoise(x_win, torch.cat([grid[i : i + 1], absent]), emitted, i == last and grad_phase is not None)[:, 0]
                if i == last:
                    break
                x = renoise(x0.detach(), x, grid[i], grid[i + 1], schedule, fresh(batch, frame_dim))
            if predictions is not None:
                predictions[f] = x0
            emitted.append(x0.detach())
    clean = torch.stack(emitted, 1)
    return clean, (torch.stack(predictions, 1) if predictions is not None else None)


def frame_statistics(sequences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per frame index, the mean and standard deviation of ``sequences`` ``[N, F, d]`` over samples and values: two ``[F]``."""
    flat = sequences.transpose(0, 1).reshape(sequences.shape[1], -1)
    return flat.mean(1), flat.std(1)


def statistics_gap(sequences: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """Per frame index ``[F]``, ``|mean_f − mean| + |std_f − std|``: how far each frame's statistics are from the data's."""
    m, s = frame_statistics(sequences)
    return (m - mean).abs() + (s - std).abs()
