"""Graph distillation: graph data sets into frequent computation trees (Mirage); GNNs into MLPs (GLNN, FF-G2M)."""

from . import losses, module, views  # noqa: F401  (importing them registers the methods and views)
