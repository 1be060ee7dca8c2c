"""The dataset family on the core contract: hyper-parameters declared once (as before the conversion),
the parts built from them in ``build_parts``, the evaluation in the family's hook."""

import pytest
import torch

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.families.dataset.base import DatasetDistillModule
from nbdistill.families.dataset.datm import DATM
from nbdistill.families.dataset.dc import DC, dc_loops
from nbdistill.families.dataset.dm import DM
from nbdistill.families.dataset.set import SET
from nbdistill.families.dataset.set_gap import DistilledSetGap
from nbdistill.families.dataset.tesla import TESLA

#: The steps Lightning calls that carry the evaluation: the family's hook does it, not an override.
LIGHTNING_STEPS = ("validation_step", "test_step", "on_validation_epoch_end", "on_test_epoch_end", "student_logits")


def _student():
    return nd.models.ConvNet((1, 8, 8), 10, width=4, depth=1, norm="instance")


@pytest.mark.parametrize("method", nd.methods("dataset"))
def test_methods_declare_and_evaluate_through_the_contract(method):
    cls = nd.get_method(method).module_class
    assert issubclass(cls, DatasetDistillModule)
    for klass in cls.__mro__[: cls.__mro__.index(DatasetDistillModule) + 1]:
        assert getattr(vars(klass).get("__init__"), "_declared", True), f"{klass.__name__} writes its own __init__"
        assert not set(LIGHTNING_STEPS) & set(vars(klass)), klass
    assert cls.evaluation_class is DistilledSetGap


def test_shared_hparams_are_declared_on_the_base_and_changed_where_a_method_differs():
    defaults = {m: nd.get_method(m).defaults() for m in nd.methods("dataset")}
    for d in defaults.values():
        assert {"ipc": 10, "augment": True, "eval_epochs": 300, "weight_decay": 0.0}.items() <= d.items()
    assert [defaults[m]["init"] for m in ("dataset.dm", "dataset.dc", "dataset.cda", "dataset.datm", "dataset.set")] == [
        "real",
        "real",
        "noise",
        "correct",
        "representative",
    ]
    assert [defaults[m]["lr"] for m in ("dataset.dm", "dataset.dc", "dataset.cda", "dataset.mtt")] == [1.0, 0.1, 0.25, 100.0]
    assert defaults["dataset.tesla"]["gradient"] == "tesla" and defaults["dataset.mtt"]["gradient"] == "unrolled"
    assert defaults["dataset.ftd"]["ema_decay"] == 0.99 and defaults["dataset.datm"]["ema_decay"] == 0.0


def test_datm_keeps_the_experts_gsam_settings_out_of_its_hyper_parameters():
    """As registered before the conversion: FTD exposes ρ and α; DATM fixes them (ρ 0.01, DATM's α 0.3)."""
    assert {"rho", "gsam_alpha"} <= set(nd.get_method("dataset.ftd").defaults())
    assert not {"rho", "gsam_alpha"} & set(nd.get_method("dataset.datm").defaults())
    recipe = DATM(_student()).expert_recipe()
    assert (recipe.optimizer, recipe.rho, recipe.gsam_alpha) == ("gsam", 0.01, 0.3)


def test_dc_keeps_the_declared_loop_counts_and_uses_its_table_for_zero():
    module = DC(_student(), ipc=20)
    assert (module.outer_loop, module.inner_loop) == (0, 0)  # what was asked, as save_hyperparameters records it
    assert (module.matchings, module.epochs_between) == dc_loops(20) == (20, 25)
    module = DC(_student(), ipc=20, outer_loop=3, inner_loop=4)
    assert (module.matchings, module.epochs_between) == (3, 4)


def test_set_reads_its_inner_momentum_and_penalty_from_the_declared_values():
    module = SET(_student(), inner_momentum=0.5, gradient_penalty=3.0)
    assert module.inner_momentum == 0.5 and module.inner_step_momentum() == 0.5
    assert module.expert_recipe().gradient_penalty == 3.0
    assert TESLA(_student()).inner_step_momentum() == 0.0


@pytest.mark.parametrize(
    ("cls", "hparams", "message"),
    [
        (DM, {"init": "correct"}, r"dataset.dm: hyper-parameter 'init' = 'correct' is not one of \['real', 'noise'\]"),
        (TESLA, {"gradient": "implicit"}, r"dataset.tesla: hyper-parameter 'gradient' = 'implicit' is not one of"),
    ],
)
def test_a_direct_construction_refuses_a_value_outside_the_choices(cls, hparams, message):
    with pytest.raises(ConfigError, match=message):
        cls(_student(), **hparams)


def test_the_evaluation_network_is_trained_once_per_step_on_the_distilled_set():
    module = DM(_student(), ipc=1, eval_epochs=1, augment=False)
    module.images = torch.nn.Parameter(torch.randn(10, 1, 8, 8))
    module.register_buffer("labels", torch.arange(10))
    gap = module.evaluation
    assert isinstance(gap, DistilledSetGap)
    net = gap.network(module)
    assert gap.network(module) is net  # cached: validation batches share one trained network
    x, y = torch.randn(4, 1, 8, 8), torch.arange(4)
    gap.collect(module, (x, y), "val")
    metrics = gap.compute(module, "val")
    assert metrics["student_acc"] == (net(x).argmax(-1) == y).float().mean().item()
