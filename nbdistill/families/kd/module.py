"""Knowledge-distillation LightningModules, each registered by name (``kd.*``)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ...core.errors import ConfigError
from ...core.module import DistillModule
from ...core.registry import HParam, register
from . import losses
from .features import PENULTIMATE, capture, resolve, split_names
from .heads import CosineCritic, ExitHead, HintRegressor, LogitProjector
from .quantize import full_precision_bits, load_quantized, quantized_parameters, quantized_size_bits

#: The views of every KD method: losses, the teacher–student gap, per-class gap, the agreement
#: matrix and the efficiency roofline of teacher and student (logged when training starts).
GAP_VIEWS = ("losses", "gap", "per_class_gap", "agreement_matrix", "efficiency")


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
        from ...core.module import as_pair
        from .efficiency import log_efficiency

        try:
            x = as_pair(next(iter(self.trainer.datamodule.val_dataloader())))[0][: self.efficiency_batch]
            models = {f"teacher {i}" if len(self.teachers) > 1 else "teacher": t for i, t in enumerate(self.teachers)}
            models["student"] = self.student
            log_efficiency(writer, models, x.to(self.device))
        except Exception as exc:  # noqa: BLE001 (informational: never fails a run)
            import warnings

            warnings.warn(f"the efficiency table could not be measured: {type(exc).__name__}: {exc}", stacklevel=1)


@register(
    "kd.hinton",
    hparams=[
        HParam("temperature", float, 4.0, 1.0, 20.0, help="softening temperature T"),
        HParam("alpha", float, 0.1, 0.0, 1.0, help="weight of the hard-label CE; 1 − alpha weighs T²·KL"),
    ],
    views=GAP_VIEWS,
)
class HintonKD(KDModule):
    """Hinton KD: α·CE + (1 − α)·T²·KL(p_t^T ‖ p_s^T) (Hinton, Vinyals & Dean, 2015)."""

    supports_teacher_cache = True

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        temperature: float = 4.0,
        alpha: float = 0.1,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        super().__init__(student, teacher, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])
        self.temperature = temperature
        self.alpha = alpha

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        return losses.hinton_kd(self.student(x), self.teacher_logits(x), y, self.temperature, self.alpha)


@register("kd.student_only", views=GAP_VIEWS, needs_teacher=False)
class StudentOnly(KDModule):
    """The student trained alone with cross-entropy: the baseline every distillation gap is measured from.

    A teacher, when given, is only used to measure the gap; it never enters the loss.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None, lr: float = 1e-2, weight_decay: float = 0.0):
        super().__init__(student, teacher, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        return losses.cross_entropy(self.student(x), y)


def _temperature(default: float) -> HParam:
    return HParam("temperature", float, default, 1.0, 20.0, help="softening temperature T")


def _alpha(default: float = 0.1) -> HParam:
    return HParam("alpha", float, default, 0.0, 1.0, help="weight of the hard-label CE; 1 − alpha weighs T²·KL")


def _layer(name: str, who: str) -> HParam:
    return HParam(name, str, PENULTIMATE, help=f"{who} layer by module name, or '{PENULTIMATE}' (input of the last Linear)")


@register(
    "kd.dkd",
    hparams=[
        _temperature(4.0),
        HParam("alpha", float, 1.0, 0.0, 10.0, help="weight of TCKD (target vs non-target)"),
        HParam("beta", float, 8.0, 0.0, 20.0, help="weight of NCKD (among non-target classes)"),
        HParam("ce_weight", float, 1.0, 0.0, 10.0, help="weight of the hard-label CE"),
        HParam("warmup", int, 20, 0, 1000, help="epochs over which the DKD term ramps up linearly (0: none)"),
    ],
    views=GAP_VIEWS,
)
class DecoupledKD(KDModule):
    """Decoupled KD: CE + min(epoch/warmup, 1)·(α·TCKD + β·NCKD) (Zhao et al., CVPR 2022).

    The warm-up counts epochs from 1, as the official code does: the first epoch already has
    weight 1/warmup.
    """

    supports_teacher_cache = True

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        temperature: float = 4.0,
        alpha: float = 1.0,
        beta: float = 8.0,
        ce_weight: float = 1.0,
        warmup: int = 20,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        super().__init__(student, teacher, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])
        self.temperature, self.alpha, self.beta, self.ce_weight, self.warmup = temperature, alpha, beta, ce_weight, warmup

    def warmup_factor(self) -> float:
        return 1.0 if self.warmup == 0 else min((self.current_epoch + 1) / self.warmup, 1.0)

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        return losses.decoupled_kd(
            self.student(x),
            self.teacher_logits(x),
            y,
            self.temperature,
            self.alpha,
            self.beta,
            self.ce_weight,
            self.warmup_factor(),
        )


