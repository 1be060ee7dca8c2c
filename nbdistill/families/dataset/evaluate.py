"""The evaluation protocol of dataset distillation, with every setting explicit.

A distilled set is judged by training K fresh networks on it and testing them on the real test
split: mean ± std over the K seeds. A number alone says little, so :func:`evaluate_protocol` always
reports it beside a random real subset of the same size and the full training data, trained and
tested the same way. The settings (:class:`EvalSettings`) are printed with the numbers: the anchor
repositories' users were repeatedly misled by hidden ones (DSA at evaluation time, the learned
learning rate, soft labels; mtt-distillation issues #8 and #29, DATM issues #16 and #17).

The recipe is DC/DSA/DM's ``evaluate_synset``: SGD with momentum 0.9, weight decay 5e-4, lr 0.01
divided by 10 after epoch ``epochs // 2``, batches of 256, the same number of epochs for every set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ...core.batches import split_tensors
from ...core.errors import ConfigError
from ...core.evaluation import accuracy
from .augment import DEFAULT_STRATEGY, dsa
from .losses import soft_cross_entropy
from .nets import fresh_copy
from .realdata import RealSet

LABEL_MODES = ("hard", "soft")


def require_positive(what: str, epochs: int, batch_size: int, lr: float) -> None:
    """A :class:`ConfigError` unless a training recipe's epochs, batch size and lr are positive."""
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ConfigError(f"{what} epochs, batch_size and lr must be positive, got {epochs}, {batch_size}, {lr}")


@dataclass(frozen=True)
class EvalSettings:
    """How each fresh network is trained.

    ``augment``: DSA on every training batch (MTT and its successors evaluate with it).
    ``labels``: ``"hard"`` trains on class indices (the argmax of soft labels), ``"soft"`` on the
    distilled set's soft labels as they are (learned or given). Real sets always carry hard labels,
    unless a ``teacher`` is passed to :func:`evaluate_protocol`: then every set, real or distilled,
    is relabelled by it on each augmented batch (SRe²L's relabel), which is again "the same way".
    """

    epochs: int = 300
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    augment: bool = True
    labels: str = "hard"
    strategy: str = DEFAULT_STRATEGY

    def __post_init__(self) -> None:
        if self.labels not in LABEL_MODES:
            raise ConfigError(f"evaluation labels {self.labels!r}: use one of {list(LABEL_MODES)}")
        require_positive("evaluation", self.epochs, self.batch_size, self.lr)

    def describe(self) -> str:
        return (
            f"{self.epochs} epochs, SGD lr {self.lr:g} (÷10 after epoch {self.epochs // 2}), momentum {self.momentum:g}, "
            f"weight decay {self.weight_decay:g}, batch {self.batch_size}, augmentation "
            f"{'DSA ' + self.strategy if self.augment else 'off'}, {self.labels} labels"
        )


