r"""Distribution Backtracking's schedule (Zhang et al., "Distribution Backtracking Builds A Faster Convergence
Trajectory for Diffusion Distillation", arXiv 2408.15991): which score the generator matches at a step.

Stage 1 (degradation recording) takes ``N · R`` steps (``N`` recorded checkpoints, ``R`` steps between two);
stage 2 (backtracking) walks the targets ``s^{N−1}, …, s^1, s^0 = teacher``, ``S`` steps each, the teacher
staying the target to the end:

    k(n) = None                                  (stage 1)       for n < N·R,
    k(n) = max(N − 1 − ⌊(n − N·R) / S⌋, 0)       (stage 2)       otherwise.

``n`` is the number of training steps already taken.
"""

from __future__ import annotations


def backtracking_target(step: int, checkpoints: int, record_steps: int, stage_steps: int) -> int | None:
    """The index ``k`` of the "real" score ``s^k`` at training step ``step`` (0: the teacher), ``None`` in stage 1."""
    recording = checkpoints * record_steps
    if step < recording:
        return None
    return max(checkpoints - 1 - (step - recording) // stage_steps, 0)
