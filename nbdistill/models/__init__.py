"""Small reusable networks."""
from .convnet import ConvNet
from .mlp import MLP
from .moe import MoEMLP
from .signal import ConvTransformer1D, SignalCNN

__all__ = ["MLP", "ConvNet", "MoEMLP", "ConvTransformer1D", "SignalCNN"]
