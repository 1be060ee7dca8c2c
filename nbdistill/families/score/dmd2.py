r"""``score.dmd2``: Improved Distribution Matching Distillation (Yin et al., "Improved Distribution Matching
Distillation for Fast Image Synthesis", NeurIPS 2024).

DMD (:mod:`.dmd`) without the regression loss, with three changes:

- **two time-scale updates (TTUR, §4.2)**: the fake score ``μ_fake`` takes ``fake_steps`` steps per generator
  step. Every training step is a fake-score step; the generator's terms enter the loss only on the steps
  ``global_step % fake_steps == 0`` (on the others the generator runs without gradients, its weights get no
  gradient and Adam leaves them untouched) — tianweiy/DMD2's ``dfake_gen_update_ratio`` (5 on ImageNet);
- **a GAN classifier on the fake score's features (§4.3)**: a head ``D`` reads the fake-score network's last
  hidden features (the input of its last ``nn.Linear``, the 2-D MLP's "bottleneck") of noisy points
  ``x_t = α_t x + σ_t ε``, ``t ~ U[t_low, t_high]`` (a diffusion GAN). The fake-score step adds
  ``classifier_weight · L_D`` (real data against ``sg(G(z))``; it trains the head and the fake-score trunk);
  the generator adds ``gan_weight · L_G`` (:mod:`.losses.dmd2`), computed through the fake score and the head
  with their weights detached, so it reaches the generator only. ``gan_weight = 0`` turns the GAN off;
- **backward simulation (§4.5)** for a ``steps``-step generator: each step draws ``k ~ U{0..steps−1}``, runs the
  generator itself ``k`` steps from pure noise without gradients (x0, then re-noised with fresh noise to the
  next time), and trains ``G(x_{t_k}, t_k)`` on that input, the one it meets when sampling.

The generator's term per generator step is
``L_G = L_DM(x) + gan_weight · mean softplus(−D(x_t))``, ``x = G(...)``; the fake score's per step
``L_fake = L_denoise(sg x) + classifier_weight · L_D``. Defaults from tianweiy/DMD2's ImageNet script:
``fake_steps = 5``, ``gan_weight = 3e-3`` (gen_cls_loss_weight), ``classifier_weight = 1e-2`` (cls_loss_weight).
Where nbdistill differs: the official code samples one noise level for the whole GAN batch range
``[0, 1000)``; here the classifier's times are the distribution-matching range.
"""

from __future__ import annotations

import torch
from torch import nn

from ...core.errors import ConfigError
from ...core.registry import HParam, register
from .base import SCORE_VIEWS
from .dmd_common import DistributionMatchingModule
from .losses.dmd2 import gan_classifier_loss, gan_generator_loss


class FeatureTap:
    """A forward pre-hook keeping the input of the layer it is registered on (the last hidden features)."""

    def __init__(self) -> None:
        self.features: torch.Tensor | None = None

    def __call__(self, module: nn.Module, args: tuple) -> None:
        self.features = args[0]


def last_linear(net: nn.Module) -> nn.Linear | None:
    """The last ``nn.Linear`` of ``net`` in module order (the output layer of an MLP denoiser)."""
    layers = [m for m in net.modules() if isinstance(m, nn.Linear)]
    return layers[-1] if layers else None


