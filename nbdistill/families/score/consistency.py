r"""``score.consistency``: Consistency Distillation (Song, Dhariwal, Chen & Sutskever, "Consistency Models",
ICML 2023, Alg. 2), the formulas in :mod:`.losses.consistency`.

A training step draws ``n ~ U{0..N−1}`` on the teacher's ``N``-step grid (``N = teacher_steps``, the times
:meth:`~.schedule.VPSchedule.timesteps` ``t_0 = t_max > … > t_N = ε = t_min``), noises a data batch to
``x_{t_n} = α x + σ z``, takes one teacher ODE step to ``t_{n+1}`` (DDIM, or Heun with ``solver="heun"``) and
regresses the student's consistency function on the EMA target network's at the teacher's point:

    L = d( f_θ(x_{t_n}, t_n), sg f_θ⁻(x̂_{t_{n+1}}, t_{n+1}) ),   θ⁻ ← μ θ⁻ + (1 − μ) θ after each step,

with ``f_θ(x, t) = α_ε D_θ(x, t) + σ_ε (x − α_t D_θ(x, t))/σ_t`` (the DDIM step of the student denoiser ``D_θ``
to ``ε``): its ``c_skip = σ_ε/σ_t`` and ``c_out = α_ε − σ_ε α_t/σ_t`` make the boundary condition
``f_θ(x, ε) = x`` exact for any weights. (The student's own x0-prediction ``D_θ`` meets it only approximately:
an :class:`~nbdistill.models.MLPDenoiser` in v-parametrisation returns ``cos(πt/2) x − sin(πt/2) F``, equal to
``x`` at ``t = 0`` and within ``1.6e-3·|F|`` of it at ``ε``; ``f_θ`` differs from ``D_θ`` by ``σ_ε ε̂ ≈ 1.6e-3·ε̂``.)

Where nbdistill differs from openai/consistency_models (``cm/karras_diffusion.py``, ``consistency_losses``) and
revsic/flowmodels (``cm.py``): VP time in ``[t_min, t_max]`` with the schedule's uniform grid instead of EDM's
``σ ∈ [0.002, 80]`` with ``ρ = 7``, and the DDIM step to ``ε`` as ``c_skip``/``c_out`` instead of EDM's
``σ_data`` scalings; the target network is a frozen submodule ``target`` (saved in the checkpoint, out of the
optimiser). Samples: the multistep consistency sampler (paper Alg. 1) with ``steps`` evaluations.
"""

from __future__ import annotations

import copy

import torch

from ...core.errors import ConfigError
from ...core.module import freeze
from ...core.registry import HParam, register
from .base import SCORE_VIEWS, ScoreModule
from .losses.consistency import DISTANCES, SOLVERS, consistency_loss, consistency_map, ema_update, renoise, teacher_ode_step
from .progressive import copy_teacher_weights
from .schedule import VPSchedule, make_schedule


