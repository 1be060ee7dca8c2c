r"""``score.rolling``: Rolling Forcing (Liu, Hu, Xu, Shan & Lu, "Rolling Forcing: Autoregressive Long Video
Diffusion in Real Time", arXiv 2509.25161) on 1-D sequences cut into frames.

A streaming generator emits one frame at a time. Rolling Forcing denoises a *window* of ``W`` frames
jointly with noise levels rising along it, ``τ_0 < τ_1 < ... < τ_{W-1} = t_max``
(:func:`.losses.rolling.window_levels`); each call emits the window's cleanest frame, moves the others
one level down, and appends a new noise frame, so every frame is denoised ``W`` times and frames
still noisy can correct the ones before them (causality is relaxed inside the window, which slows
the growth of errors). The generator also reads the first frames it emitted (the *attention sink*)
and its most recent clean frames (:mod:`.rolling_rollout`).

Training (the official ``RollingForcingTrainingPipeline`` and ``DMD`` model, TencentARC/RollingForcing):

1. a bidirectional teacher over a clip of ``F`` frames, trained like diffusion forcing with one noise
   level per frame (:func:`.losses.rolling.diffusion_forcing_loss`); here, when no teacher is given, a
   copy of the student's network is trained so for ``teacher_train_steps`` steps before distillation;
2. the student (initialised from the teacher, as the paper starts from the bidirectional model) rolls
   a clip of ``F`` frames out from noise, in its own rolling mode or, with probability
   ``causal_fraction``, frame by frame (the paper mixes both 50/50); only the non-overlapping windows
   of a random phase keep their gradients (:func:`.losses.rolling.gradient_windows`), and their
   x0-predictions form the generated clip ``x``;
3. DMD (Yin et al. 2024) on ``x``: ``x_t = α_t x + σ_t ε`` with one ``t ~ U[t_min, t_max]`` for every
   frame (``uniform_timestep``), ``grad = dmd_gradient(x, teacher(x_t, t), fake(x_t, t))``,
   ``L_G = dmd_loss(x, grad)``; the fake score (started from the teacher's weights) learns the
   student's clips by the denoising loss on ``sg(x)``. Both losses are summed under one Adam with
   their gradients separated (the paper takes 5 fake steps per generator step).

Where nbdistill differs: frames are vectors of ``frame_dim`` values and the networks MLPs over a fixed
number of frame slots (:class:`~nbdistill.models.WindowDenoiser`), not a video DiT with a KV cache; a
block is one frame (the paper's blocks hold 3 latent frames); the first windows are the full window
with absent slots (zeros at ``t = 1``) where the paper shortens them; the rollout always appends noise
frames, so the last frames are emitted by a full window too.
"""

from __future__ import annotations

import copy
import time

import torch

from ...core.errors import ConfigError
from ...core.module import freeze
from ...core.registry import HParam, register
from . import rolling_views  # noqa: F401  (registers the rolling_frames view)
from .base import SCORE_VIEWS, ScoreModule
from .losses.dmd import dmd_gradient, dmd_loss
from .losses.rolling import diffusion_forcing_loss
from .rolling_rollout import MODES, roll_out, statistics_gap
from .rolling_views import write_rolling
from .teacher_training import denoising_loss

#: Sequences of the ``rolling_frames`` view: drawn in full, and measured frame by frame.
DRAWN_SEQUENCES, MEASURED_SEQUENCES = 3, 200
#: Seed of the view's rollouts (the same noise at every validation).
ROLLOUT_SEED = 1
#: Teacher-training losses written as events, at most.
TEACHER_EVENTS = 50


