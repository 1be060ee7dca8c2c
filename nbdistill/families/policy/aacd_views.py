"""Views of ``policy.aacd``, drawn from the events of :class:`~.aacd_evaluation.ReachEvaluation` and its teacher phase.

- ``aacd_return``: the held-out mean return vs training step of the student, beside the teacher's and a
  random policy's (dashed);
- ``aacd_teacher``: the privileged teacher's training return vs PPO iteration (stage 1);
- ``aacd_paths``: the student's latest paths on a few held-out goals (crosses), the success radius drawn.
"""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.patches import Circle

from ...core.run import EventLog
from ...core.style import LEGEND_SIZE, empty, style_axes
from ...core.views import view

PLAYERS = (("student", "black", "-"), ("teacher", "tab:blue", "--"), ("random", "0.6", "--"))


@view("aacd_return")
def aacd_return(ax: Axes, log: EventLog) -> Axes:
    """Held-out mean return vs step: the student, the privileged teacher, a random policy."""
    title = "mean return on held-out goals"
    drawn = False
    for who, colour, style in PLAYERS:
        steps, values = log.scalars(f"val/{who}_return")
        if steps:
            ax.plot(steps, values, color=colour, ls=style, lw=2.0 if who == "student" else 1.2, marker="o", ms=3, label=who)
            drawn = True
    if not drawn:
        return empty(ax, title)
    style_axes(ax, title, xlabel="step", ylabel="return (sum of -distance)")
    ax.legend(fontsize=LEGEND_SIZE, loc="lower right")
    return ax


@view("aacd_teacher")
def aacd_teacher(ax: Axes, log: EventLog) -> Axes:
    """Stage 1: the privileged teacher's PPO training return vs iteration."""
    title = "privileged teacher (PPO on the state)"
    steps, values = log.scalars("teacher/return")
    if not steps:
        return empty(ax, title)
    ax.plot(steps, values, color="tab:blue", lw=1.5)
    style_axes(ax, title, xlabel="PPO iteration", ylabel="rollout return")
    return ax


@view("aacd_paths")
def aacd_paths(ax: Axes, log: EventLog) -> Axes:
    """The student's latest paths from the origin on a few held-out goals (x: the goal, circle: success radius)."""
    title = "student's paths on held-out goals"
    names = [n for n in log.names("points") if "/aacd_paths/" in n]
    stage = "val/" if any(n.startswith("val/") for n in names) else "test/"
    events = [e for n in names if n.startswith(stage) for e in [log.last(n)] if e is not None and e.get("x")]
    if not events:
        return empty(ax, title)
    for i, event in enumerate(events):
        colour = f"C{i % 10}"
        ax.plot(event["x"], event["y"], color=colour, marker=".", ms=4, lw=1.2)
        gx, gy = event.get("goal", (0.0, 0.0))
        ax.plot([gx], [gy], color=colour, marker="x", ms=9, mew=2)
        ax.add_patch(Circle((gx, gy), 0.15, fill=False, color=colour, lw=0.8, ls=":"))
    ax.plot([0], [0], "ko", ms=5)
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-1.3, 1.3)
    ax.set_aspect("equal")
    style_axes(ax, f"{title}, step {events[0].get('step')}", xlabel="x", ylabel="y")
    return ax
