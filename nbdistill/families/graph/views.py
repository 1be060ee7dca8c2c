"""Views of the graph family (pure functions ``view(ax, log) -> ax``, registered with :func:`~nbdistill.core.views.view`).

- ``tree_histogram``: Mirage's computation-tree histogram per class, live while it mines;
- ``distilled_vs_full``: the GNN trained on the distilled set against the one trained on all graphs;
- ``latency``: inference time of the GNN teacher against the MLP student;
- ``teacher``: GLNN's and FF-G2M's GCN teacher as it trains, when none was given.

:func:`draw_tree` is not a run view: it draws one computation tree (for the tutorial).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes

from ...core.run import EventLog
from ...core.style import LABEL_SIZE, LEGEND_SIZE, TITLE_SIZE, decimate, empty, style_axes
from ...core.views import view

CLASS_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
TREE_LABEL_CHARS = 16


def _short(text: str, width: int = TREE_LABEL_CHARS) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@view("tree_histogram")
def tree_histogram(ax: Axes, log: EventLog) -> Axes:
    """Graphs of each class containing each of the most common computation trees (log scale),
    with each class's support threshold (a tree below it can be in no frequent tree set)."""
    event = log.last("mirage/tree_support")
    if event is None or not event.get("trees"):
        return empty(ax, "computation trees")
    per_class = np.asarray(event["per_class"], dtype=float)
    classes, k = per_class.shape
    width = 0.8 / classes
    x = np.arange(k)
    for c in range(classes):
        color = CLASS_COLORS[c % len(CLASS_COLORS)]
        ax.bar(x + (c - (classes - 1) / 2) * width, np.maximum(per_class[c], 0.8), width, color=color, label=f"class {c}")
        ax.axhline(event["thresholds"][c], color=color, ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels([_short(t) for t in event["trees"]], rotation=90, fontsize=LABEL_SIZE - 3, family="monospace")
    title = f"computation trees ({event['graphs']}/{event['total_graphs']} graphs, {event['distinct_trees']} distinct)"
    style_axes(ax, title, xlabel="", ylabel="graphs containing the tree")
    ax.grid(False)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(
        fontsize=LEGEND_SIZE, loc="upper right", framealpha=0.85, title="-- support threshold", title_fontsize=LEGEND_SIZE - 1
    )
    return ax


@view("distilled_vs_full")
def distilled_vs_full(ax: Axes, log: EventLog) -> Axes:
    """Validation accuracy (solid) and ROC-AUC (dashed) of the GNN trained on the distilled set and
    of the one trained on the full set; the legend gives their test values once the fit ends (the
    accuracy with each GNN's decision threshold set on the validation graphs, then at plain argmax)."""
    if not log.scalars("val/student_acc")[0]:
        return empty(ax, "distilled vs full data")
    for who, label, color in (("student", "distilled", "tab:blue"), ("full", "full", "tab:gray")):
        for metric, ls in (("acc", "-"), ("auc", "--")):
            steps, values = log.scalars(f"val/{who}_{metric}")
            if not steps:
                continue
            test = log.last_value(f"test/{who}_{metric}")
            text = f"{label} {metric}" + (f" (test {test:.3f})" if test is not None and math.isfinite(test) else "")
            argmax = log.last_value(f"test/{who}_acc_argmax") if metric == "acc" else None
            if argmax is not None and test is not None:  # the threshold set on validation graphs, and without it
                text = text[:-1] + f"; argmax {argmax:.3f})"
            ax.plot(*decimate(steps, values), color=color, ls=ls, marker="." if len(steps) <= 60 else None, label=text)
    ratio = log.last_value("mirage/compression_bytes")
    title = "distilled vs full data" + (f" ({ratio:.1f}× fewer bytes)" if ratio else "")
    style_axes(ax, title, ylabel="validation score")
    ax.set_ylim(0.0, 1.02)
    ax.legend(fontsize=LEGEND_SIZE, loc="lower right", framealpha=0.85)
    return ax


@view("latency")
def latency(ax: Axes, log: EventLog) -> Axes:
    """Median inference time of the GNN teacher and the MLP student, on the whole graph and for a
    batch of nodes served alone (the GNN must gather their neighbourhoods first)."""
    names = ("graph", "nodes")
    gnn = [log.last_value(f"latency/gnn_{n}_ms") for n in names]
    mlp = [log.last_value(f"latency/mlp_{n}_ms") for n in names]
    if any(v is None for v in mlp):
        return empty(ax, "inference latency", "waiting for the end of the fit")
    x = np.arange(len(names))
    if any(v is None for v in gnn):  # no GNN in the run (lam = 1: the MLP trained alone)
        ax.bar(x, mlp, 0.4, color="tab:blue", label="MLP (student)")
        ax.set_xticks(x)
        ax.set_xticklabels(["whole graph", "nodes served alone"], fontsize=LABEL_SIZE)
        style_axes(ax, "inference latency (median; no GNN teacher)", xlabel="", ylabel="milliseconds")
        ax.legend(fontsize=LEGEND_SIZE, loc="upper right", framealpha=0.85)
        return ax
    ax.bar(x - 0.2, gnn, 0.4, color="tab:gray", label="GNN (teacher)")
    ax.bar(x + 0.2, mlp, 0.4, color="tab:blue", label="MLP (student)")
    for i in range(len(names)):
        ax.annotate(f"{gnn[i] / mlp[i]:.0f}×", (x[i], max(gnn[i], mlp[i]) * 1.3), ha="center", va="bottom", fontsize=LABEL_SIZE)
    ax.set_yscale("log")
    ax.set_ylim(min(gnn + mlp) / 3, max(gnn + mlp) * 40)
    ax.set_xticks(x)
    ax.set_xticklabels(["whole graph", "nodes served alone"], fontsize=LABEL_SIZE)
    style_axes(ax, "inference latency (median)", xlabel="", ylabel="milliseconds (log)")
    ax.grid(False)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=LEGEND_SIZE, loc="upper right", framealpha=0.85)
    return ax


