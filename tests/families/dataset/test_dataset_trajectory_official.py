"""Trajectory methods against their official code: SET's weight perturbation (AST), MTT's learned lr,
DATM's loss threshold, FTD's GSAM α."""

import warnings

import pytest
import torch
from torch import nn

import nbdistill as nd
from nbdistill.families.dataset.datm import DATM
from nbdistill.families.dataset.ftd import FTD
from nbdistill.families.dataset.mtt import MTT
from nbdistill.families.dataset.set import SET

TINY = {"syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 2, "num_experts": 1, "expert_train_epochs": 3, "batch_syn": 10}


def _data():
    return nd.data.Digits(image=True, n_train=60, batch_size=30)  # two outer iterations an epoch


def _student():
    return nd.models.ConvNet((1, 8, 8), 10, width=4, depth=1, norm="instance")


# -- SET: AST's weightPerturb ----------------------------------------------------------------------


def test_set_perturbs_only_conv_kernels_without_a_mask_at_alpha_one():
    """AST ``distill.py``: W + α (d/‖d‖_F) ⊙ W for 4-D kernels only, d ~ N(0, 1), called with α = 1."""
    assert nd.get_method("dataset.set").defaults()["weight_perturb"] == 1.0
    module = SET(_student())
    assert module.weight_perturb == 1.0
    shapes, numels = module.flat.shapes, module.flat.numels
    assert any(len(s) == 4 for s in shapes) and any(len(s) != 4 for s in shapes)
    theta = torch.randn(module.flat.size, generator=torch.Generator().manual_seed(0))
    out = module.start_parameters(theta, torch.Generator().manual_seed(7))
    replay = torch.Generator().manual_seed(7)
    for before, after, shape in zip(theta.split(numels), out.split(numels), shapes):
        if len(shape) != 4:
            assert torch.equal(after, before)  # biases, norm scales and linear layers untouched
            continue
        d = torch.randn(before.shape, generator=replay)
        expected = before + d / d.norm() * before
        torch.testing.assert_close(after, expected, rtol=1e-6, atol=1e-7)
        assert (after != before).all()  # no entry masked out


def test_set_warns_once_that_an_mlp_has_nothing_to_perturb():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))
    with pytest.warns(UserWarning, match="perturbs only 4-D convolution kernels") as caught:
        module = SET(mlp)
    assert len([w for w in caught if "4-D" in str(w.message)]) == 1
    theta = torch.randn(module.flat.size)
    assert torch.equal(module.start_parameters(theta, torch.Generator().manual_seed(1)), theta)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SET(mlp, weight_perturb=0.0)  # off: nothing to say


# -- MTT: the learned inner lr stays positive and is the lr evaluated --------------------------------


def test_mtt_keeps_the_learned_lr_positive_and_evaluates_at_it():
    """At lr_lr 0.1 plain SGD drives α below zero within four iterations; it is clamped at its floor."""
    run = nd.fit("dataset.mtt", student=_student(), data=_data(), max_epochs=2, ipc=1, eval_epochs=1, seed=0, lr_lr=0.1, **TINY)
    module = run.module
    alpha = float(module.syn_lr.detach())
    assert module.min_syn_lr == pytest.approx(MTT.MIN_SYN_LR_FRACTION * 0.03)
    assert module.min_syn_lr > 0 and alpha == pytest.approx(module.min_syn_lr, rel=1e-6)  # at its floor (float32)
    assert module.eval_settings().lr == alpha


def test_mtt_leaves_an_lr_above_its_floor_as_sgd_made_it():
    run = nd.fit("dataset.mtt", student=_student(), data=_data(), max_epochs=1, ipc=1, eval_epochs=1, seed=0, lr_lr=0.0, **TINY)
    assert float(run.module.syn_lr.detach()) == pytest.approx(0.03, rel=1e-7)
    assert run.module.eval_settings().lr == pytest.approx(0.03, rel=1e-7)


# -- DATM: skip an iteration whose matching loss exceeds the threshold -------------------------------


DATM_TINY = {**TINY, "initial_max_start_epoch": 1, "expansion_end": 2, "ipc": 1, "eval_epochs": 1, "seed": 4, "max_epochs": 1}


def _start(module):
    images, _ = module.initial_set(torch.Generator().manual_seed(module.seed))
    return images


def test_datm_threshold_skips_every_update_when_no_loss_is_below_it():
    """DATM.py: ``if grand_loss <= threshold: step`` (images, lr, labels); otherwise nothing moves."""
    assert nd.get_method("dataset.datm").defaults()["threshold"] == 1.0
    skipped = nd.fit("dataset.datm", student=_student(), data=_data(), threshold=0.0, **DATM_TINY).module
    taken = nd.fit("dataset.datm", student=_student(), data=_data(), threshold=1e6, **DATM_TINY).module
    start = _start(skipped)
    assert torch.equal(skipped.images.detach(), start)
    assert float(skipped.syn_lr.detach()) == pytest.approx(0.03, rel=1e-7)
    assert torch.equal(skipped.label_logits.detach(), _initial_logits(skipped, start))
    assert not torch.equal(taken.images.detach(), _start(taken))
    assert not torch.equal(taken.label_logits.detach(), _initial_logits(taken, _start(taken)))
    assert skipped.global_step == taken.global_step == 2  # a skipped iteration still counts


def _initial_logits(module, images):
    logits = module.expert_logits(images)
    right = (logits.argmax(-1) == module.labels).unsqueeze(-1)
    counts = right.sum(0)
    return torch.where(counts > 0, (logits * right).sum(0) / counts.clamp_min(1), logits.mean(0))


# -- FTD / DATM: the experts' GSAM α ------------------------------------------------------------------


def test_ftd_default_gsam_alpha_is_ftds_and_datm_keeps_its_own():
    assert nd.get_method("dataset.ftd").defaults()["gsam_alpha"] == 0.4  # FTD buffer_FTD.py --alpha default
    assert FTD(_student()).expert_recipe().gsam_alpha == 0.4
    assert DATM(_student()).expert_recipe().gsam_alpha == 0.3  # DATM README: --alpha=0.3
