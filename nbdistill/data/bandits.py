"""Bandit tasks drawn from seeds, for policy distillation (DPT, AD): a task a row, its best arm the label.

Each data module draws ``n_tasks`` tasks once from ``data_seed`` and cuts them into train / val / test
(the held-out tasks are unseen at training: the students are evaluated online on them). A batch is
``(x, y)``: ``x`` the tasks' parameters (one row a task), ``y`` the optimal arm. :meth:`BanditTasks.make_env`
turns rows back into a vectorised Gymnasium-style environment (:mod:`nbdistill.families.policy.envs`).

- :class:`BernoulliBandits`: arm means ``~ U(0, 1)`` (DPT's ``Beta(1, 1)``), or EVOLvE's presets with
  ``gap``: one best arm at ``0.5 + gap / 2``, the others at ``0.5 - gap / 2`` (gap 0.2 is the "small
  gap" suite, 0.5 the "large"), the best arm's place drawn per task;
- :class:`GaussianBandits`: means ``~ N(0, mean_std^2)``, rewards of std ``sigma`` (EVOLvE's presets draw
  the means and the rewards with the same spread: ``sigma = mean_std = 1`` low variance, ``3`` high);
- :class:`LinearBandits`: ``theta ~ N(0, I / d)``, arm features ``~ N(0, I / d)`` (DPT's linear bandit),
  rewards ``phi . theta + N(0, noise^2)``; a row is ``[features (K * d), theta (d)]``.
"""

from __future__ import annotations

import torch

from ..core.errors import ConfigError
from .base import ArrayDataModule, check_fractions


class BanditTasks(ArrayDataModule):
    """The shared machinery: draw ``n_tasks`` tasks with :meth:`draw_tasks`, split them, make environments.

    Args:
        arms: K, the actions of every task.
        horizon: the steps a task is played for (the in-context dataset's size).
        n_tasks: tasks in all (train + val + test).
        data_seed: seed of the tasks; the same seed gives the same tasks.
        val_fraction, test_fraction: shares of the tasks held out.
        batch_size, seed: tasks a training batch; seed of the shuffling order.
    """

    obs_dim = 0

    def __init__(
        self,
        arms: int = 5,
        horizon: int = 50,
        n_tasks: int = 2000,
        data_seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int = 64,
        seed: int = 0,
    ):
        super().__init__(batch_size=batch_size, seed=seed)
        check_fractions(val_fraction, test_fraction)
        for name, value, low in (("arms", arms, 2), ("horizon", horizon, 1), ("n_tasks", n_tasks, 10)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be an integer of at least {low}, got {value!r}")
        self.arms, self.horizon, self.n_tasks, self.data_seed = arms, horizon, n_tasks, data_seed
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.num_classes = arms

    @property
    def num_actions(self) -> int:
        return self.arms

    def draw_tasks(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``[n, P]`` task parameters, a function of ``generator`` only."""
        raise NotImplementedError

    def make_env(self, x: torch.Tensor):
        """The environment whose tasks are the rows ``x`` (from this module's batches)."""
        raise NotImplementedError

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        x = self.draw_tasks(self.n_tasks, torch.Generator().manual_seed(self.data_seed)).float()
        y = self.make_env(x).optimal_action()
        n_val = max(1, round(self.val_fraction * self.n_tasks))
        n_test = max(1, round(self.test_fraction * self.n_tasks))
        n_train = self.n_tasks - n_val - n_test
        cuts = {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val), "test": slice(n_train + n_val, None)}
        return {name: (x[part], y[part]) for name, part in cuts.items()}

    def tasks(self, split: str = "val") -> torch.Tensor:
        """The ``[n, P]`` task rows of a split."""
        self.setup()
        return self.dataset(split).tensors[0]


class BernoulliBandits(BanditTasks):
    """K-armed Bernoulli bandits: means ``~ U(0, 1)``, or EVOLvE's two-level preset with ``gap``.

    Args:
        gap: ``None`` for uniform means; else the best arm's lead, in ``(0, 1)``.
        The rest as :class:`BanditTasks`.
    """

    def __init__(self, arms: int = 5, horizon: int = 50, gap: float | None = None, **kwargs):
        if gap is not None and not 0 < gap < 1:
            raise ConfigError(f"gap must lie in (0, 1) (EVOLvE uses 0.2 and 0.5), got {gap}")
        self.gap = gap
        super().__init__(arms=arms, horizon=horizon, **kwargs)
        self.input_shape = (arms,)

    def draw_tasks(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if self.gap is None:
            return torch.rand(n, self.arms, generator=generator)
        means = torch.full((n, self.arms), 0.5 - self.gap / 2)
        best = torch.randint(self.arms, (n,), generator=generator)
        means[torch.arange(n), best] = 0.5 + self.gap / 2
        return means

    def make_env(self, x: torch.Tensor):
        from ..families.policy.envs import BernoulliBandit

        return BernoulliBandit(x, self.horizon)


class GaussianBandits(BanditTasks):
    """K-armed Gaussian bandits: means ``~ N(0, mean_std^2)``, rewards ``N(mean, sigma^2)``.

    Args:
        sigma: the reward noise of every arm.
        mean_std: the spread of the arms' means across tasks.
        The rest as :class:`BanditTasks`.
    """

    def __init__(self, arms: int = 5, horizon: int = 50, sigma: float = 1.0, mean_std: float = 1.0, **kwargs):
        if not sigma > 0 or not mean_std > 0:
            raise ConfigError(f"sigma and mean_std must be positive, got {sigma}, {mean_std}")
        self.sigma, self.mean_std = sigma, mean_std
        super().__init__(arms=arms, horizon=horizon, **kwargs)
        self.input_shape = (arms,)

    def draw_tasks(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.mean_std * torch.randn(n, self.arms, generator=generator)

    def make_env(self, x: torch.Tensor):
        from ..families.policy.envs import GaussianBandit

        return GaussianBandit(x, self.sigma, self.horizon)


class LinearBandits(BanditTasks):
    """Stochastic linear bandits: ``theta ~ N(0, I/d)``, features ``~ N(0, I/d)``, noise ``N(0, noise^2)``.

    Args:
        dim: d, the features' size.
        noise: the reward noise's standard deviation.
        The rest as :class:`BanditTasks`.
    """

    def __init__(self, arms: int = 10, horizon: int = 50, dim: int = 2, noise: float = 0.3, **kwargs):
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1 or noise < 0:
            raise ConfigError(f"dim must be a positive integer and noise at least 0, got {dim}, {noise}")
        self.dim, self.noise = dim, noise
        super().__init__(arms=arms, horizon=horizon, **kwargs)
        self.input_shape = (arms * dim + dim,)
        self.obs_dim = arms * dim

    def draw_tasks(self, n: int, generator: torch.Generator) -> torch.Tensor:
        scale = self.dim**-0.5
        features = scale * torch.randn(n, self.arms * self.dim, generator=generator)
        theta = scale * torch.randn(n, self.dim, generator=generator)
        return torch.cat([features, theta], 1)

    def make_env(self, x: torch.Tensor):
        from ..families.policy.envs import LinearBandit

        k, d = self.arms, self.dim
        return LinearBandit(x[:, : k * d].reshape(-1, k, d), x[:, k * d :], self.noise, self.horizon)