@register("kd.pld", hparams=[_temperature(4.0)], views=GAP_VIEWS)
class PlackettLuceKD(KDModule):
    """Plackett–Luce distillation: a teacher-confidence-weighted ListMLE of the teacher-optimal ranking (Bassam, Zhu & Bian, 2025).

    It replaces CE + KD by one loss; T softens only the teacher's confidence weights.
    """

    supports_teacher_cache = True

    def __init__(
        self, student: nn.Module, teacher: nn.Module, temperature: float = 4.0, lr: float = 1e-2, weight_decay: float = 0.0
    ):
        super().__init__(student, teacher, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])
        self.temperature = temperature

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        return losses.plackett_luce_distillation(self.student(x), self.teacher_logits(x), y, self.temperature)


class HeadsFromFeatures(KDModule):
    """Base of the methods that put learned heads on hooked features (regressors, projectors, exits).

    The heads' sizes depend on the features' shapes, so :meth:`build_heads` makes them from one
    probe batch when :meth:`check_compatibility` runs, which :func:`nbdistill.fit` and
    ``nbdistill fit`` do before training (and before a checkpoint is restored); the optimiser then
    trains them with the student.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
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
                self.build_heads(batch[0][:2])
        finally:
            self.train(was_training)
        self.heads_built = True

    def setup(self, stage: str) -> None:
        if not self.heads_built:
            raise RuntimeError(
                f"{type(self).__name__} sizes its heads on a probe batch: call check_compatibility(batch) before "
                "training (nbdistill.fit and `nbdistill fit` do)"
            )


@register(
    "kd.fitnet",
    hparams=[
        _layer("student_layer", "student guided"),
        _layer("teacher_layer", "teacher hint"),
        HParam("hint_epochs", int, 10, 0, 1000, help="stage 1: epochs of hint training before the KD stage"),
        _temperature(4.0),
        _alpha(),
    ],
    views=GAP_VIEWS,
)
class FitNet(HeadsFromFeatures):
    """FitNets: hint training through a learned regressor, then KD (Romero et al., ICLR 2015).

    Stage 1 (the first ``hint_epochs`` epochs) minimises only the hint loss ½‖u_h − r(v_g)‖², which
    trains the student up to its guided layer and the regressor r; stage 2 trains the whole student
    with Hinton KD (the paper's second stage, here with a fixed α instead of its annealed λ). The
    guided and hint layers are picked by module name, so any student/teacher pair works.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        student_layer: str = PENULTIMATE,
        teacher_layer: str = PENULTIMATE,
        hint_epochs: int = 10,
        temperature: float = 4.0,
        alpha: float = 0.1,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        super().__init__(student, teacher, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])
        resolve(student, student_layer, "student")
        resolve(teacher, teacher_layer, "teacher")
        self.student_layer, self.teacher_layer = student_layer, teacher_layer
        self.hint_epochs, self.temperature, self.alpha = hint_epochs, temperature, alpha

    def build_heads(self, x: torch.Tensor) -> None:
        _, (s,) = capture(self.student, x, [self.student_layer], "student")
        _, (t,) = capture(self.teacher, x, [self.teacher_layer], "teacher")
        self.regressor = HintRegressor(s.shape[1:], t.shape[1:])

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        zs, (guided,) = capture(self.student, x, [self.student_layer], "student")
        if self.current_epoch < self.hint_epochs:
            with torch.no_grad():
                _, (hint,) = capture(self.teacher, x, [self.teacher_layer], "teacher")
            loss = losses.hint_loss(self.regressor(guided), hint)
            return {"loss": loss, "hint": loss}
        return losses.hinton_kd(zs, self.teacher_logits(x), y, self.temperature, self.alpha)