@view("teacher")
def teacher(ax: Axes, log: EventLog) -> Axes:
    """The GCN teacher trained before distilling (when none was given): its training loss and
    validation accuracy per epoch, live, with the epoch whose weights are kept once it is done."""
    steps, acc = log.scalars("teacher/val_acc")
    if not steps:
        if any(n.startswith(("train/", "val/", "test/")) for n in log.names("scalar")):  # the student trains
            return empty(ax, "GCN teacher", "no teacher trained here: it was given, or lam = 1 needs none")
        return empty(ax, "GCN teacher")
    epochs = log.last_value("teacher/epochs")
    ax.plot(*decimate(steps, acc), color="tab:green", label="val accuracy")
    ax.set_ylim(0.0, 1.02)
    loss_steps, loss = log.scalars("teacher/train_loss")
    twin = ax.twinx()
    twin.plot(*decimate(loss_steps, loss), color="tab:gray", ls="--", label="train loss")
    twin.set_ylabel("train loss", fontsize=LABEL_SIZE)
    twin.tick_params(labelsize=LABEL_SIZE - 1)
    best = log.last_value("teacher/best_val_acc")
    if best is not None:
        kept = log.last_value("teacher/best_epoch")
        ax.axvline(kept, color="tab:green", ls=":", lw=1)
        title = f"GCN teacher: val acc {best:.3f} (epoch {kept:.0f} kept)"
    else:
        title = f"GCN teacher: epoch {steps[-1]}" + (f"/{epochs:.0f}" if epochs else "")
    style_axes(ax, title, xlabel="teacher epoch", ylabel="validation accuracy")
    lines = ax.get_lines()[:1] + twin.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], fontsize=LEGEND_SIZE, loc="lower right", framealpha=0.85)
    return ax


def draw_tree(ax: Axes, node_labels, edge_index, names=None, title: str = "") -> Axes:
    """Draw a rooted tree given as node labels and child → parent edges (node 0 the root, on top),
    each node showing its label (``names[label]`` when given): the form of
    :meth:`~nbdistill.families.graph.trees.TreeCodes.materialise`."""
    labels = [int(v) for v in node_labels]
    children: list[list[int]] = [[] for _ in labels]
    for child, parent in zip(*[list(map(int, row)) for row in edge_index]):
        children[parent].append(child)
    x, depth, leaves = [0.0] * len(labels), [0] * len(labels), [0]

    def place(node: int, level: int) -> float:
        depth[node] = level
        if children[node]:
            x[node] = float(np.mean([place(c, level + 1) for c in children[node]]))
        else:
            x[node], leaves[0] = float(leaves[0]), leaves[0] + 1
        return x[node]

    place(0, 0)
    for parent, kids in enumerate(children):
        for c in kids:
            ax.plot([x[parent], x[c]], [-depth[parent], -depth[c]], color="0.6", lw=1, zorder=1)
    for node, label in enumerate(labels):
        color = CLASS_COLORS[label % len(CLASS_COLORS)]
        ax.scatter(x[node], -depth[node], s=260, color=color, edgecolor="black" if node == 0 else "white", zorder=2)
        text = names[label] if names is not None else str(label)
        ax.text(x[node], -depth[node], text, ha="center", va="center", fontsize=LABEL_SIZE, color="white", zorder=3)
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.set_yticks(-np.arange(max(depth) + 1))
    ax.set_yticklabels([f"depth {d}" for d in range(max(depth) + 1)], fontsize=LABEL_SIZE - 1)
    ax.set_xticks([])
    ax.set_xlim(-0.7, max(leaves[0] - 1, 0) + 0.7)
    ax.set_ylim(-max(depth) - 0.5, 0.5)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    return ax
