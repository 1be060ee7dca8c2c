r"""``score.decoupled_dmd``: Decoupled DMD (Liu et al., "Decoupled DMD: CFG Augmentation as the Spear,
Distribution Matching as the Shield", arXiv 2511.22677, ICLR 2026).

A class-conditional one-step generator ``x = G_θ(z, y) = D_θ(z, t_max, y)`` is trained as in DMD (Yin et
al. 2024) with a guided real score. Re-noise its sample, ``x_τ = α_τ sg(x) + σ_τ ε`` with
``τ ~ U[0.02, 0.98]``, and split the DMD direction (paper Eq. 6; :mod:`.losses.decoupled_dmd`):

    s_real^cfg − s_fake^cond = (s_real^cond − s_fake^cond) + (α − 1)(s_real^cond − s_real^uncond)
                                  DM (shield, hparam dm)         CA (spear, hparam ca)

Each term is a switch. In x0-predictions ``μ`` the pushed direction is ``Δ = dm·DM_μ + ca·CA_μ`` and the
generator step is DMD's (:func:`.losses.dmd.dmd_gradient`/:func:`.losses.dmd.dmd_loss`) with the real
prediction ``μ_fake + Δ``: ``grad = −Δ / mean_d|x − μ_fake − Δ|``. With both switches on that target is
``μ_cfg`` and the step is exactly DMD with a CFG teacher; with ``α = 1`` CA vanishes and it is plain DMD.
The fake score ``μ_fake(x_τ, τ, y)`` (a copy of the student at the start) learns the generator's
conditional distribution by the denoising loss on ``sg(x)``; one Adam step updates both.

The real score is the ``teacher`` called ``teacher(x_τ, τ, y)`` (conditional) and ``teacher(x_τ, τ, None)``
(unconditional), e.g. :class:`~.exact.ExactDenoiser` of a class-conditional mixture or an
``MLPDenoiser(num_classes=C)`` trained with label dropout. Without a teacher the data module's exact
``.density`` (:class:`~nbdistill.data.Mixture2D` of a mixture with classes) is the real score, so the
method runs from a plain configuration (the CLI, the contract test).

Each validation logs the variance of the student's samples (``val/sample_variance``, the trace of their
covariance; ``val/class_variance``, the mean over classes of the within-class trace) for the
``dmd_variance`` view: the paper reports CA alone raising it monotonically until collapse.

Where nbdistill differs: the paper's text was not readable here beyond its abstract and the
official repository (Tongyi-MAI/Z-Image, inference only, no training code); its decoupled re-noising
schedules (a separate τ distribution for CA and for DM, for a multi-step generator) are not
implemented: both terms share one ``τ``, as in DMD.
"""

from __future__ import annotations

import copy

import torch

from ...core.batches import as_pair
from ...core.errors import ConfigError
from ...core.registry import HParam, register
from . import decoupled_dmd_views  # noqa: F401  (registers the dmd_variance view)
from .base import SCORE_VIEWS, ScoreModule
from .exact import ExactDenoiser, GaussianMixture
from .losses.decoupled_dmd import decoupled_direction
from .losses.dmd import dmd_gradient, dmd_loss
from .teacher_training import denoising_loss

#: DMD's re-noising range, ``τ ~ U[T_MIN, T_MAX]`` (Yin et al. 2024: 0.02 T to 0.98 T).
T_MIN, T_MAX = 0.02, 0.98


