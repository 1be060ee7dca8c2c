"""``fit``'s arguments in three groups: hyper-parameters, trainer options, run options, given as
groups or flat (each flat name sorted into its group)."""

from __future__ import annotations

import pytest

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.core.options import RunOptions, TrainerOptions, group_arguments


def test_flat_names_are_sorted_into_their_groups():
    hparams, trainer, run = group_arguments(
        {"max_epochs": 3, "seed": 7, "temperature": 2.0, "trainer_kwargs": {"limit_train_batches": 2}}
    )
    assert hparams == {"temperature": 2.0}
    assert trainer == TrainerOptions(max_epochs=3, extra={"limit_train_batches": 2})
    assert run == RunOptions(seed=7)


def test_groups_given_as_dicts_and_flat_names_combine():
    hparams, trainer, run = group_arguments(
        {"alpha": 0.5}, hparams={"temperature": 3.0}, trainer={"max_epochs": 2}, run={"seed": 1}
    )
    assert hparams == {"temperature": 3.0, "alpha": 0.5}
    assert (trainer.max_epochs, run.seed) == (2, 1)


def test_a_hyper_parameter_given_twice_or_an_unknown_option_is_refused():
    with pytest.raises(ConfigError, match="'temperature' is given twice"):
        group_arguments({"temperature": 2.0}, hparams={"temperature": 3.0})
    with pytest.raises(ConfigError, match=r"unknown trainer option\(s\) \['max_epoch'\]"):
        group_arguments({}, trainer={"max_epoch": 2})
    with pytest.raises(ConfigError, match="run= must be a RunOptions or a dict"):
        group_arguments({}, run=3)


def test_fit_takes_the_groups(runs_root):
    run = nd.fit(
        "kd.hinton",
        teacher=nd.zoo.teacher("digits-mlp"),
        student=nd.models.MLP(64, [16], 10),
        data=nd.data.Digits(),
        hparams={"temperature": 2.0},
        trainer=TrainerOptions(max_epochs=1),
        run={"seed": 3, "runs_root": runs_root},
    )
    assert run.status == "finished" and run.hparams["temperature"] == 2.0 and run.epochs_done() == 1
