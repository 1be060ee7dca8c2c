"""Data modules. Embedded sets need no download: :class:`Digits` (scikit-learn's 8×8 digits) and
:class:`MNIST1D` (generated locally by the ``mnist1d`` package)."""
from .base import ArrayDataModule
from .digits import Digits
from .mnist1d import MNIST1D
from .sampling import EpochSeededSampler

__all__ = ["ArrayDataModule", "Digits", "MNIST1D", "EpochSeededSampler"]
