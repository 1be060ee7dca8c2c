"""2-D point data sets made locally and seeded, for score / diffusion distillation (score.md §0).

Every set yields batches ``(x, y)``: ``x`` ``[B, 2]`` float32 points, ``y`` an integer label. The score
methods ignore ``y``; it is the component or class where one is meaningful (the mixture's component,
the moon, the circle, the checkerboard square), and zeros where not (swiss roll, S-curve).

- :class:`Mixture2D`: samples of a :class:`~nbdistill.families.score.exact.GaussianMixture` (default: 8
  Gaussians on a ring of radius 2, std 0.2), whose exact density is ``.density`` (exact log-likelihood,
  mode coverage, the exact teacher); with a class-conditional mixture the labels are its classes;
- :class:`TwoMoons` (``make_moons(noise=0.005)``), :class:`SwissRoll` (``make_swiss_roll(noise=0.05)``,
  columns 0 and 2, divided by 10), :class:`Circles` (``make_circles(noise=0.05)``), :class:`SCurve`
  (``make_s_curve(noise=0.05)``, columns 0 and 2): scikit-learn's generators with score.md §0's settings
  (those of revsic/flowmodels' ``toydata/eval2d.py``);
- :class:`Checkerboard`: uniform on the 8 dark squares of a 4 x 4 board of unit squares on ``[-2, 2]^2``.

The points are not standardised (the mixture's density must stay exact). ``n_samples`` points are drawn
once from ``data_seed`` and cut into train / val / test parts (``val_fraction``, ``test_fraction``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.errors import ConfigError
from .base import ArrayDataModule, check_fractions


class Toy2D(ArrayDataModule):
    """The shared machinery: draw ``n_samples`` points from :meth:`generate` with ``data_seed``, then split.

    Args:
        n_samples: points drawn in all (train + val + test).
        data_seed: seed of the generator; the same seed gives the same points.
        val_fraction, test_fraction: shares of the points held out (the first ones go to training).
        batch_size, seed: training batch size; seed of the shuffling order (resumes are exact).
    """

    #: Label classes (1 where the labels are all zeros).
    label_classes: int = 1

    def __init__(
        self,
        n_samples: int = 10_000,
        data_seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int = 256,
        seed: int = 0,
    ):
        super().__init__(batch_size=batch_size, seed=seed)
        check_fractions(val_fraction, test_fraction)
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 10:
            raise ConfigError(f"n_samples must be an integer of at least 10, got {n_samples!r}")
        self.n_samples = n_samples
        self.data_seed = data_seed
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.num_classes = self.label_classes
        self.input_shape = (2,)

    def generate(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` points ``[n, 2]`` and their labels ``[n]``, a function of ``seed`` only."""
        raise NotImplementedError

    def load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        x, y = self.generate(self.n_samples, self.data_seed)
        x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64)
        n_val = max(1, int(round(self.val_fraction * self.n_samples)))
        n_test = max(1, int(round(self.test_fraction * self.n_samples)))
        n_train = self.n_samples - n_val - n_test
        cuts = {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val), "test": slice(n_train + n_val, None)}
        return {name: (x[part], y[part]) for name, part in cuts.items()}

    def points(self, split: str = "train") -> torch.Tensor:
        """The ``[N, 2]`` float32 points of a split (for metrics and scatter plots)."""
        return self.dataset(split).tensors[0]


