"""``ScoreModule``: the base of the score-distillation methods (``score.*``).

The student and the teacher are denoisers (``forward(x_t, t)`` returns the x0-prediction, see the
family's docstring); batches are ``(x, y)`` with ``x`` the data points (``y`` is ignored). The base
owns the noise schedule (the ``schedule`` hyper-parameter) and the evaluation
(:class:`~.evaluation.SampleQuality`): at every validation epoch the student samples with
:attr:`ScoreModule.sampling_steps` DDIM steps and its samples are measured against the data.
"""

from __future__ import annotations

import torch

from ...core.module import DistillModule
from ...core.registry import HParam
from .evaluation import SampleQuality
from .samplers import sample
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

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """The student as a one-step generator ``G(z) = D_θ(z, t_max)``: its x0-prediction from prior noise
        ``z ~ N(0, I)`` at the schedule's largest time (one DDIM step; DMD and SiD initialise ``G`` so)."""
        t = torch.full((z.shape[0],), self.noise.t_max, dtype=z.dtype, device=z.device)
        return self.student(z, t)

    @torch.no_grad()
    def draw_samples(self, n: int, generator: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """The ``n`` samples the evaluation measures: the student's :attr:`sampling_steps`-step DDIM from the
        prior noise of ``generator``. A method whose student samples otherwise (consistency multistep
        sampling, a set of particles) overrides this."""
        return sample(
            self.student,
            self.noise,
            n,
            int(self.sampling_steps),
            generator=generator,
            shape=shape,
            dtype=dtype,
            device=self.device,
        )
