"""MTARD against its update rules (shared/reference/kd.md §4) and PGD against its definition."""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import entropy

import nbdistill as nd
from nbdistill.families.kd.attacks import pgd_attack
from nbdistill.families.kd.losses import teacher_entropy, tempered_teacher_kl, update_temperatures, update_weights


def test_one_weight_step_by_hand():
    # L̂ = (0.9, 0.3) → r = L̂ / mean = (1.5, 0.5) → targets r / Σr = (0.75, 0.25)
    w = update_weights(
        torch.tensor([0.5, 0.5], dtype=torch.float64),
        torch.tensor([0.9, 0.3], dtype=torch.float64),
        torch.ones(2, dtype=torch.float64),
        lr=0.025,
    )
    assert torch.allclose(w, torch.tensor([0.5 + 0.025 * 0.25, 0.5 - 0.025 * 0.25], dtype=torch.float64))


def test_the_objective_falling_more_slowly_gains_weight():
    w = torch.tensor([0.5, 0.5], dtype=torch.float64)
    init = torch.tensor([2.0, 1.0], dtype=torch.float64)
    history = []
    for step in range(200):
        losses = torch.tensor([2.0 * 0.999**step, 1.0 * 0.98**step], dtype=torch.float64)  # adv falls slowly
        w = update_weights(w, losses, init, lr=0.025)
        history.append(w[0].item())
    assert all(b >= a for a, b in itertools.pairwise(history))
    assert history[-1] > 0.8


@pytest.mark.parametrize("lr", [0.025, 0.5, 1.0, 1.7])
def test_weights_stay_on_the_simplex(lr):
    g = torch.Generator().manual_seed(1)
    w = torch.tensor([0.5, 0.5], dtype=torch.float64)
    init = torch.rand(2, generator=g, dtype=torch.float64) + 0.1
    for _ in range(500):
        losses = torch.rand(2, generator=g, dtype=torch.float64) ** 4 * 10 + 1e-9
        w = update_weights(w, losses, init, lr)
        assert (w >= 0).all() and math.isclose(w.sum().item(), 1.0, rel_tol=1e-12)
    three = update_weights(torch.tensor([0.2, 0.3, 0.5]), torch.tensor([1.0, 5.0, 0.1]), torch.ones(3), 0.9)
    assert (three >= 0).all() and math.isclose(three.sum().item(), 1.0, rel_tol=1e-6)


def test_temperatures_stay_in_one_to_ten():
    tau_adv, tau_nat = 1.0, 1.0
    for _ in range(3000):  # the adversarial teacher stays the softer one: τ_adv pushed down, τ_nat up
        tau_adv, tau_nat = update_temperatures(tau_adv, tau_nat, h_adv=2.0, h_nat=1.0, lr=0.01)
        assert 1.0 <= tau_adv <= 10.0 and 1.0 <= tau_nat <= 10.0
    assert tau_adv == 1.0 and tau_nat == 10.0
    for _ in range(3000):
        tau_adv, tau_nat = update_temperatures(tau_adv, tau_nat, h_adv=0.5, h_nat=1.0, lr=0.01)
    assert tau_adv == 10.0 and tau_nat == 1.0
    assert update_temperatures(3.0, 3.0, 1.0, 1.0, 0.5) == (3.0, 3.0)  # equal entropies: no move


def test_temperature_balance_brings_the_entropies_together():
    g = torch.Generator().manual_seed(0)
    sharp = 6 * torch.randn(32, 10, generator=g)
    soft = 0.5 * torch.randn(32, 10, generator=g)
    tau_a, tau_n = 1.0, 1.0  # robust teacher sharp, clean teacher soft
    start = abs(teacher_entropy(sharp, tau_a) - teacher_entropy(soft, tau_n)).item()
    for _ in range(300):
        h_a, h_n = teacher_entropy(sharp, tau_a).item(), teacher_entropy(soft, tau_n).item()
        tau_a, tau_n = update_temperatures(tau_a, tau_n, h_a, h_n, lr=0.05)
    end = abs(teacher_entropy(sharp, tau_a) - teacher_entropy(soft, tau_n)).item()
    assert tau_a > 5.0 and tau_n <= 1.05 + 1e-9 and end < 0.1 * start


