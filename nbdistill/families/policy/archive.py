r"""``policy.archive``: archive distillation into a single policy by DCG-MAP-Elites (Faldor, Chalumeau,
Flageat & Cully, "MAP-Elites with Descriptor-Conditioned Gradients and Archive Distillation into a
Single Policy", GECCO 2023; DCRL-MAP-Elites, "Synergizing Quality-Diversity with Descriptor-Conditioned
Reinforcement Learning", ACM TELO, arXiv 2401.08632, adds the actor injection).

The teacher is the archive the method grows: a MAP-Elites grid (:class:`.map_elites.GridArchive`) of
small policies on the reaching task (:mod:`.archive_task`), each the best found for its cell of final
positions. Each training step is one MAP-Elites iteration (the authors' ``map_elites.update``):

1. emit offspring: ``ga_batch`` by Iso+LineDD from pairs of elites (:func:`.map_elites.isoline_variation`);
   ``pg_batch`` by the descriptor-conditioned PG variation (:func:`.archive_dcg.pg_variation`: a parent
   climbs ``Q_1(s, π_θ(s) | d_θ)`` for ``pg_steps`` steps); ``ai_batch`` by actor injection
   (DCRL-ME: ``π(· | d)`` for elites' ``d`` folded into a policy, :meth:`.map_elites.BatchedPolicy.from_actor`);
2. play them, insert them into the archive (a cell keeps the better elite), and store their
   transitions (passive) with the actor's own episodes for ``actor_batch`` elites' descriptors (active);
3. ``critic_steps`` TD3 steps of the descriptor-conditioned critic on the rewards ``S(d, d') r``,
   ``S(d, d') = exp(-‖d - d'‖ / L)``, and every ``policy_delay``-th one a step of the actor
   ``π(s | d')``, the student, on ``-Q_1(s, π(s | d') | d')`` (:mod:`.archive_dcg`).

The actor ends up reproducing the archive: asked for any cell's descriptor, it goes there, cheaply.
The evaluation (:class:`.archive_evaluation.ArchiveEvaluation`) rolls ``π(· | d)`` out for every
cell's centre and compares the cells it reaches and their fitness with the archive's.

Defaults against the authors' (``configs/algo/dcg_me.yaml``, Brax tasks, 4000 iterations on a GPU):
``L = 0.1`` on ``[-1, 1]`` descriptors, ``γ = 0.99``, ``σ = 0.2``, ``c = 0.5``, ``policy_delay = 2``,
Iso+LineDD with ``σ_line = 0.05`` as theirs; tiny where they are large (offspring 16 + 16 of 128 + 128,
actor episodes 16 of 64, critic steps 32 of 3000, PG steps 10 of 150, replay batch 64 of 100, buffer
``1e4`` of ``1e6``, critic 64 × 64 of 256 × 256), ``τ = 0.01`` (0.005) and learning rates ``1e-3``
(``3e-4``) to learn in a few hundred critic steps, ``σ_iso = 0.05`` (0.005) for genotypes of 50 to ~1 000
parameters (theirs, 128 × 128, have tens of thousands): over 50 iterations on the reaching task the
distilled policy reached 92% of the cells with these, 85% with the authors' three values. DCG-ME injects
no actor (``ai_batch = 0``); DCRL-ME's 64 of 256 is ``ai_batch > 0`` here.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from ...core.errors import ConfigError
from ...core.module import DistillModule, freeze
from ...core.registry import HParam, register
from . import archive_views  # noqa: F401  (registers the archive views)
from .archive_dcg import DescriptorCritic, ReplayBuffer, act, actor_loss, critic_loss, pg_variation, polyak
from .archive_evaluation import ArchiveEvaluation
from .archive_task import ACTION_DIM, DESCRIPTOR_DIM, HIGH, LOW, OBS_DIM, Episodes, PointReach, play
from .map_elites import BatchedPolicy, GridArchive, isoline_variation, mlp_widths

#: The views of ``policy.archive``.
ARCHIVE_VIEWS = ("archive_elites", "archive_policy", "archive_coverage", "losses")


@register("policy.archive", views=ARCHIVE_VIEWS, needs_teacher=False)
class ArchiveDistillation(DistillModule):
    """DCG-MAP-Elites: a MAP-Elites archive grown with descriptor-conditioned gradients, distilled into one descriptor-conditioned policy (Faldor et al., 2023).

    The student is the actor ``π(s | d)``, an ``nd.models.MLP(in_features=5, hidden=[...], out_features=2)``
    reading ``[x, y, t/T, d_x, d_y]`` (its outputs pass through ``tanh``); the archive's policies share
    its hidden widths. The data are the target cells (``nd.data.ArchiveTargets``): each training batch
    is one MAP-Elites iteration, the validation rolls ``π(· | d)`` out for every cell.
    """

    lr = HParam(float, 1e-3, 1e-5, 1.0, log=True, help="Adam learning rate of the actor (the authors: 3e-4)")
    critic_lr = HParam(float, 1e-3, 1e-5, 1.0, log=True, help="Adam learning rate of the critic (the authors: 3e-4)")
    policy_lr = HParam(float, 5e-3, 1e-5, 1.0, log=True, help="Adam learning rate of the PG variation (the authors: 5e-3)")
    grid = HParam(int, 10, 2, 64, help="archive cells per side of the descriptor square")
    horizon = HParam(int, 10, 2, 200, help="steps of an episode of the reaching task")
    ga_batch = HParam(int, 16, 0, 4096, help="offspring by Iso+LineDD per iteration (the authors: 128)")
    pg_batch = HParam(int, 16, 0, 4096, help="offspring by the descriptor-conditioned PG variation per iteration (128)")
    ai_batch = HParam(int, 0, 0, 4096, help="offspring by actor injection per iteration (DCG-ME: 0; DCRL-ME: 64)")
    actor_batch = HParam(int, 16, 0, 4096, help="episodes of the actor for elites' descriptors per iteration (64)")
    iso_sigma = HParam(float, 0.05, 0.0, 10.0, help="Iso+LineDD isotropic noise (the authors: 0.005, larger nets)")
    line_sigma = HParam(float, 0.05, 0.0, 10.0, help="Iso+LineDD line noise (the authors: 0.05)")
    lengthscale = HParam(float, 0.1, 1e-4, 1e4, log=True, help="L of the similarity S(d, d') = exp(-|d - d'| / L) (0.1)")
    critic_steps = HParam(int, 32, 1, 100_000, help="TD3 critic steps per iteration (the authors: 3000)")
    pg_steps = HParam(int, 10, 1, 10_000, help="Adam steps of each PG offspring (the authors: 150)")
    replay_batch = HParam(int, 64, 1, 100_000, help="transitions per critic, actor and PG step (the authors: 100)")
    buffer_size = HParam(int, 10_000, 100, 10_000_000, help="transitions the replay buffer holds (the authors: 1e6)")
    critic_width = HParam(int, 64, 2, 4096, help="units of each of the critic's two hidden layers (the authors: 256)")
    discount = HParam(float, 0.99, 0.0, 1.0, help="TD3 discount gamma")
    policy_noise = HParam(float, 0.2, 0.0, 1.0, help="TD3 target policy smoothing noise sigma")
    noise_clip = HParam(float, 0.5, 0.0, 1.0, help="TD3 target noise clip c")
    tau = HParam(float, 0.01, 1e-4, 1.0, log=True, help="Polyak rate of the target networks (the authors: 0.005)")
    policy_delay = HParam(int, 2, 1, 100, help="critic steps per actor step (TD3's delay)")
    seed = HParam(int, 0, 0, 2**31 - 1, help="seed of the initial population, the variations and the replay samples")
    evaluation_class = ArchiveEvaluation

    # -- parts ----------------------------------------------------------------------------------
    def build_parts(self) -> None:
        widths = mlp_widths(self.student)
        if widths[0] != OBS_DIM + DESCRIPTOR_DIM or widths[-1] != ACTION_DIM:
            raise ConfigError(
                f"policy.archive's student reads [x, y, t/T, d_x, d_y] and outputs an action (dx, dy): it needs "
                f"in_features={OBS_DIM + DESCRIPTOR_DIM} and out_features={ACTION_DIM}, got {widths[0]} and {widths[-1]}"
            )
        if self.ga_batch + self.pg_batch + self.ai_batch < 1:
            raise ConfigError("policy.archive emits no offspring: set ga_batch, pg_batch or ai_batch to at least 1")
        if self.ga_batch + self.pg_batch + self.ai_batch + self.actor_batch > self.buffer_size // self.horizon:
            raise ConfigError(
                f"policy.archive's replay buffer ({self.buffer_size} transitions) cannot hold one iteration's episodes "
                f"({self.ga_batch + self.pg_batch + self.ai_batch + self.actor_batch} x {self.horizon} steps): raise buffer_size"
            )
        #: the archive's genotypes: tanh-MLPs on (x, y, t/T) with the actor's hidden widths
        self.policy = BatchedPolicy([OBS_DIM] + widths[1:])
        self.critic = DescriptorCritic(OBS_DIM, ACTION_DIM, DESCRIPTOR_DIM, self.critic_width)
        self.target_critic = freeze(copy.deepcopy(self.critic))
        self.target_actor = freeze(copy.deepcopy(self.student))
        self.archive = GridArchive(self.grid, self.policy.num_params, LOW, HIGH)
        self.buffer = ReplayBuffer(self.buffer_size, OBS_DIM, ACTION_DIM, DESCRIPTOR_DIM)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.critic_updates = 0
        self.last_added = float("nan")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """One Adam with the actor's and the critic's parameter groups (each steps on its own loss)."""
        return torch.optim.Adam(
            [
                {"params": list(self.student.parameters()), "lr": self.lr, "weight_decay": self.weight_decay},
                {"params": list(self.critic.parameters()), "lr": self.critic_lr},
            ]
        )

    def on_train_start(self) -> None:
        super().on_train_start()
        self.automatic_optimization = False  # the critic and the actor step on their own losses

    # -- playing --------------------------------------------------------------------------------
    def task(self, n: int) -> PointReach:
        return PointReach(n, horizon=self.horizon)

    def play_genotypes(self, genotypes: torch.Tensor) -> Episodes:
        return play(self.task(len(genotypes)), lambda obs: self.policy(genotypes, obs))

    @torch.no_grad()
    def play_actor(self, descriptors: torch.Tensor, actor: torch.nn.Module | None = None) -> Episodes:
        """Episodes of ``π(· | d)`` (the student, or ``actor``) for each row of ``descriptors`` ``[N, 2]``."""
        actor = self.student if actor is None else actor
        device = next(actor.parameters()).device
        d = descriptors.to(device)
        return play(self.task(len(descriptors)), lambda obs: act(actor, obs.to(device), d).cpu())

    def store(self, episodes: Episodes, desc_prime: torch.Tensor) -> None:
        """Add an episode batch's transitions to the replay buffer, ``d`` the reached descriptors, ``d'`` ``desc_prime``."""
        n, t = episodes.rewards.shape

        def per_step(d: torch.Tensor) -> torch.Tensor:
            return d.unsqueeze(1).expand(n, t, d.shape[-1]).reshape(n * t, -1)

        self.buffer.add(
            obs=episodes.obs.reshape(n * t, -1),
            action=episodes.actions.reshape(n * t, -1),
            reward=episodes.rewards.reshape(-1),
            next_obs=episodes.next_obs.reshape(n * t, -1),
            done=episodes.dones.reshape(-1),
            desc=per_step(episodes.descriptors),
            desc_prime=per_step(desc_prime),
        )

    # -- one MAP-Elites iteration ---------------------------------------------------------------
    def emit(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Offspring ``[B, P]``, the descriptors ``d'`` they were made for ``[B, 2]`` and a mask of the
        GA ones (their ``d'`` is the one they reach); a random population while the archive is empty."""
        g = self.generator
        total = self.ga_batch + self.pg_batch + self.ai_batch
        if not self.archive.filled.any():
            return self.policy.init(total, g), torch.zeros(total, DESCRIPTOR_DIM), torch.ones(total, dtype=torch.bool)
        offspring, targets, ga = [], [], []
        if self.ga_batch:
            x1, _ = self.archive.sample(self.ga_batch, g)
            x2, _ = self.archive.sample(self.ga_batch, g)
            offspring.append(isoline_variation(x1, x2, self.iso_sigma, self.line_sigma, g))
            targets.append(torch.zeros(self.ga_batch, DESCRIPTOR_DIM))
            ga.append(torch.ones(self.ga_batch, dtype=torch.bool))
        if self.pg_batch:
            parents, d = self.archive.sample(self.pg_batch, g)
            children = pg_variation(
                self.policy, parents, d, self.critic, self.buffer, self.pg_steps, self.replay_batch, self.policy_lr, g
            )
            offspring.append(children)
            targets.append(d)
            ga.append(torch.zeros(self.pg_batch, dtype=torch.bool))
        if self.ai_batch:
            _, d = self.archive.sample(self.ai_batch, g)
            offspring.append(self.policy.from_actor(self.student, d.to(self.device)).cpu())
            targets.append(d)
            ga.append(torch.zeros(self.ai_batch, dtype=torch.bool))
        return torch.cat(offspring), torch.cat(targets), torch.cat(ga)

    def train_actor_critic(self) -> tuple[float, float]:
        """``critic_steps`` TD3 steps (the actor every ``policy_delay``-th); mean critic and actor losses."""
        optimizer = self.optimizers(use_pl_optimizer=False) if self._trainer is not None else self._own_optimizer()
        critic_losses, actor_losses = [], []
        for _ in range(self.critic_steps):
            batch = self.buffer.sample(self.replay_batch, self.generator, self.device)
            loss = critic_loss(
                self.critic,
                self.target_critic,
                self.target_actor,
                batch,
                self.lengthscale,
                self.discount,
                self.policy_noise,
                self.noise_clip,
                self.generator,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            critic_losses.append(loss.detach())
            if self.critic_updates % self.policy_delay == 0:
                self.critic.requires_grad_(False)
                loss = actor_loss(self.student, self.critic, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                self.critic.requires_grad_(True)
                actor_losses.append(loss.detach())
                polyak(self.target_actor, self.student, self.tau)
            polyak(self.target_critic, self.critic, self.tau)
            self.critic_updates += 1
        optimizer.zero_grad(set_to_none=True)
        mean = lambda xs: float(torch.stack(xs).mean()) if xs else float("nan")  # noqa: E731
        return mean(critic_losses), mean(actor_losses)

    def _own_optimizer(self) -> torch.optim.Optimizer:
        """The optimiser when no Trainer is attached (the module driven by hand, as in a test)."""
        if getattr(self, "_optimizer", None) is None:
            self._optimizer = self.configure_optimizers()
        return self._optimizer

    def loss_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        """One MAP-Elites iteration and its actor-critic training (the batch only paces it)."""
        offspring, targets, ga = self.emit()
        episodes = self.play_genotypes(offspring)
        added = self.archive.insert(offspring, episodes.descriptors, episodes.fitness)
        targets = torch.where(ga.unsqueeze(1), episodes.descriptors, targets)
        self.store(episodes, targets)
        if self.actor_batch:
            _, d = self.archive.sample(self.actor_batch, self.generator)
            self.store(self.play_actor(d), d)
        critic, actor = self.train_actor_critic()
        self.last_added = float(added.double().mean())
        return {"loss": torch.tensor(critic), "critic": torch.tensor(critic), "actor": torch.tensor(actor)}

    def training_step(self, batch: Any, batch_idx: int) -> None:
        terms = self.loss_terms(batch)
        self.last_terms = terms
        if self._logs_this_step():
            self._log_terms(terms, None)
            self.write_archive()
        if self._trainer is not None:
            optimizer = self.optimizers()
            optimizer.zero_grad(set_to_none=True)
            optimizer.step()  # no gradients left: only counts the iteration as the step

    def write_archive(self) -> None:
        """The archive's state as scalars ``archive/coverage``, ``archive/qd_score`` and ``archive/added``
        (the share of the last offspring that entered it), on the steps the loss terms are logged."""
        writer = self._run_writer()
        if writer is None:
            return
        step = self.global_step
        writer.scalar("archive/coverage", self.archive.coverage(), step=step)
        writer.scalar("archive/qd_score", self.archive.qd_score(), step=step)
        writer.scalar("archive/added", self.last_added, step=step)

    # -- checks and checkpoints -----------------------------------------------------------------
    def check_data(self, data: Any) -> None:
        x = data.dataset("val").tensors[0] if callable(getattr(data, "dataset", None)) else None
        if x is None:
            return
        if x.dim() != 2 or x.shape[1] != DESCRIPTOR_DIM:
            raise ConfigError(
                f"policy.archive's targets must be descriptors [N, 2], got {tuple(x.shape)}; use nd.data.ArchiveTargets()"
            )
        if bool(((x < LOW) | (x > HIGH)).any()):
            raise ConfigError(
                f"policy.archive's targets must lie in the task's square [{LOW}, {HIGH}]^2, got values from "
                f"{float(x.min()):g} to {float(x.max()):g}; use nd.data.ArchiveTargets(low={LOW}, high={HIGH})"
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["dcg_me"] = {
            "archive": self.archive.state_dict(),
            "buffer": self.buffer.state_dict(),
            "generator": self.generator.get_state(),
            "critic_updates": self.critic_updates,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("dcg_me")
        if state is None:
            return
        self.archive.load_state_dict(state["archive"])
        self.buffer.load_state_dict(state["buffer"])
        self.generator.set_state(state["generator"])
        self.critic_updates = int(state["critic_updates"])
