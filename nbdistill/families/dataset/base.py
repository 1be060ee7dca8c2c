"""``DatasetDistillModule``: the base of every dataset-distillation method.

How dataset distillation maps onto :class:`~nbdistill.core.module.DistillModule` and :func:`nbdistill.fit`:

- The trainable parameters are the synthetic set: ``images`` ``[classes·ipc, *input shape]``, plus
  learned labels and the learned inner learning rate where a method has them. They are created
  at ``setup`` (before a checkpoint is restored, so stopped runs resume), from the real data.
- ``student`` is the architecture a synthetic set is for: a template, never trained itself. Fresh
  copies of it are what DC/DM match gradients or embeddings of, what the experts of trajectory
  matching are, and what is trained on the synthetic set to evaluate it.
- ``data`` is the real data. Its whole training split is read once (per-class sampling, as the
  papers do); each training batch of the data module is one outer iteration of the method, so the
  data module's batch size sets how many iterations make an epoch. The batch itself is not used.
- ``teacher`` is optional: a network trained on the full data. It never enters the loss (except
  CDA's, which recovers images from it); beside it, the validation metrics show what the
  synthetic set reaches.
- Validation (``val/student_acc``) and the test split at the end (``test/student_acc``) measure a
  fresh copy of ``student`` trained on the current synthetic set: the family's evaluation hook,
  :class:`.set_gap.DistilledSetGap` (``eval_epochs`` epochs of :func:`.evaluate.train_on`), the
  accuracy a distilled set is judged by, live.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from ...core.errors import ConfigError
from ...core.hparams import declared_hparams
from ...core.module import DistillModule
from ...core.registry import HParam
from .augment import dsa
from .evaluate import EvalSettings
from .realdata import RealSet
from .set_gap import DistilledSetGap
from .views import image_grid_png


class DatasetDistillModule(DistillModule):
    """Base of the ``dataset.*`` methods (see the module docstring); subclasses write :meth:`loss_terms`."""

    ipc = HParam(int, 10, 1, 1000, help="synthetic images per class")
    init = HParam(str, "real", choices=("real", "noise"), help="how the synthetic images start")
    augment = HParam(bool, True, help="differentiable Siamese augmentation (DSA) while distilling and evaluating")
    eval_epochs = HParam(int, 300, 1, 5000, help="epochs of the fresh network trained on the synthetic set at each validation")
    lr = HParam(float, 1.0, 1e-4, 1e4, log=True, help="learning rate of the synthetic images (SGD, momentum 0.5)")
    weight_decay = HParam(float, 0.0, 0.0, 0.1, help="weight decay of the synthetic images (0 in the papers)")

    evaluation_class = DistilledSetGap
    #: Whether the method needs a network without batch norm (the functional inner loop of trajectory matching).
    needs_functional_student: bool = False

    def build_parts(self) -> None:
        """Freeze the template ``student``, draw the run's seed; the synthetic set waits for the data (:meth:`setup`)."""
        super().build_parts()
        for h in declared_hparams(type(self)):  # a direct construction skips the registry's check of the choices
            if h.choices is not None:
                h.check(getattr(self, h.name), self.method_name or type(self).__name__)
        for p in self.student.parameters():
            p.requires_grad_(False)
        self.seed = int(torch.randint(2**31 - 1, (1,)))
        self.real: RealSet | None = None

    # -- data: checked before training, read once --------------------------------------------------
    @property
    def num_classes(self) -> int:
        return self.real.num_classes

    def check_compatibility(self, batch: Any, num_classes: int | None = None) -> None:
        super().check_compatibility(batch, num_classes)
        x = batch[0]
        if self.augment and x.dim() != 4:
            raise ConfigError(
                f"augment=True needs image inputs [channels, height, width] but the data gives {list(x.shape[1:])}; "
                "pass image data (e.g. nd.data.Digits(image=True)) or augment=False"
            )
        if self.needs_functional_student:
            from .nets import has_batch_norm

            if has_batch_norm(self.student):
                raise ConfigError(
                    f"{self.method_name} steps the student through a functional inner loop, which batch norm's running "
                    "statistics break; use a student without batch norm, e.g. nd.models.ConvNet(norm='instance')"
                )

    def check_data(self, data: pl.LightningDataModule) -> None:
        """Read the real training split and check it fits the method (called by ``nd.fit`` before training)."""
        self.real = RealSet.from_data(data)
        if self.init != "noise" and self.real.smallest_class() < self.ipc:
            raise ConfigError(
                f"ipc={self.ipc} real images per class are needed to initialise from real data, but the smallest class "
                f"has {self.real.smallest_class()}; lower ipc or use init='noise'"
            )

    def setup(self, stage: str) -> None:
        if stage != "fit" or hasattr(self, "images"):
            return
        if self.real is None:
            self.check_data(self.trainer.datamodule)
        self.prepare()
        images, labels = self.initial_set(torch.Generator().manual_seed(self.seed))
        self.images = nn.Parameter(images.clone())
        self.register_buffer("labels", labels)
        self.add_synthetic_parameters()

    def prepare(self) -> None:
        """What a method builds from the real data before the synthetic set (experts, a teacher)."""

    def add_synthetic_parameters(self) -> None:
        """Learned labels, learned learning rate: whatever a method optimises beside the images."""

    def initial_set(self, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images, labels)`` to start from: ``ipc`` real images per class, or Gaussian noise."""
        real = self.real
        labels = torch.arange(real.num_classes).repeat_interleave(self.ipc)
        if self.init == "noise":
            return torch.randn((len(labels), *real.x.shape[1:]), generator=g, dtype=real.x.dtype), labels
        return torch.cat([real.sample(c, self.ipc, g) for c in range(real.num_classes)]), labels

    def real_batch(self, c: int, n: int, g: torch.Generator) -> torch.Tensor:
        return self.real.sample(c, n, g).to(self.device, self.images.dtype)

    def class_batches(self, n_real: int, g: torch.Generator) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """``(c, real, synthetic)`` for every class c: ``n_real`` real images of c and the synthetic
        images of c, both through the same DSA draw when ``augment`` (the Siamese augmentation DC,
        DSA and DM apply before comparing the two)."""
        for c in range(self.num_classes):
            real = self.real_batch(c, n_real, g)
            syn = self.images[c * self.ipc : (c + 1) * self.ipc]
            if self.augment:
                seed = int(torch.randint(2**31 - 1, (1,), generator=g))
                real, syn = dsa(real, seed, batchwise=True), dsa(syn, seed, batchwise=True)
            yield c, real, syn

    def step_generator(self) -> torch.Generator:
        """The random stream of this outer iteration: a function of the run's seed and the step (resumes are exact)."""
        return torch.Generator().manual_seed(self.seed + 7919 * self.global_step)

    # -- what the synthetic set is --------------------------------------------------------------
    def distilled(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The synthetic set as evaluated: ``(images, labels)`` (labels are class indices or probabilities)."""
        return self.images.detach(), self.labels

    def eval_settings(self) -> EvalSettings:
        labels = self.distilled()[1]
        return EvalSettings(
            epochs=self.eval_epochs, augment=self.augment, labels="hard" if labels.dtype == torch.long else "soft"
        )

    def relabel_teacher(self) -> nn.Module | None:
        """A network that relabels each evaluation batch (CDA/SRe²L); none by default."""
        return None

    # -- optimisation ---------------------------------------------------------------------------
    def param_groups(self) -> list[dict]:
        return [{"params": [self.images], "lr": self.lr, "weight_decay": self.weight_decay}]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """SGD with momentum 0.5 on every group, as DC, DM and MTT update their synthetic sets."""
        return torch.optim.SGD(self.param_groups(), lr=self.lr, momentum=0.5)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.images.grad is not None:
            self.log("dd/image_grad_norm", self.images.grad.detach().norm(), on_step=True, on_epoch=False)

    # -- the synthetic images as image events ------------------------------------------------------
    def on_train_start(self) -> None:
        self.log_images()

    def on_train_epoch_end(self) -> None:
        self.log_images()

    def log_images(self) -> None:
        writer = self._run_writer()
        if writer is None:
            return
        images = self.distilled()[0].float().cpu().numpy()
        png = image_grid_png(images, self.num_classes, self.ipc)
        if png is not None:
            writer.image("dd/images", png, step=self.global_step, png=base64.b64encode(png).decode(), classes=self.num_classes)
