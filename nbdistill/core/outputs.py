"""What a run produced, read from its checkpoint: the trained student, a distilled data set.

Used by :meth:`nbdistill.core.run.Run.student` and :meth:`~nbdistill.core.run.Run.distilled`.
A Lightning checkpoint holds the method module's ``state_dict``: the student under ``student.*``;
a ``dataset.*`` run's synthetic set as top-level tensors (``images``, ``labels`` and what the method
learns beside them: ``label_logits``, ``images_ema``, ``expert_labels``); a ``graph.mirage`` run its
distilled graphs under ``mirage_distilled`` and the best-validation weights under ``mirage_best``.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torch import nn

from .errors import RunFolderError

if TYPE_CHECKING:
    from .run import Run


def epochs_done(checkpoint: dict[str, Any]) -> int | None:
    """Epochs a checkpoint has trained through (Lightning's fit-loop progress, else its ``epoch``).

    ``processed``, not ``completed``: a checkpoint saved at the end of an epoch (the periodic one)
    has processed that epoch, and Lightning marks it completed only after the epoch-end hooks."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError, ValueError):
        epoch = checkpoint.get("epoch")
        return int(epoch) if isinstance(epoch, int) else None


def student_state(run: Run, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The trained student's ``state_dict`` (Mirage: its best validation epoch's)."""
    if run.family == "dataset":
        raise RunFolderError(
            f"run {run.id} ({run.method}) distils a data set, not a student: its output is run.distilled(); "
            "train a network on that set to get a student"
        )
    best = checkpoint.get("mirage_best") or {}
    if "student" in best:
        return dict(best["student"][1])
    state = {k[len("student.") :]: v for k, v in checkpoint.get("state_dict", {}).items() if k.startswith("student.")}
    if not state:
        raise RunFolderError(f"run {run.id}'s checkpoint holds no student weights")
    return state


def _rebuild(run: Run, state: dict[str, Any]) -> nn.Module | None:
    """The student rebuilt from the run's record where its weights determine it (``nd.models.MLP``)."""
    if (run.setting.get("student") or {}).get("class") != "MLP":
        return None
    from ..models import MLP

    linear = sorted(
        (int(k.split(".")[1]), v) for k, v in state.items() if k.startswith("net.") and k.endswith(".weight") and v.dim() == 2
    )
    if not linear:
        return None
    widths = [w.shape[0] for _, w in linear]
    dropout = any(b - a == 3 for (a, _), (b, _) in zip(linear, linear[1:]))  # Linear, ReLU, Dropout
    return MLP(linear[0][1].shape[1], widths[:-1], widths[-1], dropout=0.5 if dropout else 0.0)


def student_from_checkpoint(run: Run, checkpoint: dict[str, Any], module: nn.Module | None) -> nn.Module:
    state = student_state(run, checkpoint)
    if module is None:
        module = _rebuild(run, state)
        if module is None:
            kind = (run.setting.get("student") or {}).get("class", "the student")
            raise RunFolderError(
                f"run {run.id}'s student ({kind}) cannot be rebuilt from the run alone: pass a module of the same "
                f"architecture, run.student({kind}(...)), and the trained weights are loaded into it"
            )
    elif not isinstance(module, nn.Module):
        raise RunFolderError(f"run.student() takes a torch.nn.Module to load the weights into, not {type(module).__name__}")
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise RunFolderError(
            f"run {run.id}'s student weights do not fit the {type(module).__name__} given: pass the architecture the run "
            f"trained ({(run.setting.get('student') or {}).get('class', '?')}): {exc}"
        ) from exc
    return module.eval()


def distilled_from_checkpoint(run: Run, load: Callable[[], dict[str, Any]]):
    if run.method == "graph.mirage":
        checkpoint = load()
        saved = checkpoint.get("mirage_distilled")
        if saved is None:
            raise RunFolderError(f"run {run.id}'s checkpoint predates distilled graphs being saved with it: rerun it to get them")
        from torch_geometric.data import Data

        return [Data(**graph) for graph in saved["graphs"]]
    if run.family != "dataset":
        raise RunFolderError(f"run {run.id} ({run.method}) distils a student, not a data set: its output is run.student(module)")
    from .registry import get_method

    spec = get_method(run.method)
    checkpoint = load()
    values: dict[str, Any] = {h.name: h.default for h in spec.hparams}
    values.update(run.hparams)
    values.update({k: v for k, v in checkpoint.get("state_dict", {}).items() if "." not in k})
    if "images" not in values:
        raise RunFolderError(f"run {run.id}'s checkpoint holds no synthetic images")
    # the method's own rule for what its synthetic set is, applied to the saved tensors
    images, labels = spec.module_class.distilled(types.SimpleNamespace(**values))
    return images.detach().clone(), labels.detach().clone()
