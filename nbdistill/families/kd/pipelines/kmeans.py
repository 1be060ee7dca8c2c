r"""Seeded k-means (Lloyd's algorithm with k-means++ seeding) and the feature preprocessing UNFUSED
applies before clustering (PCA whitening, then L2 normalisation; ``clustering.preprocess_features``
in the authors' LAPE repository, where faiss does both)."""

from __future__ import annotations

import torch


def pca_whiten(features: torch.Tensor, dims: int) -> torch.Tensor:
    r"""Project centred ``features`` on their first ``dims`` principal axes, each divided by its
    standard deviation (eigenvalue power −½), then L2-normalise every row."""
    x = features.double() - features.double().mean(0)
    _, s, vt = torch.linalg.svd(x, full_matrices=False)
    dims = min(dims, vt.shape[0])
    std = (s[:dims] / max(1, len(x) - 1) ** 0.5).clamp_min(1e-8)
    z = (x @ vt[:dims].T) / std
    return torch.nn.functional.normalize(z, dim=1).to(features.dtype)


def assign(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """The index of each row's nearest centroid (squared Euclidean distance)."""
    return torch.cdist(x, centroids).argmin(1)


def _fill_empty(x: torch.Tensor, centroids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Give each empty cluster the point farthest from its centroid among the clusters of two or more
    points (it becomes the empty cluster's centroid); ``centroids`` is updated in place."""
    labels = labels.clone()
    for c in range(len(centroids)):
        if (labels == c).any():
            continue
        sizes = torch.bincount(labels, minlength=len(centroids))
        distance = (x - centroids[labels]).pow(2).sum(1).masked_fill(sizes[labels] < 2, -1.0)
        far = int(distance.argmax())
        labels[far] = c
        centroids[c] = x[far]
    return labels


def kmeans(x: torch.Tensor, k: int, seed: int = 0, iters: int = 50) -> tuple[torch.Tensor, torch.Tensor, float]:
    r"""``(centroids [k, d], assignments [n], inertia)`` minimising :math:`\sum_i \|x_i - c_{a_i}\|^2`.

    k-means++ seeding (Arthur & Vassilvitskii, 2007) from a generator seeded with ``seed``, then
    Lloyd iterations until the assignments stop changing (at most ``iters``); a cluster left empty
    takes the point farthest from its centroid (:func:`_fill_empty`), so every cluster has a point."""
    if not 1 <= k <= len(x):
        raise ValueError(f"k-means needs 1 <= k <= {len(x)} points, got k = {k}")
    generator = torch.Generator().manual_seed(seed)
    x = x.detach().float().cpu()
    centroids = x[torch.randint(len(x), (1,), generator=generator)]
    for _ in range(1, k):
        d2 = torch.cdist(x, centroids).min(1).values.pow(2)
        weights = d2 if d2.sum() > 0 else torch.ones_like(d2)
        centroids = torch.cat([centroids, x[torch.multinomial(weights, 1, generator=generator)]])
    labels = _fill_empty(x, centroids, assign(x, centroids))
    for _ in range(iters):
        for c in range(k):
            centroids[c] = x[labels == c].mean(0)
        new = _fill_empty(x, centroids, assign(x, centroids))
        if torch.equal(new, labels):
            break
        labels = new
    inertia = (x - centroids[labels]).pow(2).sum().item()
    return centroids, labels, inertia
