"""The score family's distillation losses, as pure functions (tensors in, tensors or named terms out).

One file per method's math, each formula written once with its paper in the docstring; a method's
module imports them from here: :mod:`.progressive` (the two-step target, truncated-SNR weight),
:mod:`.consistency` (the boundary map, one teacher ODE step, EMA, re-noising) and :mod:`.tscd` (segment
edges), :mod:`.dmd` (the distribution-matching gradient every DMD-style method steps on), :mod:`.dmd2`
(the GAN terms), :mod:`.decoupled_dmd` (CFG augmentation and distribution matching), :mod:`.phased_dmd`
(the sub-interval fake-score target), :mod:`.sid` (SiD's generator loss), :mod:`.disback` (the
backtracking schedule), :mod:`.boot` (the signal-space bootstrap), :mod:`.particles` (SDS, VSD, BSD),
:mod:`.tuned_sampler` (monotone time schedules), :mod:`.pso` (the pairwise preference loss) and
:mod:`.rolling` (the rolling window's noise levels).
"""

from .progressive import progressive_loss, progressive_target, truncated_snr_weight

__all__ = ["progressive_loss", "progressive_target", "truncated_snr_weight"]
