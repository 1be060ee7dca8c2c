"""What a run produced, from the run: run.student(...) and run.distilled() (issue 10 section 4)."""

import pytest
import torch
from torch import nn

import nbdistill as nd


class Keeps(nn.Module):
    """A student that keeps every constructor argument: the run records them, ``run.student()`` rebuilds it."""

    def __init__(self, in_features: int = 64, hidden: int = 32, out_features: int = 10):
        super().__init__()
        self.in_features, self.hidden, self.out_features = in_features, hidden, out_features
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features))

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="module")
def teacher():
    return nd.zoo.teacher("digits-mlp")


def _student(hidden=16):
    torch.manual_seed(1)
    return Keeps(64, hidden, 10)


def test_student_weights_loaded_into_a_module_or_rebuilt(teacher, runs_root):
    run = nd.fit("kd.hinton", teacher=teacher, student=_student(), data=nd.data.Digits(n_train=100, batch_size=32), max_epochs=2)
    record = run.setting["student"]
    assert (record["module"], record["class"], record["init"]) == (
        __name__,
        "Keeps",
        {"in_features": 64, "hidden": 16, "out_features": 10},
    )
    trained = run.module.student
    x = torch.randn(5, 64)
    for student in (run.student(_student()), nd.runs.open(run.path).student()):  # given, rebuilt from the run
        assert not student.training
        # the weights are copies of the trained ones (bit-equal); the outputs are compared to a stated tolerance
        assert all(torch.equal(a, b) for a, b in zip(student.state_dict().values(), trained.state_dict().values()))
        torch.testing.assert_close(student(x), trained.eval()(x), rtol=0.0, atol=1e-6)
    with pytest.raises(
        nd.RunFolderError, match="student weights do not fit the Keeps given: pass the architecture the run trained"
    ):
        run.student(_student(hidden=8))
    with pytest.raises(nd.RunFolderError, match=r"distils a student, not a data set: its output is run.student\(module\)"):
        run.distilled()
    (run.path / "checkpoints" / "last.ckpt").unlink()
    with pytest.raises(nd.RunFolderError, match="has no checkpoint"):
        run.student(_student())


def _with_student_record(run, **changes):
    """The run reopened after its run.json's record of the student (as it was written) was changed."""
    info = run.run_folder.read_info()
    info["setting"]["student"] = {**run.info["setting"]["student"], **changes}
    run.run_folder.write_info(info)
    return nd.runs.open(run.path)


def test_a_recorded_student_that_no_longer_builds_is_a_config_error(teacher, runs_root):
    run = nd.fit("kd.hinton", teacher=teacher, student=_student(), data=nd.data.Digits(n_train=60, batch_size=30), max_epochs=1)
    gone = _with_student_record(run, module="no_such_module_of_nbdistill")
    with pytest.raises(
        nd.ConfigError, match=r"student class no_such_module_of_nbdistill\.Keeps cannot be imported .*: pass a module"
    ):
        gone.student()
    with pytest.raises(nd.RunFolderError, match="cannot be imported"):  # also a RunFolderError, as before
        gone.student()
    with pytest.raises(nd.ConfigError, match=r"student class builtins\.dict is not a torch\.nn\.Module"):
        _with_student_record(run, module="builtins", **{"class": "dict"}).student()
    bad = _with_student_record(run, module=__name__, init={"in_features": 64, "width": 3})
    with pytest.raises(
        nd.ConfigError, match=r"Keeps cannot be built from its recorded arguments .*TypeError.*run.student\(Keeps"
    ):
        bad.student()
    assert _with_student_record(run, init={"in_features": 64, "hidden": 16, "out_features": 10}).student() is not None


def test_a_student_that_cannot_be_rebuilt_asks_for_its_architecture(runs_root):
    student = nd.models.ConvNet((1, 8, 8), 10, width=4, depth=1)
    run = nd.fit("kd.student_only", student=student, data=nd.data.Digits(image=True, n_train=60, batch_size=30), max_epochs=1)
    with pytest.raises(nd.RunFolderError, match=r"student \(ConvNet\) cannot be rebuilt from the run alone: pass a module"):
        run.student()
    loaded = run.student(nd.models.ConvNet((1, 8, 8), 10, width=4, depth=1))
    # loaded from the checkpoint: copies of the trained weights, so bit-equal
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), run.module.student.state_dict().values()))


@pytest.mark.parametrize(
    "method, hparams",
    [
        ("dataset.dm", {"batch_real": 8}),
        (
            "dataset.datm",
            {
                "syn_steps": 2,
                "expert_epochs": 1,
                "max_start_epoch": 2,
                "num_experts": 1,
                "expert_train_epochs": 3,
                "batch_syn": 10,
                "initial_max_start_epoch": 1,
                "expansion_end": 2,
                "ema_decay": 0.5,
            },
        ),
    ],
)
def test_a_dataset_run_gives_its_synthetic_set(runs_root, method, hparams):
    run = nd.fit(
        method,
        student=nd.models.ConvNet((1, 8, 8), 10, width=4, depth=1),
        data=nd.data.Digits(image=True, n_train=60, batch_size=30),
        max_epochs=1,
        ipc=1,
        eval_epochs=1,
        **hparams,
    )
    images, labels = nd.runs.open(run.path).distilled()
    expected_images, expected_labels = run.module.distilled()  # the method's own rule (DATM: EMA images, soft labels)
    assert images.shape == (10, 1, 8, 8) and torch.equal(images, expected_images.cpu())
    assert torch.equal(labels, expected_labels.cpu())
    if method == "dataset.datm":
        assert labels.dtype == torch.float32 and labels.shape == (10, 10)
    with pytest.raises(nd.RunFolderError, match=r"distils a data set, not a student: its output is run.distilled\(\)"):
        run.student()


def test_a_mirage_run_gives_its_distilled_graphs(runs_root):
    pytest.importorskip("torch_geometric")
    from nbdistill.data.graphs import BAMotifs
    from nbdistill.models.gnn import GIN

    data = BAMotifs(num_graphs=40, batch_size=8)
    run = nd.fit(
        "graph.mirage", student=GIN(data.num_node_features, 16, 2, num_layers=2), data=data, max_epochs=1, min_support=0.2
    )
    graphs = nd.runs.open(run.path).distilled()
    expected = run.module.distilled.graphs
    assert len(graphs) == len(expected) > 0
    for got, want in zip(graphs, expected):
        assert torch.equal(got.x, want.x) and torch.equal(got.edge_index, want.edge_index)
        assert torch.equal(got.root_mask, want.root_mask) and torch.equal(got.y, want.y)
    gin = run.student(GIN(data.num_node_features, 16, 2, num_layers=2))  # the best validation epoch's weights
    assert all(torch.equal(a, b) for a, b in zip(gin.state_dict().values(), run.module.student.state_dict().values()))
