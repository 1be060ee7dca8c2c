"""``SineSequences``: 1-D sequences cut into frames, a stationary Gaussian process with a known covariance.

A sequence of ``L = frames · frame_dim`` samples is a sum of sinusoids with random phases and
amplitudes plus white noise,

    x[n] = c · ( Σ_k (a_k cos ω_k n + b_k sin ω_k n) + s_0 e_n ),   a_k, b_k ~ N(0, s_k²), e_n ~ N(0, 1),

(a sinusoid of frequency ``ω_k`` with a uniform random phase and a Rayleigh amplitude), scaled by
``c = (Σ_k s_k² + s_0²)^(-1/2)`` to unit variance. It is a zero-mean stationary Gaussian process
with covariance ``k(n − m) = c² (Σ_k s_k² cos ω_k (n − m) + s_0² δ_nm)``, so the density of any stretch
of it is exact (``.density``, a one-component :class:`~nbdistill.families.score.exact.GaussianMixture`
over the flattened ``[frames · frame_dim]`` sequence), and so is the optimal denoiser of any window of
frames at any per-frame noise levels (:class:`~nbdistill.families.score.rolling_exact.ExactWindowDenoiser`).
Every frame has the same marginal, so a generator rolled out far beyond the data's length can be
checked frame by frame against the same statistics (the error accumulation of autoregressive video models).

Batches are ``(x, y)`` with ``x`` ``[B, frames, frame_dim]`` and ``y`` zeros.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..core.errors import ConfigError
from .base import ArrayDataModule, check_fractions


class SineSequences(ArrayDataModule):
    """Sums of sinusoids with random phases and amplitudes plus white noise, cut into frames (a Gaussian process).

    Args:
        frames, frame_dim: frames per sequence and samples per frame (the sequence has ``frames · frame_dim`` samples).
        frequencies: the angular frequencies ``ω_k`` (radians per sample).
        amplitudes: the standard deviations ``s_k`` of each sinusoid's cosine and sine coefficients.
        noise: the white noise's standard deviation ``s_0`` (> 0 keeps the covariance full rank).
        n_samples: sequences drawn in all (train + val + test), from ``data_seed``.
        val_fraction, test_fraction, batch_size, seed: as for every embedded data set.
    """

    def __init__(
        self,
        frames: int = 8,
        frame_dim: int = 4,
        frequencies: tuple[float, ...] = (0.3, 0.8),
        amplitudes: tuple[float, ...] = (1.0, 0.6),
        noise: float = 0.1,
        n_samples: int = 2000,
        data_seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int = 128,
        seed: int = 0,
    ):
        super().__init__(batch_size=batch_size, seed=seed)
        check_fractions(val_fraction, test_fraction)
        if frames < 1 or frame_dim < 1:
            raise ConfigError(f"SineSequences needs frames >= 1 and frame_dim >= 1, got frames={frames}, frame_dim={frame_dim}")
        if len(frequencies) != len(amplitudes) or not len(frequencies):
            raise ConfigError(
                f"SineSequences needs one amplitude per frequency, got {len(frequencies)} frequencies and {len(amplitudes)} amplitudes"
            )
        if noise <= 0 or min(amplitudes) < 0:
            raise ConfigError(f"SineSequences needs noise > 0 and amplitudes >= 0, got noise={noise}, amplitudes={amplitudes}")
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 10:
            raise ConfigError(f"n_samples must be an integer of at least 10, got {n_samples!r}")
        self.frames, self.frame_dim = int(frames), int(frame_dim)
        self.frequencies = tuple(float(w) for w in frequencies)
        self.amplitudes = tuple(float(s) for s in amplitudes)
        self.noise = float(noise)
        self.n_samples, self.data_seed = n_samples, data_seed
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.num_classes = 1
        self.input_shape = (self.frames, self.frame_dim)
        #: the exact density of a flattened sequence (the evaluation's log-likelihood)
        self.density = SequenceDensity(self.covariance(self.frames * self.frame_dim))

    @property
    def scale(self) -> float:
        """``c = (Σ_k s_k² + s_0²)^(-1/2)``: the factor that gives the process unit variance."""
        return 1.0 / math.sqrt(sum(s * s for s in self.amplitudes) + self.noise**2)

    def covariance(self, length: int) -> torch.Tensor:
        """The ``[length, length]`` float64 covariance of ``length`` consecutive samples: ``k(n − m)`` above."""
        lag = torch.arange(length, dtype=torch.float64)
        lag = lag[:, None] - lag[None, :]
        cov = sum(s * s * torch.cos(w * lag) for w, s in zip(self.frequencies, self.amplitudes))
        return self.scale**2 * (cov + self.noise**2 * torch.eye(length, dtype=torch.float64))

    def sequences(self, n: int, frames: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` float32 sequences of ``frames`` frames ``[n, frames, frame_dim]`` (any length: the process is stationary)."""
        length = frames * self.frame_dim
        t = torch.arange(length, dtype=torch.float64)
        x = self.noise * torch.randn(n, length, generator=generator, dtype=torch.float64)
        for w, s in zip(self.frequencies, self.amplitudes):
            a, b = s * torch.randn(2, n, 1, generator=generator, dtype=torch.float64)
            x = x + a * torch.cos(w * t) + b * torch.sin(w * t)
        return (self.scale * x).float().reshape(n, frames, self.frame_dim)

    def load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        x = self.sequences(self.n_samples, self.frames, torch.Generator().manual_seed(self.data_seed)).numpy()
        n_val = max(1, int(round(self.val_fraction * self.n_samples)))
        n_test = max(1, int(round(self.test_fraction * self.n_samples)))
        n_train = self.n_samples - n_val - n_test
        cuts = {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val), "test": slice(n_train + n_val, None)}
        zeros = np.zeros(self.n_samples, dtype=np.int64)
        return {name: (x[part], zeros[part]) for name, part in cuts.items()}

    def points(self, split: str = "train") -> torch.Tensor:
        """The ``[N, frames, frame_dim]`` float32 sequences of a split."""
        return self.dataset(split).tensors[0]


class SequenceDensity:
    """The exact density ``N(0, Σ)`` of flattened sequences: ``log_prob(x [N, L])`` only (one Gaussian has no
    modes to cover, so the evaluation reports its log-likelihood and no mode coverage)."""

    def __init__(self, covariance: torch.Tensor):
        from ..families.score.exact import GaussianMixture

        self.gaussian = GaussianMixture(torch.zeros(1, len(covariance), dtype=torch.float64), covariance)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.gaussian.log_prob(x.reshape(len(x), -1))