@register("score.rolling", views=SCORE_VIEWS + ("rolling_frames",), needs_teacher=False)
class RollingForcing(ScoreModule):
    """Rolling Forcing: a streaming generator that denoises a window of frames jointly at rising noise levels, distilled by DMD (Liu et al., 2025).

    The student and the teacher are window denoisers ``forward(x_t [B, n, d], t [B, n])`` (e.g.
    ``nd.models.WindowDenoiser(frame_dim=4, frames=8)``); the data are sequences ``[B, F, d]`` (e.g.
    ``nd.data.SineSequences()``). Without a teacher, one of the student's architecture is trained
    first. The evaluation rolls the student out (``rollout``) and measures its sequences against the
    data's; the ``rolling_frames`` view shows rollouts ``frames`` frames long and their per-frame
    statistics against the data's, where error accumulation shows.
    """

    lr = HParam(float, 1e-3, 1e-5, 1.0, log=True, help="Adam learning rate (student and fake score)")
    window = HParam(int, 4, 1, 16, help="frames denoised jointly at rising noise levels = denoising steps per frame")
    sink = HParam(int, 1, 0, 16, help="first emitted frames the student keeps reading (the attention sink)")
    context = HParam(int, 3, 0, 64, help="most recent clean frames the student reads")
    frames = HParam(int, 32, 2, 4096, help="length in frames of the rollouts of the rolling_frames view")
    rollout = HParam(str, "rolling", choices=MODES, help="how the student samples: the rolling window or frame by frame")
    causal_fraction = HParam(float, 0.5, 0.0, 1.0, help="share of training rollouts made frame by frame (the paper: 0.5)")
    renoise = HParam(
        str, "fresh", choices=("fresh", "ddim"), help="noise that moves a frame one level down: fresh, or its own (DDIM)"
    )
    fake_updates = HParam(int, 5, 1, 100, help="fake-score steps per generator step (the paper's dfake_gen_update_ratio: 5)")
    teacher_train_steps = HParam(int, 1500, 1, 100_000, help="diffusion-forcing steps of the teacher trained when none is given")
    init = HParam(
        str, "teacher", choices=("teacher", "given"), help="start the student and the fake score from the teacher's weights"
    )

    def build_parts(self) -> None:
        super().build_parts()
        slots = getattr(self.student, "frames", None)
        needed = self.sink + self.context + self.window
        if slots is not None and needed > slots:
            raise ConfigError(
                f"score.rolling's student reads sink + context + window = {self.sink} + {self.context} + {self.window} = "
                f"{needed} frames but has {slots} frame slots: lower them or give a student with frames >= {needed}"
            )
        #: whether the teacher is trained here (none was given): a copy of the student's network
        self.trains_teacher = self.teacher is None
        if self.trains_teacher:
            self.teachers.append(freeze(copy.deepcopy(self.student)))
        elif self.init == "teacher" and not any(True for _ in self.teacher.parameters()):
            raise ConfigError(
                "score.rolling's init='teacher' copies the teacher's weights, but the teacher has none "
                f"({type(self.teacher).__name__}); use init='given'"
            )
        #: the fake score: learns the student's clips (DMD's μ_fake)
        self.fake_score = copy.deepcopy(self.student)
        #: training batches seen: the generator steps on every ``fake_updates``-th
        self._batches = 0

    @property
    def sampling_steps(self) -> int:
        return self.window

    # -- phase 1: the teacher ----------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if stage == "fit" and self.trains_teacher and not getattr(self, "_teacher_trained", False):
            self.train_teacher(self._training_sequences())
        if stage == "fit" and self.init == "teacher" and not getattr(self, "_initialised", False):
            self._initialised = True
            for net in (self.student, self.fake_score):
                try:
                    net.load_state_dict(self.teacher.state_dict())
                except RuntimeError as exc:
                    raise ConfigError(
                        f"score.rolling's init='teacher' cannot load the teacher's weights into the student: "
                        f"{str(exc).strip().splitlines()[0]}; give them one architecture or use init='given'"
                    ) from None

    def _training_sequences(self) -> torch.Tensor:
        dm = self.trainer.datamodule
        if callable(getattr(dm, "dataset", None)):
            return dm.dataset("train").tensors[0]
        return torch.cat([batch[0] if isinstance(batch, (list, tuple)) else batch for batch in dm.train_dataloader()])

    def train_teacher(self, x: torch.Tensor, batch_size: int = 128, lr: float = 2e-3) -> list[float]:
        """Fit the teacher to the clips ``x`` ``[N, F, d]`` by the diffusion-forcing loss (one level per frame),
        ``teacher_train_steps`` Adam steps with a cosine decay, seeded; writes ``teacher/loss`` and ``teacher/seconds``."""
        start = time.perf_counter()
        device = self.teacher_device()
        net = copy.deepcopy(self.teacher).to(device).requires_grad_(True).train()
        x = x.to(device)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(torch.initial_seed() % 2**31)
        steps, writer, losses = self.teacher_train_steps, self._run_writer(), []
        t_min, t_max = self.noise.t_min, self.noise.t_max
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = 0.5 * lr * (1.0 + torch.cos(torch.tensor(torch.pi * step / steps)).item())
            clips = x[torch.randint(len(x), (batch_size,), generator=gen)]
            t = (t_min + (t_max - t_min) * torch.rand(clips.shape[:2], generator=gen, dtype=x.dtype)).to(device)
            eps = torch.randn(clips.shape, generator=gen, dtype=x.dtype).to(device)
            loss = diffusion_forcing_loss(net, clips, t, eps, self.noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if writer is not None and (step % max(1, steps // TEACHER_EVENTS) == 0 or step == steps - 1):
                writer.scalar("teacher/loss", losses[-1], step=step)
        self.teacher.load_state_dict(net.state_dict())
        self._teacher_trained = True
        if writer is not None:
            writer.scalar("teacher/seconds", time.perf_counter() - start, step=steps)
            writer.flush()
        return losses

    def teacher_device(self) -> torch.device:
        return self.trainer.strategy.root_device if self._trainer is not None else self.device

    # -- phase 2: distillation ---------------------------------------------------------------------
    def roll(self, n: int, frames: int, frame_dim: int, mode: str | None = None, **kwargs):
        """``roll_out`` of the student with this module's window, sink, context and re-noising."""
        return roll_out(
            self.student,
            self.noise,
            n,
            frames,
            frame_dim,
            window=self.window,
            sink=self.sink,
            context=self.context,
            mode=mode or self.rollout,
            renoise_with=self.renoise,
            device=self.device,
            **kwargs,
        )

    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        b, f, d = x.shape
        mode = self.rollout
        if mode == "rolling" and torch.rand(()) < self.causal_fraction:
            mode = "causal"
        generator_step = self._batches % self.fake_updates == 0
        self._batches += 1
        with torch.set_grad_enabled(generator_step and torch.is_grad_enabled()):
            _, clip = self.roll(b, f, d, mode=mode, grad_phase=int(torch.randint(self.window, ())), dtype=x.dtype)
        generator_loss = clip.new_zeros(())
        if generator_step:
            t = self.noise.t_min + (self.noise.t_max - self.noise.t_min) * torch.rand(b, dtype=x.dtype, device=x.device)
            alpha, sigma = self.noise.alpha(t)[:, None, None], self.noise.sigma(t)[:, None, None]
            with torch.no_grad():
                x_t = alpha * clip + sigma * torch.randn_like(clip)
                grad = dmd_gradient(clip, self.teacher(x_t, t), self.fake_score(x_t, t))
            generator_loss = dmd_loss(clip, grad)
        t_fake = self.noise.t_min + (self.noise.t_max - self.noise.t_min) * torch.rand(b, dtype=x.dtype, device=x.device)
        fake_loss = denoising_loss(self.fake_score, clip.detach(), t_fake, torch.randn_like(clip), self.noise)
        return {"loss": generator_loss + fake_loss, "dmd": generator_loss, "fake_denoising": fake_loss}

    # -- evaluation --------------------------------------------------------------------------------
    @torch.no_grad()
    def draw_samples(self, n: int, generator: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """``n`` sequences of the data's ``shape`` ``(F, d)`` rolled out by the student (``rollout``)."""
        if len(shape) != 2:
            raise ConfigError(f"score.rolling samples sequences of frames [F, d]; the data's points have shape {list(shape)}")
        was_training = self.student.training
        self.student.eval()
        try:
            return self.roll(n, shape[0], shape[1], noise=generator, dtype=dtype)[0]
        finally:
            self.student.train(was_training)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        writer = self._run_writer()
        if writer is None or self.trainer.sanity_checking:
            return
        dm = getattr(self.trainer, "datamodule", None)
        d = self.student.frame_dim if hasattr(self.student, "frame_dim") else None
        if d is None:
            return
        gen = torch.Generator().manual_seed(ROLLOUT_SEED)
        dtype = next(self.student.parameters()).dtype
        with torch.no_grad():
            was_training = self.student.training
            self.student.eval()
            student = self.roll(MEASURED_SEQUENCES, self.frames, d, noise=gen, dtype=dtype)[0].cpu()
            self.student.train(was_training)
        data = dm.sequences(MEASURED_SEQUENCES, self.frames, gen) if callable(getattr(dm, "sequences", None)) else None
        reference = dm.dataset("train").tensors[0] if callable(getattr(dm, "dataset", None)) else student
        mean, std = float(reference.mean()), float(reference.std())
        write_rolling(
            writer,
            self.global_step,
            student[:DRAWN_SEQUENCES],
            statistics_gap(student, mean, std),
            None if data is None else data[:DRAWN_SEQUENCES],
            None if data is None else statistics_gap(data, mean, std),
            label=f"student ({self.rollout}, W={self.window})",
        )
