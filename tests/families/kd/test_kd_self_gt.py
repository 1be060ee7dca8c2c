"""Self-distillation with ground-truth weighting against its math (shared/reference/kd.md §5)."""

import numpy as np
import pytest
import torch

from nbdistill.families.kd.kernel_ridge import closed_form_coefficients, iterative_self_distillation, optimal_alpha, rbf_kernel
from nbdistill.families.kd.losses import self_distillation_loss
from nbdistill.families.kd.self_gt import generation_bounds

# The 11 noisy points of Mobahi et al. (2020), as used by Borup & Andersen's toy example.
X = np.arange(11)[:, None] / 10
Y = np.array(
    [
        0.38476636465198066,
        1.2333967683416893,
        1.33232242218057,
        0.69201594888895180,
        -0.29756145531871736,
        -0.24189291901377769,
        -0.7964485769175675,
        -0.9616480167034174,
        -0.49672509509916934,
        -0.3469066003991437,
        0.5589512650600734,
    ]
)
GAMMA, LAM = 80.0, 0.2
GRID = np.arange(101)[:, None] / 100
TRUE = np.sin(2 * np.pi * GRID[:, 0])


def _loss(coef):
    return np.mean((rbf_kernel(GRID, X, GAMMA) @ coef - TRUE) ** 2)


@pytest.mark.parametrize("alpha", [0.0, 0.35, 0.8])
def test_closed_form_equals_iterative_refits(alpha):
    K = rbf_kernel(X, X, GAMMA)
    iterative = iterative_self_distillation(K, Y, LAM, alpha, steps=8)
    for step, coef in enumerate(iterative, start=1):
        np.testing.assert_allclose(closed_form_coefficients(K, Y, LAM, alpha, step), coef, rtol=1e-7, atol=1e-9)


def test_limit_is_amplified_regularisation_and_reached_by_iterating():
    K = rbf_kernel(X, X, GAMMA)
    alpha = 0.35
    limit = closed_form_coefficients(K, Y, LAM, alpha, np.inf)
    # the limit solves the original problem with λ/α
    np.testing.assert_allclose(limit, np.linalg.solve(K + (LAM / alpha) * np.eye(11), Y), rtol=1e-7)
    far = iterative_self_distillation(K, Y, LAM, alpha, steps=200)[-1]
    np.testing.assert_allclose(far, limit, rtol=1e-6, atol=1e-9)


def test_readme_toy_table_is_reproduced():
    # Kennethborup/self_distillation README: loss against the noise-free sinusoid per step
    K = rbf_kernel(X, X, GAMMA)
    table = {
        0.0: [0.16477, 0.15076, 0.14915, 0.15561, 0.16735, 0.18251],
        0.35: [0.16477, 0.15424, 0.15089, 0.14983, 0.14954, 0.14948],
    }
    for alpha, expected in table.items():
        got = [round(_loss(c), 5) for c in iterative_self_distillation(K, Y, LAM, alpha, steps=6)]
        assert got == expected
    assert round(_loss(closed_form_coefficients(K, Y, LAM, 0.35, np.inf)), 5) == 0.14959
    assert round(float(np.mean(TRUE**2)), 5) == 0.49505  # α = 0's limit, the zero function


def test_alpha_zero_collapses_to_zero_and_alpha_positive_does_not():
    K = rbf_kernel(X, X, GAMMA)
    zero = iterative_self_distillation(K, Y, LAM, 0.0, steps=400)[-1]
    assert np.abs(K @ zero).max() < 1e-3
    kept = iterative_self_distillation(K, Y, LAM, 0.35, steps=400)[-1]
    assert np.abs(K @ kept).max() > 0.5


def test_optimal_alpha_matches_grid_search():
    K = rbf_kernel(X, X, GAMMA)
    Kg = rbf_kernel(GRID, X, GAMMA)
    solve = np.linalg.inv(K + LAM * np.eye(11))
    teacher = K @ iterative_self_distillation(K, Y, LAM, 0.0, steps=2)[-1]  # some previous step's predictions
    f0, f1 = Kg @ solve @ teacher, Kg @ solve @ Y
    alpha = optimal_alpha(f0, f1, TRUE)
    grid = np.linspace(0, 1, 2001)
    losses = [np.mean((Kg @ solve @ (a * Y + (1 - a) * teacher) - TRUE) ** 2) for a in grid]
    assert abs(alpha - grid[int(np.argmin(losses))]) < 1e-3
    assert optimal_alpha(f0, f1, f1) == pytest.approx(1.0)
    assert optimal_alpha(f0, f1, f0) == pytest.approx(0.0)