@register(
    "kd.ofa",
    hparams=[
        HParam("stages", str, PENULTIMATE, help="comma-separated student layers whose features get a logit projector"),
        HParam("eps", float, 1.5, 0.1, 5.0, help="target enhancement exponent ε (1: soft-label CE)"),
        HParam("temperature", float, 1.0, 0.1, 20.0, help="softening temperature T"),
        HParam("gt_weight", float, 1.0, 0.0, 10.0, help="weight of the hard-label CE"),
        HParam("kd_weight", float, 1.0, 0.0, 10.0, help="weight of the OFA loss on the final logits"),
        HParam("ofa_weight", float, 1.0, 0.0, 10.0, help="weight of the OFA losses of the stage projectors"),
    ],
    views=GAP_VIEWS,
)
class OneForAllKD(HeadsFromFeatures):
    """One-for-All KD: student stages projected into logit space, adaptive target enhancement ε (Hao et al., NeurIPS 2023).

    Every stage named in ``stages`` gets a projector head to class logits, distilled (like the
    final logits) against the teacher's final logits. Only logits meet, so teacher and student may
    be of any architectures (e.g. a conv teacher and an MLP student).
    """

    supports_teacher_cache = True

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        stages: str = PENULTIMATE,
        eps: float = 1.5,
        temperature: float = 1.0,
        gt_weight: float = 1.0,
        kd_weight: float = 1.0,
        ofa_weight: float = 1.0,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        super().__init__(student, teacher, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])
        self.stages = split_names(stages)
        if not self.stages:
            raise ConfigError("kd.ofa: name at least one student stage in 'stages'")
        for name in self.stages:
            resolve(student, name, "student")
        self.eps, self.temperature = eps, temperature
        self.gt_weight, self.kd_weight, self.ofa_weight = gt_weight, kd_weight, ofa_weight

    def build_heads(self, x: torch.Tensor) -> None:
        out, features = capture(self.student, x, self.stages, "student")
        self.projectors = nn.ModuleList(LogitProjector(f.shape[1:], out.shape[-1]) for f in features)

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        zs, features = capture(self.student, x, self.stages, "student")
        stage_logits = [head(f) for head, f in zip(self.projectors, features)]
        return losses.one_for_all_kd(
            zs,
            stage_logits,
            self.teacher_logits(x),
            y,
            self.eps,
            self.temperature,
            self.gt_weight,
            self.kd_weight,
            self.ofa_weight,
        )


