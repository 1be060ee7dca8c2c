"""Every bad input is a ConfigError naming the problem and the fix, raised before the first step.

Each case asserts the error type and a key phrase, that Lightning's ``Trainer.fit`` was never
called (so no training step ran) and that no run folder was made (so none is left ``running``).
"""

import warnings

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

import nbdistill as nd
from nbdistill.data import ArrayDataModule, SplitsMade


def blobs(n=300, classes=2, features=5, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, features)).astype(np.float32) + 3 * np.eye(classes, features, dtype=np.float32)[y]
    return x, y


X, Y = blobs()


def splits(x=X, y=Y):
    return {"train": (x[:200], y[:200]), "val": (x[200:250], y[200:250]), "test": (x[250:], y[250:])}


def with_nan(split):
    x = X.copy()
    x[{"val": 210, "test": 260}[split], 1] = np.nan
    return splits(x=x)


def label_only_in_test():
    y = Y.copy()
    y[260] = 2  # class 2 exists, but only in the test split
    return splits(y=y)


class OnlyTrain(ArrayDataModule):
    """A user's ArrayDataModule whose load() gives only a training split."""

    num_classes = 2
    input_shape = (5,)

    def load(self):
        return {"train": (X, Y)}


class DeclaredTwo(OnlyTrain):
    """Declares two classes but holds a label 5."""

    def load(self):
        y = Y.copy()
        y[7] = 5
        return {"train": (X[:200], y[:200]), "val": (X[200:250], Y[200:250]), "test": (X[250:], Y[250:])}


class Loaders(pl.LightningDataModule):
    """A plain LightningDataModule over DataLoaders (no test_dataloader unless ``test``)."""

    num_classes = 2

    def __init__(self, y=Y, test=True, dicts=None):
        super().__init__()
        self.y, self.dicts = torch.as_tensor(y), dicts
        if test:
            self.test_dataloader = lambda: self._loader(slice(250, 300))

    def _loader(self, part):
        ds = TensorDataset(torch.from_numpy(X[part]), self.y[part])
        if self.dicts is None:
            return DataLoader(ds, batch_size=32)
        keys = self.dicts
        return DataLoader(
            ds,
            batch_size=32,
            collate_fn=lambda items: {keys[0]: torch.stack([a for a, _ in items]), keys[1]: torch.stack([b for _, b in items])},
        )

    def train_dataloader(self):
        return self._loader(slice(0, 200))

    def val_dataloader(self):
        return self._loader(slice(200, 250))


def mlp():
    return nd.models.MLP(5, [8], 2)


def teacher_fn(x):
    return x[:, :2]


