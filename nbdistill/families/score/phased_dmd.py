r"""``score.phased_dmd``: Phased DMD (Fan et al., "Phased DMD: Few-step Distribution Matching Distillation
via Score Matching within Subintervals", arXiv 2510.27684).

The time range is split into ``K = phases`` subintervals at ``t_0 = t_max > t_1 > … > t_K``, uniform in
``t`` (:meth:`~.schedule.VPSchedule.timesteps`), and the ``K``-step generator is a mixture of experts:
expert ``k`` maps ``x_{t_k}`` to an x0-prediction ``μ_k = E_k(x_{t_k}, t_k)``, re-noised with fresh noise
to the next boundary, ``x_{t_{k+1}} = α_{t_{k+1}} μ_k + σ_{t_{k+1}} ε`` (the last expert's ``μ`` is the
sample). Training goes phase by phase towards higher SNR, ``phase_steps`` training steps each; in phase
``k`` the earlier (trained) experts run without gradients, expert ``k`` (initialised from expert
``k − 1``) produces ``x_s = α_s μ_k + σ_s ε`` at ``s = t_{k+1}`` (``s = 0``, ``x_s = μ_k``, in the last phase),
and DMD acts *within the subinterval*: ``τ ~ U[max(s, 0.02), min(t_k, 0.98)]``,
``x_τ = α_{τ|s} sg(x_s) + σ_{τ|s} ε`` and

- generator: :func:`.losses.dmd.dmd_gradient` ``(μ_k, μ_real(x_τ, τ), μ_fake(x_τ, τ))`` through
  :func:`.losses.dmd.dmd_loss` on ``μ_k`` (the chain factor ``α_s α_{τ|s} α_τ/σ_τ² > 0`` of
  ``∂x_τ/∂μ_k`` is absorbed by DMD's per-sample normalisation);
- fake score: the subinterval score-matching loss of :mod:`.losses.phased_dmd` on ``sg(x_s)`` (its
  x0-target from the noisy ``x_s``, whose conditional mean is the fake process's ``E[x_0 | x_τ]``).

With ``init="teacher"`` the experts and the fake score start from the teacher's weights (DMD's and the
paper's start; the architectures must match). With ``phases = 1`` this is DMD exactly (``s = 0``: clean samples, the ordinary denoising loss, ``τ`` over
DMD's whole range). The student is expert 0; the other experts are copies of it (``experts``).

Where nbdistill differs: the paper's full text was not readable here (its abstract states the two ideas;
the project page links no training code), so the details are this file's reading of them: the
boundaries uniform in ``t``, fresh noise between steps, ``τ`` restricted to the current subinterval,
full experts rather than the paper's LoRA experts, and the fake-score weight of :mod:`.losses.phased_dmd`.
"""

from __future__ import annotations

import copy

import torch

from ...core.batches import as_pair
from ...core.errors import ConfigError
from ...core.registry import HParam, register
from .base import SCORE_VIEWS, ScoreModule
from .losses.dmd import dmd_gradient, dmd_loss
from .losses.phased_dmd import subinterval_loss, subinterval_target, subinterval_weight, transition
from .schedule import per_sample

#: DMD's re-noising range (Yin et al. 2024: τ in [0.02 T, 0.98 T]); each phase's τ range is cut to it.
T_MIN, T_MAX = 0.02, 0.98


