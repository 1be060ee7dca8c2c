"""Data modules. Embedded sets need no download: :class:`Digits` (scikit-learn's 8×8 digits),
:class:`MNIST1D` (generated locally by the ``mnist1d`` package) and :class:`FairTabular` (synthetic
tabular data with a sensitive attribute, batches ``(x, y, s)``); graph sets made locally
(:class:`BAMotifs`, :class:`LabelledMotifs`, :class:`SBM`, :class:`KarateClub`) and the TU sets
(:class:`TUGraphs`, downloads); 2-D point sets for score distillation, made locally (:class:`Mixture2D`
with its exact density, :class:`TwoMoons`, :class:`SwissRoll`, :class:`Checkerboard`, :class:`Circles`, :class:`SCurve`);
bandit tasks drawn from seeds for policy distillation (:class:`BernoulliBandits`, :class:`GaussianBandits`,
:class:`LinearBandits`; a user's own Gymnasium-style bandits through :class:`EnvTasks`), the reaching tasks of
``policy.aacd`` (:class:`ReachTasks`) and the archive cells of ``policy.archive`` (:class:`ArchiveTargets`).

Your own data needs no class: :func:`as_datamodule` (which ``nd.fit`` and the panel call) takes
``(X, y)`` arrays, tensors or a DataFrame, a dict of splits, a torch ``Dataset`` or ``DataLoader``,
a PyG graph with node masks or a list of graphs.
"""

from ..core.registry import register_data_adapter
from .aacd_tasks import ReachTasks
from .adapt import ArrayData, as_datamodule
from .adapt_graphs import GraphList, GraphNodes
from .archive_targets import ArchiveTargets
from .bandits import BanditTasks, BernoulliBandits, GaussianBandits, LinearBandits
from .base import ArrayDataModule, SplitsMade
from .digits import Digits
from .digits_shift import DigitsShift
from .env_tasks import EnvTasks
from .fair_tabular import FairTabular
from .graph_classification import BAMotifs, GraphSetDataModule, LabelledMotifs, TUGraphs
from .mnist1d import MNIST1D
from .node_classification import SBM, KarateClub, NodeDataModule
from .sampling import EpochSeededSampler
from .sequences import SineSequences
from .toy2d import Checkerboard, Circles, ClassRing, Mixture2D, SCurve, SwissRoll, Toy2D, TwoMoons

__all__ = [
    "ReachTasks",
    "ArchiveTargets",
    "as_datamodule",
    "ArrayData",
    "ArrayDataModule",
    "GraphList",
    "GraphNodes",
    "SplitsMade",
    "Digits",
    "FairTabular",
    "DigitsShift",
    "MNIST1D",
    "EpochSeededSampler",
    "BAMotifs",
    "LabelledMotifs",
    "TUGraphs",
    "KarateClub",
    "SBM",
    "GraphSetDataModule",
    "NodeDataModule",
    "Toy2D",
    "ClassRing",
    "Mixture2D",
    "TwoMoons",
    "SineSequences",
    "SwissRoll",
    "Checkerboard",
    "Circles",
    "SCurve",
    "BanditTasks",
    "BernoulliBandits",
    "GaussianBandits",
    "LinearBandits",
    "EnvTasks",
]

register_data_adapter(as_datamodule)  # what nd.fit and the panel call on a user's data
