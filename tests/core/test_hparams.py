"""Hyper-parameters declared once as ``HParam`` class attributes: the generated ``__init__``, the
order, inheritance, redeclaration and dropping, ``build_parts``, and a hand-written ``__init__`` refused."""

from __future__ import annotations

import inspect
import typing

import pytest
import torch
from torch import nn

from nbdistill.core.hparams import HParam, declared_hparams
from nbdistill.core.module import DistillModule


class _Family(DistillModule):
    width = HParam(int, 4, 1, 64, help="width of the head")
    lr = HParam(float, 0.5, 1e-5, 1.0, log=True, help="a family's own default learning rate")


class _Method(_Family):
    beta = HParam(float, 1.0, 0.0, 10.0, help="weight")
    weight_decay = None  # dropped: this method has no weight decay

    def build_parts(self) -> None:
        self.head = nn.Linear(self.width, 2)

    def loss_terms(self, batch):
        return {"loss": torch.zeros(())}


def test_the_declarations_make_the_signature_in_order_own_first():
    assert [h.name for h in declared_hparams(_Method)] == ["beta", "width", "lr"]
    params = inspect.signature(_Method.__init__).parameters
    assert list(params) == ["self", "student", "teacher", "teachers", "beta", "width", "lr"]
    assert [params[n].default for n in ("beta", "width", "lr")] == [1.0, 4, 0.5]
    hints = typing.get_type_hints(_Method.__init__)
    assert (hints["beta"], hints["width"], hints["student"]) == (float, int, nn.Module)


def test_the_generated_init_sets_records_and_builds():
    module = _Method(nn.Linear(3, 2), width=8)
    assert (module.beta, module.width, module.lr) == (1.0, 8, 0.5)
    assert dict(module.hparams) == {"beta": 1.0, "width": 8, "lr": 0.5}
    assert module.head.in_features == 8, "build_parts runs after the hyper-parameters are set"
    assert module.weight_decay is None and len(module.teachers) == 0


def test_a_method_that_writes_its_own_init_is_refused():
    with pytest.raises(TypeError, match="defines __init__: declare its hyper-parameters as HParam class attributes"):

        class _Own(DistillModule):
            def __init__(self, student):
                super().__init__(student)


def test_an_hparam_needs_a_type_and_a_default_and_a_matching_name():
    with pytest.raises(TypeError, match="needs a type and a default"):
        HParam(float)
    # (Python < 3.12 wraps an error of __set_name__ in a RuntimeError whose cause it is)
    with pytest.raises((TypeError, RuntimeError)) as info:

        class _Misnamed(DistillModule):
            beta = HParam("gamma", float, 1.0)

    error = info.value if isinstance(info.value, TypeError) else info.value.__cause__
    assert "declares HParam named 'gamma': the names must agree" in str(error)
