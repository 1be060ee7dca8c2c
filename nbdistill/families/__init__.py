"""Every distillation family; importing this package registers their methods."""

from . import dataset, graph, kd, policy, score  # noqa: F401
