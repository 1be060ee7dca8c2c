"""Hyper-parameters declared once: ``HParam`` class attributes become the module's ``__init__``.

A method's module declares each hyper-parameter as a class attribute (inherited ones included)::

    class HintonKD(KDModule):
        temperature = HParam(float, 4.0, 1.0, 20.0, help="softening temperature T")
        alpha = HParam(float, 0.1, 0.0, 1.0, help="weight of the hard-label CE")

and :func:`install_init` writes, as ``dataclasses`` does, an ``__init__`` with the real signature
``(self, student, teacher=None, teachers=(), temperature: float = 4.0, alpha: float = 0.1, lr:
float = 0.01, weight_decay: float = 0.0)``: LightningCLI reads its flags from it, the registry its
``Method.hparams``, the panel its controls, and the instance gets ``self.temperature`` etc. and
``save_hyperparameters`` from the one declaration. Parts a method builds from its hyper-parameters
(heads, a distilled set) go in ``build_parts()``, which the generated ``__init__`` calls last.

A subclass redeclares an inherited hyper-parameter to change its default or range, or sets the
name to ``None`` (or to any plain value, which then is a constant of the class) to drop it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from torch import nn

from .errors import ConfigError


@dataclass(frozen=True, init=False)
class HParam:
    """A declared hyper-parameter: ``type`` is ``float``, ``int``, ``bool`` or ``str``.

    Declared once, as a class attribute of the method's module (its name is the attribute's)::

        temperature = HParam(float, 4.0, 1.0, 20.0, help="softening temperature T")

    from which the module's ``__init__`` signature, ``save_hyperparameters``, the panel's controls,
    the CLI's flags and the validation before training all come (see :mod:`.hparams`).
    ``HParam("name", float, ...)`` names it explicitly (for a parameter outside a class).
    """

    type: type
    default: Any
    low: float | None = None
    high: float | None = None
    choices: Sequence[Any] | None = None
    log: bool = False
    help: str = ""
    name: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args and isinstance(args[0], str):
            kwargs["name"] = args[0]
            args = args[1:]
        fields = ("type", "default", "low", "high", "choices", "log", "help", "name")
        if len(args) > len(fields):
            raise TypeError(f"HParam takes at most {len(fields)} positional arguments")
        values = dict(zip(fields, args))
        for key, value in kwargs.items():
            if key not in fields or key in values:
                raise TypeError(f"HParam got an unexpected or repeated argument {key!r}")
            values[key] = value
        if "type" not in values or "default" not in values:
            raise TypeError("HParam needs a type and a default, e.g. HParam(float, 4.0, 1.0, 20.0, help=...)")
        for key in fields:
            object.__setattr__(self, key, values.get(key, HParam.__dataclass_fields__[key].default))

    def __set_name__(self, owner: type, name: str) -> None:
        if not self.name:
            object.__setattr__(self, "name", name)
        elif self.name != name:
            raise TypeError(f"{owner.__name__}.{name} declares HParam named {self.name!r}: the names must agree")

    def check(self, value: Any, method: str) -> Any:
        """Return ``value`` converted to the declared type, or raise a :class:`ConfigError`."""
        where = f"{method}: hyper-parameter {self.name!r}"
        if self.type is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{where} must be True or False, got {value!r}")
            return value
        if self.type in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where} must be a number, got {value!r}")
            if self.type is int and float(value) != int(value):
                raise ConfigError(f"{where} must be an integer, got {value!r}")
            value = self.type(value)
            if value != value:
                raise ConfigError(f"{where} is NaN")
            if self.low is not None and value < self.low or self.high is not None and value > self.high:
                raise ConfigError(f"{where} = {value} is outside its range [{self.low}, {self.high}]")
            return value
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{where} = {value!r} is not one of {list(self.choices)}")
        return self.type(value)


#: The model arguments every method's ``__init__`` takes before its hyper-parameters.
MODEL_ARGS = ("student", "teacher", "teachers")


def declared_hparams(cls: type) -> tuple[HParam, ...]:
    """The hyper-parameters ``cls`` declares or inherits: its own first (in the order written), then
    those of its nearest base, and so on (``lr`` and ``weight_decay`` of the base come last)."""
    found: dict[str, HParam] = {}  # the nearest declaration of each name wins
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, HParam):
                found[name] = value
            elif name in found:  # e.g. ``lr = None``: dropped
                del found[name]
    ordered: list[HParam] = []
    for klass in cls.__mro__:
        ordered += [
            v for n, v in vars(klass).items() if isinstance(v, HParam) and found.get(n) is v and all(v is not o for o in ordered)
        ]
    return tuple(ordered)


def install_init(cls: type, init_declared) -> None:
    """Give ``cls`` an ``__init__(self, student, teacher=None, teachers=(), <hparams>)`` that calls
    ``init_declared(self, student, teacher, teachers, {name: value, ...})``."""
    params = declared_hparams(cls)
    clash = [h.name for h in params if h.name in MODEL_ARGS or not h.name.isidentifier()]
    if clash:
        raise TypeError(f"{cls.__name__}: hyper-parameters may not be named {clash}")
    namespace: dict[str, Any] = {
        "_init": init_declared,
        "_Module": nn.Module,
        "_OptionalModule": Optional[nn.Module],  # noqa: UP045 (a runtime object for jsonargparse)
        "_Teachers": Sequence[nn.Module],
    }
    args = []
    for i, h in enumerate(params):
        namespace[f"_type{i}"] = h.type
        namespace[f"_default{i}"] = h.default
        args.append(f"{h.name}: _type{i} = _default{i}")
    values = ", ".join(f"{h.name!r}: {h.name}" for h in params)
    signature = ", ".join(["self", "student: _Module", "teacher: _OptionalModule = None", "teachers: _Teachers = ()", *args])
    source = f"def __init__({signature}) -> None:\n    _init(self, student, teacher, teachers, {{{values}}})\n"
    # (compiled without this module's ``from __future__ import annotations``: real annotation objects)
    exec(compile(source, f"<{cls.__qualname__}.__init__>", "exec", dont_inherit=True), namespace)  # noqa: S102
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init._declared = True
    init.__doc__ = f"{cls.__name__}: " + "; ".join(f"{h.name} ({h.help or h.type.__name__})" for h in params)
    cls.__init__ = init
