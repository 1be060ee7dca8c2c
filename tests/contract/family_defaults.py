"""What the contract test runs each method on: one entry per family, a few per-method exceptions.

Every model and data module is written once, as a LightningCLI ``{"class_path", "init_args"}``
piece: :func:`instantiate` builds it for :func:`nbdistill.fit` and the panel, and the CLI round
trip writes the same piece into its YAML. A new method of a known family is covered as it is; a
new family adds its entry to :data:`FAMILY_DEFAULTS` (the contract test fails, naming it, until then).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from typing import Any

import nbdistill as nd


def piece(class_path: str, **init_args: Any) -> dict[str, Any]:
    return {"class_path": class_path, "init_args": init_args}


def instantiate(spec: dict[str, Any]) -> Any:
    """Build a ``{"class_path", "init_args"}`` piece, as LightningCLI does."""
    module, _, name = spec["class_path"].rpartition(".")
    return getattr(importlib.import_module(module), name)(**spec.get("init_args", {}))


@dataclass(frozen=True)
class Setting:
    """The tiny default a method is run on: its student, teacher (used only by methods that
    declare ``needs_teacher``) and data, as CLI pieces, and small values of hyper-parameters
    (each applied only to the methods that declare it)."""

    student: dict[str, Any]
    data: dict[str, Any]
    teacher: dict[str, Any] | None = None
    tiny: dict[str, Any] = field(default_factory=dict)

    def hparams(self, method: str) -> dict[str, Any]:
        declared = {h.name for h in nd.get_method(method).hparams}
        return {k: v for k, v in self.tiny.items() if k in declared}

    def teacher_for(self, method: str) -> dict[str, Any] | None:
        return self.teacher if nd.get_method(method).needs_teacher else None


DIGITS = piece("nbdistill.data.Digits", n_train=60, batch_size=30)
DIGITS_IMAGES = piece("nbdistill.data.Digits", n_train=60, batch_size=30, image=True)

#: One tiny default per family. ``tiny`` shrinks the costly knobs (epochs of inner phases, attack
#: steps, expert buffers, synthetic set sizes) wherever a method of the family declares them.
FAMILY_DEFAULTS: dict[str, Setting] = {
    "kd": Setting(
        student=piece("nbdistill.models.MLP", in_features=64, hidden=[8], out_features=10),
        teacher=piece("nbdistill.zoo.ZooTeacher", name="digits-mlp"),
        data=DIGITS,
        tiny={"attack_steps": 1, "eval_attack_steps": 1, "source_epochs": 1},  # MTARD's PGD attacks; kd.otd's source phase
    ),
    "dataset": Setting(
        student=piece("nbdistill.models.ConvNet", in_shape=[1, 8, 8], num_classes=10, width=4, depth=1, norm="instance"),
        data=DIGITS_IMAGES,
        tiny={
            "ipc": 1,
            "eval_epochs": 2,
            "batch_real": 8,
            "outer_loop": 2,
            "inner_loop": 1,
            "squeeze_epochs": 1,
            "syn_steps": 2,
            "expert_epochs": 1,
            "max_start_epoch": 2,
            "initial_max_start_epoch": 1,
            "expansion_end": 2,
            "num_experts": 1,
            "expert_train_epochs": 3,
            "batch_syn": 10,
        },
    ),
    "graph": Setting(  # GNN -> MLP on node classification; no teacher given: the method trains its own GCN first
        student=piece("nbdistill.models.MLP", in_features=34, hidden=[8], out_features=4),
        data=piece("nbdistill.data.graphs.KarateClub"),
        tiny={"teacher_epochs": 10},
    ),
    "score": Setting(  # a shipped diffusion teacher on two moons into a tiny denoiser
        student=piece("nbdistill.models.MLPDenoiser", dim=2, hidden=16, depth=2),
        teacher=piece("nbdistill.zoo.ZooTeacher", name="moons-denoiser"),
        data=piece("nbdistill.data.TwoMoons", n_samples=200, batch_size=50),
        tiny={"teacher_steps": 4, "steps": 1, "round_steps": 1, "eval_samples": 50},
    ),
    "policy": Setting(  # in-context bandit learners: a tiny causal transformer on 5-armed Bernoulli tasks
        student=piece("nbdistill.models.ICTransformer", num_actions=5, max_context=20, width=16, depth=1),
        data=piece("nbdistill.data.BernoulliBandits", arms=5, horizon=20, n_tasks=200, batch_size=40),
        tiny={"eval_tasks": 20},
    ),
}

#: Methods whose inputs differ from their family's default, and why.
METHOD_OVERRIDES: dict[str, dict[str, Any]] = {
    # DisBack records checkpoints x record_steps steps first: one 1-step record, so the 4-step epoch also backtracks (stage 2).
    "score.disback": {"tiny": {**FAMILY_DEFAULTS["score"].tiny, "checkpoints": 1, "record_steps": 1, "stage_steps": 1}},
    # Decoupled DMD needs classes: a class-conditional student on a class-conditional ring, the real score its exact density.
    "score.decoupled_dmd": {
        "student": piece("nbdistill.models.MLPDenoiser", dim=2, hidden=16, depth=2, num_classes=4),
        "data": piece("nbdistill.data.ClassRing", k=8, classes=4, n_samples=200, batch_size=50),
    },
    # Phased DMD switches phase every phase_steps steps: 2 steps, so the 4-step epoch trains both phases.
    "score.phased_dmd": {"tiny": {**FAMILY_DEFAULTS["score"].tiny, "phase_steps": 2}},
    # Rolling Forcing generates sequences of frames: a window denoiser on sine sequences; it trains its own teacher (5 steps here).
    "score.rolling": {
        "student": piece("nbdistill.models.WindowDenoiser", frame_dim=4, frames=8, hidden=16, depth=2),
        "data": piece("nbdistill.data.SineSequences", n_samples=200, batch_size=50),
        "tiny": {**FAMILY_DEFAULTS["score"].tiny, "teacher_train_steps": 5, "frames": 8},
    },
    # score.tscd cuts the teacher's grid (4 tiny steps) into segments, at most one a step: 2 segments, then 1.
    "score.tscd": {"tiny": {**FAMILY_DEFAULTS["score"].tiny, "segments": 2}},
    # One-for-All KD is shown across architectures: a conv teacher reads the 8x8 images.
    "kd.ofa": {
        "teacher": piece("nbdistill.zoo.ZooTeacher", name="digits-convnet"),
        "data": DIGITS_IMAGES,
        "student": piece("nbdistill.models.MLP", in_features=64, hidden=[16, 8], out_features=10),
    },
    # The Switch-Transformers recipe distils a mixture-of-experts teacher.
    "kd.moe_teacher": {"teacher": piece("nbdistill.zoo.ZooTeacher", name="digits-moe")},
    # The signal lesson distils a 1-D transformer teacher into a small CNN on MNIST-1D signals.
    "kd.signal": {
        "teacher": piece("nbdistill.zoo.ZooTeacher", name="mnist1d-convtransformer"),
        "student": piece("nbdistill.models.SignalCNN", in_shape=[1, 40], num_classes=10, width=4),
        "data": piece("nbdistill.data.MNIST1D", num_samples=400, n_train=60, batch_size=30),
    },
    # Optimization trajectory distillation needs a source domain beside the target one.
    "kd.otd": {"data": piece("nbdistill.data.DigitsShift", n_target=30, batch_size=30)},
    # kd.simclr_v2 and kd.unfused pretrain an SSL encoder (then a teacher / a self-distillation) before their
    # Lightning epochs: shrink those phases; 0.5 of the 6 examples a class leaves 3 labelled ones in each.
    "kd.simclr_v2": {"tiny": {"label_fraction": 0.5, "encoder_width": 16, "pretrain_epochs": 1, "finetune_epochs": 1}},
    "kd.unfused": {"tiny": {"label_fraction": 0.5, "encoder_width": 16, "pretrain_epochs": 1, "selfdistill_epochs": 1}},
    # kd.autodistiller distils a fresh student per candidate: 3 candidates of 1 epoch keep the fit short.
    "kd.autodistiller": {"tiny": {**FAMILY_DEFAULTS["kd"].tiny, "budget": 3, "initial": 2, "candidate_epochs": 1}},
    # Fair distillation reads the sensitive attribute s from (x, y, s) batches and trains its own fair teacher.
    "kd.fair": {
        "student": piece("nbdistill.models.MLP", in_features=8, hidden=[8], out_features=2),
        "data": piece("nbdistill.data.FairTabular", num_samples=300, batch_size=64),
        "tiny": {"teacher_epochs": 2},
    },
    # PromptKD trains the prompt tokens of a prompted student, its class_dim the teacher's penultimate width.
    "kd.promptkd": {
        "student": piece("nbdistill.models.PromptedTransformer", width=8, heads=2, depth=1, prompt_depth=1, class_dim=128)
    },
    # KnFu runs one communication round per training step: the one-epoch fit has 2 steps, so 2 rounds.
    "kd.knfu": {"tiny": {**FAMILY_DEFAULTS["kd"].tiny, "rounds": 2, "local_epochs": 1}},
    # CDA recovers images through the batch-norm statistics of its student.
    "dataset.cda": {
        "student": piece("nbdistill.models.ConvNet", in_shape=[1, 8, 8], num_classes=10, width=4, depth=1, norm="batch")
    },
    # MIRAGE distils graph-classification data (a GIN as deep as num_hops), not node data.
    "graph.mirage": {
        "student": piece("nbdistill.models.gnn.GIN", in_channels=7, hidden=8, out_channels=2, num_layers=2),
        "data": piece("nbdistill.data.graphs.BAMotifs", num_graphs=20, batch_size=4),
    },
    # policy.archive (DCG-MAP-Elites) grows a MAP-Elites archive on a 2-D reaching task and distils it into an actor
    # MLP on [x, y, t/T, d_x, d_y]; its data are the grid's cells (2 iterations of 50), with few critic and PG steps.
    "policy.archive": {
        "student": piece("nbdistill.models.MLP", in_features=5, hidden=[8], out_features=2),
        "data": piece("nbdistill.data.ArchiveTargets", grid=10, batch_size=50),
        "tiny": {"critic_steps": 4, "pg_steps": 2},
    },
    # policy.demo_ad reads a teacher's 20-step demonstration on another task before the task's own 20 steps.
    "policy.demo_ad": {"student": piece("nbdistill.models.ICTransformer", num_actions=5, max_context=40, width=16, depth=1)},
    # policy.aacd (TacSL) trains a PPO teacher on a 2-D reaching task's state, then a student actor MLP on the 7-number observation.
    "policy.aacd": {
        "student": piece("nbdistill.models.MLP", in_features=7, hidden=[8], out_features=2),
        "data": piece("nbdistill.data.ReachTasks", n_tasks=64, n_eval=16, horizon=5, batch_size=16),
        "tiny": {"teacher_steps": 2, "teacher_width": 8, "ppo_epochs": 2},
    },
}


def setting_for(method: str) -> Setting:
    """The tiny setting ``method`` is run on; fails, naming the fix, for a family with no default."""
    family = nd.get_method(method).family
    if family not in FAMILY_DEFAULTS:
        raise LookupError(
            f"family {family!r} (method {method}) has no entry in FAMILY_DEFAULTS in {__file__}: "
            "add its tiny default student, teacher, data and hyper-parameters there"
        )
    return replace(FAMILY_DEFAULTS[family], **METHOD_OVERRIDES.get(method, {}))
