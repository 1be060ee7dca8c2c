"""The teacher algorithms of bandit distillation, vectorised over ``N`` tasks (no gradients).

Each keeps per-task statistics, chooses one action a task (:meth:`BanditAlgorithm.act`), learns from
the rewards (:meth:`BanditAlgorithm.update`) and shows its per-arm statistics (:meth:`BanditAlgorithm.guide`,
``[N, K, 3]``), what EVOLvE ("EVOLvE: Evaluating and Optimizing LLMs For Exploration", Nie et al. 2024)
puts in a learner's context as *algorithm-guided support*. With ``n_a`` pulls of arm ``a`` by step
``t`` and empirical mean ``mu_a``:

- :class:`UCB` (UCB1, Auer et al. 2002): ``a_t = argmax_a mu_a + c sqrt(2 ln t / n_a)``, the bonus
  infinite for an arm never pulled (EVOLvE's ``UCBGuide``), ties to the lowest index; EVOLvE's
  ``sqrt(alpha ln t / n_a)`` with its default ``alpha = 0.5`` is ``c = 0.5`` here (nbdistill keeps UCB1's
  ``c = 1``, whose regret the theory tests check against Auer et al.'s bound);
- :class:`Thompson` (Thompson 1933; Agrawal & Goyal 2012): Bernoulli rewards: ``p_a ~ Beta(1 + S_a, 1 + F_a)``;
  Gaussian rewards of known ``sigma``: ``mu_a ~ N(m_a, s_a^2)`` the posterior of a ``N(0, prior_std^2)`` prior;
  ``a_t = argmax_a p_a``;
- :class:`Greedy`: the best empirical mean after one pull of each arm (``epsilon`` > 0: a random
  arm with probability ``epsilon``, epsilon-greedy);
- :class:`LinUCB` (Li et al. 2010; Abbasi-Yadkori et al. 2011): ``A = lambda I + sum x x^T``,
  ``theta = A^-1 sum r x``, ``a_t = argmax_a x_a . theta + alpha sqrt(x_a^T A^-1 x_a)``;
- :class:`Random`, and :class:`Oracle` (the best arm, read from the environment: zero regret);
- :class:`Dirichlet`: DPT's roll-in policy that collects its in-context datasets.
"""

from __future__ import annotations

import math

import torch

from ...core.errors import ConfigError
from .envs import BernoulliBandit, LinearBandit, VectorEnv

#: Columns of :meth:`BanditAlgorithm.guide`.
GUIDE_FIELDS = ("estimate", "pulls", "bonus")
#: Stand-in for an infinite bonus (an arm never pulled) where a network reads the guide.
BONUS_CAP = 10.0


class BanditAlgorithm:
    """An online bandit algorithm over ``N`` tasks at once (see the module docstring)."""

    name = ""

    def reset(self, env: VectorEnv) -> None:
        """Forget everything; get ready to play ``env``'s tasks."""
        self.env = env
        n, k = env.num_envs, env.num_actions
        self.pulls = torch.zeros(n, k)
        self.sums = torch.zeros(n, k)
        self.t = 0

    def act(self, generator: torch.Generator) -> torch.Tensor:
        """``[N]``: the action of each task this step."""
        raise NotImplementedError

    def update(self, action: torch.Tensor, reward: torch.Tensor) -> None:
        self.t += 1
        self.pulls.scatter_add_(1, action[:, None], torch.ones_like(reward)[:, None].to(self.pulls.dtype))
        self.sums.scatter_add_(1, action[:, None], reward[:, None].to(self.sums.dtype))

    @property
    def means(self) -> torch.Tensor:
        """``[N, K]`` empirical means (0 for an arm never pulled)."""
        return self.sums / self.pulls.clamp(min=1)

    def bonus(self) -> torch.Tensor:
        """``[N, K]`` the exploration bonus the algorithm adds to the estimate (0 for the greedy ones)."""
        return torch.zeros_like(self.pulls)

    def estimate(self) -> torch.Tensor:
        return self.means

    def guide(self) -> torch.Tensor:
        """``[N, K, 3]``: estimate, pulls / (t + 1), bonus (capped at :data:`BONUS_CAP`), per arm."""
        bonus = self.bonus().clamp(max=BONUS_CAP)
        return torch.stack([self.estimate(), self.pulls / (self.t + 1), bonus], dim=-1)


def _argmax_low(values: torch.Tensor) -> torch.Tensor:
    """argmax over the last axis, ties to the lowest index (torch's argmax does not promise which)."""
    best = values.max(-1, keepdim=True).values
    hits = values >= best
    return hits.to(torch.int8).argmax(-1)


