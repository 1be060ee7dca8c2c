"""Small reusable networks: MLP, ConvNet, a mixture of experts, a prompted ViT, 1-D signal nets, GNNs, an MLP denoiser and an in-context transformer.

The GNNs (:mod:`.gnn`: ``GIN``, ``GCN``, ``GAT``) import PyTorch Geometric only when one is built.
"""

from . import gnn
from .convnet import ConvNet
from .denoiser import MLPDenoiser
from .gnn import GAT, GCN, GIN, GNN
from .mlp import MLP
from .moe import MoEMLP
from .prompted import PromptedTransformer
from .signal import ConvTransformer1D, SignalCNN
from .transformer import ICTransformer
from .window_denoiser import WindowDenoiser

__all__ = [
    "MLP",
    "ConvNet",
    "MoEMLP",
    "PromptedTransformer",
    "ConvTransformer1D",
    "SignalCNN",
    "MLPDenoiser",
    "GNN",
    "GIN",
    "GCN",
    "GAT",
    "gnn",
    "WindowDenoiser",
    "ICTransformer",
]
