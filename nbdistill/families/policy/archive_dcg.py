r"""The descriptor-conditioned actor-critic of DCG-MAP-Elites (Faldor, Chalumeau, Flageat & Cully,
"MAP-Elites with Descriptor-Conditioned Gradients and Archive Distillation into a Single Policy", GECCO 2023).

Checked against the authors' code (adaptive-intelligent-robotics/DCRL-MAP-Elites, ``qdcg_emitter.py``,
``td3_loss.py::make_td3_loss_dc_fn``, ``networks.py::QModuleDC/MLPDC``, ``configs/algo/dcg_me.yaml``):

- similarity ``S(d, d') = exp(-‖d - d'‖_2 / L)`` (:func:`similarity`; ``lengthscale`` ``L = 0.1`` on
  descriptors normalised to ``[-1, 1]``); ``d`` is the descriptor the episode reached, ``d'`` the one its
  policy was asked for;
- the critic ``Q_i(s, a | d')``, ``i = 1, 2`` (:class:`DescriptorCritic`: two MLPs on ``[s, a, d']``) is
  trained by TD3 on the rewards ``S(d, d') r``: target (:func:`td3_target`)
  ``y = S(d, d') r + γ (1 - done) min_i Q̄_i(s', clip(π̄(s' | d') + clip(N(0, σ²), -c, c), -1, 1) | d')``,
  loss ``Σ_i E (Q_i(s, a | d') - y)²`` (:func:`critic_loss`), ``σ = 0.2``, ``c = 0.5``, ``γ = 0.99``;
- the actor ``π(s | d')`` maximises ``E Q_1(s, π(s | d') | d')`` every ``policy_delay = 2`` critic steps
  (:func:`actor_loss`); both target networks follow by Polyak averaging ``τ = 0.005``. This actor is
  the *archive distillation*: one policy that reproduces the archive, asked for a descriptor;
- the PG variation (:func:`pg_variation`): a parent ``θ`` with descriptor ``d_θ`` takes ``pg_steps``
  Adam steps (lr ``5e-3``) on ``-E_s Q_1(s, π_θ(s) | d_θ)``, i.e. it improves its fitness *while staying
  in its own cell*, where PGA-ME's critic (no ``d``) pulls every parent towards the one best behaviour;
- the replay buffer holds *passive* transitions (the offspring's episodes: ``d'`` the parent's
  descriptor for PG offspring, their own ``d`` for GA offspring) and *active* ones (the actor played
  with ``d'`` drawn from the archive's elites, ``d`` where it landed).

This follows the emitter that ``main_dcg_me.py`` runs (``dcg_me_emitter.py`` → ``qdcg_emitter.py``, the same
scheme as QDax's ``dcrl_emitter.py``). The repository's GECCO-era variant (``dcg_me_gecco_emitter.py``)
differs in two details: it stores every passive transition with ``d' = d`` (so ``S = 1`` on them) and
uses ``L = 0.008`` on descriptors divided by their maximum rather than mapped to ``[-1, 1]``.

Where nbdistill differs (tiny scale, CPU): networks of tens of units (the authors' critic is 256 × 256,
policies 128 × 128), tens of critic and PG steps per iteration (3000 and 150), a replay buffer of
``1e4`` transitions (``1e6``); the episode's last step is terminal (time is in the observation) where
the authors mask truncated transitions out of the critic loss.
"""

from __future__ import annotations

import torch
from torch import nn

from .map_elites import BatchedPolicy

#: What a transition holds: observation, action, reward, next observation, done, reached and asked-for descriptors.
FIELDS = ("obs", "action", "reward", "next_obs", "done", "desc", "desc_prime")


def similarity(d: torch.Tensor, d_prime: torch.Tensor, lengthscale: float) -> torch.Tensor:
    """``S(d, d') = exp(-‖d - d'‖_2 / L)`` over the last axis."""
    return torch.exp(-torch.linalg.vector_norm(d - d_prime, dim=-1) / lengthscale)


def td3_target(
    reward: torch.Tensor, scale: torch.Tensor, done: torch.Tensor, next_q: torch.Tensor, discount: float
) -> torch.Tensor:
    """The descriptor-conditioned TD3 target ``y = S r + γ (1 - done) min_i Q̄_i(s', a' | d')``
    (``next_q`` ``[..., 2]``: both target critics at ``(s', a')``)."""
    return scale * reward + discount * (1.0 - done) * next_q.min(dim=-1).values


def q_network(in_features: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))


class DescriptorCritic(nn.Module):
    """Two critics ``Q_i(s, a | d')`` (QDax's ``QModuleDC``): MLPs on ``[s, a, d']``, two hidden layers of ``width``."""

    def __init__(self, obs_dim: int, action_dim: int, descriptor_dim: int, width: int = 64):
        super().__init__()
        size = obs_dim + action_dim + descriptor_dim
        self.q1, self.q2 = q_network(size, width), q_network(size, width)

    def forward(self, obs: torch.Tensor, action: torch.Tensor, desc: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, action, desc], dim=-1)
        return torch.cat([self.q1(x), self.q2(x)], dim=-1)

    def first(self, obs: torch.Tensor, action: torch.Tensor, desc: torch.Tensor) -> torch.Tensor:
        """``Q_1(s, a | d')`` ``[...]``: the critic the actor and the PG variation climb."""
        return self.q1(torch.cat([obs, action, desc], dim=-1)).squeeze(-1)


