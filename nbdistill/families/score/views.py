"""Views of the score family, registered with :func:`nbdistill.core.views.view`, and the writers of their events.

Each view is a pure function ``view(ax, log) -> ax`` (see :mod:`nbdistill.core.views`) that draws
from an empty or partial log without error:

- ``score_samples``: the latest student (and teacher) samples as a scatter over the data's density
  (or a histogram of data samples), refreshed at every evaluation;
- ``score_metrics``: the sample metrics against the step (energy distance, sliced Wasserstein, MMD
  on a log axis when they span a decade; mode coverage on a second axis): raw generator losses of
  DMD or SiD oscillate around 0 and show no progress (score.md, "What users ask for");
- ``score_quality_table``: the quality-vs-steps table (each model at each step count).

Events (what the writers here emit; names and fields are stable):

- ``points`` named ``samples/<who>``, ``who`` in ``student``, ``teacher``, ``data`` (others are
  drawn too): ``x`` and ``y``, the first and second coordinates of at most ``max_points`` samples
  (an evenly spaced subset, rounded to 4 significant digits of the set's scale); ``n``, how many
  samples there were before thinning; ``nonfinite``, how many were dropped for NaN/inf; optional
  ``label`` (e.g. ``"student, 1 step"``). Written by :func:`write_samples`.
- ``image`` named ``samples/student_images`` (image-shaped samples such as 8×8 digits): ``png``, a
  base64 PNG grid of at most ``MAX_IMAGES`` samples in gray levels ``[-1, 1]`` → black..white,
  ``n``, ``label``. Written by :func:`write_image_samples`; ``score_samples`` shows it when a run
  has no 2-D student points.
- ``histogram`` named ``density/data``: the data's density on a grid, ``counts`` a ``[ny][nx]``
  list of ``p(x)`` at the cell centres, ``edges`` the ``nx + 1`` x edges, ``y_edges`` the ``ny + 1``
  y edges, ``values = "density"``. Written by :func:`write_density` (from ``log_prob``).
- ``scalar`` ``<stage>/<metric>`` for the names of :data:`.metrics.METRICS`; optionally
  ``<stage>/teacher_<metric>``, the teacher's value, drawn as a dotted reference line.
- ``table`` named ``quality``: columns ``model``, ``steps``, then metric columns (any of
  :data:`.metrics.METRICS`, ``ms_per_1000``: sampling time per 1 000 samples). Written by
  :func:`write_quality`.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Patch
from matplotlib.ticker import NullLocator

from ...core.errors import ConfigError
from ...core.run import EventLog
from ...core.style import LABEL_SIZE, LEGEND_SIZE, TITLE_SIZE, decimate, empty, finite, style_axes
from ...core.views import view

#: Most samples a ``samples/*`` event keeps: a scatter of 2 000 points reads as a density, and the
#: event stays near 40 kB.
MAX_POINTS = 2000
#: Most image samples :func:`write_image_samples` keeps (a 4 × 8 grid), and the grid's columns.
MAX_IMAGES, IMAGE_COLUMNS = 32, 8
#: Grid cells per side of :func:`write_density`.
DENSITY_BINS = 80
#: The metric curves of ``score_metrics`` (distances, lower is better) and their colours.
DISTANCES = {"energy_distance": "tab:blue", "sliced_wasserstein": "tab:orange", "mmd": "tab:green"}
#: How ``score_samples`` draws each ``samples/<who>``: colour, marker size, alpha, drawing order.
WHO = {"data": ("0.45", 3, 0.35, 0), "teacher": ("tab:orange", 4, 0.5, 1), "student": ("tab:blue", 4, 0.6, 2)}
#: The data's highest-density regions ``score_samples`` outlines: the smallest regions holding these shares of its mass.
HDR_MASSES = (0.5, 0.9)
#: Short column titles of the quality table.
SHORT = {
    "energy_distance": "energy",
    "sliced_wasserstein": "SW1",
    "mmd": "MMD²",
    "mode_coverage": "modes",
    "mode_precision": "in 3σ",
    "log_likelihood": "log p",
    "ms_per_1000": "ms/1k",
}
#: Metric columns where higher is better (the others: lower is better).
HIGHER_IS_BETTER = ("mode_coverage", "mode_precision", "log_likelihood")


# -- writers -----------------------------------------------------------------------------------------
def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor (torch is not imported here)
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=float)


def rounded_for_events(values: np.ndarray) -> list[float]:
    """``values`` rounded to 4 significant digits of their largest magnitude (a shorter JSON line)."""
    top = float(np.abs(values).max()) if values.size else 0.0
    decimals = 4 - math.floor(math.log10(top)) if top > 0 else 4
    return np.round(values, max(decimals, 0)).tolist()


def write_samples(writer: Any, name: str, x: Any, step: int | None = None, max_points: int = MAX_POINTS, **extra: Any) -> dict:
    """Emit the ``points`` event ``name`` (``samples/<who>``) of the 2-D samples ``x`` ``[n, 2]``.

    Keeps at most ``max_points`` finite samples (evenly spaced indices, so a set ordered by mode
    keeps its proportions), records ``n`` and ``nonfinite`` (see the module docstring); ``extra``
    fields (``label=``, ``steps=``) are stored with it. Returns the event.
    """
    if not isinstance(name, str) or not name.startswith("samples/") or name == "samples/":
        raise ConfigError(
            f"write_samples names its event samples/<who> (samples/student, samples/teacher, samples/data), got {name!r}"
        )
    if not isinstance(max_points, int) or isinstance(max_points, bool) or max_points < 1:
        raise ConfigError(f"write_samples' max_points must be a positive integer, got {max_points!r}")
    points = _numpy(x)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ConfigError(
            f"write_samples draws 2-D points [n, 2]; {name} has shape {tuple(points.shape)}: "
            "log images or higher-dimensional samples another way (e.g. writer.image)"
        )
    kept = np.isfinite(points).all(1)
    n, good = len(points), points[kept]
    if len(good) > max_points:
        good = good[np.linspace(0, len(good) - 1, max_points).round().astype(int)]
    return writer.points(
        name,
        rounded_for_events(good[:, 0]),
        rounded_for_events(good[:, 1]),
        step=step,
        n=n,
        nonfinite=int(n - kept.sum()),
        **extra,
    )


def image_shape(x: Any) -> tuple[int, int] | None:
    """``(height, width)`` of image-shaped samples ``x``: ``[n, 1, H, W]``, ``[n, H, W]`` or ``[n, D]`` with ``D``
    a square of at least 16 (``64`` → 8 × 8); ``None`` otherwise (2-D points, other shapes)."""
    shape = tuple(x.shape[1:])
    if len(shape) == 3 and shape[0] == 1:
        return shape[1], shape[2]
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) == 1 and shape[0] >= 16 and math.isqrt(shape[0]) ** 2 == shape[0]:
        return math.isqrt(shape[0]), math.isqrt(shape[0])
    return None


def image_grid(x: Any, max_images: int = MAX_IMAGES) -> np.ndarray | None:
    """The first ``max_images`` image-shaped samples (:func:`image_shape`) tiled :data:`IMAGE_COLUMNS` a row, one
    pixel apart, as a ``[H', W']`` array in ``[0, 1]``: gray levels ``[-1, 1]`` black to white (clipped; NaN black),
    so samples are compared on the data's own scale. ``None`` for samples that are not images."""
    images = _numpy(x)
    hw = image_shape(images)
    if hw is None or not len(images):
        return None
    h, w = hw
    images = np.nan_to_num(images[:max_images].reshape(-1, h, w), nan=-1.0)
    columns = min(IMAGE_COLUMNS, len(images))
    rows = math.ceil(len(images) / columns)
    grid = np.ones((rows * (h + 1) - 1, columns * (w + 1) - 1))
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        grid[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = (np.clip(image, -1, 1) + 1) / 2
    return grid


def write_image_samples(writer: Any, name: str, x: Any, step: int | None = None, max_images: int = MAX_IMAGES, **extra: Any):
    """Emit the ``image`` event ``name`` (``samples/student_images``): a PNG of :func:`image_grid`, upscaled
    (nearest) to about 256 pixels. Returns the event, or ``None`` for samples that are not images."""
    import matplotlib.image as mpimg

    grid = image_grid(x, max_images)
    if grid is None:
        return None
    scale = max(1, 256 // max(grid.shape))
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    buf = io.BytesIO()
    mpimg.imsave(buf, grid, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    png = buf.getvalue()
    return writer.image(name, png, step=step, png=base64.b64encode(png).decode(), n=len(_numpy(x)), **extra)


def _image_samples(ax: Axes, event: dict, title: str) -> Axes:
    import matplotlib.image as mpimg

    ax.imshow(mpimg.imread(io.BytesIO(base64.b64decode(event["png"])), format="png"), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    label = event.get("label") or "student"
    ax.set_title(f"{title}: {label} (step {event.get('step', '?')})", fontsize=TITLE_SIZE)
    return ax


def write_density(
    writer: Any,
    density: Any,
    extent: tuple[float, float, float, float],
    bins: int = DENSITY_BINS,
    name: str = "density/data",
    step: int | None = 0,
) -> dict:
    """Emit the ``histogram`` event ``name``: ``exp(density.log_prob)`` at the centres of a ``bins × bins``
    grid over ``extent = (x_min, x_max, y_min, y_max)`` (see the module docstring)."""
    import torch

    if not callable(getattr(density, "log_prob", None)):
        raise ConfigError(f"write_density needs a density with log_prob(x); {type(density).__name__} has none")
    try:
        x0, x1, y0, y1 = (float(v) for v in extent)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"write_density's extent is (x_min, x_max, y_min, y_max), got {extent!r}") from exc
    if not (x0 < x1 and y0 < y1) or not all(map(math.isfinite, (x0, x1, y0, y1))):
        raise ConfigError(f"write_density's extent must have x_min < x_max and y_min < y_max, finite, got {extent!r}")
    if not isinstance(bins, int) or isinstance(bins, bool) or not 2 <= bins <= 400:
        raise ConfigError(f"write_density's bins must be an integer in [2, 400], got {bins!r}")
    xe, ye = np.linspace(x0, x1, bins + 1), np.linspace(y0, y1, bins + 1)
    xc, yc = (xe[1:] + xe[:-1]) / 2, (ye[1:] + ye[:-1]) / 2
    gx, gy = np.meshgrid(xc, yc)  # [ny, nx]: row i is y = yc[i]
    grid = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float64)
    with torch.no_grad():
        p = torch.as_tensor(density.log_prob(grid)).double().exp().reshape(bins, bins).cpu().numpy()
    p = np.nan_to_num(p, nan=0.0, posinf=0.0)
    return writer.histogram(name, rounded_for_events(p), xe, step=step, y_edges=ye.tolist(), values="density")


def write_quality(writer: Any, rows: Iterable[Mapping[str, Any]], step: int | None = None, name: str = "quality") -> dict:
    """Emit the ``table`` event ``quality`` from dicts with ``model``, ``steps`` and metric values.

    The columns are ``model``, ``steps``, then every other key in first-seen order; a row lacking
    one holds ``None`` there."""
    rows = [dict(r) for r in rows]
    if not rows or any("model" not in r or "steps" not in r for r in rows):
        raise ConfigError("write_quality needs at least one row, each a dict with 'model', 'steps' and metric values")
    columns = ["model", "steps"]
    for r in rows:
        columns += [k for k in r if k not in columns]
    return writer.table(name, columns, [[r.get(c) for c in columns] for r in rows], step=step)


# -- helpers -----------------------------------------------------------------------------------------
def _last(log: EventLog, name: str, kind: str, *fields: str) -> dict | None:
    for event in reversed(log.of(name)):
        if event.get("kind") == kind and all(event.get(f) is not None for f in fields):
            return event
    return None


def _xy(event: dict) -> np.ndarray:
    """The event's points ``[n, 2]`` (finite only; a JSON-safe reader turns NaN into ``None``)."""
    try:
        x, y = np.asarray(event["x"], dtype=float), np.asarray(event["y"], dtype=float)
    except (TypeError, ValueError):
        return np.zeros((0, 2))
    if x.shape != y.shape or x.ndim != 1:
        return np.zeros((0, 2))
    xy = np.stack([x, y], 1)
    return xy[np.isfinite(xy).all(1)]


def _density(event: dict | None) -> tuple[np.ndarray, list[float]] | None:
    if event is None:
        return None
    try:
        p = np.asarray(event["counts"], dtype=float)
        xe, ye = np.asarray(event["edges"], dtype=float), np.asarray(event["y_edges"], dtype=float)
    except (KeyError, TypeError, ValueError):
        return None
    if p.ndim != 2 or p.shape != (len(ye) - 1, len(xe) - 1) or not (np.isfinite(xe).all() and np.isfinite(ye).all()):
        return None
    return np.nan_to_num(p), [xe[0], xe[-1], ye[0], ye[-1]]


def _smooth(grid: np.ndarray, passes: int = 2) -> np.ndarray:
    """``grid`` blurred by ``passes`` of the separable [1, 2, 1]/4 kernel (a histogram of 2 000 points is noisy)."""
    for _ in range(passes):
        for axis in (0, 1):
            padded = np.pad(grid, [(1, 1) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
            lo, mid, hi = (np.take(padded, range(i, i + grid.shape[axis]), axis=axis) for i in (0, 1, 2))
            grid = (lo + 2 * mid + hi) / 4
    return grid


def _mass_levels(grid: np.ndarray, masses: Iterable[float]) -> np.ndarray:
    """Increasing density levels whose superlevel sets hold ``masses`` of the grid's total (highest-density regions)."""
    p = np.sort(np.clip(grid, 0, None).ravel())[::-1]
    total = p.sum()
    if not np.isfinite(total) or total <= 0:
        return np.zeros(0)
    cumulative = np.cumsum(p) / total
    levels = {float(p[min(np.searchsorted(cumulative, m), len(p) - 1)]) for m in masses}
    return np.array(sorted(v for v in levels if v > 0))


def _sample_names(log: EventLog) -> list[str]:
    names = [n for n in log.names("points") if n.startswith("samples/")]
    order = {f"samples/{who}": spec[3] for who, spec in WHO.items()}
    return sorted(names, key=lambda n: (order.get(n, 1.5), n))  # the student on top


# -- views -------------------------------------------------------------------------------------------
@view("score_samples")
def score_samples(ax: Axes, log: EventLog) -> Axes:
    """The latest ``samples/*`` points (student blue, teacher orange, others in turn) over the data.

    Image-shaped samples (``samples/student_images``, e.g. digits) are shown as their grid instead.
    The background is the ``density/data`` grid when logged, else a 2-D histogram of the latest
    ``samples/data`` points; the axes span the data (10 % margin), and the legend counts student
    samples that fall outside it or were not finite (a diverging sampler)."""
    title = "samples over the data"
    images = _last(log, "samples/student_images", "image", "png")
    if images is not None and _last(log, "samples/student", "points", "x", "y") is None:
        return _image_samples(ax, images, "samples")
    density = _density(_last(log, "density/data", "histogram", "counts", "edges", "y_edges"))
    latest = {n: e for n in _sample_names(log) if (e := _last(log, n, "points", "x", "y")) is not None}
    if density is None and not latest:
        return empty(ax, title)
    data = latest.get("samples/data")
    data_xy = _xy(data) if data is not None else np.zeros((0, 2))
    extent = grid = None
    if density is not None:
        grid, extent = density
    elif len(data_xy):
        lo, hi = data_xy.min(0), data_xy.max(0)
        pad = np.maximum(0.1 * (hi - lo), 1e-3)
        extent = [lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1]]
        grid = _smooth(np.histogram2d(data_xy[:, 0], data_xy[:, 1], bins=50, range=[extent[:2], extent[2:]])[0].T)
    if grid is not None:
        ax.imshow(grid, origin="lower", extent=extent, cmap="Greys", aspect="auto", interpolation="bilinear", zorder=0, alpha=0.6)
        levels = _mass_levels(grid, HDR_MASSES)
        if len(levels):  # drawn over the samples, which hide a narrow mode's shading
            ax.contour(grid, levels=levels, extent=extent, origin="lower", colors="0.15", linewidths=0.7, zorder=3)
    other = iter(f"C{i}" for i in range(2, 100))
    step, handles = None, []
    if extent is not None:
        handles.append(
            Patch(
                facecolor="0.7",
                edgecolor="0.15",
                label=("data density" if density is not None else f"data (n={data.get('n', len(data_xy))})") + ", 50/90% regions",
            )
        )
    for name, event in latest.items():
        who = name.split("/", 1)[1]
        if who == "data" and extent is not None:
            continue  # the background already shows the data
        xy = _xy(event)
        color, size, alpha, _ = WHO.get(who, (next(other), 4, 0.6, 3))
        label = str(event.get("label") or who)
        n = event.get("n", len(xy))
        note = f"{label} (n={n}"
        if extent is not None and who != "data" and len(xy):
            outside = ~((xy[:, 0] >= extent[0]) & (xy[:, 0] <= extent[1]) & (xy[:, 1] >= extent[2]) & (xy[:, 1] <= extent[3]))
            if outside.any():
                note += f", {100 * outside.mean():.0f}% outside"
        if event.get("nonfinite"):
            note += f", {event['nonfinite']} NaN/inf"
        handles.append(ax.scatter(xy[:, 0], xy[:, 1], s=size, color=color, alpha=alpha, linewidths=0, label=note + ")", zorder=2))
        if who == "student":
            step = event.get("step")
    if extent is not None:
        # room above the data for the legend (a fixed place: "best" costs a pass over every point at each redraw)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3] + 0.09 * len(handles) * (extent[3] - extent[2]))
    ax.set_aspect("equal", adjustable="box")
    ax.tick_params(labelsize=LABEL_SIZE - 1)
    ax.set_title(title + (f" (step {step})" if step is not None else ""), fontsize=TITLE_SIZE)
    ax.legend(handles=handles, fontsize=LEGEND_SIZE - 1, loc="upper right", framealpha=0.8, markerscale=3)
    return ax


@view("score_metrics")
def score_metrics(ax: Axes, log: EventLog, stage: str = "val") -> Axes:
    """Energy distance, sliced Wasserstein and MMD² of the samples against the step (solid; the
    teacher's ``<stage>/teacher_<metric>`` dotted), log scale when they are positive and span a
    decade; mode coverage (0 to 1) dashed on a second axis."""
    title = f"sample metrics ({stage})"
    drawn = []
    for metric, color in DISTANCES.items():
        steps, values = log.scalars(f"{stage}/{metric}")
        if not steps:
            continue
        xs, ys = decimate(steps, values)
        last = finite(values)
        ax.plot(
            xs,
            ys,
            color=color,
            lw=1.4,
            marker="." if len(xs) < 30 else None,
            label=f"{metric} ({last[-1]:.3g})" if len(last) else metric,
        )
        drawn.append(finite(ys))
        ref = log.last_value(f"{stage}/teacher_{metric}")
        if ref is not None and math.isfinite(ref):
            ax.axhline(ref, color=color, ls=":", lw=1.0)
            drawn.append(np.array([ref]))
    coverage = log.scalars(f"{stage}/mode_coverage")
    if not drawn and not coverage[0]:
        return empty(ax, title)
    kept = np.concatenate(drawn) if drawn else np.zeros(0)
    if len(kept) and kept.min() > 0 and kept.max() / kept.min() > 10:
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(NullLocator())  # minor log ticks would double the cost of a live redraw
    style_axes(ax, title, ylabel="distance to the data (dotted: teacher)")
    handles, labels = ax.get_legend_handles_labels()
    if coverage[0]:
        twin = ax.twinx()
        xs, ys = decimate(*coverage)
        last = finite(coverage[1])
        mark = "." if len(xs) < 30 else None
        line = twin.plot(
            xs,
            ys,
            color="tab:red",
            ls="--",
            lw=1.2,
            marker=mark,
            label=f"mode coverage ({last[-1]:.0%})" if len(last) else "mode coverage",
        )
        twin.set_ylim(-0.03, 1.03)
        twin.set_ylabel("mode coverage", fontsize=LABEL_SIZE)
        twin.tick_params(labelsize=LABEL_SIZE - 1)
        handles, labels = handles + line, labels + [line[0].get_label()]
        if not drawn:
            ax.set_yticks([])
    ax.legend(handles, labels, fontsize=LEGEND_SIZE - 1, loc="best", framealpha=0.85)
    return ax


def _cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if column in ("mode_coverage", "mode_precision"):
        return f"{value:.0%}"
    if column == "steps" or isinstance(value, int):
        return str(value)
    return f"{value:.3g}"


@view("score_quality_table")
def score_quality_table(ax: Axes, log: EventLog) -> Axes:
    """The latest ``quality`` table as a text table, the best value of each metric column in bold
    (lowest distance or time, highest mode coverage or log-likelihood)."""
    title = "quality vs steps"
    event = _last(log, "quality", "table", "columns", "rows")
    if event is None or not event["rows"]:
        return empty(ax, title)
    columns = [str(c) for c in event["columns"]]
    rows = [list(r) + [None] * (len(columns) - len(r)) for r in event["rows"]]
    text = [[_cell(c, v) for c, v in zip(columns, r)] for r in rows]
    table = ax.table(cellText=text, colLabels=[SHORT.get(c, c) for c in columns], loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(LEGEND_SIZE - (1 if len(rows) > 8 else 0))
    table.scale(1.0, 1.15)
    for j, column in enumerate(columns):
        table[0, j].set_text_props(weight="bold")
        table[0, j].set_facecolor("0.9")
        if column in ("model", "steps"):
            continue
        values = np.array(
            [
                v if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None else np.nan
                for v in (r[j] for r in rows)
            ],
            float,
        )
        if not np.isfinite(values).any():
            continue
        best = np.nanmax(values) if column in HIGHER_IS_BETTER else np.nanmin(values)
        for i in np.flatnonzero(values == best):
            table[i + 1, j].set_text_props(weight="bold", color="tab:green")
    ax.axis("off")
    step = event.get("step")
    ax.set_title(title + (f" (step {step})" if step is not None else ""), fontsize=TITLE_SIZE)
    return ax