@register("score.consistency", views=SCORE_VIEWS)
class ConsistencyDistillation(ScoreModule):
    """Consistency distillation: a student that maps every point of the teacher's ODE trajectory to its end, trained on one teacher step against an EMA target (Song et al., 2023).

    The student is a denoiser; its consistency function is the DDIM step of its x0-prediction to the
    schedule's ``t_min`` (exact boundary condition). It samples with the multistep consistency sampler.
    """

    teacher_steps = HParam(int, 18, 2, 4096, help="N: steps of the teacher's ODE grid t_max -> t_min; a training step spans one")
    solver = HParam(str, "ddim", choices=SOLVERS, help="the teacher's ODE solver of that step (Heun: 2 evaluations)")
    ema_decay = HParam(float, 0.95, 0.0, 0.9999, help="μ of the target network θ⁻ <- μ θ⁻ + (1 - μ) θ")
    distance = HParam(str, "mse", choices=DISTANCES, help="d of the loss: squared error or pseudo-Huber")
    steps = HParam(int, 1, 1, 4096, help="evaluations of the multistep consistency sampler (at most teacher_steps)")
    init = HParam(str, "given", choices=("given", "teacher"), help="start the student from its own weights or the teacher's")

    def build_parts(self) -> None:
        super().build_parts()
        self.check_steps()
        if self.init == "teacher":
            copy_teacher_weights(self.teacher, self.student, self.method_name)
        #: the target network θ⁻ (an EMA of the student; no gradients, not optimised, checkpointed)
        self.target = freeze(copy.deepcopy(self.student))

    def check_steps(self) -> None:
        """A :class:`ConfigError` unless ``1 <= steps <= teacher_steps``."""
        if not 1 <= self.steps <= self.teacher_steps:
            raise ConfigError(
                f"{self.method_name}'s steps must be between 1 and the teacher's grid teacher_steps={self.teacher_steps}, "
                f"got steps={self.steps}; the student samples in fewer steps than the teacher"
            )

    @property
    def sampling_steps(self) -> int:
        return self.steps

    def train(self, mode: bool = True):
        super().train(mode)
        if hasattr(self, "target"):
            self.target.eval()
        return self

    def consistency(self, net: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``f(x, t → b)``: the DDIM step of ``net``'s x0-prediction from ``t`` to the boundary ``b`` (both ``[B]``)."""
        noise = self.noise
        return consistency_map(x, net(x, t), noise.alpha(t), noise.sigma(t), noise.alpha(b), noise.sigma(b))

    def boundary_index(self, index: torch.Tensor) -> torch.Tensor:
        """The grid index of the boundary each step from grid index ``index`` maps to: ``N`` (``ε = t_min``)."""
        return torch.full_like(index, self.teacher_steps)

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        if self.teacher is None:
            raise ConfigError(f"{self.method_name} distils a teacher's ODE: pass teacher=... (a denoiser)")
        grid = self.noise.timesteps(self.teacher_steps, dtype=x.dtype, device=x.device)
        n = torch.randint(self.teacher_steps, (x.shape[0],), device=x.device)
        t, s, b = grid[n], grid[n + 1], grid[self.boundary_index(n)]
        view = (-1,) + (1,) * (x.dim() - 1)
        x_t = self.noise.alpha(t).reshape(view) * x + self.noise.sigma(t).reshape(view) * torch.randn_like(x)
        with torch.no_grad():
            x_s = teacher_ode_step(self.teacher, self.noise, x_t, t, s, self.solver)
            target = self.consistency(self.target, x_s, s, b)
        return consistency_loss(self.consistency(self.student, x_t, t, b), target, self.distance)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        ema_update(self.target, self.student, self.ema_decay)

    @torch.no_grad()
    def draw_samples(self, n: int, generator: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """The multistep consistency sampler (:func:`consistency_sample`) with ``steps`` evaluations."""
        times = self.noise.timesteps(int(self.steps), dtype=dtype)
        return consistency_sample(self.student, self.noise, times, n, generator, shape, dtype, self.device)


@torch.no_grad()
def consistency_sample(
    student, schedule: VPSchedule, times: torch.Tensor, n: int, generator, shape=(2,), dtype=torch.float32, device=None
):
    """The multistep consistency sampler (paper Alg. 1) of a denoiser ``student`` along ``times``
    (``t_max > τ_1 > … > ε``, e.g. :meth:`~.schedule.VPSchedule.timesteps`): ``x = f(z, t_max)``; then for each
    ``τ_i`` but ``ε``, re-noise ``x`` to ``τ_i`` with fresh noise (:func:`.losses.consistency.renoise`) and
    ``x = f(x_τ, τ_i)``; ``f`` maps to ``ε = times[-1]``. All noise comes from ``generator`` on the CPU (the
    same samples on any device); ``len(times) − 1`` evaluations."""
    times = times.to(dtype=dtype, device=device)
    eps = times[-1].expand(n)
    alpha_eps, sigma_eps = schedule.alpha(eps), schedule.sigma(eps)
    x = torch.randn(n, *shape, generator=generator, dtype=dtype).to(device)
    for i, tau in enumerate(times[:-1]):
        tau = tau.expand(n)
        alpha, sigma = schedule.alpha(tau), schedule.sigma(tau)
        if i > 0:
            z = torch.randn(n, *shape, generator=generator, dtype=dtype).to(device)
            x = renoise(x, alpha_eps, sigma_eps, alpha, sigma, z)
        x = consistency_map(x, student(x, tau), alpha, sigma, alpha_eps, sigma_eps)
    return x


def consistency_draw(student: torch.nn.Module, schedule: VPSchedule | str = "cosine"):
    """``draw(n, steps, generator)``: ``steps``-step consistency samples of a trained student (for
    :func:`.quality.quality_rows`, whose default DDIM draw is a different, deterministic multistep sampler)."""
    schedule, student = make_schedule(schedule), student.eval()

    def draw(n: int, steps: int, generator: torch.Generator) -> torch.Tensor:
        return consistency_sample(student, schedule, schedule.timesteps(steps), n, generator, shape=(getattr(student, "dim", 2),))

    return draw