@register("score.dmd2", views=SCORE_VIEWS + ("score_fields",))
class DMD2(DistributionMatchingModule):
    """Improved distribution matching: no regression, several fake-score steps per generator step, a GAN head on the fake score, multi-step generators (Yin et al., 2024).

    The student is the generator (``steps`` steps, re-noising between them); the fake score is a trainable
    copy of the teacher's network or of the student (``fake_init``), and the classifier a two-layer head on its
    last hidden features. Logged terms: ``dm`` and ``gan_generator`` (generator steps only), ``fake``,
    ``classifier``, ``real_logit`` and ``fake_logit`` (the classifier's mean logits: real above fake once it
    separates them).
    """

    steps = HParam(int, 1, 1, 16, help="the generator's sampling steps (backward simulation trains each)")
    fake_steps = HParam(int, 5, 1, 100, help="fake-score steps per generator step (two time-scale update rule)")
    gan_weight = HParam(float, 3e-3, 0.0, 10.0, help="weight of the generator's GAN loss (0: no GAN classifier)")
    classifier_weight = HParam(float, 1e-2, 0.0, 100.0, help="weight of the GAN classifier's loss in the fake-score step")

    def build_parts(self) -> None:
        super().build_parts()
        layer = last_linear(self.fake_score)
        if layer is None:
            raise ConfigError(
                f"score.dmd2's GAN classifier reads the fake score's last hidden features (the input of its last nn.Linear), "
                f"but {type(self.fake_score).__name__} has no nn.Linear: use an MLP denoiser (nd.models.MLPDenoiser)"
            )
        #: the hook that keeps the fake score's last hidden features at each of its calls
        self._tap = FeatureTap()
        layer.register_forward_pre_hook(self._tap)
        width = layer.in_features
        #: the GAN classifier head D: hidden features -> one logit (high: real)
        self.classifier = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 1))

    @property
    def sampling_steps(self) -> int:
        return int(self.steps)

    def generator_turn(self) -> bool:
        """Whether this training step also steps the generator: every ``fake_steps``-th step, the first included."""
        return self.global_step % self.fake_steps == 0

    def classifier_logits(self, x_t: torch.Tensor, t: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """``D(x_t, t)`` ``[B]``: the head on the fake score's last hidden features. ``frozen``: with the fake
        score's and the head's weights detached (the generator's GAN term, whose gradient must reach ``x_t`` only)."""
        if frozen:
            detached = {name: p.detach() for name, p in self.fake_score.named_parameters()}
            torch.func.functional_call(self.fake_score, detached, (x_t, t))
            head = {name: p.detach() for name, p in self.classifier.named_parameters()}
            return torch.func.functional_call(self.classifier, head, (self._tap.features,)).reshape(-1)
        self.fake_score(x_t, t)
        return self.classifier(self._tap.features).reshape(-1)

    def simulated_generation(self, z: torch.Tensor) -> torch.Tensor:
        """Backward simulation: ``G(x_{t_k}, t_k)`` with ``k ~ U{0..steps−1}`` and ``x_{t_k}`` the generator's own
        ``k``-step chain from ``z`` without gradients (``k = 0``: ``G(z)``; one step: :meth:`generate`)."""
        if self.steps == 1:
            return self.generate(z)
        times = self.generator_times(self.steps, z.dtype, z.device)
        k = int(torch.randint(self.steps, ()))
        x = z
        with torch.no_grad():
            for i in range(k):
                x0 = self.student(x, times[i].expand(len(z)))
                x = self.noise.alpha(times[i + 1]) * x0 + self.noise.sigma(times[i + 1]) * torch.randn_like(z)
        return self.student(x, times[k].expand(len(z)))

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        data = batch[0] if isinstance(batch, (list, tuple)) else batch
        turn = self.generator_turn()
        with torch.set_grad_enabled(turn and torch.is_grad_enabled()):
            x = self.simulated_generation(torch.randn_like(data))
        terms: dict[str, torch.Tensor] = {}
        loss = 0.0
        if turn:
            terms["dm"] = self.dm_term(x)
            loss = terms["dm"]
            if self.gan_weight > 0:
                t = self.dm_times(len(x), x)
                terms["gan_generator"] = gan_generator_loss(self.classifier_logits(self.noised(x, t), t, frozen=True))
                loss = loss + self.gan_weight * terms["gan_generator"]
        terms["fake"] = self.fake_term(x)
        loss = loss + terms["fake"]
        if self.gan_weight > 0:
            t_real, t_fake = self.dm_times(len(data), data), self.dm_times(len(x), x)
            real = self.classifier_logits(self.noised(data, t_real), t_real)
            fake = self.classifier_logits(self.noised(x.detach(), t_fake), t_fake)
            terms["classifier"] = gan_classifier_loss(real, fake)
            terms["real_logit"], terms["fake_logit"] = real.mean().detach(), fake.mean().detach()
            loss = loss + self.classifier_weight * terms["classifier"]
        terms["loss"] = loss
        return terms