@register("score.decoupled_dmd", views=SCORE_VIEWS + ("dmd_variance",), needs_teacher=False)
class DecoupledDMD(ScoreModule):
    """Decoupled DMD: a class-conditional one-step generator pushed by CFG augmentation and distribution matching, each a switch (Liu et al., 2025).

    The student must be class-conditional (``MLPDenoiser(..., num_classes=C)``); the fake score is a copy
    of it. ``guidance`` is the CFG scale ``α`` of the real score; ``ca`` and ``dm`` switch the two terms.
    """

    guidance = HParam(float, 3.0, 1.0, 20.0, help="CFG scale α of the real score (CA is (α−1)(s_cond − s_uncond))")
    ca = HParam(bool, True, help="use the CFG-augmentation term (the spear)")
    dm = HParam(bool, True, help="use the distribution-matching term (the shield)")

    def build_parts(self) -> None:
        super().build_parts()
        if not (self.ca or self.dm):
            raise ConfigError("score.decoupled_dmd needs at least one of its terms: set ca=True or dm=True (or both)")
        if getattr(self.student, "num_classes", None) is None:
            raise ConfigError(
                "score.decoupled_dmd's generator must be class-conditional: give a student built with num_classes, "
                "e.g. nd.models.MLPDenoiser(2, hidden=64, depth=3, num_classes=4)"
            )
        #: the fake score μ_fake(x_τ, τ, y): the student's architecture, trained on the generator's samples
        self.fake = copy.deepcopy(self.student)
        #: the exact real score read from the data's ``.density`` when no teacher is given (set by check_data)
        self._exact: list[ExactDenoiser] = []
        self._variances: tuple[float, float] | None = None

    # -- the real score ---------------------------------------------------------------------------
    def real(self) -> torch.nn.Module:
        if self.teacher is not None:
            return self.teacher
        if not self._exact:
            raise ConfigError(
                "score.decoupled_dmd has no real score: pass a class-conditional teacher (teacher(x_t, t, y), y=None "
                "unconditional) or data with an exact class-conditional .density (nd.data.Mixture2D of a mixture with classes)"
            )
        return self._exact[0]

    def check_data(self, data) -> None:
        classes = self.student.num_classes
        x, y = as_pair(next(iter(data.train_dataloader())))
        if y is None or y.is_floating_point() or int(y.max()) >= classes or int(y.min()) < 0:
            raise ConfigError(
                f"score.decoupled_dmd needs class labels 0..{classes - 1} (the student's num_classes={classes}) with its data"
            )
        if self.teacher is None:
            density = getattr(data, "density", None)
            if not isinstance(density, GaussianMixture) or density.classes is None:
                raise ConfigError(
                    "score.decoupled_dmd without a teacher reads the real score from the data's exact class-conditional "
                    "density: use nd.data.Mixture2D(GaussianMixture.ring(k=8, classes=4)), or pass teacher=..."
                )
            self._exact = [ExactDenoiser(density, self.noise)]
        x, y = x[:2], y[:2]
        t = torch.full((len(x),), 0.5, dtype=x.dtype, device=x.device)
        try:
            with torch.no_grad():
                self.real()(x, t, y), self.real()(x, t, None)
        except (TypeError, ValueError, RuntimeError, ConfigError) as exc:
            raise ConfigError(
                f"score.decoupled_dmd's teacher must be class-conditional, called as teacher(x_t, t, y) and "
                f"teacher(x_t, t, None) (unconditional): {exc}"
            ) from exc

    # -- the generator and the losses -------------------------------------------------------------
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``G_θ(z, y) = D_θ(z, t_max, y)``: the student's x0-prediction from prior noise, given the classes ``y``."""
        t = torch.full((z.shape[0],), self.noise.t_max, dtype=z.dtype, device=z.device)
        return self.student(z, t, y)

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        x_data, y = as_pair(batch)
        b = x_data.shape[0]
        x = self.generate(torch.randn_like(x_data), y)
        tau = T_MIN + (T_MAX - T_MIN) * torch.rand(b, dtype=x.dtype, device=x.device)
        alpha, sigma = self.noise.alpha(tau)[:, None], self.noise.sigma(tau)[:, None]
        x_tau = alpha * x.detach() + sigma * torch.randn_like(x)
        with torch.no_grad():
            real = self.real()
            real_cond = real(x_tau, tau, y)
            real_uncond = real(x_tau, tau, None) if self.ca else None
            fake_cond = self.fake(x_tau, tau, y)
            direction = decoupled_direction(real_cond, real_uncond, fake_cond, self.guidance, ca=self.ca, dm=self.dm)
            grad = dmd_gradient(x, fake_cond + direction, fake_cond)
        generator = dmd_loss(x, grad)
        t = torch.rand(b, dtype=x.dtype, device=x.device) * (self.noise.t_max - self.noise.t_min) + self.noise.t_min
        fake = denoising_loss(lambda x_t, s: self.fake(x_t, s, y), x.detach(), t, torch.randn_like(x), self.noise)
        return {"generator": generator, "fake_score": fake, "grad_norm": grad.norm(dim=1).mean(), "loss": generator + fake}

    # -- evaluation: class-conditional samples and their variance ---------------------------------
    @torch.no_grad()
    def draw_samples(self, n: int, generator: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """``n`` samples ``G_θ(z, y)``, the classes ``y`` in turn (``i mod C``), the noise ``z`` from ``generator``."""
        z = torch.randn(n, *shape, generator=generator, dtype=dtype).to(self.device)
        y = torch.arange(n, device=self.device) % self.student.num_classes
        x = self.generate(z, y)
        self._variances = sample_variances(x.reshape(n, -1), y)
        return x

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        writer = self._run_writer()
        if self.trainer.sanity_checking or self._variances is None or writer is None:
            return
        label = "+".join(name for name, on in (("CA", self.ca), ("DM", self.dm)) if on)
        total, within = self._variances
        writer.emit("scalar", "val/sample_variance", self.global_step, value=total, label=label)
        writer.emit("scalar", "val/class_variance", self.global_step, value=within, label=label)
        self._variances = None


def sample_variances(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """``(tr Cov[x], mean_c tr Cov[x | y = c])`` of samples ``x`` ``[n, d]`` with classes ``y`` (non-finite rows dropped)."""
    keep = torch.isfinite(x).all(1)
    x, y = x[keep].double(), y[keep]
    total = float(x.var(0).sum()) if len(x) > 1 else float("nan")
    within = [x[y == c].var(0).sum() for c in y.unique() if int((y == c).sum()) > 1]
    return total, float(torch.stack(within).mean()) if within else float("nan")