#: (case, keyword arguments of nd.fit beyond the method, phrase the message holds)
CASES = [
    ("float labels", {"data": (X, Y * 0.5)}, r"must be integer class indices 0..C-1, but they hold fractions such as 0.5"),
    ("max_epochs=0", {"data": (X, Y), "max_epochs": 0}, r"max_epochs must be at least 1, got 0"),
    ("max_epochs=-1", {"data": (X, Y), "max_epochs": -1}, r"max_epochs must be at least 1, got -1.*-1 forever"),
    ("max_epochs='3'", {"data": (X, Y), "max_epochs": "3"}, r"max_epochs must be a whole number, got str '3'; pass max_epochs=3"),
    ("NaN in the test inputs", {"data": with_nan("test")}, r"the test inputs hold NaN or infinite values \(1 of 50 examples\)"),
    ("NaN in the val inputs", {"data": with_nan("val")}, r"the val inputs hold NaN or infinite values"),
    (
        "inf in the test inputs",
        {"data": {**splits(), "test": (np.full((5, 5), np.inf, np.float32), Y[:5])}},
        r"the test inputs hold NaN or infinite",
    ),
    (
        "a label only in the test split",
        {"data": label_only_in_test()},
        r"label\(s\) 2 occur in the test split but never in the training split",
    ),
    ("an empty test split", {"data": {**splits(), "test": (X[:0], Y[:0])}}, r"the test split of the data \(ArrayData\) is empty"),
    ("no test split, said with None", {"data": {**splits(), "test": None}}, r"the test split is None"),
    (
        "label 5 with two classes",
        {"data": (X, np.where(np.arange(300) == 7, 5, Y))},
        r"the labels are \{0, 1, 5\}.*class\(es\) 2, 3, 4 have no training example",
    ),
    ("label -1", {"data": (X, np.where(np.arange(300) == 7, -1, Y))}, r"negative labels such as -1"),
    ("labels {1, 2} with two classes", {"data": (X, Y + 1)}, r"the labels are \{1, 2\}.*class\(es\) 0 have no training example"),
    (
        "label 5 where the data module declares two classes",
        {"data": DeclaredTwo()},
        r"the train labels must be class indices 0..1 \(the data has 2 classes\) but hold 5",
    ),
    (
        "label 5 in a plain data module's batches",
        {"data": Loaders(y=np.where(np.arange(300) == 7, 5, Y))},
        r"the train labels \(in its first batch\) must be class indices 0..1 \(the data has 2 classes\) but hold 5",
    ),
    (
        "a data module without test_dataloader",
        {"data": Loaders(test=False)},
        r"has no test split: nbdistill measures the teacher-student gap",
    ),
    (
        "dict batches under unknown keys",
        {"data": Loaders(dicts=("img", "cls"))},
        r"dicts with keys \['cls', 'img'\].*rename the keys",
    ),
    (
        "a teacher that is a function",
        {"data": (X, Y), "teacher": teacher_fn},
        r"the teacher must be a torch.nn.Module \(a network\), got the function teacher_fn",
    ),
    (
        "a student that is a string",
        {"data": (X, Y), "student": "mlp"},
        r"the student must be a torch.nn.Module \(a network\), got str 'mlp'",
    ),
    ("a student that is a class", {"data": (X, Y), "student": nd.models.MLP}, r"the student is the class MLP, not a network"),
    ("X and y of different lengths", {"data": (X, Y[:290])}, r"the train split has 300 inputs but 290 labels"),
    ("one-hot labels", {"data": (X, np.eye(2)[Y])}, r"1-D vector of class indices.*one-hot labels\? pass y.argmax\(1\)"),
    ("string labels", {"data": (X, np.where(Y == 1, "cat", "dog"))}, r"got str labels such as 'dog'.*factorize"),
]


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if Lightning starts training."""

    def refuse(*args, **kwargs):
        raise AssertionError("Trainer.fit was called: the bad input was not caught before training")

    monkeypatch.setattr(pl.Trainer, "fit", refuse)


@pytest.mark.parametrize("case, kwargs, phrase", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_named_before_training(case, kwargs, phrase, runs_root, no_training):
    args = {"student": mlp(), "teacher": nd.models.MLP(5, [16], 2), "max_epochs": 1, **kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SplitsMade)
        with pytest.raises(nd.ConfigError, match=phrase):
            nd.fit("kd.hinton", **args)
    assert not runs_root.exists() or not any(runs_root.iterdir())  # no run folder, so none left 'running'


def test_the_panel_refuses_the_same_inputs_in_its_error_box(no_training):
    p = nd.panel("kd", teacher=nd.models.MLP(5, [16], 2), student=mlp(), data=label_only_in_test(), render_process=False)
    p.start()  # the checks run with the training, off the kernel's thread: wait() sees them refuse
    assert p.wait() is None
    assert p.status == "idle" and "occur in the test split but never in the training split" in p.error


def test_whole_number_float_labels_train(runs_root):
    """The choice for floats: 1.0 is accepted and cast to the integer class 1; 0.5 is refused."""
    with pytest.warns(SplitsMade):
        run = nd.fit("kd.student_only", student=mlp(), data=(X, Y.astype(np.float32)), max_epochs=1)
    assert run.status == "finished"


def test_an_array_module_with_only_a_train_split_gets_its_splits_made(runs_root):
    with pytest.warns(SplitsMade, match=r"val 60, test 60; 180 left to train on"):
        run = nd.fit("kd.student_only", student=mlp(), data=OnlyTrain(batch_size=32), max_epochs=1)
    assert run.status == "finished" and "test/student_acc" in run.metrics


def test_dict_batches_under_known_keys_are_read_by_key(runs_root):
    run = nd.fit(
        "kd.hinton",
        student=mlp(),
        teacher=nd.models.MLP(5, [16], 2),
        data=Loaders(dicts=("pixel_values", "labels")),
        max_epochs=1,
    )
    assert run.status == "finished" and 0.0 <= run.metrics["test/student_acc"] <= 1.0
    assert run.log.of("efficiency"), "the efficiency table reads its batch by key too"


def test_a_users_datamodule_with_dict_batches_is_left_as_it_was_given(runs_root):
    data = Loaders(dicts=("pixel_values", "labels"))
    nd.fit("kd.hinton", student=mlp(), teacher=nd.models.MLP(5, [16], 2), data=data, max_epochs=1)
    batch = {"pixel_values": torch.zeros(2, 5), "labels": torch.zeros(2, dtype=torch.long)}
    assert data.on_before_batch_transfer(batch, 0) is batch  # the user's own code still gets its dicts
    assert "on_before_batch_transfer" not in vars(data)


def test_nan_in_training_inputs_of_a_digits_subclass_is_named(no_training):
    class Broken(nd.data.Digits):
        def load(self):
            arrays = super().load()
            x, y = arrays["train"]
            x = x.copy()
            x[3, 5] = np.inf
            return {**arrays, "train": (x, y)}

    with pytest.raises(nd.ConfigError, match=r"the train inputs hold NaN or infinite values \(1 of 1078 examples\)"):
        nd.fit("kd.student_only", student=nd.models.MLP(64, [8], 10), data=Broken(), max_epochs=1)


@pytest.mark.parametrize(
    "option, value, phrase",
    [
        ("checkpoint_every_epochs", "60", "checkpoint_every_epochs must be a whole number of at least 1"),
        ("checkpoint_every_epochs", 0, "checkpoint_every_epochs must be a whole number of at least 1"),
        ("checkpoint_every_s", -5, r"checkpoint_every_s must be a number of seconds >= 0"),
    ],
)
def test_periodic_checkpoint_options_are_checked_before_training(no_training, option, value, phrase):
    with pytest.raises(nd.ConfigError, match=phrase):
        nd.fit("kd.student_only", student=nd.models.MLP(64, [8], 10), data=nd.data.Digits(), max_epochs=1, **{option: value})