def test_entropy_and_tempered_kl_against_scipy():
    g = torch.Generator().manual_seed(2)
    zt, zs = torch.randn(5, 6, generator=g, dtype=torch.float64), torch.randn(5, 6, generator=g, dtype=torch.float64)
    tau = 2.5
    pt, ps = torch.softmax(zt / tau, -1).numpy(), torch.softmax(zs, -1).numpy()  # only the teacher tempered
    kl = np.mean([entropy(pt[i], ps[i]) for i in range(5)])
    assert tempered_teacher_kl(zt, zs, tau).item() == pytest.approx(kl, rel=1e-10)
    assert teacher_entropy(zt, tau).item() == pytest.approx(np.mean([entropy(p) for p in pt]), rel=1e-10)


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


def test_pgd_increases_the_loss_and_respects_the_ball_and_the_box():
    net = _net()
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(32, 8, generator=g), torch.randint(0, 3, (32,), generator=g)
    lower, upper = torch.full((8,), -1.5), torch.full((8,), 1.5)
    eps = 0.3
    for start in ("uniform", "normal", "none"):
        adv = pgd_attack(net, x, y, eps, eps / 4, 10, start, lower, upper)
        assert (adv - x).abs().max() <= eps + 1e-6
        inside = (x >= lower) & (x <= upper)
        assert ((adv >= lower - 1e-6) & (adv <= upper + 1e-6))[inside].all()  # clean points in the box stay in it
        with torch.no_grad():
            assert F.cross_entropy(net(adv), y) > F.cross_entropy(net(x), y) + 0.05
    assert net.training and all(p.grad is None for p in net.parameters())


def test_pgd_works_inside_inference_mode_with_a_frozen_model():
    net = _net().eval().requires_grad_(False)
    x, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 0])
    with torch.inference_mode():
        adv = pgd_attack(net, x, y, 0.1, 0.05, 3)
    assert (adv - x).abs().max() <= 0.1 + 1e-6 and not net.training


def test_two_teachers_are_needed_and_bad_epsilon_is_refused(runs_root):
    t = nd.zoo.teacher("digits-mlp")
    with pytest.raises(nd.ConfigError, match="clean and a robust teacher"):
        nd.build("kd.mtard", nd.models.MLP(64, [8], 10), teachers=[t, t, t])
    with pytest.raises(nd.ConfigError, match="'epsilon' = -0.1 is outside its range"):
        nd.fit("kd.mtard", student=nd.models.MLP(64, [8], 10), teacher=t, data=nd.data.Digits(n_train=100), epsilon=-0.1)
    assert not runs_root.exists() or not any(runs_root.iterdir())


def test_fit_reports_clean_and_pgd_accuracy_and_balances():
    data = nd.data.Digits(n_train=100)
    run = nd.fit(
        "kd.mtard",
        student=nd.models.MLP(64, [16], 10),
        teacher=nd.zoo.teacher("digits-mlp"),
        data=data,
        max_epochs=1,
        attack_steps=2,
        eval_attack_steps=3,
    )
    m = run.metrics
    assert run.status == "finished"
    for name in ("student_acc", "student_pgd_acc", "robust_teacher_pgd_acc", "clean_teacher_pgd_acc"):
        assert 0.0 <= m[f"test/{name}"] <= 1.0
    # the zoo's adversarially trained teacher resists the attack better than the clean one
    assert m["test/robust_teacher_pgd_acc"] > m["test/clean_teacher_pgd_acc"] + 0.2
    w_adv, w_nat, tau_adv, tau_nat, init_adv, init_nat = run.module.balance.tolist()
    assert w_adv + w_nat == pytest.approx(1.0) and w_adv != 0.5  # two steps moved the weights
    assert 1.0 <= tau_adv <= 10.0 and 1.0 <= tau_nat <= 10.0 and init_adv > 0 and init_nat > 0


@pytest.mark.slow
def test_example_config_runs_from_the_cli(run_example_config, example_hparams):
    info = run_example_config("kd_mtard_digits.yaml", "kd.mtard")
    assert example_hparams("kd_mtard_digits.yaml").items() <= info["hparams"].items()
