"""EVOLvE's functional-form fit of a cumulative-regret curve: sub-linear or linear regret.

EVOLvE ("EVOLvE: Evaluating and Optimizing LLMs For Exploration", Nie et al. 2024, Section 5)
fits a player's cumulative regret ``R(t)`` with the UCB-shaped form

    ``f(t) = lambda_1 log(t)^alpha / Delta_min + beta t + lambda_2``

(``lambda_1, beta, lambda_2 >= 0``): ``alpha`` says how fast the logarithmic part grows, ``beta`` is
the linear regret (``beta ~ 0`` for a player whose regret is sub-linear, ``beta > 0`` for one that keeps
paying a fixed price every step). The authors' repository (allenanie/EVOLvE) has no fitting code;
the paper states the form and reads the verdict from ``beta``. nbdistill fits it deterministically:
for each ``alpha`` on a grid, the form is linear in ``(lambda_1, beta, lambda_2)``, solved by
non-negative least squares (every active set of the three, the best feasible one); the best
``alpha`` wins. Its verdict is a number the paper leaves to the eye: the regret is **linear** when the
linear term makes at least ``linear_share`` (default one half) of the fitted regret at the horizon,
``beta T >= linear_share * f(T)``; else **sub-linear**.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

#: The exponents of ``log(t)`` tried (EVOLvE's ``alpha``).
ALPHAS = np.round(np.arange(0.25, 4.0001, 0.05), 4)


@dataclass(frozen=True)
class RegretFit:
    """The fitted ``f(t) = lambda_1 log(t)^alpha / gap + beta t + lambda_2`` and its verdict."""

    alpha: float
    lambda_1: float
    beta: float
    lambda_2: float
    gap: float
    linear_share: float  # beta T / f(T), the share of the fitted final regret that is linear
    verdict: str  # "linear" or "sub-linear"
    rmse: float

    def __call__(self, t) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        return self.lambda_1 * np.log(t) ** self.alpha / self.gap + self.beta * t + self.lambda_2


def _nonnegative_lstsq(design: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """``min ||design c - y||^2`` over ``c >= 0`` (3 columns: every active set solved exactly)."""
    n, p = design.shape
    best, best_err = np.zeros(p), float(np.sum(y**2))
    for size in range(1, p + 1):
        for cols in combinations(range(p), size):
            sub = design[:, cols]
            coef, *_ = np.linalg.lstsq(sub, y, rcond=None)
            if np.any(coef < 0):
                continue
            err = float(np.sum((sub @ coef - y) ** 2))
            if err < best_err:
                best, best_err = np.zeros(p), err
                best[list(cols)] = coef
    return best, best_err


def fit_regret(curve, gap: float = 1.0, linear_share: float = 0.5, alphas=ALPHAS) -> RegretFit:
    """Fit EVOLvE's form to a cumulative-regret ``curve`` (``curve[i] = R(i + 1)``, steps 1..T).

    Args:
        curve: the mean cumulative regret at t = 1..T (at least 4 points).
        gap: ``Delta_min``, the instance's smallest gap (scales ``lambda_1`` only).
        linear_share: the verdict's threshold on ``beta T / f(T)``.
    """
    y = np.asarray(curve, dtype=np.float64).ravel()
    if y.size < 4 or not np.all(np.isfinite(y)):
        raise ValueError(f"fit_regret needs at least 4 finite points of a regret curve, got {y.size}")
    if not gap > 0 or not 0 < linear_share < 1:
        raise ValueError(f"gap must be positive and linear_share in (0, 1), got {gap}, {linear_share}")
    t = np.arange(1, y.size + 1, dtype=np.float64)
    best = None
    for alpha in alphas:
        design = np.stack([np.log(t) ** alpha / gap, t, np.ones_like(t)], 1)
        coef, err = _nonnegative_lstsq(design, y)
        if best is None or err < best[2] - 1e-12:
            best = (float(alpha), coef, err)
    alpha, (lam1, beta, lam2), err = best
    final = lam1 * np.log(t[-1]) ** alpha / gap + beta * t[-1] + lam2
    share = float(beta * t[-1] / final) if final > 0 else 0.0
    return RegretFit(
        alpha=alpha,
        lambda_1=float(lam1),
        beta=float(beta),
        lambda_2=float(lam2),
        gap=float(gap),
        linear_share=share,
        verdict="linear" if share >= linear_share else "sub-linear",
        rmse=float(np.sqrt(err / y.size)),
    )
