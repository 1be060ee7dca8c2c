"""The lean training path of ``nd.fit``: direct logging, stepping in ``training_step``, one callback.

Each is a speed measure (see bench/kd_throughput.py); these tests check that they change nothing
a user can see: the same weights, the same logged steps, metrics still visible to callbacks.
"""

import pytest
import pytorch_lightning as pl
import torch

import nbdistill as nd
from nbdistill.core.callbacks import RunControl
from nbdistill.core.module import DistillModule


@pytest.fixture(scope="module")
def teacher():
    return nd.zoo.teacher("digits-mlp")


def student():
    torch.manual_seed(2)
    return nd.models.MLP(64, [16], 10)


def fit(teacher, **kw):
    return nd.fit("kd.hinton", student=student(), teacher=teacher, data=nd.data.Digits(), max_epochs=2, seed=5, **kw)


def test_stepping_in_training_step_gives_the_automatic_loops_weights(teacher, monkeypatch):
    fast = fit(teacher)
    assert fast.module.automatic_optimization is False
    monkeypatch.setattr(DistillModule, "_can_step_itself", lambda self: False)
    auto = fit(teacher)
    assert auto.module.automatic_optimization is True
    assert fast.module.global_step == auto.module.global_step == 34
    # Exact, not a tolerance: both paths run the same kernels on the same batches in this process
    # (the same fused Adam, the same backward); only who calls optimizer.step() differs.
    for a, b in zip(fast.module.student.parameters(), auto.module.student.parameters()):
        assert torch.equal(a, b)
    assert fast.scalars("train/loss") == auto.scalars("train/loss")
    assert fast.metrics["test/student_acc"] == auto.metrics["test/student_acc"]


def test_gradient_clipping_keeps_lightnings_automatic_loop(teacher):
    """Manual stepping would skip the Trainer's clipping: with it set, the automatic loop runs."""
    clipped = fit(teacher, trainer_kwargs={"gradient_clip_val": 1e-3})
    plain = fit(teacher)
    assert clipped.module.automatic_optimization is True and clipped.status == "finished"
    changed = [not torch.equal(a, b) for a, b in zip(clipped.module.student.parameters(), plain.module.student.parameters())]
    assert any(changed)  # the clipping took effect


