"""kd.otd: the trajectory subspace and the steering, by hand and by an explicit projection matrix;
the source phase; the refusal of data without a source domain; the DigitsShift data."""

import pytest
import pytorch_lightning as pl
import torch

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.families.kd.pipelines.otd_subspace import energy_captured, steer, trajectory_subspace

TOL = {"rtol": 1e-10, "atol": 1e-12}  # float64 linear algebra, computed two ways


def _orthonormal(rows, cols, seed):
    q, _ = torch.linalg.qr(torch.randn(rows, cols, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)))
    return q


def test_subspace_is_the_span_of_the_top_right_singular_vectors():
    u, v = _orthonormal(12, 5, 0), _orthonormal(30, 5, 1)
    singular = torch.tensor([9.0, 5.0, 3.0, 1.0, 0.5], dtype=torch.float64)
    trajectory = u @ torch.diag(singular) @ v.T  # T=12 gradients of P=30 parameters, rank 5
    basis, found = trajectory_subspace(trajectory, rank=2)
    assert basis.shape == (30, 2)
    torch.testing.assert_close(found[:5], singular, **TOL)
    torch.testing.assert_close(basis.T @ basis, torch.eye(2, dtype=torch.float64), **TOL)
    # the same projector as the one onto the two known top directions (signs of singular vectors are free)
    torch.testing.assert_close(basis @ basis.T, v[:, :2] @ v[:, :2].T, **TOL)


def test_rank_is_cut_to_the_trajectory_length():
    basis, _ = trajectory_subspace(torch.randn(3, 10, dtype=torch.float64), rank=8)
    assert basis.shape == (10, 3)
    with pytest.raises(ValueError, match="T x P"):
        trajectory_subspace(torch.randn(10), rank=2)


def test_energy_captured_by_hand():
    torch.testing.assert_close(energy_captured(torch.tensor([3.0, 4.0])), torch.tensor([9 / 25, 1.0], dtype=torch.float64))


def test_steer_by_hand():
    basis = torch.tensor([[1.0], [0.0]], dtype=torch.float64)  # the x axis
    g = torch.tensor([3.0, 4.0], dtype=torch.float64)
    steered, share = steer(g, basis, 0.5)
    torch.testing.assert_close(steered, torch.tensor([3.0, 2.0], dtype=torch.float64), **TOL)
    assert share.item() == pytest.approx(4 / 5)
    torch.testing.assert_close(steer(g, basis, 0.0)[0], g, **TOL)
    torch.testing.assert_close(steer(g, basis, 1.0)[0], torch.tensor([3.0, 0.0], dtype=torch.float64), **TOL)
    assert steer(torch.zeros(2, dtype=torch.float64), basis, 0.5)[1].item() == 0.0


def test_steer_matches_an_explicit_projection_matrix():
    basis = _orthonormal(40, 6, 2)
    g = torch.randn(40, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    projector = basis @ torch.linalg.solve(basis.T @ basis, basis.T)  # P = V (VᵀV)⁻¹ Vᵀ, computed another way
    expected = projector @ g + 0.3 * (torch.eye(40, dtype=torch.float64) - projector) @ g
    torch.testing.assert_close(steer(g, basis, 0.7)[0], expected, **TOL)


def _module(strength=0.5, **kw):
    pl.seed_everything(0, verbose=False)
    return nd.get_method("kd.otd").module_class(student=nd.models.MLP(64, [8], 10), strength=strength, **kw)


def test_hooks_steer_the_body_step_and_leave_the_classifier():
    module = _module(strength=0.5)
    body = module.body()
    n = sum(p.numel() for p in body)
    assert n == 64 * 8 + 8  # the first Linear; the classifier (8 -> 10) is not steered
    module.basis = _orthonormal(n, 3, 4).float()
    before = torch.cat([p.detach().reshape(-1) for p in body]).double()
    head_before = [p.detach().clone() for p in module.student.net[-1].parameters()]
    module.on_before_optimizer_step(None)
    with torch.no_grad():  # an optimiser step: every parameter moves
        for p in module.student.parameters():
            p.add_(torch.randn_like(p))
    head_after = [p.detach().clone() for p in module.student.net[-1].parameters()]
    step = torch.cat([p.detach().reshape(-1) for p in body]).double() - before
    module.on_train_batch_end(None, None, 0)
    basis = module.basis.double()
    expected = before + basis @ (basis.T @ step) + 0.5 * (step - basis @ (basis.T @ step))
    torch.testing.assert_close(torch.cat([p.detach().reshape(-1) for p in body]).double(), expected, rtol=1e-5, atol=1e-5)
    for old, new, p in zip(head_before, head_after, module.student.net[-1].parameters()):
        assert not torch.equal(old, p) and torch.equal(new, p)  # the classifier keeps its whole step


def test_source_phase_records_a_subspace_and_restores_the_initial_weights():
    data = nd.data.DigitsShift(n_target=30, batch_size=30)
    data.setup()
    module = _module(rank=4, source_epochs=2)
    before = {k: v.clone() for k, v in module.student.state_dict().items()}
    module.distil_trajectory(data)
    assert module.basis.shape == (64 * 8 + 8, 4)
    torch.testing.assert_close(module.basis.T @ module.basis, torch.eye(4), rtol=0, atol=1e-5)
    for k, v in module.student.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed: warm_start=False starts the target from the initial weights"
    warm = _module(rank=4, source_epochs=2, warm_start=True)
    warm.distil_trajectory(data)
    assert not torch.equal(warm.student.net[0].weight, before["net.0.weight"])


def test_data_without_a_source_domain_is_refused_before_training(tmp_path):
    with pytest.raises(ConfigError, match="no 'source' split"):
        nd.fit("kd.otd", student=nd.models.MLP(64, [8], 10), data=nd.data.Digits(n_train=60), max_epochs=1, runs_root=tmp_path)


def test_digits_shift_domains():
    data = nd.data.DigitsShift(source_classes=(0, 1, 2), n_target=20)
    data.setup()
    source_y = data.dataset("source").tensors[1]
    assert set(source_y.tolist()) == {0, 1, 2}
    assert data.new_classes == [3, 4, 5, 6, 7, 8, 9]
    train_y = data.dataset("train").tensors[1]
    assert len(train_y) == 20 and set(train_y.tolist()) == set(range(10))
    assert set(data.dataset("test").tensors[1].tolist()) == set(range(10))
    with pytest.raises(ConfigError, match="leave some out"):
        nd.data.DigitsShift(source_classes=range(10))
    with pytest.raises(ConfigError, match="n_target"):
        nd.data.DigitsShift(n_target=5).setup()


@pytest.mark.slow
def test_no_strength_and_no_warm_start_is_the_student_trained_alone(tmp_path):
    """strength = 0 from the initial weights: the source phase leaves no trace on the target run."""
    data = dict(n_target=30, batch_size=10)
    pl.seed_everything(0, verbose=False)
    otd = nd.fit(
        "kd.otd",
        student=nd.models.MLP(64, [8], 10),
        data=nd.data.DigitsShift(**data),
        strength=0.0,
        source_epochs=2,
        max_epochs=3,
        runs_root=tmp_path,
    )
    pl.seed_everything(0, verbose=False)
    alone = nd.fit(
        "kd.student_only", student=nd.models.MLP(64, [8], 10), data=nd.data.DigitsShift(**data), max_epochs=3, runs_root=tmp_path
    )
    for (k, a), b in zip(otd.student().state_dict().items(), alone.student().state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=k)
    assert otd.log.last("otd/spectrum") is not None and otd.log.scalars("otd/outside_share")[0]
