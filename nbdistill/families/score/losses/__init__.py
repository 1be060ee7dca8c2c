"""The score family's distillation losses, as pure functions (tensors in, named terms out).

One file per method's math, each formula written once with its paper in the docstring; a method's
module imports them from here.
"""

from .progressive import progressive_loss, progressive_target, truncated_snr_weight

__all__ = ["progressive_loss", "progressive_target", "truncated_snr_weight"]