@register(
    "kd.mi_alpha",
    hparams=[
        _layer("student_layer", "student"),
        _layer("teacher_layer", "teacher"),
        HParam("mi_alpha", float, 0.5, 0.0, 1.0, help="α of the MI bound: 1 = InfoNCE (biased, low variance), 0 = NWJ/TUBA"),
        HParam("mi_weight", float, 1.0, 0.0, 10.0, help="weight of −I_α in the loss"),
        HParam("critic_temperature", float, 0.1, 0.01, 10.0, help="τ of the cosine critic f = cos/τ"),
        _temperature(4.0),
        _alpha(),
    ],
    views=GAP_VIEWS,
)
class MIAlphaKD(HeadsFromFeatures):
    """Distiller's MI-α: Hinton KD plus the α-interpolated MI bound between intermediate representations (He et al., 2021).

    Loss: α_CE·CE + (1 − α_CE)·T²·KL − w·I_α(h_s; h_t), with a cosine critic on learned projections
    of the two representations and a learned scalar log-baseline log q.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        student_layer: str = PENULTIMATE,
        teacher_layer: str = PENULTIMATE,
        mi_alpha: float = 0.5,
        mi_weight: float = 1.0,
        critic_temperature: float = 0.1,
        temperature: float = 4.0,
        alpha: float = 0.1,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        super().__init__(student, teacher, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])
        resolve(student, student_layer, "student")
        resolve(teacher, teacher_layer, "teacher")
        self.student_layer, self.teacher_layer = student_layer, teacher_layer
        self.mi_alpha, self.mi_weight, self.critic_temperature = mi_alpha, mi_weight, critic_temperature
        self.temperature, self.alpha = temperature, alpha
        self.log_baseline = nn.Parameter(torch.zeros(()))

    def build_heads(self, x: torch.Tensor) -> None:
        _, (s,) = capture(self.student, x, [self.student_layer], "student")
        _, (t,) = capture(self.teacher, x, [self.teacher_layer], "teacher")
        self.critic = CosineCritic(s.shape[1:], t.shape[1:], temperature=self.critic_temperature)

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        zs, (hs,) = capture(self.student, x, [self.student_layer], "student")
        with torch.no_grad():
            zt, (ht,) = capture(self.teacher, x, [self.teacher_layer], "teacher")
        terms = losses.hinton_kd(zs, zt, y, self.temperature, self.alpha)
        mi = losses.mi_alpha_bound(self.critic(hs, ht), self.log_baseline, self.mi_alpha)
        return {**terms, "loss": terms["loss"] - self.mi_weight * mi, "mi": mi}


@register(
    "kd.hierarchical_self",
    hparams=[
        HParam("exits", str, "net.1", help="comma-separated student layers that get an early exit"),
        _temperature(3.0),
        HParam("alpha", float, 0.3, 0.0, 1.0, help="weight of the KL to the deepest exit; 1 − alpha weighs the exits' CE"),
        HParam("feature_weight", float, 0.03, 0.0, 10.0, help="weight λ of the L2 feature hint"),
    ],
    views=GAP_VIEWS,
    needs_teacher=False,
)
class HierarchicalSelfKD(HeadsFromFeatures):
    """Self-distillation: early exits of the student learn from its own last layer ("Be Your Own Teacher", Zhang et al., ICCV 2019).

    Each layer named in ``exits`` gets an exit head (bottleneck to the size of the deepest feature,
    the input of the student's last Linear, then a classifier). No teacher is needed; one given
    only measures the gap. Each exit's validation accuracy is logged as ``val/exit<i>_acc``.

    The loss is :func:`.losses.self_distillation`: the deepest classifier's CE has weight 1, as in the
    authors' code (the paper's sum over all classifiers would give it 1 − α; see there). Defaults
    T = 3, α = 0.3, λ = 0.03 are the authors' code's. The deepest outputs are detached where they act
    as teacher.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None = None,
        exits: str = "net.1",
        temperature: float = 3.0,
        alpha: float = 0.3,
        feature_weight: float = 0.03,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        super().__init__(student, teacher, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])
        self.exits = split_names(exits)
        if not self.exits:
            raise ConfigError("kd.hierarchical_self: name at least one student layer in 'exits'")
        for name in self.exits:
            resolve(student, name, "student")
        self.temperature, self.alpha, self.feature_weight = temperature, alpha, feature_weight

    def build_heads(self, x: torch.Tensor) -> None:
        out, features = capture(self.student, x, [*self.exits, PENULTIMATE], "student")
        dim = features[-1].flatten(1).shape[1]
        self.exit_heads = nn.ModuleList(ExitHead(f.shape[1:], dim, out.shape[-1]) for f in features[:-1])

    def forward_exits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """``(final logits, deepest feature, exit features, exit logits)`` of one forward pass."""
        out, features = capture(self.student, x, [*self.exits, PENULTIMATE], "student")
        heads = [head(f) for head, f in zip(self.exit_heads, features[:-1])]
        return out, features[-1], [h[0] for h in heads], [h[1] for h in heads]

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        out, feature, exit_features, exit_logits = self.forward_exits(x)
        return losses.self_distillation(
            out, feature, exit_logits, exit_features, y, self.temperature, self.alpha, self.feature_weight
        )

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
        x, y = batch[0], batch[1]
        for i, z in enumerate(self.forward_exits(x)[3], start=1):
            self.log(f"val/exit{i}_acc", (z.argmax(-1) == y).float().mean(), on_epoch=True, batch_size=len(y))


