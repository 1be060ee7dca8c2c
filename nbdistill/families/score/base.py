"""``ScoreModule``: the base of the score-distillation methods (``score.*``).

The student and the teacher are denoisers (``forward(x_t, t)`` returns the x0-prediction, see the
family's docstring); batches are ``(x, y)`` with ``x`` the data points (``y`` is ignored). The base
owns the noise schedule (the ``schedule`` hyper-parameter) and the evaluation
(:class:`~.evaluation.SampleQuality`): at every validation epoch the student samples with
:attr:`ScoreModule.sampling_steps` DDIM steps and its samples are measured against the data.
"""

from __future__ import annotations

from ...core.module import DistillModule
from ...core.registry import HParam
from .evaluation import SampleQuality
from .schedule import SCHEDULES, make_schedule

#: The views of every score method.
SCORE_VIEWS = ("losses", "score_samples", "score_metrics")


class ScoreModule(DistillModule):
    """Base of the score methods: a denoiser student, a denoiser teacher, a VP noise schedule."""

    lr = HParam(float, 1e-3, 1e-5, 1.0, log=True, help="Adam learning rate")
    schedule = HParam(str, "cosine", choices=tuple(SCHEDULES), help="variance-preserving noise schedule of teacher and student")
    eval_samples = HParam(int, 1000, 10, 100_000, help="samples the student draws at each validation")
    evaluation_class = SampleQuality

    def build_parts(self) -> None:
        super().build_parts()
        #: the schedule object (``alpha``, ``sigma``, ``timesteps``) named by ``schedule``
        self.noise = make_schedule(self.schedule)

    @property
    def sampling_steps(self) -> int:
        """The DDIM steps the student samples with at validation."""
        return 1
