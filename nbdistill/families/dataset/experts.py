"""Expert trajectories: networks trained on the real data, their parameters saved every epoch.

Trajectory matching (MTT, TESLA, FTD, DATM, SET) learns a synthetic set whose training steps
reproduce segments of these trajectories. Experts are trained once and reused by every
distillation of the same network, data and recipe: :func:`train_experts` finds a buffer with the
same key and trains only the experts it lacks.

Buffer format (``<runs root>/experts/<key>/``, ``FORMAT = "nbdistill-experts/1"``):

- ``meta.json``: ``format``, ``key``, ``architecture`` (the template's ``repr``), ``num_params`` P,
  ``param_names`` and ``param_shapes`` (the order of the flat vector, ``named_parameters()``),
  ``epochs`` E, ``recipe`` (:class:`ExpertRecipe` as a dict), ``data`` (class, fingerprint of the
  training tensors, size, input shape, classes) and ``experts``: one entry per finished expert,
  ``{"file", "seed", "val_acc" (after each epoch), "seconds"}``.
- ``expert_NNN.pt``: a float32 tensor ``[E + 1, P]`` (``torch.save``); row e holds the parameters
  after e epochs, row 0 the initialisation.

The key is a hash of the architecture, the data fingerprint and the recipe, so a buffer never
serves a different network, data set or recipe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...core.batches import split_tensors
from ...core.errors import ConfigError
from ...core.evaluation import accuracy
from ...core.runfolder import runs_root, write_json_atomic
from .augment import DEFAULT_STRATEGY, dsa
from .evaluate import require_positive
from .losses import gradient_penalty
from .nets import FlatModel, fresh_copy
from .realdata import RealSet
from .schedules import ast_clip_factor

FORMAT = "nbdistill-experts/1"
OPTIMIZERS = ("sgd", "gsam")


@dataclass(frozen=True)
class ExpertRecipe:
    """How experts are trained.

    The defaults are MTT's (``buffer.py``: plain SGD, constant lr, no momentum, no weight decay,
    DSA augmentation — easy for a synthetic set to imitate) scaled to the kit's small data:
    20 epochs of batches of 64 at lr 0.03 instead of 50 epochs of 256 at 0.01 (on digits a
    ConvNet expert then reaches about 93 % validation accuracy; at 0.01, about 83 %). ``optimizer="gsam"`` trains FTD's flat
    experts (GSAM with radius ``rho`` and surrogate-gap weight ``gsam_alpha``); ``clip_loss`` and
    ``gradient_penalty`` are AST's smoothing terms (SET).
    """

    epochs: int = 20
    lr: float = 0.03
    batch_size: int = 64
    momentum: float = 0.0
    weight_decay: float = 0.0
    augment: bool = True
    optimizer: str = "sgd"
    rho: float = 0.01
    gsam_alpha: float = 0.3
    clip_loss: bool = False
    gradient_penalty: float = 0.0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"expert optimizer {self.optimizer!r} is not one of {list(OPTIMIZERS)}")
        require_positive("expert", self.epochs, self.batch_size, self.lr)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def gsam_direction(grad: list[torch.Tensor], grad_perturbed: list[torch.Tensor], alpha: float) -> list[torch.Tensor]:
    r"""GSAM's update direction (Zhuang et al., "Surrogate Gap Guided Sharpness-Aware Minimization",
    ICLR 2022, Algorithm 1): :math:`\nabla f_p - \alpha\,\nabla f_\perp`, where :math:`\nabla f_p` is the
    gradient at the perturbed point :math:`w + \rho\,\nabla f/\|\nabla f\|` and :math:`\nabla f_\perp` the
    component of the plain gradient :math:`\nabla f` orthogonal to :math:`\nabla f_p`. α = 0 is SAM."""
    inner = sum((g * gp).sum() for g, gp in zip(grad, grad_perturbed))
    norm2 = sum((gp * gp).sum() for gp in grad_perturbed)
    scale = inner / norm2.clamp_min(1e-24)
    return [gp - alpha * (g - scale * gp) for g, gp in zip(grad, grad_perturbed)]


def _expert_loss(net: nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: ExpertRecipe, epoch: int) -> torch.Tensor:
    if recipe.gradient_penalty:
        x = x.detach().requires_grad_(True)
    per_sample = F.cross_entropy(net(x), y, reduction="none")
    loss = per_sample.mean() * (ast_clip_factor(epoch) if recipe.clip_loss else 1.0)
    if recipe.gradient_penalty:
        (input_grads,) = torch.autograd.grad(per_sample.sum(), x, create_graph=True)
        loss = loss + recipe.gradient_penalty * gradient_penalty(input_grads)
    return loss


def train_expert(
    template: nn.Module,
    real: RealSet,
    recipe: ExpertRecipe,
    seed: int,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    on_epoch: Callable[[int, float | None], None] | None = None,
) -> tuple[torch.Tensor, list[float]]:
    """Train one expert from a fresh initialisation; return its trajectory ``[E + 1, P]`` and val accuracies."""
    net = fresh_copy(template, seed)
    flat = FlatModel(net)
    params = list(net.parameters())
    opt = torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    g = torch.Generator().manual_seed(seed)
    trajectory = [flat.flatten(net).float().cpu()]
    accs: list[float] = []
    for epoch in range(recipe.epochs):
        net.train()
        for idx in torch.randperm(len(real.y), generator=g).split(recipe.batch_size):
            x, y = real.x[idx], real.y[idx]
            if recipe.augment:
                x = dsa(x, int(torch.randint(2**31 - 1, (1,), generator=g)), DEFAULT_STRATEGY)
            loss = _expert_loss(net, x, y, recipe, epoch)
            grads = torch.autograd.grad(loss, params)
            if recipe.optimizer == "gsam":
                grads = _gsam_grads(params, grads, partial(_expert_loss, net, x, y, recipe, epoch), recipe)
            for p, gr in zip(params, grads):
                p.grad = gr
            opt.step()
        trajectory.append(flat.flatten(net).float().cpu())
        acc = accuracy(net, *val) if val is not None else None
        if acc is not None:
            accs.append(acc)
        if on_epoch is not None:
            on_epoch(epoch, acc)
    return torch.stack(trajectory), accs


def _gsam_grads(params, grads, loss_fn, recipe: ExpertRecipe) -> list[torch.Tensor]:
    norm = torch.sqrt(sum((gr * gr).sum() for gr in grads)).clamp_min(1e-12)
    shifts = [recipe.rho * gr / norm for gr in grads]
    with torch.no_grad():
        for p, e in zip(params, shifts):
            p.add_(e)
    perturbed = torch.autograd.grad(loss_fn(), params)
    with torch.no_grad():
        for p, e in zip(params, shifts):
            p.sub_(e)
    return gsam_direction(list(grads), list(perturbed), recipe.gsam_alpha)


class ExpertBuffer:
    """A buffer folder (see the module docstring): its ``meta`` and trajectories ``[E + 1, P]``."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        meta_path = self.folder / "meta.json"
        if not meta_path.exists():
            raise ConfigError(f"no expert buffer at {self.folder} (meta.json is missing)")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        if self.meta.get("format") != FORMAT:
            raise ConfigError(f"{self.folder} is not a {FORMAT} buffer (format {self.meta.get('format')!r})")
        self._cache: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.meta["experts"])

    @property
    def epochs(self) -> int:
        return int(self.meta["epochs"])

    @property
    def num_params(self) -> int:
        return int(self.meta["num_params"])

    def trajectory(self, i: int) -> torch.Tensor:
        if i not in self._cache:
            self._cache[i] = torch.load(self.folder / self.meta["experts"][i]["file"], map_location="cpu", weights_only=True)
        return self._cache[i]

    def final_val_accuracy(self) -> list[float]:
        return [e["val_acc"][-1] for e in self.meta["experts"] if e.get("val_acc")]

    def check(self, template: nn.Module, epochs_needed: int, experts_needed: int = 1) -> ExpertBuffer:
        """Raise :class:`ConfigError` unless the buffer fits ``template`` and has enough epochs and experts."""
        size = FlatModel(template).size
        if self.num_params != size:
            raise ConfigError(
                f"the expert buffer at {self.folder} holds networks of {self.num_params} parameters, the student has {size}"
            )
        if self.epochs < epochs_needed:
            raise ConfigError(
                f"the experts at {self.folder} have {self.epochs} epochs but max_start_epoch + expert_epochs = {epochs_needed}"
            )
        if len(self) < experts_needed:
            raise ConfigError(f"the buffer at {self.folder} has {len(self)} experts, {experts_needed} needed")
        return self


