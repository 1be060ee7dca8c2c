"""Your own data without writing a class: ``nd.fit(..., data=X)`` through ``nd.data.as_datamodule``."""

import warnings

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

import nbdistill as nd
from nbdistill.core.fit import build, check_data, use_teacher_cache
from nbdistill.data import ArrayData, GraphList, GraphNodes, SplitsMade, as_datamodule
from nbdistill.data.sampling import TensorBatches


def blobs(n=300, classes=3, features=5, seed=0):
    """Three well-separated Gaussian blobs (float32 X, int64 y)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, features)).astype(np.float32) + 3 * np.eye(classes, features, dtype=np.float32)[y]
    return x, y


def quiet(data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SplitsMade)
        return as_datamodule(data, **kw)


def sizes(dm):
    return {name: len(dm.dataset(name)) for name in ("train", "val", "test")}


# -- (X, y): tensors, numpy arrays, pandas ------------------------------------------------------------
def test_numpy_pair_gets_stratified_seeded_splits_and_says_so():
    x, y = blobs()
    with pytest.warns(SplitsMade, match=r"val 60, test 60; 180 left to train on"):
        dm = as_datamodule((x, y))
    assert isinstance(dm, ArrayData) and dm.num_classes == 3 and dm.input_shape == (5,) and dm.num_classes_inferred
    assert sizes(dm) == {"train": 180, "val": 60, "test": 60}
    for split in ("train", "val", "test"):  # stratified: each class keeps its share (a third)
        counts = torch.bincount(dm.dataset(split).tensors[1], minlength=3)
        assert counts.tolist() == [len(dm.dataset(split)) // 3] * 3
    again = quiet((x, y))  # seeded: the same splits every time
    # exact, not a tolerance: a split is a selection of the user's rows, copied, never computed
    assert torch.equal(again.dataset("test").tensors[0], dm.dataset("test").tensors[0])
    other = quiet((x, y), seed=1)
    assert not torch.equal(other.dataset("test").tensors[0], dm.dataset("test").tensors[0])
    # every example lands in exactly one split
    together = torch.cat([dm.dataset(s).tensors[0] for s in ("train", "val", "test")])
    assert sorted(map(tuple, together.tolist())) == sorted(map(tuple, torch.from_numpy(x).tolist()))


def test_tensors_and_pandas_give_the_same_module_as_numpy():
    pd = pytest.importorskip("pandas")
    x, y = blobs()
    ref = quiet((x, y))
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)])
    for data in ((torch.from_numpy(x), torch.from_numpy(y)), (frame, pd.Series(y)), (x.tolist(), y.tolist())):
        dm = quiet(data)
        assert dm.num_classes == 3 and dm.input_shape == (5,)
        for split in ("train", "test"):
            for a, b in zip(dm.dataset(split).tensors, ref.dataset(split).tensors):
                # exact: the same rows copied and cast to float32, no arithmetic on them
                assert a.dtype == b.dtype and torch.equal(a, b)


def test_pandas_text_column_is_named():
    pd = pytest.importorskip("pandas")
    x, y = blobs()
    frame = pd.DataFrame(x, columns=list("abcde")).assign(city="Paris")
    with pytest.raises(nd.ConfigError, match=r"column\(s\) \['city'\] are not"):
        as_datamodule((frame, y))


def test_whole_number_float_labels_are_cast_and_images_keep_their_shape():
    x, y = blobs(n=120, features=16)
    dm = quiet((x.reshape(-1, 1, 4, 4), y.astype(np.float64)))
    assert dm.input_shape == (1, 4, 4) and dm.dataset("train").tensors[1].dtype == torch.int64


def test_fit_on_a_numpy_pair_trains_with_the_fast_batches_and_the_teacher_cache():
    x, y = blobs()
    dm = quiet((x, y), batch_size=32)
    assert isinstance(dm.train_dataloader(), TensorBatches)
    module = build("kd.hinton", nd.models.MLP(5, [8], 3), teacher=nd.models.MLP(5, [16], 3))
    check_data(module, dm)
    assert use_teacher_cache(module, dm) is True
    run = nd.fit("kd.hinton", student=nd.models.MLP(5, [8], 3), teacher=nd.models.MLP(5, [16], 3), data=(x, y), max_epochs=1)
    assert run.status == "finished" and 0.0 <= run.metrics["test/student_acc"] <= 1.0


# -- a dict of splits ------------------------------------------------------------------------------
def test_dict_of_splits_is_used_as_given():
    x, y = blobs()
    data = {"train": (x[:200], y[:200]), "validation": (x[200:250], y[200:250]), "test": (x[250:], y[250:])}
    with warnings.catch_warnings():
        warnings.simplefilter("error", SplitsMade)  # nothing is made: no warning
        dm = as_datamodule(data)
    assert sizes(dm) == {"train": 200, "val": 50, "test": 50}
    assert torch.equal(dm.dataset("test").tensors[0], torch.from_numpy(x[250:]))


def test_dict_without_a_test_split_gets_one_made():
    x, y = blobs()
    with pytest.warns(SplitsMade, match=r"no test split was given.*test 50"):
        dm = as_datamodule({"train": (x[:250], y[:250]), "val": (x[250:], y[250:])})
    assert sizes(dm) == {"train": 200, "val": 50, "test": 50}


# -- torch Datasets and DataLoaders ------------------------------------------------------------------
class Pairs(Dataset):
    """A map-style dataset whose items are (numpy features, int label)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


