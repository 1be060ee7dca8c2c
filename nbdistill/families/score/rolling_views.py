"""The view of ``score.rolling`` and the writer of its events.

- ``rolling_frames``: above, rolled-out sequences (the student's, and the data's when the data module can
  draw sequences of any length, :class:`~nbdistill.data.SineSequences`), one below the other, with the
  window's frames marked; below, error accumulation: per frame index, how far the statistics of the
  student's frames are from the data's (``|mean_f − mean| + |std_f − std|`` over many rollouts,
  :func:`.rolling_rollout.statistics_gap`), beside the same gap of as many data sequences (the floor
  that the sample size leaves). A generator whose errors accumulate drifts up along the sequence.

Events (written at each validation by :func:`write_rolling`):

- ``points`` ``rolling/sequences/<who>`` (``who`` in ``student``, ``data``): ``x`` the time index
  (samples), ``y`` the first sequence, ``sequences`` all drawn sequences (lists of values),
  ``frame_dim``, optional ``label``;
- ``points`` ``rolling/frame_gap/<who>``: ``x`` the frame index, ``y`` the gap per frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes

from ...core.run import EventLog
from ...core.style import LABEL_SIZE, LEGEND_SIZE, TITLE_SIZE, empty, style_axes
from ...core.views import view

COLOURS = {"student": "tab:blue", "data": "0.45"}


def write_rolling(writer: Any, step: int, sequences, gap, data_sequences=None, data_gap=None, label: str | None = None) -> None:
    """Emit the ``rolling/*`` events of the student's (and the data's) ``sequences`` ``[k, F, d]`` and per-frame ``gap`` ``[F]``."""
    for who, seqs, g, name in (("student", sequences, gap, label), ("data", data_sequences, data_gap, "data")):
        if seqs is None:
            continue
        flat = np.round(seqs.detach().cpu().double().reshape(len(seqs), -1).numpy(), 4)
        writer.points(
            f"rolling/sequences/{who}",
            np.arange(flat.shape[1]).tolist(),
            flat[0].tolist(),
            label=name,
            step=step,
            sequences=flat.tolist(),
            frame_dim=int(seqs.shape[-1]),
        )
        values = np.round(g.detach().cpu().double().numpy(), 5)
        writer.points(f"rolling/frame_gap/{who}", np.arange(len(values)).tolist(), values.tolist(), label=name, step=step)
    writer.flush()


def _latest(log: EventLog, name: str) -> dict | None:
    return next((e for e in reversed(log.of(name)) if e.get("kind") == "points"), None)


def _array(values: Any) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return np.zeros(0)


@view("rolling_frames")
def rolling_frames(ax: Axes, log: EventLog) -> Axes:
    """Rolled-out sequences against the data's and the per-frame statistics gap along the sequence (see the module docstring)."""
    title = "rolled-out sequences and error accumulation"
    student = _latest(log, "rolling/sequences/student")
    if student is None:
        return empty(ax, title)
    ax.set_axis_off()
    ax.set_title(f"{title} (step {student.get('step', '?')})", fontsize=TITLE_SIZE)
    top, bottom = ax.inset_axes([0.0, 0.52, 1.0, 0.42]), ax.inset_axes([0.0, 0.0, 1.0, 0.38])
    frame_dim = max(1, int(student.get("frame_dim", 1) or 1))
    offset = 0.0
    for who in ("data", "student"):
        event = _latest(log, f"rolling/sequences/{who}")
        if event is None:
            continue
        seqs = [_array(s) for s in event.get("sequences", [event.get("y", [])])]
        for k, seq in enumerate(s for s in seqs if s.ndim == 1 and len(s)):
            top.plot(
                np.arange(len(seq)) / frame_dim,
                seq - offset,
                color=COLOURS[who],
                lw=0.9,
                label=event.get("label", who) if k == 0 else None,
            )
            offset += 4.0
    top.set_yticks([])
    top.set_xlabel("frame", fontsize=LABEL_SIZE)
    top.tick_params(labelsize=LABEL_SIZE - 1)
    top.legend(fontsize=LEGEND_SIZE, loc="upper right")
    drawn = False
    for who in ("data", "student"):
        event = _latest(log, f"rolling/frame_gap/{who}")
        x, y = (_array(event.get("x", [])), _array(event.get("y", []))) if event else (np.zeros(0), np.zeros(0))
        if len(x) and len(x) == len(y):
            bottom.plot(x, y, color=COLOURS[who], lw=1.4, marker=".", ms=3, label=event.get("label", who))
            drawn = True
    style_axes(bottom, "", xlabel="frame", ylabel="|Δmean| + |Δstd|")
    if drawn:
        bottom.legend(fontsize=LEGEND_SIZE, loc="upper left")
    return ax