class Mixture2D(Toy2D):
    """Samples of a 2-D Gaussian mixture with known density ``.density``. Labels: the component index, or
    the component's class for a class-conditional mixture (built with ``classes=``: the condition ``y`` of
    guidance); ``.density.component_of(x)`` gives the component either way.

    Args:
        mixture: a 2-D :class:`~nbdistill.families.score.exact.GaussianMixture`; ``None`` is
            ``GaussianMixture.ring(k=8, radius=2.0, std=0.2)``.
        The rest as :class:`Toy2D`.
    """

    def __init__(self, mixture=None, **kwargs):
        from ..families.score.exact import GaussianMixture

        if mixture is None:
            mixture = GaussianMixture.ring(k=8, radius=2.0, std=0.2)
        if not isinstance(mixture, GaussianMixture) or mixture.dim != 2:
            raise ConfigError(f"Mixture2D needs a 2-D GaussianMixture, got {mixture!r}")
        self.density = mixture
        self.label_classes = mixture.num_classes or mixture.num_components
        super().__init__(**kwargs)

    def generate(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        x, comps = self.density.sample(n, torch.Generator().manual_seed(seed), return_labels=True)
        labels = comps if self.density.classes is None else self.density.classes[comps]
        return x.numpy(), labels.numpy()


class ClassRing(Mixture2D):
    """A class-conditional ring: ``Mixture2D(GaussianMixture.ring(k, radius, std, classes))``, ``k`` Gaussians
    on a circle, component ``i`` of class ``i % classes``, built from numbers alone (so a CLI config or a
    ``class_path`` piece can name it); ``.density`` is the exact class-conditional mixture (the real score of
    guidance, e.g. ``score.decoupled_dmd``). The rest as :class:`Mixture2D`."""

    def __init__(self, k: int = 8, classes: int = 4, radius: float = 2.0, std: float = 0.2, **kwargs):
        from ..families.score.exact import GaussianMixture

        self.k, self.classes, self.radius, self.std = k, classes, radius, std
        super().__init__(GaussianMixture.ring(k=k, radius=radius, std=std, classes=classes), **kwargs)


class TwoMoons(Toy2D):
    """``sklearn.datasets.make_moons(noise=0.005)``; labels: the moon (0 upper, 1 lower)."""

    label_classes = 2

    def __init__(self, noise: float = 0.005, **kwargs):
        self.noise = noise
        super().__init__(**kwargs)

    def generate(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import make_moons

        return make_moons(n, noise=self.noise, random_state=seed)


class Circles(Toy2D):
    """``sklearn.datasets.make_circles(noise=0.05)`` (outer radius 1, inner 0.8); labels: 0 outer, 1 inner."""

    label_classes = 2

    def __init__(self, noise: float = 0.05, factor: float = 0.8, **kwargs):
        self.noise, self.factor = noise, factor
        super().__init__(**kwargs)

    def generate(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import make_circles

        return make_circles(n, noise=self.noise, factor=self.factor, random_state=seed)


class SwissRoll(Toy2D):
    """``sklearn.datasets.make_swiss_roll(noise=0.05)``, columns 0 and 2, divided by 10; labels all 0."""

    def __init__(self, noise: float = 0.05, **kwargs):
        self.noise = noise
        super().__init__(**kwargs)

    def generate(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import make_swiss_roll

        x, _ = make_swiss_roll(n, noise=self.noise, random_state=seed)
        return x[:, [0, 2]] / 10.0, np.zeros(n, dtype=np.int64)


class SCurve(Toy2D):
    """``sklearn.datasets.make_s_curve(noise=0.05)``, columns 0 and 2; labels all 0."""

    def __init__(self, noise: float = 0.05, **kwargs):
        self.noise = noise
        super().__init__(**kwargs)

    def generate(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.datasets import make_s_curve

        x, _ = make_s_curve(n, noise=self.noise, random_state=seed)
        return x[:, [0, 2]], np.zeros(n, dtype=np.int64)


class Checkerboard(Toy2D):
    """Uniform on the dark squares of a ``board x board`` checkerboard of ``square``-wide squares centred at
    the origin (default 4 x 4 unit squares on ``[-2, 2]^2``, 8 dark squares: those whose column + row index
    is even, counted from the bottom left). Labels: the dark square's index, row-major from the bottom left."""

    def __init__(self, board: int = 4, square: float = 1.0, **kwargs):
        if isinstance(board, bool) or not isinstance(board, int) or board < 2 or square <= 0:
            raise ConfigError(
                f"Checkerboard needs board >= 2 squares per side and square > 0, got board={board}, square={square}"
            )
        self.board, self.square = board, float(square)
        self.label_classes = len(self.dark_squares())
        super().__init__(**kwargs)

    def dark_squares(self) -> np.ndarray:
        """``[S, 2]`` (column, row) indices of the dark squares, in label order."""
        rows, cols = np.divmod(np.arange(self.board**2), self.board)
        dark = (rows + cols) % 2 == 0
        return np.stack([cols[dark], rows[dark]], 1)

    def square_of(self, x) -> np.ndarray:
        """``[N, 2]`` (column, row) index of the square each point lies in."""
        corner = -self.board * self.square / 2
        return np.floor((np.asarray(x, dtype=np.float64) - corner) / self.square).astype(np.int64)

    def generate(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        squares = self.dark_squares()
        labels = rng.integers(len(squares), size=n)
        corner = -self.board * self.square / 2
        x = corner + (squares[labels] + rng.random((n, 2))) * self.square
        return x, labels
