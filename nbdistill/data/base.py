"""``ArrayDataModule``: the shared machinery of the embedded data sets (splits, exact-resume order)."""
from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..core.errors import ConfigError
from .sampling import EpochSeededSampler, IndexBatches, TensorBatches


class ArrayDataModule(pl.LightningDataModule):
    """A data module over in-memory train/val/test arrays.

    Subclasses implement :meth:`load` returning ``{"train"|"val"|"test": (x, y)}`` as numpy arrays;
    this class turns them into tensors, batches the training split in an order that is a function of
    ``(seed, epoch)`` (so a resumed run sees the same batches) and serves the other splits whole.
    Subclasses set ``num_classes`` and ``input_shape``.
    """

    num_classes: int
    input_shape: tuple[int, ...]

    def __init__(self, batch_size: int = 64, seed: int = 0, eval_batch_size: int = 512):
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.seed = seed
        self.eval_batch_size = eval_batch_size
        self._splits: dict[str, TensorDataset] | None = None
        self._sampler: EpochSeededSampler | None = None

    def load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self._splits is not None:
            return
        arrays = self.load()
        self._splits = {
            name: TensorDataset(
                torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(-1, *self.input_shape),
                torch.as_tensor(np.asarray(y)).long(),
            )
            for name, (x, y) in arrays.items()
        }
        self._sampler = EpochSeededSampler(len(self._splits["train"]), self.seed)

    def skip_batches_once(self, batches: int) -> None:
        """Skip the first ``batches`` batches of the next training pass (an exact mid-epoch resume).

        A checkpoint taken after an epoch's last batch (a finished run resumed for more epochs, a
        stop on the last batch) starts the next epoch afresh: nothing is skipped."""
        self.setup()
        if batches * self.batch_size < len(self._splits["train"]):
            self._sampler.skip_once(batches * self.batch_size)

    def dataset(self, split: str) -> TensorDataset:
        self.setup()
        if split not in self._splits:
            raise ConfigError(f"unknown split {split!r}; use one of {sorted(self._splits)}")
        return self._splits[split]

    #: Data modules that augment their training inputs set this, which turns the teacher cache off.
    augments: bool = False

    def with_index(self, on: bool = True) -> None:
        """Training batches become ``(x, y, index)``: the teacher cache looks its outputs up by index."""
        self._with_index = on

    def train_dataloader(self) -> DataLoader | TensorBatches:
        self.setup()
        train = self._splits["train"]
        if getattr(self, "_with_index", False):
            train = TensorDataset(*train.tensors, torch.arange(len(train)))
        if self._distributed():
            return DataLoader(train, batch_size=self.batch_size, sampler=self._sampler)
        return TensorBatches(train.tensors, IndexBatches(len(train), self.batch_size, self._sampler))

    def val_dataloader(self) -> DataLoader | TensorBatches:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader | TensorBatches:
        return self._eval_loader("test")

    def _eval_loader(self, split: str) -> DataLoader | TensorBatches:
        data = self.dataset(split)
        if self._distributed():  # Lightning shards a per-sample sampler exactly across processes
            return DataLoader(data, batch_size=self.eval_batch_size)
        return TensorBatches(data.tensors, IndexBatches(len(data), self.eval_batch_size))

    def _distributed(self) -> bool:
        """Under DDP the loaders stay per-sample: Lightning's distributed sampler splits samples, not batches."""
        trainer = getattr(self, "trainer", None)
        return trainer is not None and trainer.world_size > 1


def stratified_subset(idx: np.ndarray, labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` of ``idx`` keeping the class proportions of ``labels`` (``labels[i]`` for ``idx[i]``)."""
    from sklearn.model_selection import train_test_split

    if n >= len(idx):
        return idx
    kept, _ = train_test_split(idx, train_size=n, stratify=labels, random_state=seed)
    return np.sort(kept)


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Per-feature standardisation with the training statistics (constant features divided by 1)."""
    mean = train.mean(0)
    std = train.std(0)
    std[std < 1e-6] = 1.0
    return [(a - mean) / std for a in (train, *others)]
