"""GLNN's own teacher: ``nd.fit("graph.glnn")`` training its GCN against a hand-written PyG loop.

    python bench/glnn_teacher_speed.py                      # SBM of 2 000 nodes, 200 epochs, 3 repetitions
    python bench/glnn_teacher_speed.py --nodes 5000 --reps 5

Cases, interleaved (a, b, c, d, a, b, c, d, …), medians compared:

(a) hand-written loop: two PyG ``GCNConv`` (width 64, ReLU, dropout 0.5), Adam, cross-entropy on
    the training nodes, ``epochs`` steps; nothing else (what a user times in a few lines);
(b) (a) plus what a careful loop adds: the validation accuracy after every step and a copy of the
    best weights;
(c) ``train_node_classifier`` (the function ``nd.fit`` calls), reporting every epoch;
(d) ``nd.fit("graph.glnn", max_epochs=1, teacher_epochs=epochs)``: its teacher phase, from the
    run's ``teacher/seconds`` (events, progress callback, best-weight selection included), and the
    whole call (one student epoch, evaluation, latency measurement, run folder).

Goal: teacher phase of (d) / (a) <= 2 (wall-clock medians). CPU time of the process is printed
too (less sensitive to other load on the machine than wall time).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings

import torch
import torch.nn.functional as F
from torch import nn


class HandGCN(nn.Module):
    def __init__(self, features: int, hidden: int, classes: int):
        super().__init__()
        from torch_geometric.nn import GCNConv

        self.conv1, self.conv2 = GCNConv(features, hidden), GCNConv(hidden, hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x, edge_index):
        h = F.dropout(torch.relu(self.conv1(x, edge_index)), 0.5, self.training)
        h = F.dropout(torch.relu(self.conv2(h, edge_index)), 0.5, self.training)
        return self.head(h)


def hand_loop(graph, epochs: int, evaluate: bool) -> dict | None:
    torch.manual_seed(0)
    model = HandGCN(graph.num_node_features, 64, int(graph.y.max()) + 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    best, state = -1.0, None
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(graph.x, graph.edge_index)[graph.train_mask], graph.y[graph.train_mask]).backward()
        opt.step()
        if evaluate:
            model.eval()
            with torch.no_grad():
                pred = model(graph.x, graph.edge_index).argmax(-1)
            acc = (pred[graph.val_mask] == graph.y[graph.val_mask]).float().mean().item()
            if acc > best:
                best, state = acc, {k: v.clone() for k, v in model.state_dict().items()}
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)

    import nbdistill as nd
    from nbdistill.data.graphs import SBM
    from nbdistill.families.graph.teacher import train_node_classifier
    from nbdistill.models import MLP
    from nbdistill.models.gnn import GCN

    data = SBM(num_nodes=args.nodes)
    data.setup("fit")
    graph = data.graph
    print(
        f"SBM: {graph.num_nodes} nodes, {graph.num_edges} edges, {args.epochs} teacher epochs, "
        f"{args.reps} repetitions, {args.threads} thread(s)"
    )
    root = tempfile.mkdtemp()
    teacher_seconds: list[float] = []

    def plain():
        hand_loop(graph, args.epochs, evaluate=False)

    def careful():
        hand_loop(graph, args.epochs, evaluate=True)

    def ours():
        model = GCN(graph.num_node_features, 64, data.num_classes, num_layers=2, readout=None, dropout=0.5)
        train_node_classifier(model, graph, epochs=args.epochs, report=lambda *a: None)

    def fit():
        run = nd.fit(
            "graph.glnn",
            student=MLP(graph.num_node_features, [64], data.num_classes),
            data=SBM(num_nodes=args.nodes),
            max_epochs=1,
            teacher_epochs=args.epochs,
            runs_root=root,
            progress=lambda *a: None,
        )
        teacher_seconds.append(run.metrics["teacher/seconds"])

    cases = {
        "(a) hand-written loop": plain,
        "(b) hand-written + val/best": careful,
        "(c) train_node_classifier": ours,
        "(d) nd.fit (whole call)": fit,
    }
    fit()  # warm-up: imports, first run folder
    teacher_seconds.clear()
    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.reps):
        for name, case in cases.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            case()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    med = {name: statistics.median(v) for name, v in wall.items()}
    med_cpu = {name: statistics.median(v) for name, v in cpu.items()}
    teacher = statistics.median(teacher_seconds)
    print(f"{'case':32s} {'wall s':>8s} {'cpu s':>8s}")
    for name in cases:
        print(f"{name:32s} {med[name]:8.2f} {med_cpu[name]:8.2f}")
    print(f"{'(d) nd.fit teacher phase':32s} {teacher:8.2f}        -   (run's teacher/seconds)")
    base = med["(a) hand-written loop"]
    print(f"teacher phase of nd.fit / hand-written loop: {teacher / base:.2f}  (goal <= 2)")
    print(
        f"train_node_classifier / hand-written loop:   {med['(c) train_node_classifier'] / base:.2f} wall, "
        f"{med_cpu['(c) train_node_classifier'] / med_cpu['(a) hand-written loop']:.2f} cpu"
    )
    print(f"hand-written + val/best / hand-written loop: {med['(b) hand-written + val/best'] / base:.2f}")


if __name__ == "__main__":
    main()