class Dicts(Pairs):
    """Items as dicts, Hugging Face style."""

    def __init__(self, x, y, keys=("pixel_values", "label")):
        super().__init__(x, y)
        self.keys = keys

    def __getitem__(self, i):
        return {self.keys[0]: torch.from_numpy(self.x[i]), self.keys[1]: int(self.y[i]), "id": i}


def test_datasets_and_loaders_are_read_once_into_tensors():
    x, y = blobs()
    ref = quiet((x, y))
    tensors = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    for data in (
        tensors,
        Pairs(x, y),
        Dicts(x, y),
        DataLoader(Pairs(x, y), batch_size=50),
        DataLoader(Dicts(x, y), batch_size=7),
    ):
        dm = quiet(data)
        assert isinstance(dm, ArrayData) and dm.num_classes == 3
        for a, b in zip(dm.dataset("test").tensors, ref.dataset("test").tensors):
            assert torch.equal(a, b), type(data).__name__
    assert quiet(DataLoader(Pairs(x, y), batch_size=50)).batch_size == 50  # the loader's batch size is kept


def test_dict_items_with_other_keys_are_refused_listing_them():
    x, y = blobs()
    with pytest.raises(nd.ConfigError, match=r"dicts with keys \['cls', 'id', 'img'\].*'pixel_values'"):
        as_datamodule(Dicts(x, y, keys=("img", "cls")))


def test_a_lightning_datamodule_is_returned_as_it_is():
    data = nd.data.Digits()
    assert as_datamodule(data) is data


def test_the_panel_takes_a_pair_too():
    x, y = blobs()
    p = nd.panel("kd", teacher=nd.models.MLP(5, [16], 3), student=nd.models.MLP(5, [8], 3), data=(x, y), render_process=False)
    assert isinstance(p.data, ArrayData) and p.data.num_classes == 3


def test_unknown_data_is_refused_with_what_is_accepted():
    with pytest.raises(nd.ConfigError, match=r"cannot read data of type str.*\(X, y\)"):
        as_datamodule("digits.csv")
    with pytest.raises(nd.ConfigError, match=r"data is the class Digits, not a data set: create one, e.g. data=Digits\(\)"):
        as_datamodule(nd.data.Digits)
    with pytest.raises(nd.ConfigError, match=r"holds only inputs: pass the inputs and the labels as a pair"):
        as_datamodule({"train": np.zeros((10, 2))})
    with pytest.raises(nd.ConfigError, match=r"the data holds only inputs: pass the inputs and the labels as a pair \(X, y\)"):
        as_datamodule(np.zeros((10, 2)))


# -- graphs: PyG Data with masks (nodes), a list of Data or a PyG Dataset (graphs) ---------------------
def _node_graph(masks=True):
    graph = nd.data.SBM(num_nodes=120, num_classes=3, train_per_class=10, val_per_class=10).make_graph()
    from torch_geometric.data import Data

    kept = {"x": graph.x, "edge_index": graph.edge_index, "y": graph.y}
    if masks:
        kept.update(train_mask=graph.train_mask, val_mask=graph.val_mask, test_mask=graph.test_mask)
    return Data(**kept)


def test_pyg_graph_with_masks_is_a_node_task_glnn_trains_on():
    graph = _node_graph()
    dm = as_datamodule(graph)
    assert isinstance(dm, GraphNodes) and dm.num_classes == 3 and dm.num_node_features == 16
    assert torch.equal(dm.graph.test_mask, graph.test_mask) and dm.graph is not graph  # the user's graph is not changed
    run = nd.fit("graph.glnn", student=nd.models.MLP(16, [16], 3), data=graph, max_epochs=2, teacher_epochs=10)
    assert run.status == "finished" and 0.0 <= run.metrics["test/student_acc"] <= 1.0


def test_pyg_graph_without_masks_gets_stratified_ones_and_says_so():
    graph = _node_graph(masks=False)
    with pytest.warns(SplitsMade, match=r"no train_mask or val_mask or test_mask.*train 72, val 24, test 24"):
        dm = as_datamodule(graph)
    masks = [dm.graph.train_mask, dm.graph.val_mask, dm.graph.test_mask]
    assert int(sum(m.long() for m in masks).max()) == 1 and sum(int(m.sum()) for m in masks) == 120
    assert torch.bincount(dm.graph.y[dm.graph.test_mask], minlength=3).tolist() == [8, 8, 8]


