"""Schedules of the dataset-distillation methods: pure functions of the iteration or epoch."""

from __future__ import annotations

import math

from ...core.errors import ConfigError


def datm_upper_bound(iteration: int, initial: int, final: int, expansion_end: int) -> int:
    r"""DATM's sequential generation (Guo et al., "Towards Lossless Dataset Distillation via
    Difficulty-Aligned Trajectory Matching", ICLR 2024; NUS-HPC-AI-Lab/DATM ``DATM.py``): the upper
    end of the matching window grows linearly from ``initial`` to ``final`` over the first
    ``expansion_end`` iterations, :math:`T_{up} = T + (T^+ - T)\,\min(1, it / it_{end})`, so the
    synthetic set first matches the early (easy) part of the expert trajectories, then later parts."""
    if expansion_end <= 0 or final <= initial:
        return final
    return initial + int((final - initial) * min(1.0, iteration / expansion_end))


def cda_min_crop(progress: float, milestone: float, mode: str = "cosine", smallest: float = 0.08) -> float:
    r"""CDA's curriculum (Yin & Shen, "Dataset Distillation via Curriculum Data Synthesis in Large
    Data Era", TMLR 2024; VILA-Lab/SRe2L ``CDA/recover_cda_*.py``): the lower bound of the
    ``RandomResizedCrop`` scale goes from 1 (whole images: easy) to ``smallest`` (0.08 in CDA:
    small crops, hard) over the first ``milestone`` fraction of the optimisation, by a ``step``,
    ``linear`` or ``cosine`` schedule, then stays there. ``progress`` is the fraction of
    iterations done, in [0, 1]."""
    if mode not in ("step", "linear", "cosine"):
        raise ConfigError(f"crop curriculum {mode!r}: use 'step', 'linear' or 'cosine'")
    if progress >= milestone:
        return smallest
    r = progress / milestone
    if mode == "step":
        return 1.0
    if mode == "linear":
        return smallest + (1.0 - smallest) * (1.0 - r)
    return smallest + (1.0 - smallest) * (1.0 + math.cos(math.pi * r)) / 2


def ast_clip_factor(epoch: int, epochs: int = 10, first: float = 0.5) -> float:
    """AST's clipping loss (Shen, Yang & Lam, arXiv 2310.10541, ``--loss_decay``): the expert's loss is
    multiplied by 0.5, 0.55, …, 0.95 over its first 10 epochs, then 1, damping early parameter changes."""
    if epoch >= epochs:
        return 1.0
    return first + (1.0 - first) * epoch / epochs


def ast_balance_weight(start_epoch: int, max_start_epoch: int) -> float:
    r"""AST's balanced inner-loop loss (``--balance_loss``): with :math:`h = \lfloor T^+/2\rfloor`, the
    inner cross-entropy is multiplied by :math:`\log_5(t - h + 8)` when the start epoch t ≥ h and
    divided by :math:`\log_5(h - t + 8)` otherwise, evening out the size of early and late segments."""
    half = max_start_epoch // 2
    if start_epoch >= half:
        return math.log(start_epoch - half + 8, 5)
    return 1.0 / math.log(half - start_epoch + 8, 5)
