"""Expert trajectories: GSAM's direction, the buffer format, reuse, and checks."""

import json

import pytest
import torch

import nbdistill as nd
from nbdistill.core.errors import ConfigError
from nbdistill.families.dataset.experts import (
    ExpertBuffer,
    ExpertRecipe,
    gsam_direction,
    train_experts,
)
from nbdistill.families.dataset.nets import FlatModel


def _data():
    return nd.data.Digits(image=True, n_train=60, batch_size=30)


def _net():
    return nd.models.ConvNet((1, 8, 8), 10, width=4, depth=1)


def test_gsam_direction_by_hand():
    g = [torch.tensor([1.0, 1.0])]
    gp = [torch.tensor([2.0, 0.0])]
    # component of g orthogonal to gp: (0, 1); direction = gp − α·(0, 1)
    (d,) = gsam_direction(g, gp, alpha=0.5)
    assert torch.allclose(d, torch.tensor([2.0, -0.5]))
    (sam,) = gsam_direction(g, gp, alpha=0.0)
    assert torch.allclose(sam, gp[0])


def test_gsam_with_zero_radius_trains_the_plain_sgd_trajectory(tmp_path):
    sgd = train_experts(_net(), _data(), ExpertRecipe(epochs=2, augment=False), 1, root=tmp_path / "a", progress=False)
    gsam = train_experts(
        _net(), _data(), ExpertRecipe(epochs=2, augment=False, optimizer="gsam", rho=0.0), 1, root=tmp_path / "b", progress=False
    )
    assert torch.allclose(sgd.trajectory(0), gsam.trajectory(0), atol=1e-6)


def test_buffer_format_and_reuse(tmp_path):
    recipe = ExpertRecipe(epochs=3, augment=False)
    buf = train_experts(_net(), _data(), recipe, 2, root=tmp_path, progress=False)
    meta = json.loads((buf.folder / "meta.json").read_text())
    assert meta["format"] == "nbdistill-experts/1" and meta["epochs"] == 3 and len(meta["experts"]) == 2
    assert buf.folder.parent == tmp_path / "experts"
    traj = buf.trajectory(1)
    size = FlatModel(_net()).size
    assert traj.shape == (4, size) and traj.dtype == torch.float32
    assert len(meta["experts"][0]["val_acc"]) == 3
    # row 0 is the initialisation, row e the parameters after e epochs: consecutive rows differ
    assert not torch.equal(traj[0], traj[1])
    # asking for 3 experts reuses the 2 saved (same files, same contents) and trains one more
    first = (buf.folder / "expert_000.pt").stat().st_mtime_ns
    again = train_experts(_net(), _data(), recipe, 3, root=tmp_path, progress=False)
    assert again.folder == buf.folder and len(again) == 3
    assert (buf.folder / "expert_000.pt").stat().st_mtime_ns == first
    assert torch.equal(again.trajectory(1), traj)  # exact: the same file read back, not recomputed
    # a different recipe is a different buffer
    other = train_experts(_net(), _data(), ExpertRecipe(epochs=3, augment=False, lr=0.05), 1, root=tmp_path, progress=False)
    assert other.folder != buf.folder


def test_buffer_checks(tmp_path):
    buf = train_experts(_net(), _data(), ExpertRecipe(epochs=2, augment=False), 1, root=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="have 2 epochs"):
        buf.check(_net(), epochs_needed=5)
    with pytest.raises(ConfigError, match="parameters"):
        buf.check(nd.models.ConvNet((1, 8, 8), 10, width=6, depth=1), epochs_needed=1)
    with pytest.raises(ConfigError, match="no expert buffer"):
        ExpertBuffer(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="optimizer"):
        ExpertRecipe(optimizer="adam")
