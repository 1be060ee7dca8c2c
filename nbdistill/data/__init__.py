"""Data modules. Embedded sets need no download: :class:`Digits` (scikit-learn's 8×8 digits)."""
from .digits import Digits
from .sampling import EpochSeededSampler

__all__ = ["Digits", "EpochSeededSampler"]
