"""``kd.knfu``: federated knowledge distillation with Effective Knowledge Fusion (Seyedmohammadi,
Atapour, Abouei & Mohammadi, "KnFu: Effective Knowledge Fusion", 2024), beside plain federated KD
(FedMD, Li & Wang, 2019) and local training only, on the same simulated clients."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from ....core.batches import split_tensors
from ....core.errors import ConfigError
from ....core.registry import HParam, register
from ..base import KDModule, temperature_hparam
from . import knfu_views  # noqa: F401 (registers the views)
from .knfu_clients import check_client_count, dirichlet_split, label_histograms, own_distribution_accuracy, transfer_split
from .knfu_fusion import FUSIONS, distillation_loss, fused_targets, fusion_weights

KNFU_VIEWS = ("losses", "knfu_clients", "knfu_weights", "knfu_histograms")


@register("kd.knfu", views=KNFU_VIEWS, needs_teacher=False)
class KnFu(KDModule):
    r"""KnFu: simulated clients distil, each round, only their semantic neighbours' knowledge.

    The training split is cut, with the run's seed, into a public unlabelled *transfer set*
    (``transfer`` of it) and ``clients`` private shards with Dirichlet(``alpha``) label skew
    (:mod:`.knfu_clients`). Every client holds its own copy of ``student`` (same initial weights).
    Each training step is one communication round (the data module's batch is not used, as in the
    dataset family; the run stops after ``rounds`` rounds and refuses to start if the trainer has
    fewer steps than that):

    1. *local training*: every client, ``local_epochs`` epochs of cross-entropy on its own shard;
    2. *knowledge extraction*: every client's logits on the transfer set;
    3. *fusion* (:mod:`.knfu_fusion`): client k's target is a mixture of the clients' soft
       predictions weighted by ``fusion``: ``"knfu"`` :math:`w_{kj}\propto\exp(-\beta\,\mathrm{KL}(e_k\|e_j))`
       between the clients' estimated label distributions, ``"fedkd"`` the uniform average
       (FedMD's consensus), ``"local"`` none (local training only: step 4 is skipped);
    4. *local distillation*: ``distill_epochs`` epochs of :math:`T^2\,\mathrm{KL}(\bar p_k\|p_k^T)` on
       the transfer set.

    All clients step together through one Adam over their parameters: their losses are summed and
    Adam's update is per parameter, so each client's update is the one it would take alone. The
    last step of a round is the training step's own (what ``loss`` logs). After every round each
    client's accuracy on the test split *weighted by its own label distribution* (the paper's
    average local model accuracy, ALMA, is their mean) is written as ``knfu/client_acc/<k>`` and
    ``knfu/mean_acc``, the fusion weights as the table ``knfu/weights``.

    ``self.student`` is the client with the median validation accuracy on its own label
    distribution after the last round (the lower median for an even count; ``knfu/student_client``
    names it): a typical client, not the best. Its ``test/student_acc`` at the end is measured on
    the whole, class-balanced test split, which a client trained on skewed labels is not made for;
    ``knfu/mean_acc`` is the figure to compare fusions by.

    How nbdistill differs from the paper: digits and an MLP instead of MNIST/CIFAR-10 and CNNs, the
    transfer set carved from the training split, clients starting from the same weights, Adam
    instead of SGD; what of the fusion rule could not be checked is listed in :mod:`.knfu_fusion`.
    """

    clients = HParam(int, 5, 2, 100, help="simulated clients, each with its own copy of the student")
    alpha = HParam(
        float, 0.5, 0.01, 1000.0, log=True, help="Dirichlet concentration of the clients' label skew (small: few classes each)"
    )
    rounds = HParam(int, 20, 1, 10000, help="communication rounds (one per training step)")
    local_epochs = HParam(int, 2, 1, 100, help="epochs each client trains on its own data per round")
    distill_epochs = HParam(int, 1, 1, 100, help="epochs each client distils its fused target on the transfer set per round")
    fusion = HParam(str, "knfu", choices=FUSIONS, help="knfu: semantic neighbours; fedkd: uniform average (FedMD); local: none")
    beta = HParam(float, 10.0, 0.0, 1000.0, help="sharpness of KnFu's neighbour weights exp(-beta·KL) (10 in the paper)")
    temperature = temperature_hparam(1.0)
    transfer = HParam(float, 0.2, 0.01, 0.9, help="share of the training split held out as the unlabelled public transfer set")
    client_batch = HParam(int, 32, 1, 4096, help="minibatch size of the clients' steps")

    def build_parts(self) -> None:
        super().build_parts()
        if self.fusion not in FUSIONS:  # a direct construction skips the registry's check of the choices
            raise ConfigError(f"fusion={self.fusion!r} is not one of {FUSIONS}; pick one of them")
        self.client_models = nn.ModuleList([copy.deepcopy(self.student) for _ in range(self.clients)])
        self.register_buffer("rounds_done", torch.zeros((), dtype=torch.long))
        self.seed = int(torch.randint(2**31 - 1, (1,)))
        self.shards: list[torch.Tensor] | None = None

    # -- data: the clients' shards, checked before training -------------------------------------
    def check_data(self, data: pl.LightningDataModule) -> None:
        """Split the training split into the transfer set and the clients' shards (ConfigError when
        a client would get no data), and read the validation and test splits the clients are scored on."""
        x, y = split_tensors(data, "train")
        y = y.long()
        check_client_count(len(y), self.clients)
        private, public = transfer_split(len(y), self.transfer, self.seed)
        check_client_count(len(private), self.clients, f"the training split less the transfer set ({len(public)} examples)")
        parts = dirichlet_split(y[private].numpy(), self.clients, self.alpha, self.seed)
        self.num_classes = int(getattr(data, "num_classes", None) or int(y.max()) + 1)
        self.train_x, self.train_y = x, y
        self.shards = [torch.as_tensor(private[p]) for p in parts]
        self.transfer_x = x[torch.as_tensor(public)]
        self.histograms = label_histograms(y.numpy(), [s.numpy() for s in self.shards], self.num_classes)
        self.scored = {split: split_tensors(data, split) for split in ("val", "test")}

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.shards is None:
            self.check_data(self.trainer.datamodule)

    def on_train_start(self) -> None:
        super().on_train_start()
        left, epochs = self.rounds - int(self.rounds_done), self.trainer.max_epochs
        steps = epochs * self.trainer.num_training_batches - self.global_step if epochs not in (None, -1) else math.inf
        if math.isfinite(steps) and steps < left:
            raise ConfigError(
                f"kd.knfu runs one communication round per training step: {left} rounds need {left} steps, but "
                f"{epochs} epochs of {self.trainer.num_training_batches} batches leave {steps}; "
                "raise max_epochs, lower the data's batch_size or lower rounds"
            )
        writer = self._run_writer()
        if writer is not None and not int(self.rounds_done):
            columns = [str(c) for c in range(self.num_classes)]
            writer.table("knfu/label_histogram", columns, self.histograms.tolist(), step=0)

    # -- one round per training step ----------------------------------------------------------
    def loss_terms(self, batch: Any) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed + 7919 * int(self.rounds_done))
        local = [self._local_loss(b) for b in self._local_batches(g)]
        distill = []
        if self.fusion != "local":
            targets = self._fused_targets()
            distill = [self._distill_loss(idx, targets) for idx in self._transfer_batches(g)]
        steps, losses = local + distill, []
        for i, make_loss in enumerate(steps):
            loss = make_loss()
            losses.append(loss.detach())
            if i < len(steps) - 1:  # the last step is the training step's own
                self._inner_step(loss)
        terms = {"loss": loss, "local_ce": torch.stack(losses[: len(local)]).mean() / self.clients}
        if distill:
            terms["distill"] = torch.stack(losses[len(local) :]).mean() / self.clients
        return terms

    def _inner_step(self, loss: torch.Tensor) -> None:
        optimizer = self.trainer.optimizers[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def _local_batches(self, g: torch.Generator) -> list[list[tuple[int, torch.Tensor]]]:
        """The joint local steps of a round: in each, every client that has a batch left this epoch
        takes its next ``client_batch`` examples (a fresh permutation of its shard each epoch)."""
        batches: list[list[tuple[int, torch.Tensor]]] = []
        per_step = math.ceil(max(len(s) for s in self.shards) / self.client_batch)
        for _ in range(self.local_epochs):
            orders = [s[torch.randperm(len(s), generator=g)] for s in self.shards]
            for i in range(per_step):
                chunk = [(k, o[i * self.client_batch : (i + 1) * self.client_batch]) for k, o in enumerate(orders)]
                batches.append([(k, idx) for k, idx in chunk if len(idx)])
        return batches

    def _local_loss(self, step: list[tuple[int, torch.Tensor]]):
        def make() -> torch.Tensor:
            return sum(
                F.cross_entropy(self.client_models[k](self._on(self.train_x[idx])), self._on(self.train_y[idx]))
                for k, idx in step
            )

        return make

    def _transfer_batches(self, g: torch.Generator) -> list[torch.Tensor]:
        n = len(self.transfer_x)
        return [chunk for _ in range(self.distill_epochs) for chunk in torch.randperm(n, generator=g).split(self.client_batch)]

    def _distill_loss(self, idx: torch.Tensor, targets: torch.Tensor):
        def make() -> torch.Tensor:
            x = self._on(self.transfer_x[idx])
            return sum(distillation_loss(m(x), targets[k, idx], self.temperature) for k, m in enumerate(self.client_models))

        return make

    @torch.no_grad()
    def knowledge(self, x: torch.Tensor) -> torch.Tensor:
        """``[K, N, C]``: every client's logits on ``x`` (eval mode)."""
        was_training = self.training
        self.client_models.eval()
        out = torch.stack([m(self._on(x)) for m in self.client_models])
        self.client_models.train(was_training)
        return out

    def _fused_targets(self) -> torch.Tensor:
        knowledge = self.knowledge(self.transfer_x)
        self.weights = fusion_weights(knowledge, self.fusion, self.beta, self.temperature)
        return fused_targets(knowledge, self.weights, self.temperature)

    def _on(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(self.device)

    # -- after each round: score the clients, pick the student, stop after `rounds` --------------
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.rounds_done += 1
        r = int(self.rounds_done)
        dist = self.histograms / np.maximum(self.histograms.sum(1, keepdims=True), 1)
        accs = {split: self.client_accuracies(*self.scored[split], dist) for split in ("val", "test")}
        chosen = int(np.argsort(accs["val"], kind="stable")[(self.clients - 1) // 2])
        self.student.load_state_dict(self.client_models[chosen].state_dict())
        writer = self._run_writer()
        if writer is not None:
            for k, acc in enumerate(accs["test"]):
                writer.scalar(f"knfu/client_acc/{k}", acc, step=r)
            writer.scalar("knfu/mean_acc", float(np.mean(accs["test"])), step=r)
            writer.scalar("knfu/student_client", chosen, step=r)
            weights = getattr(self, "weights", torch.eye(self.clients))
            writer.table("knfu/weights", [str(k) for k in range(self.clients)], weights.tolist(), step=r)
        if r >= self.rounds:
            self.trainer.should_stop = True

    def client_accuracies(self, x: torch.Tensor, y: torch.Tensor, dist: np.ndarray) -> list[float]:
        """Every client's accuracy on ``(x, y)`` weighted by its own label distribution (row of ``dist``)."""
        logits = self.knowledge(x).cpu()
        return [own_distribution_accuracy(logits[k], y, dist[k]) for k in range(self.clients)]
