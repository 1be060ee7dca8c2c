"""policy_horizon: the per-step regret before and after the trained context, and the view on a log."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nbdistill.core.run import EventLog  # noqa: E402
from nbdistill.families.policy.horizon_views import policy_horizon, slopes  # noqa: E402


def test_slopes_by_hand():
    # R_t = 1, 2, 3, 3.5, 4: 3 / 3 = 1 per pull up to t = 3, (4 - 3) / 2 = 0.5 after
    before, after = slopes(np.array([1.0, 2.0, 3.0, 3.5, 4.0]), 3)
    assert abs(before - 1.0) < 1e-12 and abs(after - 0.5) < 1e-12


def test_no_after_slope_within_the_trained_horizon():
    assert np.isnan(slopes(np.array([1.0, 2.0]), 2)[1])


def test_draws_empty_and_marks_the_context():
    fig, ax = plt.subplots()
    policy_horizon(ax, EventLog())
    fig, ax = plt.subplots()
    y = [0.5 * t for t in range(1, 7)]
    events = [
        {
            "kind": "points",
            "name": "test/regret/student",
            "x": list(range(1, 7)),
            "y": y,
            "se": [0.1] * 6,
            "context": 3,
            "step": 1,
        },
        {"kind": "points", "name": "test/regret/thompson", "x": list(range(1, 7)), "y": y, "se": [0.1] * 6, "step": 1},
    ]
    policy_horizon(ax, EventLog(events))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("trained context (3)" in t for t in labels)
    assert any("0.500/step to t=3, 0.500/step after" in t for t in labels)
    plt.close("all")
