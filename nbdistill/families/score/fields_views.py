r"""The ``score_fields`` view: the real (teacher) and fake score fields side by side at 2-3 noise levels.

Every method with a trainable *fake score* (DMD, DMD2, SiD, ...) learns a second denoiser
``μ_fake`` of its generator's noisy samples and moves the generator along the difference of the two
fields (``s_fake − s_real = α_t (μ_fake − μ_real) / σ_t²``). This view shows both fields on a grid of
noisy points ``x_t`` at a few times ``t``: where the arrows agree the generator already matches the
data at that noise level; where they differ, the generator is pushed (score.md, "Plots these ask for").

An arrow is the field ``σ_t² ∇ log p_t(x_t) = α_t μ(x_t, t) − x_t`` (the displacement from ``x_t`` to
the scaled denoised point): the score's direction with a length in the units of the plane at every
noise level, where the score itself grows as ``1/σ_t²``.

Event (written by :func:`write_score_fields`, bounded: one event per call, ``grid²`` points):

- ``points`` named ``score_fields``: ``x``, ``y`` the grid's ``grid × grid`` points (row-major);
  ``times`` and ``sigmas``, one per level; ``real_u``, ``real_v``, ``fake_u``, ``fake_v``: one list
  per level of the arrows' components at each grid point; ``extent`` ``[x_min, x_max, y_min, y_max]``;
  ``grid``. The writer reads ``module.teacher``, ``module.fake_score`` and ``module.noise``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from ...core.errors import ConfigError
from ...core.run import EventLog
from ...core.style import LEGEND_SIZE, TITLE_SIZE, empty
from ...core.views import view
from .views import rounded_for_events

#: Name of the event.
EVENT = "score_fields"
#: Grid points per side (15 × 15 = 225 arrows a level keeps a quiver readable and the event small).
GRID = 15
#: Noise levels drawn: a low one (the fields near the data), a middle and a high one.
FIELD_TIMES = (0.1, 0.35, 0.7)
#: The plane drawn when there is no data to span: ``(x_min, x_max, y_min, y_max)``.
DEFAULT_EXTENT = (-2.5, 2.5, -2.5, 2.5)
#: Share of the data's span added on each side of the grid.
MARGIN = 0.15
#: Colours of the two fields.
COLORS = {"real": "tab:orange", "fake": "tab:blue"}


def field_extent(points: Any = None, margin: float = MARGIN) -> tuple[float, float, float, float]:
    """The grid's extent: the box of the 2-D ``points`` widened by ``margin`` of its span on each side
    (:data:`DEFAULT_EXTENT` without points)."""
    if points is None:
        return DEFAULT_EXTENT
    xy = np.asarray(points.detach().cpu().double() if hasattr(points, "detach") else points, dtype=float)
    xy = xy[np.isfinite(xy).all(1)] if xy.ndim == 2 and xy.shape[1] == 2 else np.zeros((0, 2))
    if not len(xy):
        return DEFAULT_EXTENT
    lo, hi = xy.min(0), xy.max(0)
    pad = np.maximum(margin * (hi - lo), 0.1)
    return (float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1]))


def _data_points(module: Any) -> Any:
    """The training points of the module's data module, when it has them (``Toy2D.points``)."""
    trainer = getattr(module, "_trainer", None)
    dm = getattr(trainer, "datamodule", None) if trainer is not None else None
    points = getattr(dm, "points", None)
    try:
        return points("train") if callable(points) else None
    except Exception:  # a data module not set up yet: the default extent
        return None


def score_field_arrows(denoiser: Any, schedule: Any, xt: Any, t: float) -> Any:
    r"""``α_t μ(x_t, t) − x_t = σ_t² ∇ log p_t(x_t)`` of ``denoiser`` at the points ``xt`` ``[n, 2]``, without gradients."""
    import torch

    tt = torch.full((len(xt),), float(t), dtype=xt.dtype, device=xt.device)
    with torch.no_grad():
        return schedule.alpha(tt)[:, None] * denoiser(xt, tt) - xt


