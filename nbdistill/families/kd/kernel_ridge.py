r"""Iterative self-distillation with ground-truth weighting in the case the paper analyses: kernel ridge regression.

"Even your Teacher Needs Guidance: Ground-Truth Targets Dampen Regularization Imposed by
Self-Distillation", Borup & Andersen, NeurIPS 2021 (arXiv 2102.13088). At step τ a fresh model
of the same architecture is fitted to a mix of the labels and the previous step's predictions:

.. math::
    f^{(\tau)} = \arg\min_f\; \alpha\,\|y - f(X)\|^2 + (1-\alpha)\,\|f^{(\tau-1)}(X) - f(X)\|^2 + \lambda\,\|f\|^2,
    \qquad f^{(1)}\ \text{fitted to}\ y .

For kernel ridge regression (kernel matrix :math:`K = V D V^\top`, :math:`A = D(D+\lambda I)^{-1}`) the
training predictions are :math:`\hat y^{(\tau)} = V B_\tau V^\top y` with the recursion
:math:`B_1 = A,\ B_\tau = A\big((1-\alpha)B_{\tau-1} + \alpha I\big)`, whose closed form is

.. math::
    B_\tau = \big((1-\alpha)A\big)^{\tau-1}A + \alpha A\big(I - ((1-\alpha)A)^{\tau-1}\big)\big(I - (1-\alpha)A\big)^{-1}
    \ \xrightarrow{\tau\to\infty}\ \alpha D(\alpha D + \lambda I)^{-1}:

the limit is the original problem with the regularisation amplified to :math:`\lambda/\alpha`
(non-zero for α > 0); with α = 0 (Mobahi et al., 2020) it collapses to the zero function.

The weight α: the paper gives the α minimising the error at each step in closed form. Its text
could not be read here (only the abstract and the authors' code); what follows from the
analysis above, and what :func:`optimal_alpha` implements, is that one step's prediction is
affine in α — :math:`f^{(\tau)}(\alpha) = f_0 + \alpha\,(f_1 - f_0)` with :math:`f_0` the fit to
the teacher's predictions and :math:`f_1` the fit to the labels — so the squared error against a
reference :math:`y^\star` is minimised at
:math:`\alpha^\star = \langle f_1 - f_0,\ y^\star - f_0\rangle / \|f_1 - f_0\|^2` (clipped to [0, 1]).
"""

from __future__ import annotations

import numpy as np


def rbf_kernel(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    r""":math:`k(a, b) = \exp(-\gamma\,\|a - b\|^2)` for rows of ``a`` [n, d] and ``b`` [m, d]."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    return np.exp(-gamma * np.maximum(sq, 0.0))


def iterative_self_distillation(K: np.ndarray, y: np.ndarray, lam: float, alpha: float, steps: int) -> list[np.ndarray]:
    """Dual coefficients ``c_τ`` of steps 1..``steps``, each a fresh kernel ridge fit:
    ``c_τ = (K + λI)⁻¹ (α y + (1 − α) ŷ_{τ−1})`` with ``ŷ_{τ−1} = K c_{τ−1}`` and ``ŷ_0 = y``.
    Predictions at new points ``X'`` are ``k(X', X) c_τ``."""
    solve = np.linalg.inv(K + lam * np.eye(len(K)))
    coefs, previous = [], y
    for step in range(steps):
        target = y if step == 0 else alpha * y + (1 - alpha) * previous
        c = solve @ target
        coefs.append(c)
        previous = K @ c
    return coefs


def closed_form_coefficients(K: np.ndarray, y: np.ndarray, lam: float, alpha: float, step: int) -> np.ndarray:
    """Dual coefficients of step ``step`` (≥ 1, or ``np.inf`` for the limit) straight from the first fit's
    eigen-decomposition, by the closed form of :math:`B_\\tau` (module docstring):
    ``c_τ = V D⁻¹ B_τ Vᵀ y``."""
    d, V = np.linalg.eigh(K)
    d = np.clip(d, 1e-12, None)
    a = d / (d + lam)
    if step == np.inf:
        b = alpha * d / (alpha * d + lam)
    else:
        r = (1 - alpha) * a  # < 1 for λ > 0
        power = r ** (step - 1)
        b = power * a + alpha * a * (1 - power) / (1 - r)
    return V @ ((b / d) * (V.T @ y))


def optimal_alpha(fit_to_teacher: np.ndarray, fit_to_labels: np.ndarray, reference: np.ndarray, clip: bool = True) -> float:
    r""":math:`\alpha^\star = \langle f_1 - f_0, y^\star - f_0\rangle / \|f_1 - f_0\|^2`, the minimiser of
    :math:`\|y^\star - (f_0 + \alpha (f_1 - f_0))\|^2` (exact when the step is affine in α, as for
    kernel ridge). ``fit_to_teacher`` is :math:`f_0` (α = 0), ``fit_to_labels`` :math:`f_1` (α = 1),
    ``reference`` :math:`y^\star` (held-out targets, or the noise-free function in a toy)."""
    f0, f1, ref = (np.asarray(v, float).ravel() for v in (fit_to_teacher, fit_to_labels, reference))
    direction = f1 - f0
    norm = float(direction @ direction)
    if norm == 0.0:
        return 1.0
    alpha = float(direction @ (ref - f0)) / norm
    return min(max(alpha, 0.0), 1.0) if clip else alpha
