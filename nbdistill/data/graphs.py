"""Graph data sets made locally (no download), under the import path configs and notebooks use
(``nbdistill.data.graphs.SBM``): graph classification lives in :mod:`.graph_classification`
(:class:`BAMotifs`, :class:`LabelledMotifs`, :class:`TUGraphs`), node classification in
:mod:`.node_classification` (:class:`KarateClub`, :class:`SBM`).
"""

from .graph_classification import BAMotifs, GraphSetDataModule, LabelledMotifs, MotifGraphs, TUGraphs
from .node_classification import SBM, KarateClub, NodeDataModule, sbm_edges
from .sampling import seeded

__all__ = [
    "BAMotifs",
    "GraphSetDataModule",
    "KarateClub",
    "LabelledMotifs",
    "MotifGraphs",
    "NodeDataModule",
    "SBM",
    "TUGraphs",
    "sbm_edges",
    "seeded",
]