def write_score_fields(
    writer: Any,
    module: Any,
    step: int | None,
    times: Sequence[float] = FIELD_TIMES,
    grid: int = GRID,
    points: Any = None,
) -> dict | None:
    """Emit the ``score_fields`` event (see the module docstring) of ``module.teacher`` (real) and
    ``module.fake_score`` (fake) under ``module.noise``, on a ``grid × grid`` grid spanning ``points``
    (default: the training data of the module's data module; else :data:`DEFAULT_EXTENT`).

    Returns the event, or ``None`` when ``writer`` is ``None`` or the data are not 2-D.
    """
    import torch

    if writer is None:
        return None
    if not isinstance(grid, int) or isinstance(grid, bool) or not 2 <= grid <= 40:
        raise ConfigError(f"write_score_fields' grid must be an integer in [2, 40], got {grid!r}")
    times = [float(t) for t in times]
    if not 1 <= len(times) <= 4 or not all(0.0 < t <= 1.0 for t in times):
        raise ConfigError(f"write_score_fields draws 1 to 4 noise levels with times in (0, 1], got {times!r}")
    teacher, fake = module.teacher, getattr(module, "fake_score", None)
    if teacher is None or fake is None:
        raise ConfigError(f"write_score_fields needs module.teacher and module.fake_score; {type(module).__name__} lacks one")
    param = next(iter(fake.parameters()), None)
    dtype, device = (param.dtype, param.device) if param is not None else (torch.float32, torch.device("cpu"))
    extent = field_extent(points if points is not None else _data_points(module))
    gx, gy = np.meshgrid(np.linspace(extent[0], extent[1], grid), np.linspace(extent[2], extent[3], grid))
    xt = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=dtype, device=device)
    was_training = fake.training
    fake.eval()
    try:
        arrows = {"real": [], "fake": []}
        for t in times:
            try:
                arrows["real"].append(score_field_arrows(teacher, module.noise, xt, t).double().cpu().numpy())
                arrows["fake"].append(score_field_arrows(fake, module.noise, xt, t).double().cpu().numpy())
            except (RuntimeError, ValueError, TypeError):  # not 2-D data: no field to draw
                return None
    finally:
        fake.train(was_training)
    sigmas = [float(module.noise.sigma(torch.tensor(t, dtype=torch.float64))) for t in times]
    fields = {f"{who}_{c}": [rounded_for_events(a[:, i]) for a in arrows[who]] for who in arrows for i, c in enumerate("uv")}
    return writer.points(
        EVENT,
        rounded_for_events(gx.ravel()),
        rounded_for_events(gy.ravel()),
        step=step,
        times=times,
        sigmas=[round(s, 4) for s in sigmas],
        extent=[round(v, 4) for v in extent],
        grid=grid,
        **fields,
    )


def _levels(event: dict) -> list[tuple[float, float, np.ndarray, np.ndarray]] | None:
    """``(t, σ, real [n, 2], fake [n, 2])`` per level of a well-formed event, else ``None``."""
    try:
        n = len(event["x"])
        out = []
        for i, t in enumerate(event["times"]):
            real = np.stack([np.asarray(event["real_u"][i], float), np.asarray(event["real_v"][i], float)], 1)
            fake = np.stack([np.asarray(event["fake_u"][i], float), np.asarray(event["fake_v"][i], float)], 1)
            if real.shape != (n, 2) or fake.shape != (n, 2):
                return None
            sigma = event.get("sigmas", [None] * len(event["times"]))[i]
            out.append((float(t), float("nan") if sigma is None else float(sigma), real, fake))
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return out or None


@view("score_fields")
def score_fields(ax: Axes, log: EventLog) -> Axes:
    """The latest ``score_fields`` event: one panel per noise level, the real field (teacher, orange)
    and the fake field (blue) as arrows ``α_t μ − x_t`` on the grid, both at one scale per panel (the
    longest arrow one grid cell); the panel's title gives ``t``, ``σ_t`` and the mean gap
    ``|μ_fake − μ_real|`` relative to the mean real arrow."""
    title = "real vs fake score field"
    event = None
    for e in reversed(log.of(EVENT)):
        if e.get("kind") == "points" and all(e.get(f) is not None for f in ("x", "y", "times", "real_u", "fake_u")):
            event = e
            break
    levels = _levels(event) if event is not None else None
    if levels is None:
        return empty(ax, title)
    xy = np.stack([np.asarray(event["x"], float), np.asarray(event["y"], float)], 1)
    grid = int(event.get("grid") or round(len(xy) ** 0.5))
    extent = event.get("extent") or [xy[:, 0].min(), xy[:, 0].max(), xy[:, 1].min(), xy[:, 1].max()]
    cell = max((extent[1] - extent[0]), (extent[3] - extent[2])) / max(grid - 1, 1)
    ax.set_axis_off()
    ax.set_title(f"{title} (step {event.get('step', '?')})", fontsize=TITLE_SIZE)
    count, gap = len(levels), 0.03
    width = (1 - gap * (count - 1)) / count
    for i, (t, sigma, real, fake) in enumerate(levels):
        sub = ax.inset_axes([i * (width + gap), 0.1, width, 0.72])
        norms = np.linalg.norm(np.concatenate([real, fake]), axis=1)
        top = float(np.nanmax(norms)) if np.isfinite(norms).any() and np.nanmax(norms) > 0 else 1.0
        for who, arrows in (("real", real), ("fake", fake)):
            ok = np.isfinite(arrows).all(1)
            sub.quiver(
                xy[ok, 0],
                xy[ok, 1],
                arrows[ok, 0],
                arrows[ok, 1],
                color=COLORS[who],
                angles="xy",
                scale_units="xy",
                scale=top / cell,
                width=0.006,
                alpha=0.8,
            )
        with np.errstate(all="ignore"):
            rel = np.nanmean(np.linalg.norm(fake - real, axis=1)) / max(np.nanmean(np.linalg.norm(real, axis=1)), 1e-12)
        sub.set_xlim(extent[0] - cell, extent[1] + cell)
        sub.set_ylim(extent[2] - cell, extent[3] + cell)
        sub.set_xticks([])
        sub.set_yticks([])
        sub.set_title(f"t={t:.2g}, σ={sigma:.2g}\ngap {rel:.0%}", fontsize=TITLE_SIZE - 2)
    handles = [Line2D([], [], color=COLORS[w], lw=2, label=f"{w} (α μ_{w} − x_t)") for w in COLORS]
    ax.legend(handles=handles, fontsize=LEGEND_SIZE - 1, loc="lower center", ncol=2, bbox_to_anchor=(0.5, -0.04), frameon=False)
    return ax