@register(
    "kd.quantized",
    hparams=[
        HParam("bits", int, 4, 1, 16, help="bits per weight: 2**bits levels per bucket"),
        HParam("bucket_size", int, 256, 1, 1_000_000, help="values per bucket, each scaled by its own min and max"),
        HParam("stochastic", bool, False, help="stochastic (unbiased) rounding while training instead of nearest"),
        _temperature(2.0),
        _alpha(),
    ],
    views=GAP_VIEWS,
)
class QuantizedKD(KDModule):
    """Quantized distillation: KD through a bucketed uniform quantiser, updates on full-precision weights (Polino, Pascanu & Alistarh, ICLR 2018).

    Every training step runs forward and backward at the quantised weights Q(w) and applies the
    gradient to the full-precision w (straight-through); the student is evaluated quantised, so the
    gap metrics are the quantised network's. Each evaluation also logs ``size_bits`` (the
    quantised student's storage, scales included) and ``compression`` (32-bit size / that).
    :meth:`quantized_student` returns the deployable quantised copy.
    """

    supports_teacher_cache = True

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        bits: int = 4,
        bucket_size: int = 256,
        stochastic: bool = False,
        temperature: float = 2.0,
        alpha: float = 0.1,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        super().__init__(student, teacher, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])
        self.bits, self.bucket_size, self.stochastic = bits, bucket_size, stochastic
        self.temperature, self.alpha = temperature, alpha

    def quantized_forward(self, x: torch.Tensor, training: bool) -> torch.Tensor:
        params = quantized_parameters(
            self.student, self.bits, self.bucket_size, stochastic=training and self.stochastic, straight_through=training
        )
        return torch.func.functional_call(self.student, params, (x,))

    def student_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantized_forward(x, training=False)

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        return losses.hinton_kd(self.quantized_forward(x, training=True), self.teacher_logits(x), y, self.temperature, self.alpha)

    def evaluation_metrics(self, stage: str) -> dict[str, Any]:
        metrics = super().evaluation_metrics(stage)
        if metrics:
            size = quantized_size_bits(self.student, self.bits, self.bucket_size)
            metrics.update(size_bits=size, compression=full_precision_bits(self.student) / size)
        return metrics

    def quantized_student(self) -> nn.Module:
        """A copy of the student with its weights quantised (deterministic rounding)."""
        return load_quantized(copy.deepcopy(self.student), quantized_parameters(self.student, self.bits, self.bucket_size))


@register(
    "kd.moe_teacher",
    hparams=[
        HParam("teacher_weight", float, 0.25, 0.0, 1.0, help="λ: the target is λ·teacher probabilities + (1 − λ)·one-hot label"),
        HParam(
            "init_from_teacher",
            bool,
            False,
            help="start the student's first and last Linear from the teacher's non-expert stem and head",
        ),
    ],
    views=GAP_VIEWS,
)
class MoETeacherKD(KDModule):
    """A mixture-of-experts teacher distilled into a dense student, as in Switch Transformers (Fedus, Zoph & Shazeer, 2022, §4.2).

    The student learns from 0.25·teacher probabilities + 0.75·label at T = 1; the paper also
    initialises the dense student from the teacher's non-expert weights (``init_from_teacher``,
    which needs an :class:`~nbdistill.models.moe.MoEMLP` teacher whose stem and head have the
    shapes of the student's first and last Linear layers). The paper adds no per-expert or
    gate-aware term, and neither does this method.
    """

    supports_teacher_cache = True

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        teacher_weight: float = 0.25,
        init_from_teacher: bool = False,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
    ):
        super().__init__(student, teacher, lr=lr, weight_decay=weight_decay)
        self.save_hyperparameters(ignore=["student", "teacher"])
        self.teacher_weight = teacher_weight
        if init_from_teacher:
            copy_non_expert_weights(teacher, student)

    def loss_terms(self, batch: Any) -> dict:
        x, y = batch[0], batch[1]
        return losses.switch_distillation(self.student(x), self.teacher_logits(x), y, self.teacher_weight)


def copy_non_expert_weights(teacher: nn.Module, student: nn.Module) -> None:
    """Copy a :class:`MoEMLP` teacher's stem and head into the student's first and last ``nn.Linear``."""
    from ...models.moe import MoEMLP

    moe = next((m for m in teacher.modules() if isinstance(m, MoEMLP)), None)
    if moe is None:
        raise ConfigError("init_from_teacher needs a mixture-of-experts teacher (nbdistill.models.MoEMLP, e.g. zoo 'digits-moe')")
    linears = [m for m in student.modules() if isinstance(m, nn.Linear)]
    pairs = list(zip(moe.non_expert_layers(), (linears[0], linears[-1]) if linears else ()))
    shapes = [(tuple(t.weight.shape), tuple(s.weight.shape)) for t, s in pairs]
    if len(pairs) != 2 or any(a != b for a, b in shapes):
        raise ConfigError(
            "init_from_teacher: the student's first and last Linear must have the shapes of the teacher's "
            f"stem and head {[tuple(t.weight.shape) for t in moe.non_expert_layers()]}, got "
            f"{[b for _, b in shapes] or 'no Linear layers'}"
        )
    with torch.no_grad():
        for t, s in pairs:
            s.weight.copy_(t.weight)
            s.bias.copy_(t.bias)
