"""Graph distillation: graph data sets into frequent computation trees (Mirage); GNNs into MLPs (GLNN, FF-G2M).

One file per method (``graph.glnn`` in :mod:`.glnn`, ``graph.ff_g2m`` in :mod:`.ff_g2m`, ``graph.mirage``
in :mod:`.mirage`), the GNN-to-MLP base in :mod:`.base`, the loss math in :mod:`.losses`, what "the
gap" is in :mod:`.evaluation`.
"""

from . import ff_g2m, glnn, mirage, views  # noqa: F401  (importing them registers the methods and views)
