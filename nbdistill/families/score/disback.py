r"""``score.disback``: Distribution Backtracking (Zhang et al., "Distribution Backtracking Builds A Faster Convergence
Trajectory for Diffusion Distillation", arXiv 2408.15991).

DMD's generator matches the teacher's score ``s^0`` from the start, although its initial distribution is far
from the teacher's. DisBack first records how the teacher's score *degrades* towards the initial generator,
then walks that path backwards:

- **Stage 1, degradation recording** (``checkpoints · record_steps`` training steps). The fake score
  ``s_ψ ← copy(s^0)`` (``fake_init``) learns the FROZEN initial generator ``G_θ0`` by denoising score
  matching on ``sg(G_θ0(z))``; every ``record_steps`` steps its weights are saved: ``s^1, …, s^N``. The
  generator does not change.
- **Stage 2, backtracking.** The fake score continues from ``s^N`` on the generator's samples, and the
  generator takes DMD's step with ``s^k`` as the "real" score,

      grad = (μ_fake(x_t, t) − μ_{s^k}(x_t, t)) / mean_d |x − μ_{s^k}(x_t, t)|,   L_DM = ½ · mean (x − sg(x − grad))²,

  at ``x_t = α_t x + σ_t ε``, ``t ~ U[t_low, t_high]`` (:mod:`.losses.dmd`), for ``k = N−1, …, 1, 0``,
  ``stage_steps`` steps each (:func:`.losses.disback.backtracking_target`); the teacher ``s^0`` stays the
  target to the end. ``checkpoints = 0`` is plain DMD without the regression loss.

Compared with the official code (SYZhang0805/DisBack, MIT, on DMD2), which records in a separate run and
loads the checkpoint files ``s^{N−1}, …, s^0`` every ``--interval`` iterations, nbdistill runs both stages in
one training (so progress, stop and resume cover them), keeps the recorded weights in memory and in the
Lightning checkpoint, and drops DMD2's GAN term (pure distribution matching, as ``score.dmd`` with
``regression_weight=0``). At the end of stage 1 each ``s^k`` is sampled by a DDIM from fixed noise for the
``disback_path`` view (:mod:`.disback_views`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ...core.errors import ConfigError
from ...core.registry import HParam, register
from . import disback_views
from .base import SCORE_VIEWS
from .dmd_common import DistributionMatchingModule
from .losses.disback import backtracking_target
from .samplers import ddim


def _frozen(net: nn.Module) -> nn.Module:
    return net.requires_grad_(False).eval()


@register("score.disback", views=SCORE_VIEWS + ("score_fields", "disback_path"))
class DisBack(DistributionMatchingModule):
    """Distribution backtracking: record the teacher's score degrading towards the initial generator, then distribution-match the generator against those scores in reverse (Zhang et al., 2024).

    Stage 1 (``checkpoints · record_steps`` steps) trains only the fake score, from the teacher's weights, on
    the frozen initial generator and records ``s^1 … s^N``; stage 2 moves the generator with the DMD gradient
    against ``s^{N−1}``, …, ``s^0`` (the teacher), ``stage_steps`` steps each. Logged terms: ``fake`` (both
    stages), ``dm`` and ``disback_target`` (``k`` of the current real score) in stage 2.
    """

    checkpoints = HParam(int, 4, 0, 64, help="N, recorded degraded scores s^1..s^N (0: plain DMD against the teacher)")
    record_steps = HParam(int, 100, 1, 1_000_000, help="stage-1 fake-score steps between two recorded checkpoints")
    stage_steps = HParam(int, 200, 1, 1_000_000, help="stage-2 generator steps against each recorded score s^k")

    def build_parts(self) -> None:
        super().build_parts()
        for name, low in (("checkpoints", 0), ("record_steps", 1), ("stage_steps", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{self.method_name}'s {name} must be an integer >= {low}, got {name}={value!r}")
        #: the recorded fake-score weights s^1..s^N (index k−1), in the order recorded
        self.recorded: list[dict[str, torch.Tensor]] = []
        #: training steps taken (the stage and target follow from it)
        self.steps_done = 0
        #: frozen networks of the recorded scores, built on demand; kept out of the module's children
        self._targets: dict[int, nn.Module] = {}

    # -- the schedule --------------------------------------------------------------------------------
    @property
    def target_index(self) -> int | None:
        """``k`` of the current "real" score ``s^k`` (0: the teacher), ``None`` during stage 1."""
        return backtracking_target(self.steps_done, self.checkpoints, self.record_steps, self.stage_steps)

    def score_network(self, k: int) -> nn.Module:
        """``s^k``: the teacher for ``k = 0``, else a frozen copy of the fake score holding the ``k``-th recorded weights."""
        if k == 0:
            return self.teacher
        if k not in self._targets:
            net = copy.deepcopy(self.fake_score)
            net.load_state_dict(self.recorded[k - 1])
            self._targets[k] = _frozen(net)
        return self._targets[k]

    # -- the two stages' terms -----------------------------------------------------------------------
    def loss_terms(self, batch) -> dict[str, torch.Tensor]:
        data = batch[0] if isinstance(batch, (list, tuple)) else batch
        k = self.target_index
        if k is None:  # stage 1: the frozen initial generator, only the fake score learns
            with torch.no_grad():
                x = self.generate(torch.randn_like(data))
            fake = self.fake_term(x)
            return {"fake": fake, "loss": fake}
        x = self.generate(torch.randn_like(data))
        dm = self.dm_term(x, self.score_network(k))
        fake = self.fake_term(x)
        return {"dm": dm, "fake": fake, "disback_target": float(k), "loss": dm + fake}

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.steps_done += 1
        recording = self.checkpoints * self.record_steps
        if self.steps_done <= recording and self.steps_done % self.record_steps == 0:
            self.recorded.append(copy.deepcopy(self.fake_score.state_dict()))
            if self.steps_done == recording:
                data = batch[0] if isinstance(batch, (list, tuple)) else batch
                disback_views.write_path(self._run_writer(), self, self.global_step, data)

    # -- the path of intermediate distributions ----------------------------------------------------
    @torch.no_grad()
    def path_samples(self, n: int, steps: int, seed: int, shape: tuple[int, ...], dtype: torch.dtype) -> list[torch.Tensor]:
        """DDIM samples (``steps`` steps, ``t_max → t_min``) of ``s^0, …, s^N`` recorded so far, all from the same
        ``n`` prior draws of ``seed``; the generator's own samples of those draws come first (index ``-1``'s place)."""
        z = torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(self.device)
        times = self.noise.timesteps(steps, dtype=dtype, device=self.device)
        return [self.generate(z)] + [ddim(self.score_network(k), self.noise, z, times) for k in range(len(self.recorded) + 1)]

    # -- the stage survives a checkpoint (``nbdistill resume``, ``--ckpt_path``) ---------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["disback"] = {"steps_done": self.steps_done, "recorded": self.recorded}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("disback")
        if state is None:
            return
        self.steps_done = state["steps_done"]
        self.recorded = list(state["recorded"])
        self._targets = {}
