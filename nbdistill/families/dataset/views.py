"""Live views of dataset distillation, registered with :func:`nbdistill.core.views.view`.

Like every view, each is a pure function ``view(ax, log) -> ax`` of the run's events. This file
imports numpy and matplotlib only (no torch), so a drawing process can load it cheaply. Events read:

- ``train/loss`` — the method's loss (trajectory methods: the normalised matching loss);
- ``dd/remaining`` = ‖θ̂_N − θ*_{t+M}‖ / ‖θ*_t − θ*_{t+M}‖ and ``dd/moved`` = ‖θ̂_N − θ*_t‖ / ‖θ*_{t+M} − θ*_t‖;
- ``dd/syn_lr`` (learned inner learning rate) and ``dd/image_grad_norm`` (norm of the images' gradient);
- ``val/student_acc``, ``test/student_acc`` (a fresh network trained on the synthetic set) and
  ``val/teacher_acc`` (the full-data reference, when a teacher is given);
- ``dd/images`` — image events whose ``png`` field is a base64 PNG grid, one row per class;
- ``dd/min_crop`` — CDA's crop curriculum.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from matplotlib.axes import Axes

from ...core.run import EventLog
from ...core.style import decimate, empty, style_axes
from ...core.views import view

#: Most synthetic images per class drawn in the grid.
MAX_PER_CLASS = 10
#: The grid PNG is upscaled (nearest) until its longer side is about this many pixels.
GRID_SIZE = 320


def image_grid_png(images: np.ndarray, classes: int, ipc: int, max_per_class: int = MAX_PER_CLASS) -> bytes | None:
    """A PNG of the synthetic set, one row per class, each image scaled to its own 2nd–98th percentiles
    (one outlying pixel does not turn an image black).

    ``images`` is ``[classes·ipc, C, H, W]`` (C = 1 or 3) or ``[classes·ipc, 1, L]`` / ``[…, L]``
    (1-D signals, drawn as strips). Returns ``None`` for shapes it cannot draw.
    """
    import matplotlib.image as mpimg

    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 2 or (x.ndim == 3 and x.shape[1] == 1):
        length = x.shape[-1]
        x = np.repeat(x.reshape(len(x), 1, 1, length), max(1, length // 8), axis=2)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        return None
    cols = min(ipc, max_per_class)
    _, c, h, w = x.shape
    grid = np.ones((classes * (h + 1) - 1, cols * (w + 1) - 1, c))
    for k in range(classes):
        for j in range(cols):
            img = x[k * ipc + j].transpose(1, 2, 0)
            low, high = np.percentile(img, [2, 98])
            scaled = np.clip((img - low) / (high - low), 0, 1) if high > low else np.full_like(img, 0.5)
            grid[k * (h + 1) : k * (h + 1) + h, j * (w + 1) : j * (w + 1) + w] = scaled
    scale = max(1, GRID_SIZE // max(grid.shape[:2]))
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    buf = io.BytesIO()
    mpimg.imsave(buf, grid[..., 0] if c == 1 else grid, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    return buf.getvalue()


@view("trajectory_match")
def trajectory_match(ax: Axes, log: EventLog) -> Axes:
    """The matching loss with the student's normalised distance left to the target and distance moved."""
    series = [
        ("train/loss", "loss ‖θ̂−θ*‖²/‖θ₀−θ*‖²", 1.6),
        ("dd/remaining", "left ‖θ̂−θ*‖/‖θ₀−θ*‖", 1.0),
        ("dd/moved", "moved ‖θ̂−θ₀‖/‖θ*−θ₀‖", 1.0),
    ]
    if not log.scalars("train/loss")[0]:
        return empty(ax, "trajectory matching")
    for name, label, width in series:
        steps, values = decimate(*log.scalars(name))
        if len(steps):
            ax.plot(steps, values, lw=width, label=label)
    ax.axhline(1.0, color="0.4", lw=0.8, ls=":")
    style_axes(ax, "trajectory matching", ylabel="normalised distance")
    ax.legend(fontsize=7, loc="upper right", framealpha=0.85)
    return ax


