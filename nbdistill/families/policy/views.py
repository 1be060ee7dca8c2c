"""Views of the in-context bandit methods, drawn from the events :class:`~.evaluation.RegretEvaluation` writes.

- ``policy_regret``: cumulative regret vs step on the held-out tasks, mean ± one standard error over
  tasks, the student (latest evaluation) beside every classic algorithm (DPT's figure);
- ``policy_suboptimality``: the per-step regret ``mu* - mu_{a_t}`` of the same players;
- ``policy_choices``: a heat map of which arm the student plays at each step, arms ranked by their
  true means (row 1 the best arm), so a student that learns in context moves to the top row.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from ...core.run import EventLog
from ...core.style import LEGEND_SIZE, TITLE_SIZE, empty, style_axes
from ...core.views import view

#: Colours of the players (the student is drawn last, in black).
COLOURS = {"random": "0.6", "greedy": "tab:brown", "ucb": "tab:blue", "thompson": "tab:green", "linucb": "tab:purple"}


def _stage(log: EventLog, kind: str) -> str | None:
    """The stage (``"val"`` or ``"test"``) whose ``<stage>/<kind>/...`` events were written last, or None: a
    live run shows its latest validation, a finished one the test evaluation written when fitting ended."""
    latest: dict[str, int] = {}
    for index, event in enumerate(log.events):
        stage = event["name"].split("/", 1)[0]
        if stage in ("val", "test") and event["name"].startswith(f"{stage}/{kind}/"):
            latest[stage] = index
    return max(latest, key=latest.get) if latest else None


def _curves(log: EventLog, kind: str) -> tuple[dict[str, dict], str | None]:
    stage = _stage(log, kind)
    if stage is None:
        return {}, None
    prefix = f"{stage}/{kind}/"
    found = {n[len(prefix) :]: log.last(n) for n in log.names("points") if n.startswith(prefix)}
    return {who: e for who, e in found.items() if e is not None and e.get("x")}, stage


def _draw_players(ax: Axes, curves: dict[str, dict], bands: bool) -> None:
    order = sorted(curves, key=lambda who: (who == "student", who))
    for who in order:
        event = curves[who]
        x, y = np.asarray(event["x"], float), np.asarray(event["y"], float)
        student = who == "student"
        colour = "black" if student else COLOURS.get(who, None)
        ax.plot(x, y, color=colour, lw=2.2 if student else 1.2, ls="-" if student else "--", label=event.get("label", who))
        se = event.get("se")
        if bands and se is not None and len(se) == len(y):
            se = np.asarray(se, float)
            ax.fill_between(x, y - se, y + se, color=colour, alpha=0.2, lw=0)


@view("policy_regret")
def policy_regret(ax: Axes, log: EventLog) -> Axes:
    """Cumulative regret vs t on held-out tasks (mean ± s.e.), the student beside the classic algorithms."""
    title = "cumulative regret on held-out tasks"
    curves, stage = _curves(log, "regret")
    if not curves:
        return empty(ax, title)
    _draw_players(ax, curves, bands=True)
    step = curves.get("student", next(iter(curves.values()))).get("step")
    where = "test" if stage == "test" else f"step {step}"
    style_axes(ax, f"{title} ({where})", xlabel="t (pulls)", ylabel="regret R_t")
    ax.legend(fontsize=LEGEND_SIZE, loc="upper left")
    return ax


@view("policy_suboptimality")
def policy_suboptimality(ax: Axes, log: EventLog) -> Axes:
    """Per-step sub-optimality ``mu* - mu_{a_t}`` (mean over held-out tasks) of the student and the algorithms."""
    title = "per-step sub-optimality"
    curves, _ = _curves(log, "suboptimality")
    if not curves:
        return empty(ax, title)
    _draw_players(ax, curves, bands=False)
    style_axes(ax, title, xlabel="t (pulls)", ylabel="mu* - mu(a_t)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=LEGEND_SIZE, loc="upper right")
    return ax


@view("policy_choices")
def policy_choices(ax: Axes, log: EventLog) -> Axes:
    """Heat map: the share of held-out tasks in which the student plays its r-th best arm at step t."""
    title = "student's arm choices"
    stage = _stage(log, "choices")
    event = log.last(f"{stage}/choices/student") if stage else None
    rows = np.asarray(event.get("rows", []) if event else [], float)
    if rows.ndim != 2 or rows.size == 0:
        return empty(ax, title)
    image = ax.imshow(
        rows.T,
        aspect="auto",
        origin="upper",
        cmap="viridis",
        vmin=0,
        vmax=1,
        extent=(0.5, len(rows) + 0.5, rows.shape[1] + 0.5, 0.5),
    )
    ax.set_title(f"{title}, step {event.get('step')}", fontsize=TITLE_SIZE)
    ax.set_xlabel("t (pulls)")
    ax.set_ylabel("arm ranked by true mean (1 = best)")
    ax.set_yticks(range(1, rows.shape[1] + 1))
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label="share of tasks")
    return ax