class Random(BanditAlgorithm):
    name = "random"

    def act(self, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(self.env.num_actions, (self.env.num_envs,), generator=generator)


class Oracle(BanditAlgorithm):
    """Plays the best arm, read from the environment (zero regret; DPT's label)."""

    name = "oracle"

    def act(self, generator: torch.Generator) -> torch.Tensor:
        return self.env.optimal_action()


class Greedy(BanditAlgorithm):
    """Each arm once, then the best empirical mean; with ``epsilon`` > 0 a random arm with that probability."""

    name = "greedy"

    def __init__(self, epsilon: float = 0.0):
        if not 0.0 <= epsilon <= 1.0:
            raise ConfigError(f"epsilon must lie in [0, 1], got {epsilon}")
        self.epsilon = float(epsilon)

    def act(self, generator: torch.Generator) -> torch.Tensor:
        unpulled = self.pulls == 0
        choice = torch.where(unpulled.any(-1), unpulled.to(torch.int8).argmax(-1), _argmax_low(self.means))
        if self.epsilon > 0:
            n, k = self.pulls.shape
            explore = torch.rand(n, generator=generator) < self.epsilon
            choice = torch.where(explore, torch.randint(k, (n,), generator=generator), choice)
        return choice


class UCB(BanditAlgorithm):
    """UCB1: ``mu_a + c sqrt(2 ln t / n_a)``, infinite for an arm never pulled."""

    name = "ucb"

    def __init__(self, c: float = 1.0):
        if c < 0:
            raise ConfigError(f"the UCB constant c must be at least 0, got {c}")
        self.c = float(c)

    def bonus(self) -> torch.Tensor:
        t = max(self.t, 1)
        bonus = self.c * torch.sqrt(2.0 * math.log(t) / self.pulls.clamp(min=1))
        return torch.where(self.pulls == 0, torch.full_like(bonus, math.inf), bonus)

    def act(self, generator: torch.Generator) -> torch.Tensor:
        return _argmax_low(self.means + self.bonus())


class Thompson(BanditAlgorithm):
    """Thompson sampling: Beta posteriors on a Bernoulli bandit, Gaussian ones (known sigma) otherwise.

    Args:
        prior_std: the Gaussian prior's standard deviation on each mean (Gaussian rewards only).
    """

    name = "thompson"

    def __init__(self, prior_std: float = 1.0):
        if not prior_std > 0:
            raise ConfigError(f"prior_std must be positive, got {prior_std}")
        self.prior_std = float(prior_std)

    def reset(self, env: VectorEnv) -> None:
        super().reset(env)
        self.bernoulli = isinstance(env, BernoulliBandit)
        self.sigma = float(getattr(env, "sigma", getattr(env, "noise", 1.0)) or 1.0)

    def posterior(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Bernoulli: ``(alpha, beta)`` of each arm's Beta; Gaussian: its ``(mean, std)``."""
        if self.bernoulli:
            return 1.0 + self.sums, 1.0 + self.pulls - self.sums
        precision = 1.0 / self.prior_std**2 + self.pulls / self.sigma**2
        return (self.sums / self.sigma**2) / precision, precision.rsqrt()

    def act(self, generator: torch.Generator) -> torch.Tensor:
        a, b = self.posterior()
        if self.bernoulli:  # Beta(a, b) = X / (X + Y), X ~ Gamma(a), Y ~ Gamma(b), drawn from `generator` in one call
            x, y = _gamma(torch.stack([a, b]), generator)
            draw = x / (x + y)
        else:
            draw = a + b * torch.randn(a.shape, generator=generator)
        return draw.argmax(-1)

    def estimate(self) -> torch.Tensor:
        a, b = self.posterior()
        return a / (a + b) if self.bernoulli else a

    def bonus(self) -> torch.Tensor:
        a, b = self.posterior()
        return (a * b / ((a + b) ** 2 * (a + b + 1))).sqrt() if self.bernoulli else b


def _gamma(shape: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gamma(shape, 1) draws from ``generator`` (Marsaglia & Tsang 2000, with the shape < 1 boost)."""
    boost = shape < 1
    k = torch.where(boost, shape + 1, shape)
    d = k - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.zeros_like(k)
    todo = torch.ones_like(k, dtype=torch.bool)
    while todo.any():
        z = torch.randn(k.shape, generator=generator, dtype=k.dtype)
        u = torch.rand(k.shape, generator=generator, dtype=k.dtype)
        v = (1 + c * z) ** 3
        ok = (v > 0) & (torch.log(u.clamp(min=1e-30)) < 0.5 * z**2 + d - d * v + d * torch.log(v.clamp(min=1e-30)))
        take = todo & ok
        out = torch.where(take, d * v, out)
        todo = todo & ~ok
    if boost.any():
        u = torch.rand(k.shape, generator=generator, dtype=k.dtype)
        out = torch.where(boost, out * u.clamp(min=1e-30) ** (1.0 / shape.clamp(min=1e-30)), out)
    return out


class LinUCB(BanditAlgorithm):
    """LinUCB on a :class:`LinearBandit`: ``x_a . theta + alpha sqrt(x_a^T A^-1 x_a)``, ridge ``lambda``."""

    name = "linucb"

    def __init__(self, alpha: float = 1.0, ridge: float = 1.0):
        if alpha < 0 or not ridge > 0:
            raise ConfigError(f"LinUCB needs alpha >= 0 and ridge > 0, got alpha={alpha}, ridge={ridge}")
        self.alpha, self.ridge = float(alpha), float(ridge)

    def reset(self, env: VectorEnv) -> None:
        if not isinstance(env, LinearBandit):
            raise ConfigError(f"LinUCB plays linear bandits (arm features), not {type(env).__name__}; use ucb or thompson")
        super().reset(env)
        d = env.dim
        self.gram = self.ridge * torch.eye(d, dtype=env.features.dtype).expand(env.num_envs, d, d).clone()
        self.moment = torch.zeros(env.num_envs, d, dtype=env.features.dtype)

    def update(self, action: torch.Tensor, reward: torch.Tensor) -> None:
        super().update(action, reward)
        x = self.env.features[torch.arange(len(action)), action]
        self.gram += x[:, :, None] * x[:, None, :]
        self.moment += reward[:, None].to(x.dtype) * x

    def estimate(self) -> torch.Tensor:
        theta = torch.linalg.solve(self.gram, self.moment)
        return torch.einsum("nkd,nd->nk", self.env.features, theta)

    def bonus(self) -> torch.Tensor:
        x = self.env.features
        solved = torch.linalg.solve(self.gram[:, None], x[..., None])[..., 0]  # A^-1 x_a for every arm (x as column vectors)
        return self.alpha * (x * solved).sum(-1).clamp(min=0).sqrt()

    def act(self, generator: torch.Generator) -> torch.Tensor:
        return _argmax_low(self.estimate() + self.bonus())


class Dirichlet(BanditAlgorithm):
    """DPT's roll-in policy for in-context datasets: per task an action distribution ``p ~ Dir(1)``,
    mixed with mass ``optimal_mass`` on the best arm (DPT's ``cov``), actions drawn i.i.d. from it."""

    name = "dirichlet"

    def __init__(self, optimal_mass: float = 0.0):
        if not 0.0 <= optimal_mass <= 1.0:
            raise ConfigError(f"optimal_mass must lie in [0, 1], got {optimal_mass}")
        self.optimal_mass = float(optimal_mass)
        self.probs: torch.Tensor | None = None

    def act(self, generator: torch.Generator) -> torch.Tensor:
        if self.probs is None or self.t == 0:
            n, k = self.pulls.shape
            draws = -torch.log(torch.rand(n, k, generator=generator).clamp(min=1e-12))  # Exp(1): Dir(1) once normalised
            probs = draws / draws.sum(-1, keepdim=True)
            best = torch.nn.functional.one_hot(self.env.optimal_action(), k).to(probs.dtype)
            self.probs = (1 - self.optimal_mass) * probs + self.optimal_mass * best
        return torch.multinomial(self.probs, 1, generator=generator)[:, 0]


#: The algorithms by name.
ALGORITHMS: dict[str, type[BanditAlgorithm]] = {c.name: c for c in (Random, Oracle, Greedy, UCB, Thompson, LinUCB, Dirichlet)}


def make_algorithm(name: str, **options) -> BanditAlgorithm:
    """The algorithm registered as ``name`` (see :data:`ALGORITHMS`), built with ``options``."""
    if name not in ALGORITHMS:
        raise ConfigError(f"unknown bandit algorithm {name!r}; known: {sorted(ALGORITHMS)}")
    return ALGORITHMS[name](**options)


def suits(name: str, env: VectorEnv) -> bool:
    """Whether algorithm ``name`` can play ``env`` (LinUCB needs arm features)."""
    return name != "linucb" or isinstance(env, LinearBandit)
