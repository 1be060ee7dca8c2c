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
from .hparams import HParam, declared_hparams

__all__ = ["HParam", "Method", "register", "methods", "family_names", "get_method"]


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


def register(
    name: str,
    views: Sequence[str] = (),
    needs_teacher: bool = True,
) -> Callable[[type], type]:
    """Class decorator registering a method's module as ``name`` (``"family.method"``); its
    hyper-parameters are the ``HParam`` class attributes it declares or inherits."""
    if name.count(".") != 1:
        raise ValueError(f"method names are 'family.method', got {name!r}")

    def wrap(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name].module_class is not cls:
            raise ValueError(f"method {name!r} is already registered")
        doc = (cls.__doc__ or "").strip().split("\n\n")[0].split()  # the first paragraph, on one line
        _REGISTRY[name] = Method(
            name=name,
            family=name.split(".")[0],
            module_class=cls,
            hparams=declared_hparams(cls),
            views=tuple(views),
            summary=" ".join(doc),
            needs_teacher=needs_teacher,
        )
        cls.method_name = name
        return cls

    return wrap


#: The data layer's adapter from what a user passes as ``data`` to a LightningDataModule; the data
#: layer registers it (:func:`register_data_adapter`) when imported, which loading the families does.
_DATA_ADAPTER: list[Callable[..., Any]] = []


def register_data_adapter(adapter: Callable[..., Any]) -> None:
    """Set the function :func:`adapt_data` calls (``nbdistill.data.as_datamodule``)."""
    _DATA_ADAPTER[:] = [adapter]


def adapt_data(data: Any, seed: int = 0) -> Any:
    """``data`` as a LightningDataModule, through the data layer's registered adapter."""
    if not _DATA_ADAPTER:
        _load_families()  # the families import the data layer, which registers its adapter
    return _DATA_ADAPTER[0](data, seed=seed)


def _load_families() -> None:
    import importlib

    importlib.import_module("nbdistill.families")  # importing it registers every method
    importlib.import_module("nbdistill.data")  # and this the data adapter


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
    """The :class:`Method` a module class is registered as, or None."""
    name = getattr(module_class, "method_name", None)
    return _REGISTRY.get(name) if name else None
