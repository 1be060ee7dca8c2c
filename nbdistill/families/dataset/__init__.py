"""Dataset distillation: a real training set into a few synthetic examples per class.

Methods (registered as ``dataset.*``): ``dc`` (gradient matching), ``dm`` (distribution matching),
``mtt``, ``tesla``, ``ftd``, ``datm``, ``set`` (trajectory matching), ``cda`` (recovery from
batch-norm statistics with a crop curriculum).
One file per method (``dataset.mtt`` in :mod:`.mtt`, …) on the shared base :mod:`.base`
(trajectory matching's on :mod:`.trajectory_base`). Building blocks: :mod:`.losses` (the formulas),
:mod:`.unroll` (the inner loop and its three gradients), :mod:`.experts` (expert trajectory
buffers), :mod:`.evaluate` (the evaluation protocol), :mod:`.set_gap` (the family's evaluation
hook), :mod:`.views` (live views).
"""

from . import cda, datm, dc, dm, ftd, mtt, set, tesla, views  # noqa: F401  (importing them registers the methods and views)
from .evaluate import EvalSettings, Report, evaluate_protocol, evaluate_set
from .experts import ExpertBuffer, ExpertRecipe, train_experts

__all__ = ["EvalSettings", "ExpertBuffer", "ExpertRecipe", "Report", "evaluate_protocol", "evaluate_set", "train_experts"]