def test_list_of_graphs_and_a_pyg_dataset_are_graph_classification_mirage_trains_on():
    from torch_geometric.data import InMemoryDataset

    graphs = nd.data.BAMotifs(num_graphs=40).make_graphs()
    for g in graphs:  # as users build them: y a plain int tensor, no node_label attribute
        g.y = torch.tensor(int(g.y))
        del g.node_label
    with pytest.warns(SplitsMade, match=r"from the 40 graphs.*val 8, test 8; 24 left"):
        dm = as_datamodule(graphs)
    assert isinstance(dm, GraphList) and dm.num_classes == 2 and dm.num_node_features == 7
    assert all(g.y.shape == (1,) for g in dm.graphs("train")) and graphs[0].y.shape == ()  # copies, not the user's graphs

    class Graphs(InMemoryDataset):
        def __init__(self, items):
            super().__init__(None)
            self.data, self.slices = self.collate(items)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_dataset = as_datamodule(Graphs(graphs))
    assert isinstance(from_dataset, GraphList) and len(from_dataset.graphs("test")) == 8
    student = nd.models.gnn.GIN(7, 16, 2, num_layers=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SplitsMade)
        run = nd.fit("graph.mirage", student=student, data=graphs, max_epochs=1, min_support=0.2)
    assert run.status == "finished" and 0.0 <= run.metrics["test/student_acc"] <= 1.0


def test_node_labels_on_graphs_are_refused_for_graph_classification():
    graph = _node_graph()
    with pytest.raises(nd.ConfigError, match=r"graph classification needs one label per graph"):
        as_datamodule([graph, graph])


def test_graph_data_modules_are_in_nd_data():
    for name in ("BAMotifs", "LabelledMotifs", "TUGraphs", "KarateClub", "SBM", "GraphSetDataModule", "NodeDataModule"):
        assert issubclass(getattr(nd.data, name), pl.LightningDataModule)


def test_an_array_module_that_forgets_num_classes_and_input_shape_reads_them_from_the_data():
    x, y = blobs(n=120, features=16)

    class Mine(nd.data.ArrayDataModule):
        def load(self):
            return {"train": (x[:80], y[:80]), "val": (x[80:100], y[80:100]), "test": (x[100:].reshape(-1, 4, 4), y[100:])}

    dm = Mine()
    dm.setup()
    assert dm.num_classes == 3 and dm.num_classes_inferred and dm.input_shape == (16,)
    assert dm.dataset("test").tensors[0].shape == (20, 16)


def test_integer_zero_one_masks_and_column_labels_read_as_a_boolean_mask_and_a_vector():
    """A 0/1 mask stored as uint8 or long (not node indices) and OGB's [N, 1] labels (found in review)."""
    from torch_geometric.data import Data

    graph = _node_graph()
    as_ints = Data(
        x=graph.x,
        edge_index=graph.edge_index,
        y=graph.y.reshape(-1, 1),
        train_mask=graph.train_mask.to(torch.uint8),
        val_mask=graph.val_mask.long(),
        test_mask=graph.test_mask.nonzero().flatten(),  # node indices
    )
    dm = as_datamodule(as_ints)
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(dm.graph, f"{split}_mask"), getattr(graph, f"{split}_mask"))
    assert torch.equal(dm.graph.y, graph.y)
    bad = Data(x=graph.x, edge_index=graph.edge_index, y=graph.y, train_mask=torch.tensor([0, 500]))
    with pytest.raises(nd.ConfigError, match=r"train_mask is neither a boolean mask of the 120 nodes nor node indices 0..119"):
        as_datamodule(bad)


def test_a_datamodule_that_builds_its_test_set_in_setup_test_trains(runs_root):
    class Staged(pl.LightningDataModule):
        """The usual pattern: the test set exists only after setup('test')."""

        def setup(self, stage=None):
            x = torch.randn(90, 4)
            y = torch.arange(90) % 3
            if stage in (None, "fit"):
                self.train_set, self.val_set = TensorDataset(x[:60], y[:60]), TensorDataset(x[60:], y[60:])
            if stage in (None, "test"):
                self.test_set = TensorDataset(x[60:], y[60:])

        def train_dataloader(self):
            return DataLoader(self.train_set, batch_size=30)

        def val_dataloader(self):
            return DataLoader(self.val_set, batch_size=30)

        def test_dataloader(self):
            return DataLoader(self.test_set, batch_size=30)

    run = nd.fit("kd.hinton", student=nd.models.MLP(4, [8], 3), teacher=nd.models.MLP(4, [8], 3), data=Staged(), max_epochs=1)
    assert run.status == "finished" and "test/student_acc" in run.metrics


def test_teachers_may_be_a_module_list():
    teachers = torch.nn.ModuleList([nd.models.MLP(4, [8], 3), nd.models.MLP(4, [8], 3)])
    module = build("kd.mtard", nd.models.MLP(4, [8], 3), teachers=teachers)
    assert len(module.teachers) == 2
