"""Small reusable networks: MLP, ConvNet, a mixture of experts, a prompted ViT, 1-D signal nets and GNNs.

The GNNs (:mod:`.gnn`: ``GIN``, ``GCN``, ``GAT``) import PyTorch Geometric only when one is built.
"""

from . import gnn
from .convnet import ConvNet
from .gnn import GAT, GCN, GIN, GNN
from .mlp import MLP
from .moe import MoEMLP
from .prompted import PromptedTransformer
from .signal import ConvTransformer1D, SignalCNN

__all__ = ["MLP", "ConvNet", "MoEMLP", "PromptedTransformer", "ConvTransformer1D", "SignalCNN", "GNN", "GIN", "GCN", "GAT", "gnn"]
