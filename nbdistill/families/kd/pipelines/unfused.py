"""``kd.unfused``: UNFUSED, self-distillation of a fresh model on cluster pseudo-labels, then fine-tuning."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ....core.fastpath import adam
from ....core.registry import HParam, register
from ..base import GAP_VIEWS
from ..features import PENULTIMATE, capture
from . import simclr_v2_views  # noqa: F401 (registers the view)
from .kmeans import kmeans, pca_whiten
from .label_fraction import LabelFractionKD
from .ssl_encoder import encoder_width_hparam, pretrain, pretrain_epochs_hparam, ssl_temperature_hparam
from .unfused_loss import unfused_self_distillation

#: Mini-batch size of the self-distillation on pseudo-labels.
SELFDISTILL_BATCH = 128
#: Dimensions kept by the PCA whitening before k-means (the authors keep 128 of 2048).
PCA_DIMS = 32
#: Activations whose outputs get a shallow head in the self-distillation.
ACTIVATIONS = (nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.LeakyReLU, nn.ELU)


def shallow_layers(model: nn.Module) -> list[str]:
    """The activation modules of ``model`` before its last one (the last feeds the classifier)."""
    names = [name for name, m in model.named_modules() if isinstance(m, ACTIVATIONS)]
    return names[:-1]


@register("kd.unfused", views=(*GAP_VIEWS, "ssl_pretraining"), needs_teacher=False)
class UnfusedKD(LabelFractionKD):
    r"""UNFUSED: cluster pseudo-labels from an SSL encoder, self-distillation, then fine-tuning.

    UNFUSED (Seth, Ghosh, Tyagi & Manocha, "UNFUSED: UNsupervised Finetuning Using SElf
    supervised Distillation", arXiv 2303.05668, 2023), in four steps:

    1. an SSL encoder (``encoder_width``) pretrained on every training input, labels unused: the
       SimCLR encoder shared with ``kd.simclr_v2`` (:mod:`.ssl_encoder`; the paper uses its own audio
       SSL method);
    2. pseudo-labels: k-means (``clusters``) of the encoder's features of every training input,
       after PCA whitening and L2 normalisation (:mod:`.kmeans`; the authors' ``clustering.py``);
    3. "unsupervised fine-tuning": the student passed in (a freshly initialised model) learns the
       pseudo-labels by self-distillation for ``selfdistill_epochs``: a cluster head on its
       penultimate features is the teacher of a head on each shallower activation
       (:func:`.unfused_loss.unfused_self_distillation`, the official ``upstream_expert.py`` loss);
       the heads are then dropped;
    4. fine-tuning on the labelled ``label_fraction`` (:mod:`.label_fraction`): the Lightning epochs,
       each step the cross-entropy of a mini-batch drawn from the labelled subset (the loader's batch
       only sets its size; no other label is read).

    Steps 1-3 run in ``setup`` (events ``ssl/loss``, ``unfused/selfdistill_loss``, and
    ``unfused/cluster_purity``, the share of the largest true class per cluster: a diagnostic,
    computed after clustering, that never enters training). There is no teacher: the gap views show
    the student alone. ``run.student()`` is the fine-tuned student.

    Unverified or changed: we could read the abstract and the official code, not the paper's full
    text; the heads are single linear layers (the code's projectors have three with batch norm); the
    pseudo-label sampler that balances clusters (``UnifLabelSampler``) is not used; the encoder is an
    MLP on digits, not an audio network, and the fresh model is the (smaller) student, where the
    paper's fresh encoder may be of any size.
    """

    encoder_width = encoder_width_hparam("the pseudo-labeller")
    pretrain_epochs = pretrain_epochs_hparam()
    ssl_temperature = ssl_temperature_hparam()
    clusters = HParam(int, 10, 2, 200, help="k-means clusters (pseudo-label classes)")
    selfdistill_epochs = HParam(int, 20, 1, 1000, help="epochs of self-distillation on the pseudo-labels")

    def setup(self, stage: str) -> None:
        """Steps 1-3, once, before fitting (a resumed run redoes them, seeded, then loads its checkpoint)."""
        super().setup(stage)
        if stage != "fit" or self._inputs is not None:
            return
        data = self.trainer.datamodule
        x, _, y_l, _ = self.prepare(data)
        self.report("labels/labelled", len(y_l), 0)
        encoder, _ = pretrain(
            x, self.encoder_width, self.pretrain_epochs, self.ssl_temperature, self._seed,
            report=lambda epoch, loss: self.report("ssl/loss", loss, epoch),
        )  # fmt: skip
        pseudo = self.pseudo_labels(encoder, x, data)
        self.self_distill(x, pseudo)

    def pseudo_labels(self, encoder: nn.Module, x: torch.Tensor, data: Any) -> torch.Tensor:
        """Step 2: the k-means cluster of each training input's whitened SSL features."""
        with torch.no_grad():
            features = pca_whiten(encoder.encoder(x.float().cpu()), PCA_DIMS)
        k = min(self.clusters, len(x))
        _, pseudo, _ = kmeans(features, k, seed=self._seed)
        if hasattr(data, "dataset"):  # diagnostic only: how pure the clusters are in the true classes
            y = data.dataset("train").tensors[1]
            largest = sum(torch.bincount(y[pseudo == c]).max().item() for c in range(k) if (pseudo == c).any())
            self.report("unfused/cluster_purity", largest / len(y), 0)
        return pseudo

    def self_distill(self, x: torch.Tensor, pseudo: torch.Tensor) -> None:
        """Step 3: the student and its temporary heads learn the pseudo-labels (Adam at ``lr``)."""
        k = int(pseudo.max()) + 1
        names = shallow_layers(self.student)
        device = next(self.student.parameters()).device
        x, pseudo = x.to(device), pseudo.to(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed + 2)
            with torch.no_grad():
                _, feats = capture(self.student, x[:2], [PENULTIMATE, *names], "student")
            heads = nn.ModuleList([nn.Linear(f.flatten(1).shape[1], k) for f in feats]).to(device)
        params = [*self.student.parameters(), *heads.parameters()]
        optimiser = adam(params, lr=self.lr, weight_decay=self.weight_decay)
        generator = torch.Generator().manual_seed(self._seed + 3)
        self.student.train()
        for epoch in range(1, self.selfdistill_epochs + 1):
            order = torch.randperm(len(x), generator=generator).to(device)
            total = 0.0
            for start in range(0, len(x), SELFDISTILL_BATCH):
                part = order[start : start + SELFDISTILL_BATCH]
                _, feats = capture(self.student, x[part], [PENULTIMATE, *names], "student")
                logits = [head(f.flatten(1)) for head, f in zip(heads, feats)]
                loss = unfused_self_distillation(logits[0], logits[1:], pseudo[part])["loss"]
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * len(part)
            self.report("unfused/selfdistill_loss", total / len(x), epoch)

    def loss_terms(self, batch: Any) -> dict:
        x_l, y_l = self.labelled_batch(len(batch[0]), batch[0].device)
        ce = F.cross_entropy(self.student(x_l), y_l)
        return {"ce": ce, "loss": ce}
