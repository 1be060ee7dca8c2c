"""Small reusable networks: MLP, ConvNet, a mixture of experts, 1-D signal nets and GNNs.

The GNNs (:mod:`.gnn`: ``GIN``, ``GCN``, ``GAT``) import PyTorch Geometric only when one is built.
"""

from . import gnn
from .convnet import ConvNet
from .gnn import GAT, GCN, GIN, GNN
from .mlp import MLP
from .moe import MoEMLP
from .signal import ConvTransformer1D, SignalCNN

__all__ = ["MLP", "ConvNet", "MoEMLP", "ConvTransformer1D", "SignalCNN", "GNN", "GIN", "GCN", "GAT", "gnn"]
