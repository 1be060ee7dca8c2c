"""``ICTransformer``: a tiny causal transformer that reads a bandit history and predicts an action.

The in-context policy of DPT ("Supervised Pretraining Can Learn In-Context Reinforcement Learning",
Lee et al. 2023) and AD ("In-context Reinforcement Learning with Algorithm Distillation", Laskin et
al. 2022). Token 0 is a start token carrying the task's observation (a linear bandit's arm features;
nothing for a plain bandit); token ``j >= 1`` is transition ``j - 1``: ``[onehot(a), r]`` through one
linear layer, as DPT embeds ``concat(state, onehot(action), next state, reward)``. Learned positions,
pre-norm causal self-attention blocks, and a linear head give logits at every position: position
``j`` is the policy after seeing ``j`` transitions, so one forward pass scores every prefix. An
optional ``extra`` input ``[N, T + 1, E]`` is added to the tokens (EVOLvE's algorithm-guided support:
a teacher algorithm's per-arm statistics before each step).

DPT's GPT-2 uses learned positions and GELU MLPs as here; it hard-codes one head (``n_head = 1``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.errors import ConfigError


class ICTransformer(nn.Module):
    """Causal transformer over ``(action, reward)`` transitions; logits ``[N, T + 1, K]``.

    Args:
        num_actions: K, the actions (arms).
        max_context: the most transitions it reads (positions ``max_context + 1``).
        obs_dim: size of the task observation given to the start token (0: none).
        extra_dim: size of the per-position extra input (0: none).
        width, depth, heads: embedding size, blocks, attention heads.
    """

    def __init__(
        self,
        num_actions: int,
        max_context: int,
        obs_dim: int = 0,
        extra_dim: int = 0,
        width: int = 32,
        depth: int = 2,
        heads: int = 1,
        dropout: float = 0.0,
    ):
        super().__init__()
        if num_actions < 2 or max_context < 1 or width % heads:
            raise ConfigError(
                f"ICTransformer needs num_actions >= 2, max_context >= 1 and width divisible by heads, got "
                f"{num_actions}, {max_context}, {width}/{heads}"
            )
        self.num_actions, self.max_context, self.obs_dim, self.extra_dim = num_actions, max_context, obs_dim, extra_dim
        self.transition = nn.Linear(num_actions + 1, width)
        self.start = nn.Parameter(torch.zeros(width))
        self.observe = nn.Linear(obs_dim, width) if obs_dim else None
        self.extra = nn.Linear(extra_dim, width) if extra_dim else None
        self.position = nn.Embedding(max_context + 1, width)
        block = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout, activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_actions)
        nn.init.normal_(self.position.weight, std=0.02)

    def forward(
        self, actions: torch.Tensor, rewards: torch.Tensor, obs: torch.Tensor | None = None, extra: torch.Tensor | None = None
    ) -> torch.Tensor:
        n, t = actions.shape
        if t > self.max_context:
            raise ConfigError(
                f"a context of {t} transitions is longer than the transformer's {self.max_context}; build it with max_context={t}"
            )
        if self.observe is not None and obs is None:
            raise ConfigError(f"this transformer reads a task observation of size {self.obs_dim}: pass obs")
        onehot = nn.functional.one_hot(actions, self.num_actions).to(self.start.dtype)
        steps = self.transition(torch.cat([onehot, rewards[..., None].to(self.start.dtype)], -1))
        first = self.start.expand(n, 1, -1)
        if self.observe is not None:
            first = first + self.observe(obs.to(self.start.dtype))[:, None]
        tokens = torch.cat([first, steps], 1)
        if extra is not None and self.extra is None:
            raise ConfigError(
                f"this transformer reads no extra inputs; build it with extra_dim={extra.shape[-1]} to give it these"
            )
        if self.extra is not None:
            if extra is None or extra.shape[1] != t + 1:
                raise ConfigError(f"this transformer reads extra inputs [N, {t + 1}, {self.extra_dim}] (one per position)")
            tokens = tokens + self.extra(extra.to(self.start.dtype))
        tokens = tokens + self.position.weight[: t + 1]
        mask = torch.triu(torch.full((t + 1, t + 1), float("-inf"), device=tokens.device), 1)
        return self.head(self.norm(self.blocks(tokens, mask=mask, is_causal=True)))
