"""What ``nbdistill fit`` checks before handing a config to LightningCLI, and how it words the rest.

jsonargparse answers a mistyped or ill-typed key with ~55 lines of usage and a "does not validate
against any of the Union subtypes" report. The command line should say what the Python API says,
in one line. So the config (the YAML after ``method:`` is expanded, plus the ``--section.key value``
overrides) is checked first:

- ``model``: every key must be an init argument of the method's module, and every declared
  hyper-parameter must pass :meth:`HParam.check <nbdistill.core.registry.HParam.check>` (the very
  check :func:`nbdistill.fit` makes), so the messages are the Python API's;
- ``data``: every key must be an init argument of the data module class;
- ``trainer``: every key must be an argument of ``pytorch_lightning.Trainer``.

Whatever the parser still refuses is condensed by :func:`summarize_parser_error` to one line.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from typing import Any

import yaml

from .errors import ConfigError
from .registry import Method, get_method, method_of

#: Keys of a ``class_path`` section that are not init arguments.
_META = {"class_path", "init_args", "dict_kwargs", "__path__"}
_SECTIONS = ("model", "data", "trainer")


def did_you_mean(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def _resolve(section: str, class_path: Any) -> type | None:
    """The class at a dotted ``class_path``; ``None`` for a short name (the parser resolves those)."""
    if not isinstance(class_path, str) or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", class_path.strip()):
        return None  # a short name, or a config file / inline config given as ``--model x.yaml``
    if class_path.rsplit(".", 1)[1] in ("yaml", "yml", "json"):
        return None
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ConfigError(f"{section}.class_path {class_path!r} cannot be imported: {exc}") from exc
    except AttributeError:
        raise ConfigError(f"{section}.class_path {class_path!r}: module {module!r} has no {name!r}") from None
    return cls if isinstance(cls, type) else None


def init_arguments(cls: type) -> list[str] | None:
    """Names ``cls(...)`` accepts; ``None`` when it takes ``**kwargs`` (anything goes)."""
    try:
        params = inspect.signature(cls.__init__).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.name != "self" and p.kind is not p.VAR_POSITIONAL]


def _value(raw: str) -> Any:
    """A command-line value read as jsonargparse reads it (YAML), falling back to the string."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def overrides(args: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """``--model.key value`` style overrides of ``args``: ``({section: {key: value}}, {section: class_path})``.

    Only the first level below a section is read (``--model.student.init_args.hidden`` is the
    ``student`` key); ``--data.init_args.key`` is ``--data.key``.
    """
    found: dict[str, dict[str, Any]] = {s: {} for s in _SECTIONS}
    classes: dict[str, str] = {}
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if not token.startswith("--"):
            continue
        name, eq, raw = token[2:].partition("=")
        if not eq:
            if i < len(args) and not args[i].startswith("--"):
                raw = args[i]
                i += 1
            else:
                raw = "true"
        section, _, rest = name.partition(".")
        if section not in _SECTIONS:
            continue
        parts = rest.split(".") if rest else []
        if parts[:1] == ["init_args"]:
            parts = parts[1:]
        if not parts:
            classes[section] = raw  # --model CLASS
        elif parts == ["class_path"]:
            classes[section] = raw
        elif parts[0] not in _META:  # ``--trainer.callbacks+=...`` appends to ``callbacks``
            found[section][parts[0].rstrip("+")] = raw if len(parts) > 1 else _value(raw)
    return found, classes


def _section_args(section: Any) -> dict[str, Any]:
    if not isinstance(section, dict):
        return {}
    args = {k: v for k, v in section.items() if k not in _META}
    init_args = section.get("init_args")
    if isinstance(init_args, dict):
        args.update(init_args)
    return args


def _hparam_value(value: Any, hp) -> Any:
    """Numbers written ``1e-3`` are strings to YAML 1.1 but numbers to jsonargparse: read them so."""
    if hp.type in (int, float) and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def check_model(spec: Method, cls: type, given: dict[str, Any]) -> None:
    """Unknown keys and bad hyper-parameter values of a method's ``model`` section, in the API's words."""
    declared = {h.name: h for h in spec.hparams}
    accepted = init_arguments(cls)
    others = [a for a in accepted or () if a not in declared]
    unknown = sorted(k for k in given if k not in declared and (accepted is None or k not in accepted))
    if accepted is not None and unknown:
        besides = f" (besides {', '.join(others)})" if others else ""
        raise ConfigError(
            f"{spec.name}: unknown hyper-parameter(s) {unknown}; it takes {sorted(declared) or 'none'}{besides}."
            + did_you_mean(unknown[0], sorted(declared) + others)
        )
    for key, value in given.items():
        if key in declared:
            declared[key].check(_hparam_value(value, declared[key]), spec.name)


def check_config(config: dict[str, Any], args: list[str]) -> None:
    """Check ``config`` (the expanded YAML) with the ``args`` overrides on top; raise :class:`ConfigError`."""
    given, classes = overrides(args)
    sections = {s: _section_args(config.get(s)) for s in _SECTIONS}
    for s in _SECTIONS:
        sections[s].update(given[s])

    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    model_cls = _resolve("model", classes.get("model", model.get("class_path")))
    spec = method_of(model_cls) if model_cls is not None else None
    if spec is not None:
        check_model(get_method(spec.name), model_cls, sections["model"])

    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    data_cls = _resolve("data", classes.get("data", data.get("class_path")))
    accepted = init_arguments(data_cls) if data_cls is not None else None
    if accepted is not None:
        unknown = sorted(set(sections["data"]) - set(accepted))
        if unknown:
            raise ConfigError(
                f"data {data_cls.__name__}: unknown argument(s) {unknown}; it takes {sorted(accepted)}."
                + did_you_mean(unknown[0], accepted)
            )

    import pytorch_lightning as pl

    trainer_args = init_arguments(pl.Trainer) or []
    unknown = sorted(set(sections["trainer"]) - set(trainer_args))
    if trainer_args and unknown:
        raise ConfigError(
            f"trainer: unknown option(s) {unknown} (pytorch_lightning.Trainer has no such argument)."
            + did_you_mean(unknown[0], trainer_args)
            + " `nbdistill fit --help` lists every option."
        )


_DETAIL = re.compile(
    r"(is not accepted|Expected a|Got value|not a valid|Unable to|does not exist|Import|must be|Key .* is not expected)"
)


_EXPECTED = re.compile(r"Expected a <class '(\w+)'>")
_GOT = re.compile(r"Got value: (.*)$")
_KIND = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "a string"}


def summarize_parser_error(message: str) -> str:
    """One line out of a jsonargparse error: the key, and the innermost reason it gives."""
    lines = [ln.strip() for ln in str(message).strip().splitlines() if ln.strip()]
    if not lines:
        return "the command line could not be parsed (nbdistill fit -v shows the parser's message)"
    head = lines[0]
    if head.lower().startswith("unrecognized arguments"):
        extra = head.split(":", 1)[1].split()
        extra = [a for a in extra if a != "fit"]
        return f"unknown option(s) {' '.join(extra)}; `nbdistill fit --help` lists every option"
    option = re.search(r"does not accept option '([^']+)'", head)
    if option:
        top = option.group(1).split(".")[0]
        return f"unknown key {top!r} in the config." + did_you_mean(top, [*_SECTIONS, "seed_everything", "ckpt_path"])
    key = re.match(r'Parser key "([^"]+)"', head)
    where = key.group(1) if key else None
    details = [ln for ln in lines[1:] if _DETAIL.search(ln) and "NoneType" not in ln]
    inner = [re.match(r'Parser key "([^"]+)"', ln) for ln in lines[1:]]
    inner_keys = [m.group(1) for m in inner if m]
    if inner_keys and where:
        where = f"{where}.{inner_keys[-1]}"
    if details:
        detail = details[-1].lstrip("- ")
        expected = [m.group(1) for m in map(_EXPECTED.search, lines) if m and m.group(1) != "NoneType"]
        got = _GOT.search(detail)
        given = (
            got.group(1).strip()
            if got
            else next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Given value:")), None)
        )
        if expected and given is not None and "NestedArg" not in given:
            kinds = " or ".join(dict.fromkeys(_KIND.get(e, e) for e in expected))
            return f"{where or 'a value'} must be {kinds}, got {given!r}"
        return f"{where}: {detail}" if where else detail
    problem = next((i for i, ln in enumerate(lines) if ln.lstrip("- ").startswith("Problem with given class_path")), None)
    if problem is not None and problem + 1 < len(lines):
        return f"{where or head}: {lines[problem + 1].lstrip('- ')}"
    return head + " (nbdistill fit -v shows the parser's full message)"
