"""kd.swing's views (nbdistill/families/kd/pipelines/swing_views.py) from empty, partial and full logs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nbdistill.core.run import EventLog  # noqa: E402
from nbdistill.families.kd.pipelines.swing_views import swing_exposure, swing_temperatures  # noqa: E402

TEACHER = {"kind": "scalar", "name": "swing/teacher_exposure", "step": 0, "value": 9.5}
TOP = {"kind": "scalar", "name": "swing/max_exposure", "step": 0, "value": 9.97}
TABLE = {
    "kind": "table",
    "name": "swing/exposure",
    "step": 10,
    "columns": ["canary", "label", "teacher", "student", "tau"],
    "rows": [[0, 3, 9.97, 1.2, 80.0], [1, 7, 8.97, 6.5, 4.0]],
}
TAU = {
    "kind": "histogram",
    "name": "swing/tau",
    "step": 0,
    "edges": [4.0, 52.0, 100.0],
    "counts": [1000, 3],
    "canaries": [80.0, 4.0],
}


def draw(view, events):
    fig, ax = plt.subplots()
    try:
        return view(ax, EventLog(events)).get_title(), len(ax.patches)
    finally:
        plt.close(fig)


def test_views_draw_from_empty_partial_and_full_logs():
    assert draw(swing_exposure, [])[0] == "canary exposure"
    assert draw(swing_exposure, [TEACHER, TOP])[1] == 1  # the teacher's mean alone, before the student is measured
    title, bars = draw(swing_exposure, [TEACHER, TOP, TABLE])
    assert bars == 4 and "42.0" in title  # teacher and student per canary; mean τ on the canaries
    assert draw(swing_temperatures, [])[0] == "per-example temperature τ_i"
    assert draw(swing_temperatures, [TAU])[1] == 2