def test_terms_are_logged_on_the_kept_steps_with_their_epoch(teacher):
    run = fit(teacher)
    for name in ("train/loss", "train/ce", "train/kd"):
        steps, values = run.scalars(name)
        assert steps == list(range(4, 34, 5)), name  # every 5th batch, at the steps before it, as Lightning logs
        assert all(torch.isfinite(torch.tensor(values)))
    epochs = {e["step"]: e["epoch"] for e in run.log.of("train/loss")}
    assert epochs == {s: s // 17 for s in epochs}  # 17 batches an epoch
    loss = dict(zip(*run.scalars("train/loss")))
    ce, kd = dict(zip(*run.scalars("train/ce"))), dict(zip(*run.scalars("train/kd")))
    for s in loss:  # the total is alpha·ce + (1 − alpha)·kd of the same step
        assert loss[s] == pytest.approx(0.1 * ce[s] + 0.9 * kd[s], rel=1e-5)


def test_validation_metrics_reach_callbacks_and_the_run_folder(teacher):
    run = fit(teacher)
    metrics = run.module.trainer.callback_metrics
    steps, acc = run.scalars("val/student_acc")
    assert steps == [17, 34] and float(metrics["val/student_acc"]) == pytest.approx(acc[-1])
    assert {"val/teacher_acc", "val/agreement", "val/kl"} <= set(metrics)


def test_a_foreign_logger_still_gets_the_terms_through_self_log(teacher, tmp_path):
    """Without the run logger (a Trainer of one's own), terms go through Lightning's ``self.log``."""
    from pytorch_lightning.loggers import CSVLogger

    module = nd.build("kd.hinton", student(), teacher)
    trainer = pl.Trainer(
        max_epochs=1,
        logger=CSVLogger(tmp_path),
        log_every_n_steps=5,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(module, datamodule=nd.data.Digits())
    metrics = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    assert "train/loss" in metrics and "val/student_acc" in metrics


def test_one_callback_carries_status_guard_stop_and_resume(teacher):
    run = fit(teacher, progress=lambda done, total, metrics: None)
    controls = [cb for cb in run.module.trainer.callbacks if isinstance(cb, RunControl)]
    ours = [cb for cb in run.module.trainer.callbacks if type(cb).__module__ == "nbdistill.core.callbacks"]
    assert len(controls) == 1 and ours == controls
    assert controls[0].progress.total == 34


class _TermsOf(nd.get_method("kd.hinton").module_class):
    """Hinton KD that also returns an extra term: a float, or a per-sample vector (a mistake)."""

    extra = None

    def loss_terms(self, batch):
        terms = super().loss_terms(batch)
        terms["extra"] = self.extra(batch)
        return terms


def test_float_terms_are_logged_and_a_vector_term_is_named_in_the_error(teacher):
    module = _TermsOf(student(), teacher)
    module.extra = lambda batch: 0.5
    trainer_kwargs = dict(
        max_epochs=1,
        logger=nd.core.RunLogger(),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        log_every_n_steps=5,
    )
    logger = trainer_kwargs["logger"]
    pl.Trainer(**trainer_kwargs).fit(module, datamodule=nd.data.Digits())
    steps, values = nd.runs.open(logger.folder).scalars("train/extra")
    assert steps == [4, 9, 14] and values == [0.5, 0.5, 0.5]
    trainer_kwargs["logger"] = nd.core.RunLogger()
    module.extra = lambda batch: batch[0].sum(-1)  # shape [B]
    with pytest.raises(ValueError, match=r"_TermsOf.loss_terms returned 'extra' of shape \(64,\): every term must be a scalar"):
        pl.Trainer(**trainer_kwargs).fit(_copy_extra(module, teacher), datamodule=nd.data.Digits())


def _copy_extra(module, teacher):
    fresh = _TermsOf(student(), teacher)
    fresh.extra = module.extra
    return fresh


def test_plain_attribute_fast_path_and_precomputed_signatures_change_nothing(teacher):
    import inspect

    from torch import nn

    module = nd.build("kd.hinton", student(), teacher)
    state = set(module.state_dict())
    module._current_fx_name = "training_step"
    module.last_terms = {"loss": torch.tensor(1.0)}
    module._cached_batch = (torch.zeros(2, 64), torch.zeros(2, 10))
    assert module.__dict__["_current_fx_name"] == "training_step" and module.last_terms["loss"] == 1.0
    assert set(module.state_dict()) == state  # plain attributes: nothing registered, nothing saved
    module.extra_head = nn.Linear(2, 2)  # any other name still registers as nn.Module does
    assert "extra_head" in module._modules and any(n.startswith("extra_head.") for n, _ in module.named_parameters())
    for hook in (module.training_step, module.validation_step, module.test_step):
        assert list(inspect.signature(hook).parameters) == ["batch", "batch_idx"]


def test_a_finished_run_resumed_for_more_epochs_continues_from_its_last_step(teacher):
    """The checkpoint of a finished run says its epoch's batches are all done: the next epoch starts
    afresh (no skip of a whole epoch, no empty batch)."""
    first = fit(teacher)
    more = nd.resume(first, teacher=teacher, student=student(), data=nd.data.Digits(), max_epochs=4, seed=5)
    assert more.status == "finished" and more.module.global_step == 68
    steps = more.scalars("train/loss")[0]
    assert steps == list(range(4, 68, 5)) and all(v == v for v in more.scalars("train/loss")[1])


def test_a_run_stopped_under_lightnings_automatic_loop_resumes_on_the_lean_path(teacher, monkeypatch):
    """Lightning counts steps per loop: a checkpoint from the automatic loop (another Trainer setting,
    an older nbdistill) resumed on the lean path keeps its global step."""
    import threading

    monkeypatch.setattr(DistillModule, "_can_step_itself", lambda self: False)
    stop = threading.Event()
    part = fit(teacher, stop_event=stop, observers=[lambda e: stop.set() if e["step"] >= 20 else None])
    assert part.status == "stopped" and part.module.automatic_optimization
    monkeypatch.undo()
    done = nd.resume(part, teacher=teacher, student=student(), data=nd.data.Digits(), max_epochs=2, seed=5)
    assert done.module.automatic_optimization is False and done.module.global_step == 34
    steps = done.scalars("train/loss")[0]
    assert steps == sorted(steps) and steps[-1] == 29 and len(steps) == len(set(steps))


def test_another_logger_or_callback_takes_lightnings_ordinary_path(teacher, tmp_path):
    """With a user's logger (or callback) beside the run logger, as ``nbdistill fit`` may have it,
    terms and metrics go through ``self.log`` (so that logger sees them) and the automatic loop runs."""
    from pytorch_lightning.loggers import CSVLogger

    from nbdistill.core.logger import RunLogger

    module = nd.build("kd.hinton", student(), teacher)
    run_logger = RunLogger()
    trainer = pl.Trainer(
        max_epochs=1,
        logger=[run_logger, CSVLogger(tmp_path)],
        callbacks=[RunControl()],
        log_every_n_steps=5,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(module, datamodule=nd.data.Digits())
    assert module._lean is False and module.automatic_optimization is True
    csv = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    assert "train/loss" in csv and "val/student_acc" in csv
    run = nd.runs.open(run_logger.folder)  # the run folder gets them too
    assert run.scalars("train/loss")[0] == [4, 9, 14] and run.log.of("val/agreement_matrix")  # as on the lean path
