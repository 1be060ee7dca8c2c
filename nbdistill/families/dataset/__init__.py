"""Dataset distillation: a real training set into a few synthetic examples per class.

Methods (registered as ``dataset.*``): ``dc`` (gradient matching), ``dm`` (distribution matching),
``mtt``, ``tesla``, ``ftd``, ``datm``, ``set`` (trajectory matching), ``cda`` (recovery from
batch-norm statistics with a crop curriculum).
Building blocks: :mod:`.losses` (the formulas), :mod:`.unroll` (the inner loop and its three
gradients), :mod:`.experts` (expert trajectory buffers), :mod:`.evaluate` (the evaluation protocol),
:mod:`.views` (live views).
"""

from . import distribution_matching, gradient_matching, recover, trajectory, views  # noqa: F401  (registers methods and views)
from .evaluate import EvalSettings, Report, evaluate_protocol, evaluate_set
from .experts import ExpertBuffer, ExpertRecipe, train_experts

__all__ = ["EvalSettings", "ExpertBuffer", "ExpertRecipe", "Report", "evaluate_protocol", "evaluate_set", "train_experts"]