@register("score.phased_dmd", views=SCORE_VIEWS)
class PhasedDMD(ScoreModule):
    """Phased DMD: a K-step mixture-of-experts generator distilled phase by phase towards higher SNR, each phase by DMD within its subinterval (Fan et al., 2025).

    ``phase`` (0-based) is the phase being trained, logged as ``train/phase``; the evaluation samples with
    the experts trained so far (``sampling_steps = phase + 1``, ``K`` once the last phase is reached).
    """

    phases = HParam(int, 2, 1, 8, help="K: subintervals of the time range, one generator step (expert) each")
    phase_steps = HParam(int, 300, 1, 1_000_000, help="training steps of each phase before the next one starts")
    init = HParam(
        str,
        "given",
        choices=("given", "teacher"),
        help="start the experts and the fake score from the student's own weights or the teacher's",
    )

    def build_parts(self) -> None:
        super().build_parts()
        if self.init == "teacher":
            load_teacher_weights(self.teacher, self.student)
        #: expert k maps x_{t_k} to an x0-prediction; expert 0 is the student
        self.experts = torch.nn.ModuleList([self.student] + [copy.deepcopy(self.student) for _ in range(self.phases - 1)])
        #: the fake score μ_fake(x_τ, τ), trained within the current subinterval
        self.fake = copy.deepcopy(self.student)
        self.phase = 0
        self._phase_batches = 0

    @property
    def sampling_steps(self) -> int:
        return self.phase + 1

    def boundaries(self) -> torch.Tensor:
        """``t_0 = t_max > t_1 > … > t_K = t_min``, the phases' ends (uniform in ``t``; float64 on the CPU)."""
        return self.noise.timesteps(self.phases, dtype=torch.float64)

    def _coefficients(self, t: float, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.full((like.shape[0],), float(t), dtype=like.dtype, device=like.device)
        return self.noise.alpha(t), self.noise.sigma(t)

    def expert_input(self, z: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``x_{t_k}``, the input of expert ``k``: the experts ``0..k−1`` from the prior noise ``z`` at ``t_0``, each
        x0-prediction re-noised with fresh noise to the next boundary (no gradients)."""
        grid = self.boundaries()
        x = z
        with torch.no_grad():
            for j in range(k):
                mu = self.experts[j](x, torch.full((z.shape[0],), float(grid[j]), dtype=z.dtype, device=z.device))
                alpha, sigma = self._coefficients(grid[j + 1], z)
                noise = torch.randn(z.shape, generator=generator, dtype=z.dtype).to(z.device)
                x = per_sample(alpha, mu) * mu + per_sample(sigma, mu) * noise
        return x

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        x_data = as_pair(batch)[0]
        b, p = x_data.shape[0], self.phase
        grid = self.boundaries()
        z = torch.randn_like(x_data)
        mu = self.experts[p](self.expert_input(z, p), torch.full((b,), float(grid[p]), dtype=z.dtype, device=z.device))
        last = p == self.phases - 1
        ones, zeros = torch.ones(b, dtype=z.dtype, device=z.device), torch.zeros(b, dtype=z.dtype, device=z.device)
        alpha_s, sigma_s = (ones, zeros) if last else self._coefficients(grid[p + 1], z)
        x_s = per_sample(alpha_s, mu) * mu.detach() + per_sample(sigma_s, mu) * torch.randn_like(mu)
        low, high = max(0.0 if last else float(grid[p + 1]), T_MIN), min(float(grid[p]), T_MAX)

        def renoise() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
            tau = low + (high - low) * torch.rand(b, dtype=z.dtype, device=z.device)
            alpha_t, sigma_t = self.noise.alpha(tau), self.noise.sigma(tau)
            alpha_ts, sigma_ts = transition(alpha_s, sigma_s, alpha_t, sigma_t)
            return tau, alpha_t, sigma_t, per_sample(alpha_ts, x_s) * x_s + per_sample(sigma_ts, x_s) * torch.randn_like(x_s)

        tau, _, _, x_tau = renoise()
        with torch.no_grad():
            grad = dmd_gradient(mu, self.teacher(x_tau, tau), self.fake(x_tau, tau))
        generator = dmd_loss(mu, grad)
        tau, alpha_t, sigma_t, x_tau = renoise()
        target = subinterval_target(x_tau, x_s, alpha_s, sigma_s, alpha_t, sigma_t)
        fake = subinterval_loss(self.fake(x_tau, tau), target, subinterval_weight(alpha_s, sigma_s, alpha_t, sigma_t))
        return {"generator": generator, "fake_score": fake, "phase": torch.tensor(float(p)), "loss": generator + fake}

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self._phase_batches += 1
        if self._phase_batches >= self.phase_steps and self.phase < self.phases - 1:
            self.next_phase()

    def next_phase(self) -> None:
        """Start the next phase: its expert starts from the one just trained."""
        self.phase += 1
        self._phase_batches = 0
        self.experts[self.phase].load_state_dict(self.experts[self.phase - 1].state_dict())

    @torch.no_grad()
    def draw_samples(self, n: int, generator: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """The experts trained so far (``0..phase``) from prior noise, fresh noise between steps, all from ``generator``."""
        z = torch.randn(n, *shape, generator=generator, dtype=dtype).to(self.device)
        x = self.expert_input(z, self.phase, generator)
        t = torch.full((n,), float(self.boundaries()[self.phase]), dtype=dtype, device=self.device)
        return self.experts[self.phase](x, t)

    # -- the phase survives a checkpoint ------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["phased_dmd"] = {"phase": self.phase, "phase_batches": self._phase_batches}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("phased_dmd")
        if state is not None:
            self.phase, self._phase_batches = state["phase"], state["phase_batches"]


def load_teacher_weights(teacher: torch.nn.Module | None, student: torch.nn.Module) -> None:
    """Load the teacher's weights (or those of the network a zoo wrapper keeps as ``net``) into ``student``,
    or a :class:`ConfigError` saying why they do not fit."""
    fix = "give a student of the teacher's architecture (the shipped 2-D teachers are MLPDenoiser(2, hidden=128, depth=4)) or init='given'"
    sources = [teacher] + ([teacher.net] if isinstance(getattr(teacher, "net", None), torch.nn.Module) else [])
    for source in sources if teacher is not None else []:
        try:
            student.load_state_dict(source.state_dict())
            return
        except RuntimeError:
            continue
    raise ConfigError(f"score.phased_dmd's init='teacher' cannot load the teacher's weights into the student: {fix}")
