r"""MAP-Elites (Mouret & Clune, "Illuminating search spaces by mapping elites", 2015) for ``policy.archive``.

- :class:`GridArchive`: a ``g × g`` grid over the descriptor space ``[low, high]^2``; cell
  ``c(d) = ⌊(d_y - low) / w⌋ · g + ⌊(d_x - low) / w⌋`` (``w = (high - low) / g``, clamped to the grid).
  Insertion keeps, per cell, the better of the elite and the best candidate landing there
  (``f_new > f_elite``, strictly), so a filled cell is never emptied and its fitness never falls;
  the QD-score is ``Σ_{filled c} f_c`` (fitnesses here are in ``[0, 1]``, so no offset is needed).
- :func:`isoline_variation`: the Iso+LineDD operator (Vassiliades & Mouret, GECCO 2018) used by
  DCG-MAP-Elites' GA half, ``x = x_1 + σ_iso ε + σ_line ξ (x_2 - x_1)``, ``ε ~ N(0, I)``, ``ξ ~ N(0, 1)``
  one scalar per pair (QDax's ``isoline_variation``, the authors' ``iso_sigma=0.005, line_sigma=0.05``).
- :class:`BatchedPolicy`: the genotypes, ``B`` small tanh-MLP policies stored as rows of a flat
  parameter matrix ``θ [B, P]`` and run together with batched matrix products; the layer widths are
  the student's (the descriptor-conditioned actor's), as in the authors' code where the policies and
  the actor share ``policy_hidden_layer_sizes``, so that the actor can be folded into a genotype.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...core.errors import ConfigError


class GridArchive:
    """A ``grid × grid`` MAP-Elites archive of genotypes ``[P]`` over ``[low, high]^2`` (see the module docstring).

    ``fitness`` is ``-inf`` in empty cells; ``descriptors`` holds each elite's own descriptor (not the
    cell's centre), as QDax's repertoire does.
    """

    def __init__(self, grid: int, num_params: int, low: float = -1.0, high: float = 1.0, dtype: torch.dtype = torch.float32):
        if grid < 1:
            raise ConfigError(f"a grid archive needs at least one cell per side, got grid={grid}")
        if not high > low:
            raise ConfigError(f"a grid archive needs high > low, got low={low}, high={high}")
        self.grid, self.low, self.high = int(grid), float(low), float(high)
        cells = self.grid**2
        self.genotypes = torch.zeros(cells, num_params, dtype=dtype)
        self.fitness = torch.full((cells,), -math.inf, dtype=dtype)
        self.descriptors = torch.zeros(cells, 2, dtype=dtype)

    @property
    def num_cells(self) -> int:
        return self.grid**2

    def cell_index(self, descriptors: torch.Tensor) -> torch.Tensor:
        """``[N]`` cell of each descriptor ``[N, 2]`` (row-major: ``y`` rows, ``x`` columns)."""
        width = (self.high - self.low) / self.grid
        ij = ((descriptors - self.low) / width).floor().long().clamp(0, self.grid - 1)
        return ij[:, 1] * self.grid + ij[:, 0]

    def centres(self) -> torch.Tensor:
        """``[g², 2]`` the cells' centres, in cell order."""
        width = (self.high - self.low) / self.grid
        axis = self.low + width * (torch.arange(self.grid, dtype=self.fitness.dtype) + 0.5)
        y, x = torch.meshgrid(axis, axis, indexing="ij")
        return torch.stack([x.reshape(-1), y.reshape(-1)], dim=1)

    @property
    def filled(self) -> torch.Tensor:
        return torch.isfinite(self.fitness)

    def coverage(self) -> float:
        """Share of the cells that hold an elite."""
        return float(self.filled.double().mean())

    def qd_score(self) -> float:
        """``Σ_{filled c} f_c``."""
        return float(self.fitness[self.filled].double().sum())

    def insert(self, genotypes: torch.Tensor, descriptors: torch.Tensor, fitness: torch.Tensor) -> torch.Tensor:
        """Add the candidates that beat their cell's elite (the best candidate of a cell, the first on
        ties); returns the ``[N]`` mask of those added."""
        cells = self.cell_index(descriptors)
        fitness = fitness.to(self.fitness.dtype)
        best = torch.full_like(self.fitness, -math.inf).scatter_reduce(0, cells, fitness, reduce="amax")
        is_best = fitness == best[cells]
        order = torch.arange(len(cells))
        first = torch.full((self.num_cells,), len(cells), dtype=torch.long).scatter_reduce(
            0, cells[is_best], order[is_best], reduce="amin"
        )
        winner = is_best & (first[cells] == order)
        added = winner & (fitness > self.fitness[cells])
        where = cells[added]
        self.genotypes[where] = genotypes[added].to(self.genotypes.dtype)
        self.descriptors[where] = descriptors[added].to(self.descriptors.dtype)
        self.fitness[where] = fitness[added]
        return added

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` elites drawn uniformly, with replacement, from the filled cells: ``(genotypes, descriptors)``."""
        filled = self.filled.nonzero().squeeze(1)
        if not len(filled):
            raise RuntimeError("the archive is empty: insert an initial population first")
        pick = filled[torch.randint(len(filled), (n,), generator=generator)]
        return self.genotypes[pick], self.descriptors[pick]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"genotypes": self.genotypes, "fitness": self.fitness, "descriptors": self.descriptors}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.genotypes, self.fitness, self.descriptors = (state[k].clone() for k in ("genotypes", "fitness", "descriptors"))


def isoline_variation(
    x1: torch.Tensor, x2: torch.Tensor, iso_sigma: float, line_sigma: float, generator: torch.Generator
) -> torch.Tensor:
    """Iso+LineDD: ``x_1 + σ_iso ε + σ_line ξ (x_2 - x_1)`` row by row (``x1``, ``x2``: ``[B, P]``)."""
    iso = torch.randn(x1.shape, generator=generator, dtype=x1.dtype) * iso_sigma
    line = torch.randn(x1.shape[0], 1, generator=generator, dtype=x1.dtype) * line_sigma
    return x1 + iso + line * (x2 - x1)


def mlp_widths(student: nn.Module) -> list[int]:
    """The widths ``[in, hidden..., out]`` of an ``nd.models.MLP``-like student (Linear and ReLU layers
    only), or a :class:`ConfigError` saying what is needed."""
    layers = list(getattr(student, "net", nn.Sequential()))
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    if (
        not linears
        or any(not isinstance(m, (nn.Linear, nn.ReLU)) for m in layers)
        or not all(m.bias is not None for m in linears)
    ):
        raise ConfigError(
            f"policy.archive's student (the descriptor-conditioned actor) must be an nd.models.MLP without dropout, "
            f"e.g. nd.models.MLP(in_features=5, hidden=[32, 32], out_features=2); got {type(student).__name__}"
        )
    return [linears[0].in_features] + [m.out_features for m in linears]


class BatchedPolicy:
    """Deterministic policies ``a = tanh(MLP_θ(obs))`` with ReLU hidden layers, ``B`` of them at once.

    ``widths`` is ``[obs_dim, hidden..., action_dim]``; ``θ`` packs each layer's ``W [in, out]`` then
    ``b [out]``.
    """

    def __init__(self, widths: list[int]):
        self.widths = list(widths)
        self.shapes = list(zip(self.widths[:-1], self.widths[1:]))
        self.num_params = sum(i * o + o for i, o in self.shapes)

    def init(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``[n, P]`` fresh genotypes: LeCun-uniform weights (the authors' ``lecun_uniform``), zero biases."""
        parts = []
        for i, o in self.shapes:
            bound = math.sqrt(3.0 / i)
            parts += [(torch.rand(n, i * o, generator=generator) * 2 - 1) * bound, torch.zeros(n, o)]
        return torch.cat(parts, dim=1)

    def __call__(self, theta: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Actions ``[B, M, action_dim]`` of the ``B`` policies ``θ [B, P]`` on ``obs [B, M, obs_dim]``
        (``obs [B, obs_dim]`` gives ``[B, action_dim]``)."""
        single = obs.dim() == 2
        h = obs.unsqueeze(1) if single else obs
        start = 0
        for k, (i, o) in enumerate(self.shapes):
            w = theta[:, start : start + i * o].reshape(-1, i, o)
            b = theta[:, start + i * o : start + i * o + o].unsqueeze(1)
            start += i * o + o
            h = torch.baddbmm(b, h, w)
            h = torch.relu(h) if k < len(self.shapes) - 1 else torch.tanh(h)
        return h.squeeze(1) if single else h

    def from_actor(self, actor: nn.Module, descriptors: torch.Tensor) -> torch.Tensor:
        """DCRL-MAP-Elites' actor injection: the genotypes ``[B, P]`` equal to ``π(· | d_b)``, the
        descriptor folded into the first layer's bias, ``b'_0 = b_0 + W_0^{(d)} d`` (``W_0 = [W_0^{(s)}, W_0^{(d)}]``)."""
        linears = [m for m in actor.net if isinstance(m, nn.Linear)]
        obs_dim = self.widths[0]
        n = descriptors.shape[0]
        parts = []
        for k, layer in enumerate(linears):
            weight, bias = layer.weight.detach(), layer.bias.detach()
            if k == 0:
                w = weight[:, :obs_dim].t().reshape(1, -1).expand(n, -1)
                b = bias + descriptors.to(weight.dtype) @ weight[:, obs_dim:].t()
            else:
                w, b = weight.t().reshape(1, -1).expand(n, -1), bias.expand(n, -1)
            parts += [w, b]
        return torch.cat(parts, dim=1)
