"""The method registry: every distillation method, by name, with its declared hyper-parameters.

A method is a LightningModule class registered under ``"<family>.<name>"``. Its hyper-parameters
are declared once (type, default, range) so that the panel builds its controls, the CLI its
arguments and :func:`nbdistill.fit` its validation from the same declaration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class HParam:
    """A declared hyper-parameter: ``type`` is ``float``, ``int``, ``bool`` or ``str``."""

    name: str
    type: type
    default: Any
    low: float | None = None
    high: float | None = None
    choices: Sequence[Any] | None = None
    log: bool = False
    help: str = ""

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


@dataclass(frozen=True)
class Method:
    """A registered method: its name, family, module class, hyper-parameters and live views."""

    name: str
    family: str
    module_class: type
    hparams: tuple[HParam, ...]
    views: tuple[str, ...] = ()
    summary: str = ""
    needs_teacher: bool = True

    def defaults(self) -> dict[str, Any]:
        return {h.name: h.default for h in self.hparams}

    def check_hparams(self, values: dict[str, Any]) -> dict[str, Any]:
        """Merge ``values`` over the defaults, checking names, types and ranges."""
        known = {h.name: h for h in self.hparams}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"{self.name}: unknown hyper-parameter(s) {unknown}; it takes {sorted(known) or 'none'}")
        merged = self.defaults()
        for key, value in values.items():
            merged[key] = known[key].check(value, self.name)
        return merged


_REGISTRY: dict[str, Method] = {}

#: Hyper-parameters every method takes (the optimiser of :class:`~nbdistill.core.module.DistillModule`).
COMMON_HPARAMS = (
    HParam("lr", float, 1e-2, 1e-5, 1.0, log=True, help="Adam learning rate"),
    HParam("weight_decay", float, 0.0, 0.0, 0.1, help="Adam weight decay"),
)


def register(
    name: str,
    hparams: Sequence[HParam] = (),
    views: Sequence[str] = (),
    needs_teacher: bool = True,
) -> Callable[[type], type]:
    """Class decorator registering a LightningModule as method ``name`` (``"family.method"``)."""
    if name.count(".") != 1:
        raise ValueError(f"method names are 'family.method', got {name!r}")

    def wrap(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name].module_class is not cls:
            raise ValueError(f"method {name!r} is already registered")
        doc = (cls.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = Method(
            name=name,
            family=name.split(".")[0],
            module_class=cls,
            hparams=tuple(hparams) + tuple(h for h in COMMON_HPARAMS if h.name not in {p.name for p in hparams}),
            views=tuple(views),
            summary=doc[0] if doc else "",
            needs_teacher=needs_teacher,
        )
        cls.method_name = name
        return cls

    return wrap


def _load_families() -> None:
    import importlib

    importlib.import_module("nbdistill.families")  # importing it registers every method


def methods(family: str | None = None) -> list[str]:
    """Names of the registered methods, all of them or one family's (``methods("kd")``)."""
    _load_families()
    names = sorted(_REGISTRY)
    if family is None:
        return names
    if family not in family_names():
        raise ConfigError(f"unknown family {family!r}; known families: {family_names()}")
    return [n for n in names if _REGISTRY[n].family == family]


def family_names() -> list[str]:
    _load_families()
    return sorted({m.family for m in _REGISTRY.values()})


def get_method(name: str) -> Method:
    """The :class:`Method` registered as ``name``; a clear error for an unknown name."""
    _load_families()
    if name not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise ConfigError(f"unknown method {name!r}.{hint} Known methods: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def method_of(module_class: type) -> Method | None:
    name = getattr(module_class, "method_name", None)
    return _REGISTRY.get(name) if name else None
