"""score.tscd: the segment edges, k = 1 is consistency distillation, the loss's fixed point and the k-step sampler
against the exact teacher's ODE (float64), the halving stages and their checkpoint, the refusals."""

from __future__ import annotations

import pytest
import torch

from nbdistill.core.errors import ConfigError
from nbdistill.families.score import samplers
from nbdistill.families.score.consistency import ConsistencyDistillation
from nbdistill.families.score.exact import ExactDenoiser, GaussianMixture
from nbdistill.families.score.losses.consistency import boundary_scalings
from nbdistill.families.score.losses.tscd import lower_edge, segment_edges
from nbdistill.families.score.schedule import CosineVP
from nbdistill.families.score.tscd import TrajectorySegmentedCD
from nbdistill.models import MLPDenoiser

F64 = torch.float64
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _teacher():
    return ExactDenoiser(GaussianMixture.ring(k=4, radius=2.0, std=0.3), CosineVP())


def _data(n=64, seed=0):
    return GaussianMixture.ring(k=4, radius=2.0, std=0.3).sample(n, generator=torch.Generator().manual_seed(seed)).to(F64)


class SegmentEndpoint(torch.nn.Module):
    """A student whose map to the lower edge of a ``k``-segment cut of the ``n``-step grid is the teacher's DDIM
    along the grid from ``t`` to that edge (as an x0-prediction through ``c_skip``, ``c_out``): TSCD's fixed point."""

    def __init__(self, teacher, schedule, n: int, k: int):
        super().__init__()
        self.teacher, self.schedule, self.n, self.k = teacher, schedule, n, k

    def forward(self, x, t):
        grid = self.schedule.timesteps(self.n, dtype=x.dtype)
        index = torch.round((grid[0] - t) / (grid[0] - grid[-1]) * self.n).long()
        edge = torch.where(index < self.n, lower_edge(index.clamp(max=self.n - 1), segment_edges(self.n, self.k)), index)
        flow = x.clone()
        for i, e in {(int(i), int(e)) for i, e in zip(index, edge)}:
            rows = (index == i) & (edge == e)
            if e > i:
                flow[rows] = samplers.ddim(self.teacher, self.schedule, x[rows], grid[i : e + 1])
        b = grid[edge]
        c_skip, c_out = boundary_scalings(
            self.schedule.alpha(t), self.schedule.sigma(t), self.schedule.alpha(b), self.schedule.sigma(b)
        )
        safe = torch.where(c_out == 0, torch.ones_like(c_out), c_out)
        return torch.where((c_out == 0)[:, None], x, (flow - c_skip[:, None] * x) / safe[:, None])


def test_segment_edges_and_lower_edges():
    torch.testing.assert_close(segment_edges(8, 4), torch.tensor([0, 2, 4, 6, 8]))
    torch.testing.assert_close(segment_edges(6, 4), torch.tensor([0, 2, 3, 4, 6]))  # round(1.5) = 2, round(4.5) = 4
    torch.testing.assert_close(segment_edges(5, 1), torch.tensor([0, 5]))
    edges = segment_edges(8, 4)
    torch.testing.assert_close(lower_edge(torch.arange(8), edges), torch.tensor([2, 2, 4, 4, 6, 6, 8, 8]))
    for n, k in [(7, 3), (64, 8), (9, 9)]:
        e = segment_edges(n, k)
        assert e[0] == 0 and e[-1] == n and len(e) == k + 1 and (e.diff() >= 1).all()


def test_one_segment_is_consistency_distillation():
    """k = 1: the same batch, noise and weights give CD's loss exactly."""
    torch.manual_seed(0)
    student = MLPDenoiser(2, hidden=16, depth=2).to(F64)
    cd = ConsistencyDistillation(student, teacher=_teacher(), teacher_steps=8)
    tscd = TrajectorySegmentedCD(student, teacher=_teacher(), teacher_steps=8, segments=1)
    x = _data()
    torch.manual_seed(5)
    cd_terms = cd.loss_terms((x, None))
    torch.manual_seed(5)
    tscd_terms = tscd.loss_terms((x, None))
    torch.testing.assert_close(tscd_terms["loss"], cd_terms["loss"], rtol=0, atol=1e-15)
    assert float(tscd_terms["segments"]) == 1
    # with k > 1 the boundaries, hence the loss, differ
    tscd.segments_now = 4
    torch.manual_seed(5)
    assert (tscd.loss_terms((x, None))["loss"] - cd_terms["loss"]).abs() > 1e-6


@pytest.mark.parametrize("k", [1, 2, 4])
def test_fixed_point_and_k_step_sampling_along_the_edges(k):
    """With the student on the teacher's DDIM to its segment's lower edge: the loss is 0 and the k-step sampler
    along the edges reproduces the teacher's N-step DDIM sample of the same noise (float64)."""
    sch, n = CosineVP(), 8
    teacher = _teacher()
    student = SegmentEndpoint(teacher, sch, n, k)
    module = TrajectorySegmentedCD(student, teacher=teacher, teacher_steps=n, segments=k)
    torch.manual_seed(1)
    assert module.loss_terms((_data(), None))["loss"] < 1e-24
    samples = module.draw_samples(32, torch.Generator().manual_seed(2), (2,), F64)
    z = torch.randn(32, 2, generator=torch.Generator().manual_seed(2), dtype=F64)
    torch.testing.assert_close(samples, samplers.ddim(teacher, sch, z, sch.timesteps(n, dtype=F64)), rtol=0, atol=1e-12)
    assert module.sampling_steps == k


def test_stages_halve_the_segments_and_survive_a_checkpoint():
    module = TrajectorySegmentedCD(
        MLPDenoiser(2, hidden=16, depth=2), teacher=_teacher(), teacher_steps=16, segments=8, round_steps=2
    )
    seen = []
    for _ in range(9):
        module.on_train_batch_end(None, None, 0)
        seen.append(module.segments_now)
    assert seen == [8, 4, 4, 2, 2, 1, 1, 1, 1]
    checkpoint: dict = {}
    module.segments_now, module._stage_batches = 2, 1
    module.on_save_checkpoint(checkpoint)
    fresh = TrajectorySegmentedCD(
        MLPDenoiser(2, hidden=16, depth=2), teacher=_teacher(), teacher_steps=16, segments=8, round_steps=2
    )
    fresh.on_load_checkpoint(checkpoint)
    assert fresh.segments_now == 2 and fresh.sampling_steps == 2 and fresh._stage_batches == 1
    fresh.on_train_batch_end(None, None, 0)
    assert fresh.segments_now == 1


def test_stages_stop_at_steps_and_round_up_odd_counts():
    module = TrajectorySegmentedCD(
        MLPDenoiser(2, hidden=16, depth=2), teacher=_teacher(), teacher_steps=12, segments=6, steps=2, round_steps=1
    )
    seen = []
    for _ in range(4):
        module.on_train_batch_end(None, None, 0)
        seen.append(module.segments_now)
    assert seen == [3, 2, 2, 2]


def test_refusals():
    student = MLPDenoiser(2, hidden=16, depth=2)
    with pytest.raises(ConfigError, match="segments"):
        TrajectorySegmentedCD(student, teacher=_teacher(), teacher_steps=4, segments=8)
    with pytest.raises(ConfigError, match="segments"):
        TrajectorySegmentedCD(student, teacher=_teacher(), teacher_steps=16, segments=2, steps=4)
    with pytest.raises(ConfigError):
        TrajectorySegmentedCD(student, teacher=_teacher(), segments=0)
