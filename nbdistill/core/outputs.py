"""What a run produced, read from its checkpoint: the trained student, a distilled data set.

Used by :meth:`nbdistill.core.run.Run.student` and :meth:`~nbdistill.core.run.Run.distilled`.
A Lightning checkpoint holds the method module's ``state_dict``: the student under ``student.*``;
a ``dataset.*`` run's synthetic set as top-level tensors (``images``, ``labels`` and what the method
learns beside them: ``label_logits``, ``images_ema``, ``expert_labels``); a ``graph.mirage`` run its
distilled graphs under ``mirage_distilled`` and the best-validation weights under ``mirage_best``.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torch import nn

from .errors import ConfigError, RunFolderError

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
    """The trained student's ``state_dict`` (Mirage: its best validation epoch's; a method that trains the student
    in another form, e.g. with LoRA adapters, stores the plain network's weights as ``checkpoint["student_export"]``)."""
    if run.family == "dataset":
        raise RunFolderError(
            f"run {run.id} ({run.method}) distils a data set, not a student: its output is run.distilled(); "
            "train a network on that set to get a student"
        )
    best = checkpoint.get("mirage_best") or {}
    if "student" in best:
        return dict(best["student"][1])
    if isinstance(checkpoint.get("student_export"), dict):  # a method whose trained form is not its training form
        return dict(checkpoint["student_export"])
    state = {k[len("student.") :]: v for k, v in checkpoint.get("state_dict", {}).items() if k.startswith("student.")}
    if not state:
        raise RunFolderError(f"run {run.id}'s checkpoint holds no student weights")
    return state


class StudentNotRebuildable(RunFolderError, ConfigError):
    """The run recorded its student's class and constructor arguments, but they do not rebuild it."""


def _rebuild(run: Run) -> nn.Module | None:
    """The student rebuilt from the run's record (``setting.student``: ``module``, ``class`` and the
    constructor arguments ``init``; see :func:`~.setting.describe_model`); ``None`` without a full record.

    Raises :class:`StudentNotRebuildable` when the class cannot be imported or built from the record."""
    record = run.setting.get("student") or {}
    module_name, qualname, init = record.get("module"), record.get("class"), record.get("init")
    if not isinstance(module_name, str) or not isinstance(qualname, str) or not isinstance(init, dict):
        return None
    where = f"{module_name}.{qualname}"
    fix = f"pass a module of the same architecture, run.student({qualname.rsplit('.', 1)[-1]}(...))"
    try:
        cls: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError) as exc:
        raise StudentNotRebuildable(
            f"run {run.id}'s student class {where} cannot be imported ({type(exc).__name__}: {exc}): {fix}"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise StudentNotRebuildable(f"run {run.id}'s student class {where} is not a torch.nn.Module: {fix}")
    try:
        return cls(**init)
    except Exception as exc:  # noqa: BLE001 (any failure of a foreign constructor)
        raise StudentNotRebuildable(
            f"run {run.id}'s student {where} cannot be built from its recorded arguments {init}: "
            f"{type(exc).__name__}: {exc}; {fix}"
        ) from None


def student_from_checkpoint(run: Run, checkpoint: dict[str, Any], module: nn.Module | None) -> nn.Module:
    state = student_state(run, checkpoint)
    if module is None:
        module = _rebuild(run)
        if module is None:
            kind = (run.setting.get("student") or {}).get("class", "the student")
            raise RunFolderError(
                f"run {run.id}'s student ({kind}) cannot be rebuilt from the run alone: pass a module of the same "
                f"architecture, run.student({kind}(...)), and the trained weights are loaded into it (the run records "
                "a student's class and constructor arguments only when the student keeps every argument as an attribute)"
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