def train_on(
    template: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: EvalSettings = EvalSettings(),
    seed: int = 0,
    teacher: nn.Module | None = None,
) -> nn.Module:
    """A fresh copy of ``template`` (initialised from ``seed``) trained on ``(x, y)`` by ``settings``."""
    net = fresh_copy(template, seed).to(x.device)
    opt = torch.optim.SGD(net.parameters(), lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
    run_epochs(net, opt, x, _targets(y, settings.labels), settings, torch.Generator().manual_seed(seed), teacher)
    net.eval()
    return net


def run_epochs(
    net: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    targets: torch.Tensor,
    settings: EvalSettings,
    g: torch.Generator,
    teacher: nn.Module | None = None,
    drop_lr: bool = True,
) -> None:
    """``settings.epochs`` shuffled epochs of ``net`` on ``(x, targets)`` (DSA when ``settings.augment``),
    the lr divided by 10 after epoch ``epochs // 2`` when ``drop_lr``; ``teacher`` relabels each batch."""
    net.train()
    for epoch in range(settings.epochs):
        if drop_lr and epoch == settings.epochs // 2 + 1:
            for group in opt.param_groups:
                group["lr"] *= 0.1
        for idx in torch.randperm(len(x), generator=g).split(settings.batch_size):
            xb = x[idx]
            if settings.augment:
                xb = dsa(xb, int(torch.randint(2**31 - 1, (1,), generator=g)), settings.strategy)
            yb = torch.softmax(teacher(xb), -1).detach() if teacher is not None else targets[idx]
            opt.zero_grad(set_to_none=True)
            soft_cross_entropy(net(xb), yb).backward()
            opt.step()
    opt.zero_grad(set_to_none=True)


def _targets(y: torch.Tensor, mode: str) -> torch.Tensor:
    if y.dtype == torch.long:
        return y
    return y.argmax(-1) if mode == "hard" else y


@dataclass(frozen=True)
class Score:
    """Test accuracies of K fresh networks: ``mean`` ± ``std`` (population std, as MTT reports)."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(torch.tensor(self.values).mean())

    @property
    def std(self) -> float:
        return float(torch.tensor(self.values).std(unbiased=False))

    def __str__(self) -> str:
        return f"{100 * self.mean:.1f} ± {100 * self.std:.1f} %"


def evaluate_set(
    template: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    test: tuple[torch.Tensor, torch.Tensor],
    settings: EvalSettings = EvalSettings(),
    k: int = 5,
    seed: int = 0,
    teacher: nn.Module | None = None,
) -> Score:
    """Train ``k`` fresh networks on ``(x, y)`` (seeds ``seed … seed+k-1``) and test each on ``test``."""
    if k < 1:
        raise ConfigError(f"k (networks per evaluation) must be at least 1, got {k}")
    x, y = x.detach(), y.detach()
    return Score(tuple(accuracy(train_on(template, x, y, settings, seed + i, teacher), *test) for i in range(k)))


def random_subset(real: RealSet, per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` random real images of every class, with their labels (the baseline every distilled set faces)."""
    g = torch.Generator().manual_seed(seed)
    xs = [real.sample(c, per_class, g) for c in range(real.num_classes)]
    ys = [torch.full((len(part),), c, dtype=torch.long) for c, part in enumerate(xs)]
    return torch.cat(xs), torch.cat(ys)


@dataclass
class Report:
    """Rows ``(name, images, Score)`` of one protocol, with the settings they were measured under."""

    settings: EvalSettings
    k: int
    rows: list[tuple[str, int, Score]] = field(default_factory=list)

    def __getitem__(self, name: str) -> Score:
        for row_name, _, score in self.rows:
            if row_name == name:
                return score
        raise KeyError(name)

    def as_dict(self) -> dict:
        return {
            "settings": asdict(self.settings),
            "k": self.k,
            "rows": [{"name": n, "images": m, "mean": s.mean, "std": s.std, "values": list(s.values)} for n, m, s in self.rows],
        }

    def __str__(self) -> str:
        width = max(len(n) for n, _, _ in self.rows)
        lines = [f"{n:<{width}}  {m:>6} images  {s}" for n, m, s in self.rows]
        return "\n".join(lines + [f"({self.k} networks each; {self.settings.describe()})"])


def evaluate_protocol(
    template: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    data,
    settings: EvalSettings = EvalSettings(),
    k: int = 5,
    seed: int = 0,
    full_data: bool = True,
    teacher: nn.Module | None = None,
) -> Report:
    """The distilled set ``(images, labels)``, a random real subset of the same size per class and
    (``full_data``) the whole training split, each by :func:`evaluate_set` with the same settings
    and seeds, tested on ``data``'s test split."""
    real = RealSet.from_data(data)
    test = split_tensors(data, "test")
    per_class = max(1, len(images) // real.num_classes)
    report = Report(settings, k)
    report.rows.append(("distilled", len(images), evaluate_set(template, images, labels, test, settings, k, seed, teacher)))
    rx, ry = random_subset(real, per_class, seed)
    report.rows.append(
        (f"random real ({per_class}/class)", len(rx), evaluate_set(template, rx, ry, test, settings, k, seed, teacher))
    )
    if full_data:
        report.rows.append(("full data", len(real.y), evaluate_set(template, real.x, real.y, test, settings, k, seed, teacher)))
    return report
