"""EVOLvE's regret analysis as pictures: the functional-form fit of a curve, and the easy/hard suite grid.

- view ``policy_regret_fit``: the student's cumulative regret on held-out tasks (latest evaluation)
  with EVOLvE's fitted form ``lambda_1 log(t)^alpha / Delta + beta t + lambda_2`` (:mod:`.evolve_fit`)
  and its verdict (sub-linear / linear), beside greedy's and UCB's fits. ``Delta`` is not in the log:
  the fit uses ``Delta = 1``, which rescales ``lambda_1`` only (the verdict and ``alpha``, ``beta`` stay);
- :func:`suite_grid` / :func:`draw_suite_grid`: players' final regret on EVOLvE's suites
  (:data:`EVOLVE_SUITES`: Bernoulli gap 0.5 / 0.2, Gaussian sigma 1 / 3) as a heat map, and each
  player's pairwise win-rate (EVOLvE's tables: a win is a significantly lower regret, Welch t-test
  p < 0.05 on the per-task final regrets, counted over every other player and suite).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes

from ...core.run import EventLog
from ...core.style import LEGEND_SIZE, TITLE_SIZE, empty, style_axes
from ...core.views import view
from .algorithms import make_algorithm
from .evolve_fit import fit_regret
from .rollout import run_algorithm, run_model
from .views import COLOURS, _curves

#: EVOLvE's multi-armed bandit presets (banditbench/tasks/mab/__init__.py): data-module class and options.
EVOLVE_SUITES: dict[str, tuple[str, dict[str, float]]] = {
    "Bernoulli gap 0.5 (easy)": ("BernoulliBandits", {"gap": 0.5}),
    "Bernoulli gap 0.2 (hard)": ("BernoulliBandits", {"gap": 0.2}),
    "Gaussian sigma 1 (easy)": ("GaussianBandits", {"sigma": 1.0, "mean_std": 1.0}),
    "Gaussian sigma 3 (hard)": ("GaussianBandits", {"sigma": 3.0, "mean_std": 3.0}),
}


@view("policy_regret_fit")
def policy_regret_fit(ax: Axes, log: EventLog) -> Axes:
    """The student's cumulative regret with EVOLvE's fitted form and verdict, beside greedy's and UCB's fits."""
    title = "regret fit: lambda log(t)^alpha + beta t"
    curves, stage = _curves(log, "regret")
    if "student" not in curves or len(curves["student"]["y"]) < 4:
        return empty(ax, title)
    for who in ("greedy", "ucb", "student"):
        if who not in curves:
            continue
        x, y = np.asarray(curves[who]["x"], float), np.asarray(curves[who]["y"], float)
        fit = fit_regret(y)
        colour = "black" if who == "student" else COLOURS.get(who)
        name = curves[who].get("label", who)
        ax.plot(x, y, color=colour, lw=2.2 if who == "student" else 1.0, alpha=1.0 if who == "student" else 0.6)
        ax.plot(
            x, fit(x), color=colour, ls=":", lw=1.6, label=f"{name}: {fit.verdict} (alpha {fit.alpha:.2f}, beta {fit.beta:.3f})"
        )
    style_axes(ax, f"{title} ({stage})", xlabel="t (pulls)", ylabel="regret R_t")
    ax.legend(fontsize=LEGEND_SIZE, loc="upper left")
    return ax


def _suite_tasks(name: str, arms: int, horizon: int, n_tasks: int, seed: int):
    from ... import data

    cls, options = EVOLVE_SUITES[name]
    module = getattr(data, cls)(arms=arms, horizon=horizon, n_tasks=max(n_tasks, 10), **options)
    return module.make_env(module.draw_tasks(n_tasks, torch.Generator().manual_seed(seed)))


def suite_grid(
    players: dict[str, Any] | tuple[str, ...] = ("random", "greedy", "ucb", "thompson"),
    suites: tuple[str, ...] = tuple(EVOLVE_SUITES),
    arms: int = 5,
    horizon: int = 50,
    n_tasks: int = 100,
    seed: int = 0,
) -> dict[str, Any]:
    """Every player's final regret ``R_T`` on every suite (the same tasks and reward noise for all).

    ``players``: algorithm names, or a dict name -> algorithm name | in-context model (played online
    by :func:`.rollout.run_model`; it must read ``horizon - 1`` transitions of ``arms`` arms). Returns
    ``{"players", "suites", "regret" [P][S] means, "se" [P][S], "win_rate" [P]}``.
    """
    from scipy import stats  # Welch's t-test of the win-rate (imported here: the family loads without scipy.stats)

    named = dict(players) if isinstance(players, dict) else {p: p for p in players}
    finals: dict[str, list[np.ndarray]] = {p: [] for p in named}
    for s, suite in enumerate(suites):
        env = _suite_tasks(suite, arms, horizon, n_tasks, seed + s)
        for p, who in named.items():
            generator = torch.Generator().manual_seed(seed)
            if isinstance(who, str):
                played = run_algorithm(make_algorithm(who), env, horizon, generator, seed=seed)
            else:
                played = run_model(who, env, horizon, generator, seed=seed)
            finals[p].append(played.regret.double().sum(1).numpy())
    names = list(named)
    wins = np.zeros(len(names))
    contests = max(1, (len(names) - 1) * len(suites))
    for i, a in enumerate(names):
        for b in names:
            for s in range(len(suites)):
                if a != b:
                    ra, rb = finals[a][s], finals[b][s]
                    if ra.mean() < rb.mean() and stats.ttest_ind(ra, rb, equal_var=False).pvalue < 0.05:
                        wins[i] += 1
    return {
        "players": names,
        "suites": list(suites),
        "regret": [[float(r.mean()) for r in finals[p]] for p in names],
        "se": [[float(r.std(ddof=1) / np.sqrt(len(r))) for r in finals[p]] for p in names],
        "win_rate": (wins / contests).tolist(),
    }


def draw_suite_grid(ax: Axes, grid: dict[str, Any]) -> Axes:
    """Heat map of final regret per (player, suite), the value in each cell, the win-rate by each player."""
    title = "final regret per suite (EVOLvE's easy / hard grid)"
    values = np.asarray(grid.get("regret", []), float)
    if values.ndim != 2 or values.size == 0:
        return empty(ax, title)
    scaled = values / np.maximum(values.max(0, keepdims=True), 1e-12)  # each suite on its own scale
    ax.imshow(scaled, cmap="magma_r", vmin=0, vmax=1, aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, f"{values[i, j]:.1f}", ha="center", va="center", color="white" if scaled[i, j] > 0.6 else "black")
    ax.set_xticks(range(values.shape[1]), [s.replace(" (", "\n(") for s in grid["suites"]], fontsize=LEGEND_SIZE)
    rates = grid.get("win_rate", [float("nan")] * values.shape[0])
    ax.set_yticks(range(values.shape[0]), [f"{p}  (win {100 * w:.0f}%)" for p, w in zip(grid["players"], rates)])
    ax.set_title(title, fontsize=TITLE_SIZE)
    return ax