def buffer_key(template: nn.Module, real: RealSet, recipe: ExpertRecipe) -> str:
    text = json.dumps([repr(template), real.fingerprint(), recipe.as_dict()], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def experts_folder(root: str | os.PathLike | None = None) -> Path:
    """Where buffers live: ``<runs root>/experts``."""
    return runs_root(root) / "experts"


def train_experts(
    template: nn.Module,
    data,
    recipe: ExpertRecipe = ExpertRecipe(),
    num_experts: int = 5,
    root: str | os.PathLike | None = None,
    seed: int = 0,
    progress: bool = True,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> ExpertBuffer:
    """The buffer of ``num_experts`` experts of ``template`` on ``data`` (a data module or a
    :class:`RealSet`), training only those not already saved under ``<runs root>/experts/<key>``.

    Each expert is written as soon as it is trained, so an interrupted call loses at most one.
    ``progress`` shows a bar (``tqdm.auto``: a widget in a notebook) with each expert's accuracy on
    ``val`` (default: the data module's validation split), recorded in ``meta.json`` per epoch.
    """
    if num_experts < 1:
        raise ConfigError(f"num_experts must be at least 1, got {num_experts}")
    real = data if isinstance(data, RealSet) else RealSet.from_data(data)
    if val is None and not isinstance(data, RealSet):
        val = _validation_split(data)
    key = buffer_key(template, real, recipe)
    folder = experts_folder(root) / key
    folder.mkdir(parents=True, exist_ok=True)
    flat = FlatModel(template)
    meta_path = folder / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
    else:
        meta = {
            "format": FORMAT,
            "key": key,
            "architecture": repr(template),
            "num_params": flat.size,
            "param_names": flat.names,
            "param_shapes": [list(s) for s in flat.shapes],
            "epochs": recipe.epochs,
            "recipe": recipe.as_dict(),
            "data": {
                "class": type(data).__name__,
                "fingerprint": real.fingerprint(),
                "num_train": len(real.y),
                "input_shape": list(real.x.shape[1:]),
                "num_classes": real.num_classes,
            },
            "experts": [],
        }
    missing = num_experts - len(meta["experts"])
    bar = _progress_bar(missing * recipe.epochs, f"experts ({key})") if progress and missing > 0 else None
    for i in range(len(meta["experts"]), num_experts):
        started = time.time()
        expert_seed = seed * 10_000 + i

        def tick(epoch: int, acc: float | None, i: int = i) -> None:
            if bar is not None:
                bar.update(1)
                bar.set_postfix(expert=i, val_acc=f"{acc:.3f}" if acc is not None else "-")

        trajectory, accs = train_expert(template, real, recipe, expert_seed, val, tick)
        name = f"expert_{i:03d}.pt"
        torch.save(trajectory, folder / (name + ".tmp"))
        os.replace(folder / (name + ".tmp"), folder / name)
        meta["experts"].append({"file": name, "seed": expert_seed, "val_acc": accs, "seconds": round(time.time() - started, 2)})
        write_json_atomic(meta_path, meta)
    if bar is not None:
        bar.close()
    return ExpertBuffer(folder)


def _validation_split(data) -> tuple[torch.Tensor, torch.Tensor] | None:
    try:
        return split_tensors(data, "val")
    except (ConfigError, AttributeError, NotImplementedError, TypeError):
        return None


def _progress_bar(total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)
