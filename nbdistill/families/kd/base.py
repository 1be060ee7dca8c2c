"""The base of the ``kd.*`` methods: :class:`KDModule` (the efficiency table when fitting starts), the
bases of the methods with learned heads on hooked features, and the hyper-parameters they share."""

from __future__ import annotations

from typing import Any

import torch

from ...core.batches import as_pair
from ...core.module import DistillModule
from ...core.registry import HParam
from .features import PENULTIMATE, capture, resolve

#: The views of every KD method: losses, the teacher–student gap, per-class gap, the agreement
#: matrix and the efficiency roofline of teacher and student (logged when training starts).
GAP_VIEWS = ("losses", "gap", "per_class_gap", "agreement_matrix", "efficiency")


def temperature_hparam(default: float) -> HParam:
    """The softening temperature T of a method whose default is ``default``, in [1, 20]."""
    return HParam(float, default, 1.0, 20.0, help="softening temperature T")


def alpha_hparam(default: float = 0.1) -> HParam:
    """Hinton's α: the weight of the hard-label CE, in [0, 1]."""
    return HParam(float, default, 0.0, 1.0, help="weight of the hard-label CE; 1 − alpha weighs T²·KL")


def layer_hparam(who: str) -> HParam:
    """A layer of the ``who`` named as in ``named_modules()``, or the input of its last Linear."""
    return HParam(str, PENULTIMATE, help=f"{who} layer by module name, or '{PENULTIMATE}' (input of the last Linear)")


class KDModule(DistillModule):
    """Base of the ``kd.*`` methods: a :class:`DistillModule` that also logs, when training starts,
    the ``efficiency`` table of its teacher(s) and student (parameters, FLOPs and bytes per sample,
    latency on this machine, on a roofline from the measured peak; see :mod:`.efficiency`)."""

    #: Batch size at which the efficiency of teacher and student is measured.
    efficiency_batch = 64

    def on_fit_start(self) -> None:
        super().on_fit_start()
        writer = self._run_writer()
        if writer is None or self.global_rank != 0 or writer.info.get("resumed"):
            return
        from .efficiency import log_efficiency

        try:
            x = as_pair(next(iter(self.trainer.datamodule.val_dataloader())))[0][: self.efficiency_batch]
            models = {f"teacher {i}" if len(self.teachers) > 1 else "teacher": t for i, t in enumerate(self.teachers)}
            models["student"] = self.student
            log_efficiency(writer, models, x.to(self.device))
        except Exception as exc:  # noqa: BLE001 (informational: never fails a run)
            import warnings

            warnings.warn(f"the efficiency table could not be measured: {type(exc).__name__}: {exc}", stacklevel=1)


class HeadsFromFeatures(KDModule):
    """Base of the methods that put learned heads on hooked features (regressors, projectors, exits).

    The heads' sizes depend on the features' shapes, so :meth:`build_heads` makes them from one
    probe batch when :meth:`check_compatibility` runs, which :func:`nbdistill.fit` and
    ``nbdistill fit`` do before training (and before a checkpoint is restored); the optimiser then
    trains them with the student.
    """

    def build_parts(self) -> None:
        super().build_parts()
        self.heads_built = False

    def build_heads(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def check_compatibility(self, batch: Any, num_classes: int | None = None) -> None:
        super().check_compatibility(batch, num_classes)
        if self.heads_built:
            return
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                self.build_heads(as_pair(batch)[0][:2])
        finally:
            self.train(was_training)
        self.heads_built = True

    def setup(self, stage: str) -> None:
        if not self.heads_built:
            raise RuntimeError(
                f"{type(self).__name__} sizes its heads on a probe batch: call check_compatibility(batch) before "
                "training (nbdistill.fit and `nbdistill fit` do)"
            )


class LayerPairKD(HeadsFromFeatures):
    """Base of the methods that match one student layer with one teacher layer through a learned head
    (FitNets' regressor, MI-α's critic). A subclass declares the hyper-parameters ``student_layer``
    and ``teacher_layer`` (:func:`layer_hparam`); both are checked when the module is built."""

    student_layer: str
    teacher_layer: str

    def build_parts(self) -> None:
        super().build_parts()
        resolve(self.student, self.student_layer, "student")
        resolve(self.teacher, self.teacher_layer, "teacher")

    def student_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The student's logits and its ``student_layer`` features, from one forward pass."""
        out, (feature,) = capture(self.student, x, [self.student_layer], "student")
        return out, feature

    @torch.no_grad()
    def teacher_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's logits and its ``teacher_layer`` features, from one forward pass."""
        out, (feature,) = capture(self.teacher, x, [self.teacher_layer], "teacher")
        return out, feature

    def feature_shapes(self, x: torch.Tensor) -> tuple[torch.Size, torch.Size]:
        """The shapes of one example's student and teacher features (batch dimension excluded)."""
        return self.student_features(x)[1].shape[1:], self.teacher_features(x)[1].shape[1:]
