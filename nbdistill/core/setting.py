"""What a run trained: the student, the teacher(s) and the data, recorded in ``run.json`` as ``setting``.

The hyper-parameters alone do not say what a run's figures mean: 100 labelled digits or all of
them, which student. :func:`describe_setting` reads it off the objects a run was given.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

_SIMPLE = (int, float, str, bool, type(None))


def describe_model(model: nn.Module) -> dict[str, Any]:
    """Class (``module`` and ``class``, its qualified name), parameter count and the simple constructor
    arguments a model keeps as attributes; ``init`` holds them all when they are every argument of
    its constructor, so that ``cls(**init)`` rebuilds it (what :meth:`~.run.Run.student` does)."""
    cls = type(model)
    out: dict[str, Any] = {
        "class": cls.__qualname__,
        "module": cls.__module__,
        "params": sum(p.numel() for p in model.parameters()),
    }
    values = _init_values(model)
    out.update(values)
    if set(_init_names(model)) <= set(values):
        out["init"] = values
    return out


def describe_data(data: Any) -> dict[str, Any]:
    """Class, the simple constructor arguments kept as attributes, and the sizes of the splits."""
    out: dict[str, Any] = {"class": type(data).__qualname__}
    out.update(_init_values(data))
    dataset = getattr(data, "dataset", None)
    if callable(dataset):
        sizes = {}
        for split in ("train", "val", "test"):
            try:
                sizes[split] = len(dataset(split))
            except Exception:  # noqa: BLE001 (a split it does not have)
                continue
        if sizes:
            out["sizes"] = sizes
    return out


def describe_setting(module: nn.Module, data: Any) -> dict[str, Any]:
    setting: dict[str, Any] = {}
    student = getattr(module, "student", None)
    if isinstance(student, nn.Module):
        setting["student"] = describe_model(student)
    teachers = getattr(module, "teachers", None) or []
    if len(teachers):
        setting["teachers"] = [describe_model(t) for t in teachers]
    if data is not None:
        setting["data"] = describe_data(data)
    return setting


def _init_names(obj: Any) -> list[str]:
    """The arguments of ``type(obj).__init__`` but ``self``; ``["*"]`` when it takes ``*args`` or ``**kwargs``
    (what it was given cannot be told) or has no signature."""
    try:
        params = inspect.signature(type(obj).__init__).parameters.values()
    except (TypeError, ValueError):
        return ["*"]
    if any(p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD) for p in params):
        return ["*"]
    return [p.name for p in params if p.name != "self"]


def _init_values(obj: Any) -> dict[str, Any]:
    try:
        params = inspect.signature(type(obj).__init__).parameters
    except (TypeError, ValueError):
        return {}
    values = {}
    for name in params:
        if name == "self" or name.startswith("_") or not hasattr(obj, name):
            continue
        value = getattr(obj, name)
        if isinstance(value, _SIMPLE) or (
            isinstance(value, (list, tuple)) and len(value) <= 32 and all(isinstance(v, _SIMPLE) for v in value)
        ):
            values[name] = list(value) if isinstance(value, tuple) else value
    return values