def act(actor: nn.Module, obs: torch.Tensor, desc: torch.Tensor) -> torch.Tensor:
    """``π(s | d') = tanh(actor([s, d']))`` over any leading axes."""
    x = torch.cat([obs, desc.to(obs.dtype)], dim=-1)
    return torch.tanh(actor(x.reshape(-1, x.shape[-1]))).reshape(*x.shape[:-1], -1)


def critic_loss(
    critic: DescriptorCritic,
    target_critic: DescriptorCritic,
    target_actor: nn.Module,
    batch: dict[str, torch.Tensor],
    lengthscale: float,
    discount: float,
    policy_noise: float,
    noise_clip: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """``Σ_i E (Q_i(s, a | d') - y)²`` with ``y`` of :func:`td3_target` on the rewards scaled by ``S(d, d')``."""
    with torch.no_grad():
        noise = (torch.randn(batch["action"].shape, generator=generator) * policy_noise).clamp(-noise_clip, noise_clip)
        next_action = (act(target_actor, batch["next_obs"], batch["desc_prime"]) + noise.to(batch["action"].device)).clamp(-1, 1)
        next_q = target_critic(batch["next_obs"], next_action, batch["desc_prime"])
        scale = similarity(batch["desc"], batch["desc_prime"], lengthscale)
        y = td3_target(batch["reward"], scale, batch["done"], next_q, discount)
    q = critic(batch["obs"], batch["action"], batch["desc_prime"])
    return (q - y.unsqueeze(-1)).pow(2).mean(0).sum()


def actor_loss(actor: nn.Module, critic: DescriptorCritic, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``-E Q_1(s, π(s | d') | d')``."""
    return -critic.first(batch["obs"], act(actor, batch["obs"], batch["desc_prime"]), batch["desc_prime"]).mean()


@torch.no_grad()
def polyak(target: nn.Module, online: nn.Module, tau: float) -> None:
    """``θ̄ ← (1 - τ) θ̄ + τ θ``."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.lerp_(o, tau)


def pg_variation(
    policy: BatchedPolicy,
    parents: torch.Tensor,
    parent_descriptors: torch.Tensor,
    critic: DescriptorCritic,
    buffer: ReplayBuffer,
    steps: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """DCG-ME's descriptor-conditioned PG variation: each parent ``θ`` takes ``steps`` Adam steps (a
    fresh optimiser, as in the authors' code) on ``-E_s Q_1(s, π_θ(s) | d_θ)``, its own replay batch a step."""
    device = next(critic.parameters()).device
    theta = parents.detach().to(device).clone().requires_grad_(True)
    parent_descriptors = parent_descriptors.to(device)
    optimizer = torch.optim.Adam([theta], lr=lr)
    critic.requires_grad_(False)
    try:
        for _ in range(steps):
            obs = buffer.sample(len(theta) * batch_size, generator, device)["obs"].reshape(len(theta), batch_size, -1)
            desc = parent_descriptors.unsqueeze(1).expand(-1, batch_size, -1)
            q = critic.first(obs, policy(theta, obs), desc)
            optimizer.zero_grad(set_to_none=True)
            (-q.mean(1).sum()).backward()
            optimizer.step()
    finally:
        critic.requires_grad_(True)
    return theta.detach().cpu()


class ReplayBuffer:
    """A ring buffer of transitions ``(s, a, r, s', done, d, d')`` (see :data:`FIELDS`)."""

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, descriptor_dim: int):
        widths = {"obs": obs_dim, "action": action_dim, "next_obs": obs_dim, "desc": descriptor_dim, "desc_prime": descriptor_dim}
        self.capacity = int(capacity)
        self.data = {k: torch.zeros(self.capacity, widths[k]) if k in widths else torch.zeros(self.capacity) for k in FIELDS}
        self.size = 0
        self.position = 0

    def add(self, **transitions: torch.Tensor) -> None:
        """Append ``N`` transitions (each field ``[N, ...]``), overwriting the oldest when full."""
        n = len(transitions["reward"])
        index = (self.position + torch.arange(n)) % self.capacity
        for k in FIELDS:
            self.data[k][index] = transitions[k].detach().to(self.data[k].dtype).reshape(n, *self.data[k].shape[1:])
        self.position = int((self.position + n) % self.capacity)
        self.size = min(self.capacity, self.size + n)

    def sample(self, n: int, generator: torch.Generator, device: torch.device | None = None) -> dict[str, torch.Tensor]:
        """``n`` transitions drawn uniformly with replacement, on ``device``."""
        index = torch.randint(self.size, (n,), generator=generator)
        return {k: v[index].to(device) for k, v in self.data.items()}

    def state_dict(self) -> dict:
        return {"data": self.data, "size": self.size, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.data = {k: v.clone() for k, v in state["data"].items()}
        self.size, self.position = int(state["size"]), int(state["position"])