@view("image_grad_and_lr")
def image_grad_and_lr(ax: Axes, log: EventLog) -> Axes:
    """Norm of the synthetic images' gradient (log scale; blow-ups show here first) and the learned inner lr."""
    steps, norms = decimate(*log.scalars("dd/image_grad_norm"))
    lr_steps, lrs = decimate(*log.scalars("dd/syn_lr"))
    if not len(steps) and not len(lr_steps):
        return empty(ax, "image gradient & inner lr")
    if len(steps):
        ax.plot(steps, norms, color="tab:purple", lw=1.0, label="‖∂L/∂images‖")
        finite = norms[np.isfinite(norms)]
        if len(finite) and finite.min() > 0:
            ax.set_yscale("log")
    style_axes(ax, "image gradient & inner lr", ylabel="gradient norm")
    if len(lr_steps):
        ax2 = ax.twinx()
        ax2.plot(lr_steps, lrs, color="tab:orange", lw=1.4, label="learned lr α")
        ax2.set_ylabel("inner lr α", color="tab:orange", fontsize=9)
        ax2.tick_params(axis="y", labelcolor="tab:orange", labelsize=8)
    return ax


@view("distilled_accuracy")
def distilled_accuracy(ax: Axes, log: EventLog) -> Axes:
    """Test accuracy of a fresh network trained on the synthetic set, beside the full-data teacher if any."""
    steps, values = log.scalars("val/student_acc")
    if not steps:
        return empty(ax, "accuracy of a net trained on the synthetic set", "waiting for the first validation…")
    ax.plot(steps, values, marker=".", color="tab:blue", label="fresh net on synthetic set (val)")
    test = log.last("test/student_acc")
    if test is not None and test.get("kind") == "scalar":
        ax.plot(
            [test["step"]], [test["value"]], marker="*", ms=10, color="tab:blue", ls="none", label=f"… test {test['value']:.3f}"
        )
    teacher = log.scalars("val/teacher_acc")
    if teacher[0]:
        ax.plot(*teacher, color="tab:gray", ls="--", label="full-data teacher (val)")
    ax.set_ylim(0.0, 1.01)
    style_axes(ax, "accuracy of a net trained on the synthetic set", ylabel="accuracy")
    ax.legend(fontsize=7, loc="lower right", framealpha=0.85)
    return ax


@view("synthetic_images")
def synthetic_images(ax: Axes, log: EventLog) -> Axes:
    """The latest grid of synthetic images, one row per class."""
    event = next((e for e in reversed(log.of("dd/images")) if e.get("kind") == "image" and e.get("png")), None)
    if event is None:
        return empty(ax, "synthetic images")
    import matplotlib.image as mpimg

    grid = mpimg.imread(io.BytesIO(base64.b64decode(event["png"])), format="png")
    ax.imshow(grid, interpolation="nearest")
    classes = int(event.get("classes") or 0)
    if classes:
        height = grid.shape[0] / classes
        ax.set_yticks([(k + 0.5) * height for k in range(classes)], [str(k) for k in range(classes)], fontsize=7)
    else:
        ax.set_yticks([])
    ax.set_xticks([])
    ax.set_title(f"synthetic images (step {event.get('step', '?')})", fontsize=10)
    return ax


@view("crop_curriculum")
def crop_curriculum(ax: Axes, log: EventLog) -> Axes:
    """CDA's curriculum: the smallest crop scale of RandomResizedCrop, from 1 (whole image) down to 0.08."""
    steps, values = decimate(*log.scalars("dd/min_crop"))
    if not len(steps):
        return empty(ax, "crop curriculum")
    ax.plot(steps, values, color="tab:green", lw=1.4)
    ax.set_ylim(0.0, 1.05)
    style_axes(ax, "crop curriculum", ylabel="min crop scale")
    return ax