def test_deep_loss_is_squared_error_to_the_mixed_target_up_to_a_constant():
    g = torch.Generator().manual_seed(0)
    zs, zt = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    alpha = 0.3
    onehot = torch.nn.functional.one_hot(y, 4).double()
    ps, pt = zs.softmax(-1), zt.softmax(-1)
    mixed = alpha * onehot + (1 - alpha) * pt
    const = alpha * (1 - alpha) * ((onehot - pt) ** 2).mean()
    ours = self_distillation_loss(zs, y, zt, alpha)["loss"]
    assert torch.allclose(ours, ((ps - mixed) ** 2).mean() + const)
    assert torch.allclose(self_distillation_loss(zs, y, None, alpha)["loss"], ((ps - onehot) ** 2).mean())


def test_deep_loss_has_the_authors_parameter_norm_regulariser():
    """self_distiller.py: loss += reg_coef · Σ_p ‖p‖₂ (Frobenius norms, not squared), reg_coef 1e-4 by default."""
    import nbdistill as nd
    from nbdistill.families.kd.losses import parameter_norm
    from nbdistill.families.kd.self_gt import SelfDistillationGT

    assert nd.get_method("kd.self_gt").defaults()["reg_coef"] == 1e-4
    torch.manual_seed(0)
    student = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3)).double()
    module = SelfDistillationGT(student, reg_coef=0.01)
    x, y = torch.randn(7, 5, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    expected_norm = sum(float(torch.sqrt((p.detach() ** 2).sum())) for p in student.parameters())
    assert float(parameter_norm(student).detach()) == pytest.approx(expected_norm, rel=1e-12)
    terms = module.loss_terms((x, y))
    plain = self_distillation_loss(student(x), y, None, 0.01)["loss"]
    assert float(terms["loss"].detach()) == pytest.approx(float(plain.detach()) + 0.01 * expected_norm, rel=1e-12)
    assert float(terms["reg"].detach()) == pytest.approx(expected_norm, rel=1e-12)
    weight = student[0].weight
    (grad,) = torch.autograd.grad(terms["loss"] - plain, weight)
    assert torch.allclose(grad, 0.01 * weight.detach() / weight.detach().norm(), rtol=1e-10, atol=0)


def test_generations_split_the_epochs():
    assert generation_bounds(30, 2) == [10, 20]
    assert generation_bounds(10, 3) == [2, 5, 7]
    assert generation_bounds(2, 3) == [1]  # too few epochs merge generations


@pytest.mark.slow
def test_example_config_runs_from_the_cli(run_example_config, example_hparams):
    info = run_example_config("kd_self_gt_digits.yaml", "kd.self_gt", max_epochs=3)
    assert example_hparams("kd_self_gt_digits.yaml").items() <= info["hparams"].items()


def test_a_run_resumed_from_a_periodic_checkpoint_switches_generation_like_an_uninterrupted_one(runs_root):
    """The periodic checkpoint is written at an epoch's end before the module's own epoch-end hook;
    a generation switched there was lost on resume. It now switches when the next generation's
    first epoch starts, so a run that crashed just after a boundary still switches once resumed."""
    import nbdistill as nd

    def crash_at_step_5(done, total, metrics):
        if done == 5:  # the first batch of epoch 2 (2 batches an epoch), the second generation's first
            raise RuntimeError("the machine went away")

    def fit(**kwargs):
        return nd.fit(
            "kd.self_gt",
            student=nd.models.MLP(64, [8], 10),
            data=nd.data.Digits(n_train=128, batch_size=64),
            distillation_steps=1,
            **kwargs,
        )

    whole = fit(max_epochs=4)
    assert int(whole.module.generation) == 1
    with pytest.raises(nd.TrainingFailed):
        fit(max_epochs=4, checkpoint_every_epochs=2, progress=crash_at_step_5, run_id="crashed")
    crashed = nd.runs.open("crashed")
    assert crashed.status == "failed" and crashed.epochs_done() == 2
    resumed = nd.resume(crashed, student=nd.models.MLP(64, [8], 10), data=nd.data.Digits(n_train=128, batch_size=64))
    assert resumed.status == "finished" and int(resumed.module.generation) == 1
