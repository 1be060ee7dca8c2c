"""The simulated clients of ``kd.knfu``: a seeded non-IID split of a training split into client shards
(Dirichlet label skew) and a public, unlabelled transfer set held out beside them.

Label skew by a Dirichlet draw per class (Hsu, Qi & Brown, "Measuring the Effects of Non-Identical
Data Distribution for Federated Visual Classification", 2019; the split KnFu's experiments use):
for every class c, proportions :math:`q_c \\sim \\mathrm{Dir}(\\alpha\\,\\mathbf 1_K)` over the K clients,
and the examples of c, shuffled, are cut at the cumulative proportions. Every example lands in
exactly one shard (a partition); small α gives each client few classes, large α near-IID shards.
"""

from __future__ import annotations

import numpy as np

from ....core.errors import ConfigError

#: Dirichlet draws tried before a split that leaves a client without data is refused.
MAX_DRAWS = 100


def check_client_count(n_examples: int, clients: int, where: str = "the training split") -> None:
    """ConfigError when ``clients`` shards cannot each hold one of ``n_examples`` examples."""
    if clients > n_examples:
        raise ConfigError(
            f"clients={clients} simulated clients need at least one training example each, but {where} has "
            f"{n_examples}; lower clients to at most {n_examples} or give more training data"
        )


def transfer_split(n_examples: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(private, transfer)`` indices of ``range(n_examples)``: ``round(fraction·n)`` (at least one)
    drawn with ``seed`` as the shared, unlabelled transfer set, the rest left for the clients."""
    order = np.random.default_rng(seed).permutation(n_examples)
    n_transfer = max(1, int(round(fraction * n_examples)))
    if n_transfer >= n_examples:
        raise ConfigError(
            f"transfer={fraction:g} of {n_examples} training examples leaves none for the clients; lower transfer "
            "or give more training data"
        )
    return np.sort(order[n_transfer:]), np.sort(order[:n_transfer])


def dirichlet_split(labels: np.ndarray, clients: int, alpha: float, seed: int) -> list[np.ndarray]:
    """Indices into ``labels`` of each client's shard: a partition of ``range(len(labels))`` with every
    shard non-empty, label skew Dirichlet(α) per class (module docstring), seeded by ``seed``.

    A draw that leaves a client empty is redrawn (up to :data:`MAX_DRAWS` times, as the usual
    implementations do); ConfigError if none fits or if there are more clients than examples.
    """
    labels = np.asarray(labels)
    check_client_count(len(labels), clients)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    for _ in range(MAX_DRAWS):
        shards: list[list[np.ndarray]] = [[] for _ in range(clients)]
        for c in classes:
            members = rng.permutation(np.flatnonzero(labels == c))
            q = rng.dirichlet(np.full(clients, float(alpha)))
            cuts = (np.cumsum(q)[:-1] * len(members)).round().astype(int)
            for k, part in enumerate(np.split(members, cuts)):
                shards[k].append(part)
        parts = [np.sort(np.concatenate(s)) for s in shards]
        if all(len(p) for p in parts):
            return parts
    raise ConfigError(
        f"alpha={alpha:g} left a client with no data in {MAX_DRAWS} Dirichlet draws of {len(labels)} examples over "
        f"clients={clients}; raise alpha (less label skew), lower clients or give more training data"
    )


def label_histograms(labels: np.ndarray, parts: list[np.ndarray], num_classes: int) -> np.ndarray:
    """``[clients, classes]`` counts of each class in each shard."""
    labels = np.asarray(labels)
    return np.stack([np.bincount(labels[p], minlength=num_classes) for p in parts])


def label_skew(histograms: np.ndarray) -> float:
    """Mean total-variation distance between each shard's label distribution and the pooled one
    (0 for IID shards, towards 1 as each client holds classes nobody else has)."""
    h = np.asarray(histograms, dtype=float)
    pooled = h.sum(0) / h.sum()
    local = h / h.sum(1, keepdims=True)
    return float(0.5 * np.abs(local - pooled).sum(1).mean())


def own_distribution_accuracy(logits, labels, distribution: np.ndarray) -> float:
    r"""Accuracy on test data drawn like a client's own labels: :math:`\sum_c \pi_c\,\mathrm{acc}_c`, the
    per-class accuracies of ``logits`` on ``labels`` weighted by the client's label distribution π
    (renormalised over the classes the test data holds)."""
    pred = np.asarray(logits.argmax(-1))
    labels = np.asarray(labels)
    pi = np.asarray(distribution, dtype=float)
    present = [c for c in range(len(pi)) if (labels == c).any() and pi[c] > 0]
    if not present:
        return float("nan")
    acc = np.array([(pred[labels == c] == c).mean() for c in present])
    return float((pi[present] * acc).sum() / pi[present].sum())
