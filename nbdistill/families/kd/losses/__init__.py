r"""Knowledge-distillation losses: pure functions, tensors in, tensors out (the formula and the paper
in each docstring), every KL through :func:`nbdistill.core.divergence.kl_divergence`.

- :mod:`.logits`: Hinton KD and the methods on logits alone (signal KD, DKD, PLD, OFA, Switch);
- :mod:`.feature_based`: FitNets' hint, the MI-α bound, self-distillation of early exits;
- :mod:`.mtard`, :mod:`.lelp`, :mod:`.self_gt`: the losses of those methods.
"""

from .feature_based import hint_loss, mi_alpha_bound, self_distillation
from .lelp import class_logits_from_subclasses, lelp_loss, subclass_log_targets, subclass_scores
from .logits import (
    cross_entropy,
    decoupled_kd,
    dkd_parts,
    hinton_kd,
    ofa_loss,
    ofa_target_weights,
    one_for_all_kd,
    plackett_luce_distillation,
    signal_kd,
    switch_distillation,
    teacher_optimal_order,
    weighted_plackett_luce_nll,
)
from .mtard import TEMPERATURE_RANGE, teacher_entropy, tempered_teacher_kl, update_temperatures, update_weights
from .self_gt import parameter_norm, self_distillation_loss

__all__ = [
    "TEMPERATURE_RANGE",
    "class_logits_from_subclasses",
    "cross_entropy",
    "decoupled_kd",
    "dkd_parts",
    "hint_loss",
    "hinton_kd",
    "lelp_loss",
    "mi_alpha_bound",
    "ofa_loss",
    "ofa_target_weights",
    "one_for_all_kd",
    "parameter_norm",
    "plackett_luce_distillation",
    "self_distillation",
    "self_distillation_loss",
    "signal_kd",
    "subclass_log_targets",
    "subclass_scores",
    "switch_distillation",
    "teacher_entropy",
    "teacher_optimal_order",
    "tempered_teacher_kl",
    "update_temperatures",
    "update_weights",
    "weighted_plackett_luce_nll",
]
