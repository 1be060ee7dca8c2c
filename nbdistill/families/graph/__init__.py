"""Graph distillation: graph data sets into frequent computation trees (Mirage); GNNs into MLPs."""
