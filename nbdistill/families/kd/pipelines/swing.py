r"""``kd.swing``: Swing distillation, privacy-preserving KD, measured by canary exposure.

Swing distillation (Li, Wu, Dong, Wu, Bian & Xiong, "Swing Distillation: A Privacy-Preserving
Knowledge Distillation Framework", arXiv 2212.08349, 2022) distils with a temperature set per
example by how likely the example is to carry private information, and with noise on the soft
targets, so that what the teacher memorised of its private training data does not flow into the
student. The leak is measured as in the paper, by the exposure of canaries (Carlini et al., 2019)
inserted into the teacher's training data (:mod:`.swing_exposure`).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from ....core.batches import as_pair
from ....core.errors import ConfigError
from ....core.registry import HParam, register
from ..base import GAP_VIEWS, KDModule, alpha_hparam, temperature_hparam
from . import swing_views  # noqa: F401  (registers the views)
from .swing_exposure import Canaries, canary_exposures, train_with_canaries
from .swing_loss import nearest_distances, privacy_scores, swing_kd, swing_temperatures

#: The views of Swing beside the gap views: per-canary exposure, the spread of the temperatures τ_i.
EXPOSURE_VIEWS = ("swing_exposure", "swing_temperatures")


@register("kd.swing", views=(*GAP_VIEWS, *EXPOSURE_VIEWS))
class SwingKD(KDModule):
    r"""Swing distillation: per-example temperatures and noisy soft targets keep the teacher's secrets.

    Swing distillation (Li et al., 2022): :math:`\alpha\,\mathrm{CE} + (1-\alpha)\frac{1}{B}\sum_i
    \tau_i^2\,\mathrm{KL}(\mathrm{softmax}(z_{t,i}/\tau_i + \varepsilon_i) \| \mathrm{softmax}(z_{s,i}/\tau_i))`
    (:func:`.swing_loss.swing_kd`), with canary exposure of teacher and student.

    The pipeline, before training (:meth:`check_data`): draw ``canaries`` random input patterns with
    random labels (seeded by the run's seed), fine-tune a copy of the given teacher on the training data
    with each canary inserted ``canary_repeats`` times (``teacher_epochs`` epochs;
    :func:`.swing_exposure.train_with_canaries`) and use that copy as the teacher; measure its
    exposure. While training, the distillation data is the same (each canary's copies appended to
    the batches, spread over an epoch), so the teacher's soft targets on the canaries are what can
    leak. When fitting ends the student's exposure is measured with the same candidates. ``self.student``
    is the distilled student. ``swing=False`` is plain Hinton KD at ``temperature`` on the same data
    and teacher (the comparison).

    What follows the paper (its abstract: the text of its §3 could not be read here, only the opening
    of the ar5iv page): the temperature is set per unit of data (a token, in the paper's text tasks;
    an example here) according to the likelihood that it holds private information; noise is
    injected into the soft targets; leakage is measured by canary exposure. The
    :math:`\tau_i^2`-scaled KL is the generic form of the project's reference notes (kd.md §9).

    UNVERIFIED (paper §3): how the paper estimates the likelihood of private information (in its text
    setting, presumably a detector of private tokens), the exact map from it to :math:`\tau_i`, whether
    the KL is :math:`\tau^2`-scaled, and the noise's distribution and scale (and any privacy budget ε).
    nbdistill's choices, for inputs without tokens:

    - likelihood of private information = rarity (:func:`.swing_loss.privacy_scores`): the rank of
      an example's nearest-neighbour distance among those of the distillation set; the fraction
      ``public_quantile`` of most typical examples counts as public (:math:`p = 0`), the rarest as
      private (:math:`p \to 1`). A memorised secret is an atypical example, as a canary is;
    - :math:`\tau_i = \tau + (\tau_{\max} - \tau)\,p_i` (``temperature``, ``tau_max``);
    - :math:`\varepsilon_i \sim \mathcal{N}(0, \sigma^2 I)` on the teacher's tempered logits
      (``noise`` = σ), drawn afresh each step (seeded by the run's seed and the step); no privacy
      accounting is done, so no ε is claimed.

    Neither part protects alone, on digits with 10 canaries (10 epochs, seed 0: plain KD leaves the
    student a mean exposure of 6.9 bits; ``noise=0`` 6.7; a constant τ with noise, ``tau_max=temperature``,
    7.0; both 2.5). With the :math:`\tau^2` factor, KD at a high temperature tends to logit matching
    (Hinton et al., 2015, §2.1), which hands the memorised logits over too; a noise of std σ on
    :math:`z/\tau_i` is a noise of std :math:`\tau_i\sigma` on the logits, so it is the pair that
    drowns a rare example's target. Canaries that the rarity score misses (:math:`\tau_i = \tau`) lost
    exposure too in that run, apparently through the large noisy updates of the high-:math:`\tau` examples.
    """

    supports_teacher_cache = True
    temperature = temperature_hparam(4.0)
    alpha = alpha_hparam(0.0)
    swing = HParam(bool, True, help="Swing's per-example temperature and noise; False: plain KD at temperature")
    tau_max = HParam(float, 100.0, 1.0, 200.0, help="temperature of an example surely holding private information")
    noise = HParam(float, 1.0, 0.0, 10.0, help="std of the Gaussian noise on the teacher's tempered logits")
    public_quantile = HParam(float, 0.97, 0.0, 0.999, help="share of the most typical examples treated as public")
    canaries = HParam(int, 10, 0, 1000, help="random (input, label) canaries inserted into the teacher's data")
    canary_repeats = HParam(int, 4, 1, 100, help="times each canary is inserted into the training data")
    candidates = HParam(int, 1000, 2, 1_000_000, log=True, help="|R|: candidates a canary's loss is ranked among")
    teacher_epochs = HParam(int, 15, 0, 1000, help="epochs fine-tuning the teacher on the data with its canaries")

    def build_parts(self) -> None:
        super().build_parts()
        if self.tau_max < self.temperature:
            raise ConfigError(
                f"tau_max={self.tau_max} is below temperature={self.temperature}: the temperature of a private example "
                "must be at least the base one; raise tau_max or lower temperature"
            )
        if len(self.teachers) > 1:
            raise ConfigError(
                f"kd.swing fine-tunes one teacher on the data with its canaries, got {len(self.teachers)} teachers: "
                "pass one, as teacher=..."
            )
        #: The seed of the canaries, the candidates, the teacher's fine-tuning and the noise: drawn
        #: from the run's seed (nd.fit and the CLI seed every generator before building the module).
        self.stream_seed = int(torch.randint(2**31 - 1, (1,)))
        self.planted: Canaries | None = None
        self.teacher_exposure: torch.Tensor | None = None
        self.reference: torch.Tensor | None = None
        self.reference_distances: torch.Tensor | None = None
        self.batch_index = 0

    # -- before training: canaries, the canary-laden teacher, the rarity reference --------------
    def check_data(self, data: pl.LightningDataModule) -> None:
        """Plant the canaries, fine-tune the teacher on the data holding them and measure its exposure;
        keep the distillation set's nearest-neighbour distances (the rarity reference)."""
        if self.planted is not None:
            return
        x, y = _training_split(data)
        num_classes = getattr(data, "num_classes", None) or int(y.max()) + 1
        if len(x) < 2:
            raise ConfigError(f"kd.swing needs at least 2 training examples to tell rare from typical ones, got {len(x)}")
        g = torch.Generator().manual_seed(self.stream_seed)
        planted = Canaries.draw(self.canaries, x.float(), num_classes, g)
        if self.canaries:
            teacher = train_with_canaries(self.teacher, x, y, planted, self.canary_repeats, self.teacher_epochs, self.stream_seed)
            self.teachers[0] = teacher
            self.teacher_exposure = canary_exposures(teacher, planted, self.candidates, self.stream_seed + 1)
        reference = torch.cat([x.float(), planted.x]).flatten(1)
        self.reference = reference
        self.reference_distances = nearest_distances(reference, reference).sort().values
        self.planted = planted

    def setup(self, stage: str) -> None:
        if self.planted is None:  # a Trainer used directly, without nd.fit's checks
            self.check_data(self.trainer.datamodule)

    # -- training ----------------------------------------------------------------------------------
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        super().on_train_batch_start(batch, batch_idx)
        self.batch_index = batch_idx

    def canaries_of_batch(self, batch_idx: int) -> torch.Tensor:
        """Indices of the canaries whose copies go into training batch ``batch_idx``: copy k of the
        ``canaries · canary_repeats`` goes into batch ``k mod n_batches``, so each canary is seen
        ``canary_repeats`` times an epoch, as in the teacher's data."""
        copies = self.canaries * self.canary_repeats
        n = self.trainer.num_training_batches if self._trainer is not None else 1
        n = int(n) if isinstance(n, int) and n > 0 else 1
        return torch.arange(batch_idx % n, copies, n) % max(self.canaries, 1)

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        student, teacher = self.student(x), self.teacher_logits(x)
        if self.canaries:
            k = self.canaries_of_batch(self.batch_index)
            if len(k):
                cx, cy = self.planted.x[k].to(x), self.planted.y[k].to(y.device)
                x, y = torch.cat([x, cx]), torch.cat([y, cy])
                student = torch.cat([student, self.student(cx)])
                with torch.no_grad():
                    teacher = torch.cat([teacher, self.teacher(cx)])
        if not self.swing:
            tau = torch.full((len(y),), float(self.temperature), device=x.device)
            return swing_kd(student, teacher, y, tau, None, self.alpha)
        return swing_kd(student, teacher, y, self.temperatures(x), self.step_noise(teacher.shape), self.alpha)

    def temperatures(self, x: torch.Tensor) -> torch.Tensor:
        """τ_i of each example of ``x`` (:func:`.swing_loss.swing_temperatures` of its privacy score)."""
        reference = self.reference.to(x.device)
        distances = nearest_distances(x.detach(), reference)
        p = privacy_scores(distances, self.reference_distances.to(x.device), self.public_quantile)
        return swing_temperatures(p, self.temperature, self.tau_max).to(x.dtype)

    def step_noise(self, shape: torch.Size) -> torch.Tensor | None:
        """ε of this step, N(0, noise²) (a function of the run's seed and the step: a resume draws the same)."""
        if self.noise == 0:
            return None
        g = torch.Generator().manual_seed(self.stream_seed + 7919 * (self.global_step + 1))
        return (self.noise * torch.randn(tuple(shape), generator=g)).to(self.device)

    # -- events: exposure of the teacher (when training starts) and of the student (at the end) -----
    def on_fit_start(self) -> None:
        super().on_fit_start()
        writer = self._run_writer()
        if writer is None or self.teacher_exposure is None or writer.info.get("resumed"):
            return
        writer.scalar("swing/teacher_exposure", self.teacher_exposure.mean().item(), step=0)
        writer.scalar("swing/max_exposure", torch.tensor(float(self.candidates)).log2().item(), step=0)
        if self.swing:
            with torch.no_grad():
                tau = self.temperatures(self.reference.to(self.device)).cpu()
            edges = torch.linspace(self.temperature, max(self.tau_max, self.temperature + 1e-3), 21)
            train, canary = tau[: -len(self.planted)].double(), tau[-len(self.planted) :]
            counts = torch.histogram(train, edges.double())[0]
            writer.histogram("swing/tau", counts.tolist(), edges.tolist(), step=0, canaries=canary.tolist())

    def on_fit_end(self) -> None:
        super().on_fit_end()
        writer = self._run_writer()
        if writer is None or self.teacher_exposure is None:
            return
        student = canary_exposures(self.student, self.planted, self.candidates, self.stream_seed + 1)
        device = next(self.student.parameters()).device
        with torch.no_grad():
            tau = self.temperatures(self.planted.x.to(device)).cpu()
            if not self.swing:
                tau = torch.full_like(tau, float(self.temperature))
        columns = zip(self.planted.y.tolist(), self.teacher_exposure.tolist(), student.tolist(), tau.tolist())
        rows = [[k, y, round(t, 4), round(s, 4), round(temp, 3)] for k, (y, t, s, temp) in enumerate(columns)]
        step = self.global_step
        writer.table("swing/exposure", ["canary", "label", "teacher", "student", "tau"], rows, step=step)
        writer.scalar("swing/student_exposure", student.mean().item(), step=step)
        writer.scalar("swing/teacher_exposure", self.teacher_exposure.mean().item(), step=step)
        writer.scalar("swing/canary_tau", tau.mean().item(), step=step)
        writer.flush()


def _training_split(data: pl.LightningDataModule) -> tuple[torch.Tensor, torch.Tensor]:
    """Every ``(x, y)`` of the training split, read once (the data module's tensors where it has them)."""
    if hasattr(data, "dataset"):
        try:
            tensors = data.dataset("train").tensors
            return tensors[0], tensors[1]
        except (AttributeError, KeyError, TypeError):
            pass
    xs, ys = [], []
    for batch in data.train_dataloader():
        x, y = as_pair(batch)[:2]
        xs.append(x)
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)
