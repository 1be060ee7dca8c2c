r"""The decision threshold of a graph classifier, set on validation graphs.

Mirage's GNN learns from distilled graphs that hold only the computation trees frequent in one
class and not in another; the trees common to both classes (most of a real graph's nodes) are never
seen in training, yet a real graph pools them too. They add to every real graph's logits an offset
the GNN never learnt to cancel: its *ranking* of the graphs stays good (a high ROC-AUC), while the
argmax can put nearly every graph in one class (accuracy at chance). A per-class additive bias
:math:`b` on the logits, chosen on the validation graphs, restores the decision rule:

.. math:: \hat y = \arg\max_k \,(z_k + b_k), \qquad b = \arg\max_b \ \mathrm{acc}_\text{val}(b),\ b_0 = 0.

For two classes this is the exact best threshold on :math:`z_1 - z_0`; with more, a few rounds of
exact one-class-at-a-time searches (coordinate ascent). Among equally good values the middle one is
taken. ROC-AUC does not depend on :math:`b` for two classes.
"""

from __future__ import annotations

import torch


def decision_bias(logits: torch.Tensor, labels: torch.Tensor, rounds: int = 3) -> torch.Tensor:
    """The bias ``b`` (``[classes]``, ``b[0] = 0``) maximising the accuracy of ``argmax(logits + b)`` on ``labels``."""
    z = logits.detach().double().cpu()
    y = labels.detach().long().cpu()
    classes = z.shape[1]
    bias = torch.zeros(classes, dtype=torch.float64)
    if len(y) == 0 or classes < 2:
        return bias.float()
    for _ in range(1 if classes == 2 else rounds):
        changed = False
        for k in range(1 if classes == 2 else 0, classes):
            shifted = z + bias
            others = shifted.clone()
            others[:, k] = -torch.inf
            best_other, other_class = others.max(1)
            margin = best_other - shifted[:, k]  # class k wins when its bias grows by more than this
            delta = _best_shift(margin, y == k, other_class == y)
            if delta != 0.0:
                bias[k] += delta
                changed = True
        if not changed:
            break
    return (bias - bias[0]).float()


def _best_shift(margin: torch.Tensor, is_k: torch.Tensor, others_right: torch.Tensor) -> float:
    """The shift ``d`` maximising ``sum(is_k if d > margin else others_right)`` (0 unless it gains);
    the middle one of the best. One sort: after the j smallest margins, class k wins for those j."""
    order = torch.argsort(margin)
    m = margin[order]
    zero = torch.zeros(1, dtype=torch.long)
    won = torch.cat([zero, torch.cumsum(is_k[order].long(), 0)])
    kept = torch.cat([zero, torch.cumsum(others_right[order].long(), 0)])
    correct = won + (kept[-1] - kept)  # correct[j]: class k wins for the j smallest margins
    n = len(m)
    split = torch.ones(n + 1, dtype=torch.bool)
    split[1:n] = m[1:] > m[:-1]  # a shift can fall between two distinct margins only
    now = int(correct[int((m < 0).sum())])
    top = int(correct[split].max())
    if top <= now:
        return 0.0
    best = torch.nonzero(split & (correct == top)).flatten()
    j = int(best[len(best) // 2])
    if j == 0:
        return float(m[0]) - 1.0
    if j == n:
        return float(m[-1]) + 1.0
    return float(m[j - 1] + m[j]) / 2


def accuracy(logits: torch.Tensor, labels: torch.Tensor, bias: torch.Tensor | None = None) -> float:
    """Accuracy of ``argmax(logits + bias)``."""
    z = logits if bias is None else logits + bias.to(logits)
    return (z.argmax(-1) == labels).float().mean().item()
