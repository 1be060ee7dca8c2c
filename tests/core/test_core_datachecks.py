"""The split checks live in core (``nbdistill.core.datachecks``) and need nothing from the data layer:
they read any ``LightningDataModule`` by its loaders, and the data layer's names still resolve."""

import ast
import importlib
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import yaml
from torch.utils.data import DataLoader, TensorDataset

import nbdistill as nd
from nbdistill.core.datachecks import check_splits, labels_outside, labels_with_gaps, split_contents
from nbdistill.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


class PlainData(pl.LightningDataModule):
    """A user's data module, nothing of nbdistill's: (x, y) or dict batches from three loaders."""

    def __init__(self, splits: dict, num_classes: int | None = None, as_dicts: bool = False):
        super().__init__()
        self.splits = splits
        self.as_dicts = as_dicts
        if num_classes is not None:
            self.num_classes = num_classes

    def _loader(self, split):
        x, y = self.splits[split]
        if self.as_dicts:
            return DataLoader([{"pixel_values": a, "label": b} for a, b in zip(x, y)], batch_size=8)
        return DataLoader(TensorDataset(x, y), batch_size=8)

    def train_dataloader(self):
        return self._loader("train")

    def val_dataloader(self):
        return self._loader("val")

    def test_dataloader(self):
        return self._loader("test")


def _splits(**changes):
    g = torch.Generator().manual_seed(0)
    splits = {s: (torch.randn(16, 4, generator=g), torch.arange(16) % 3) for s in ("train", "val", "test")}
    splits.update(changes)
    return splits


def test_datachecks_imports_only_core_and_libraries():
    tree = ast.parse((ROOT / "nbdistill" / "core" / "datachecks.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level <= 1, f"core/datachecks.py imports from above core: {'.' * node.level}{node.module}"
            assert not (node.module or "").startswith("nbdistill.") or node.module.startswith("nbdistill.core")
        elif isinstance(node, ast.Import):
            assert all(not a.name.startswith("nbdistill.") or a.name.startswith("nbdistill.core") for a in node.names)


def test_a_plain_datamodule_with_good_splits_passes_and_is_read_by_its_first_batches():
    data = PlainData(_splits(), num_classes=3)
    contents, whole = split_contents(data)
    assert not whole and set(contents) == {"train", "val", "test"}
    assert all(len(x) == 8 for x, _ in contents.values())  # the first batch, not the whole split
    check_splits(data)
    check_splits(PlainData(_splits(), num_classes=3, as_dicts=True))  # Hugging Face style batches, read by key


@pytest.mark.parametrize(
    "splits, num_classes, phrase",
    [
        (
            _splits(test=(torch.randn(0, 4), torch.zeros(0, dtype=torch.long))),
            3,
            "the test split of the data (PlainData) is empty",
        ),
        (
            _splits(val=(torch.full((16, 4), float("nan")), torch.arange(16) % 3)),
            3,
            "the val inputs hold NaN or infinite values (in its first batch)",
        ),
        (
            _splits(train=(torch.randn(16, 4), (torch.arange(16) % 3).float())),
            3,
            "the train labels are torch.float32 (in its first batch)",
        ),
        (
            _splits(test=(torch.randn(16, 4), torch.arange(16) % 3 - 1)),
            3,
            "the test labels must be class indices 0..C-1 but hold -1",
        ),
        (_splits(), 2, "the train labels (in its first batch) must be class indices 0..1 (the data has 2 classes) but hold 2"),
    ],
    ids=["empty-test", "nan-val", "float-labels", "negative-labels", "outside-classes"],
)
def test_a_plain_datamodule_with_bad_splits_is_refused_naming_the_split(splits, num_classes, phrase):
    with pytest.raises(ConfigError) as info:
        check_splits(PlainData(splits, num_classes=num_classes))
    assert phrase in str(info.value)


def test_a_plain_datamodule_without_a_test_loader_is_refused():
    class NoTest(PlainData):
        test_dataloader = pl.LightningDataModule.test_dataloader

    with pytest.raises(ConfigError, match=r"the data \(NoTest\) has no test split.*test_dataloader\(\)"):
        check_splits(NoTest(_splits()))


def test_the_label_errors_are_the_ones_the_data_layer_raises():
    with pytest.raises(ConfigError) as info:
        nd.data.as_datamodule({s: (np.zeros((6, 2)), np.array([0, 1, 5] * 2)) for s in ("train", "val", "test")})
    assert str(info.value) == str(labels_with_gaps({0, 1, 5}, [2, 3, 4], 6))
    assert "hold 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, ..." in str(labels_outside("the labels", range(7, 30), 7))


def test_the_data_layer_names_stay_where_they_were():
    graphs = importlib.import_module("nbdistill.data.graphs")
    for name in ("SBM", "BAMotifs", "LabelledMotifs", "KarateClub", "TUGraphs", "GraphSetDataModule", "NodeDataModule"):
        assert getattr(graphs, name) is getattr(nd.data, name)
    assert callable(graphs.sbm_edges) and callable(graphs.seeded)
    adapt = importlib.import_module("nbdistill.data.adapt")
    for name in ("as_datamodule", "ArrayData", "GraphList", "GraphNodes"):
        assert getattr(adapt, name) is getattr(nd.data, name)


def test_every_class_path_of_the_example_configs_resolves():
    paths = []
    for config in sorted((ROOT / "examples").glob("*.yaml")):
        text = yaml.safe_load(config.read_text())
        paths += [v["class_path"] for v in text.values() if isinstance(v, dict) and "class_path" in v]
    assert "nbdistill.data.graphs.SBM" in paths and "nbdistill.data.graphs.BAMotifs" in paths
    for path in paths:
        module, _, name = path.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), name), type), path


@pytest.mark.parametrize(
    "make",
    [lambda: nd.data.Digits(val_fraction=0.6, test_fraction=0.5), lambda: nd.data.BAMotifs(val_fraction=0.6, test_fraction=0.5)],
)
def test_held_out_fractions_are_checked_alike_for_arrays_and_graphs(make):
    with pytest.raises(ConfigError, match=r"val_fraction and test_fraction must be in \(0, 1\) and sum below 1, got 0.6, 0.5"):
        make()


def test_graphs_too_few_per_class_to_split_are_named():
    from torch_geometric.data import Data

    graphs = [
        Data(x=torch.ones(3, 2), edge_index=torch.tensor([[0, 1], [1, 2]]), y=torch.tensor([int(i == 0)])) for i in range(10)
    ]
    with pytest.raises(ConfigError, match="cannot split 10 graphs into train/val/test by class"):
        nd.data.as_datamodule(graphs)
