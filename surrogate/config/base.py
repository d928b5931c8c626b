"""Case files: YAML documents loaded into nested, validated pydantic models.

A case file is a YAML mapping whose sections mirror a tree of :class:`ConfigModel` subclasses
(for a DNS, :class:`~surrogate.config.CaseConfig` with its grid, physics, ... sections).
:func:`load_config` reads the file, applies command-line overrides of the form
``section.key=value`` and validates the tree: unknown keys are refused, values are checked
strictly against the field annotations (an integer is accepted for a number, a boolean never)
and each section's ``model_validator`` checks run.

Every problem raises :class:`ConfigError` with one line that names the file (or
``<command line>``), the dotted key, the value given and what was expected, for example::

    cases/channel180.yaml: unknown key 'solver.cfll'; did you mean 'cfl'?
    (valid keys in section 'solver': cfl, compile, device, dt, dtype)

To add a section, subclass :class:`ConfigModel`, raise ``ValueError`` from a
``model_validator(mode="after")`` for out-of-range values, and use it as a field type; a section
whose default is its own class (``Field(default_factory=Section)``) is checked even when left out.

Units follow the package conventions: lengths in channel half-heights h, velocities in friction
velocities u_tau, times in h/u_tau.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import re
import string
import types
import typing
from os import PathLike
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, Mapping, TypeVar, Union

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "ConfigError", "ConfigModel", "Float", "NamedCase", "Scalar", "apply_overrides", "check_folder_name",
    "check_output_template", "config_hash", "device_problem", "dump_config", "load_config",
    "read_yaml", "require", "resolve_path", "source_folder",
]

T = TypeVar("T", bound="ConfigModel")

_MAPPING_ORIGIN = "<mapping>"
_COMMAND_LINE = "<command line>"
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class ConfigError(ValueError):
    """A case file or override has an unknown key, a missing key or a bad value."""


def _float_text(value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` (no dot) as a string; plain numeric text is taken as a number."""
    if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        return float(value)
    return value


#: A number (float); integers and numeric text such as ``1e-3`` are accepted, booleans never.
Float = Annotated[float, BeforeValidator(_float_text)]
#: A free-form parameter value: a boolean, an integer, a number or a string (tried in this order).
Scalar = Annotated[Union[bool, int, Float, str], Field(union_mode="left_to_right")]


class ConfigModel(BaseModel):
    """Base of every case-file section: unknown keys refused, values checked strictly."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _fill_sections(cls, data: Any) -> Any:
        """Left-out sections are validated from ``{}`` (so their checks run); lists become tuples."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        for name, info in cls.model_fields.items():
            factory = info.default_factory
            if name not in data and isinstance(factory, type) and issubclass(factory, ConfigModel):
                data[name] = {}
            elif isinstance(data.get(name), list) and typing.get_origin(_strip(info.annotation)) is tuple:
                data[name] = tuple(data[name])
        return data


class _Source:
    """Where configuration values came from: a file (or mapping) plus command-line overrides."""

    def __init__(self, name: str, overrides: dict[tuple[str, ...], str]) -> None:
        self.name, self.overrides = name, overrides

    def label(self, path: tuple[str, ...], section: bool = False) -> str:
        """The source name, mentioning the overrides that set ``path`` (or, for a section, its keys)."""
        keys = tuple(part.split("[")[0] for part in path)
        texts = [text for target, text in self.overrides.items()
                 if keys[: len(target)] == target or (section and target[: len(keys)] == keys)]
        if not texts:
            return self.name
        return f"{self.name} (with command-line override {', '.join(repr(text) for text in texts)})"


# ====================================================================== loading


def load_config(cls: type[T], source: str | PathLike[str] | Mapping[str, Any], overrides: Iterable[str] = ()) -> T:
    """Load a YAML file or a mapping into the model ``cls``, checking every key and value.

    Parameters
    ----------
    cls
        The :class:`ConfigModel` at the root of the configuration tree (e.g. ``CaseConfig``).
    source
        Path to a YAML file, or an already parsed mapping (reported as ``<mapping>`` in errors).
    overrides
        Command-line overrides ``"section.key=value"`` (any depth), applied in order on top of
        ``source``; each value is parsed with ``yaml.safe_load`` (``null``, numbers, lists, ...).

    Returns
    -------
    T
        An instance of ``cls`` with nested section instances, all validated.

    Raises
    ------
    ConfigError
        For unknown keys (with the closest valid key), missing required keys, values of the
        wrong type or outside the allowed choices, failed section checks, malformed overrides
        and unreadable YAML.
    FileNotFoundError
        If ``source`` is a path that does not exist.
    """
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        raise TypeError(f"load_config needs a ConfigModel type, got {cls!r}")
    mapping, origin = _read_source(source)
    if not isinstance(mapping, Mapping):
        raise ConfigError(
            f"{origin}: expected a mapping of sections at the top level "
            f"(keys {', '.join(cls.model_fields)}), got {_type_name(mapping)}"
        )
    overrides = [overrides] if isinstance(overrides, str) else list(overrides)
    mapping = apply_overrides(cls, mapping, overrides, origin=origin)
    source_info = _Source(origin, {tuple(_parse_override(text, origin)[0]): text for text in overrides})
    try:
        return cls.model_validate(mapping)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda error: error["type"] != "extra_forbidden")  # unknown keys first
        raise ConfigError(_error_message(cls, mapping, errors[0], source_info)) from None


def apply_overrides(
    cls: type[BaseModel], mapping: Mapping[str, Any], overrides: Iterable[str], *, origin: str = _MAPPING_ORIGIN
) -> dict[str, Any]:
    """Return a deep copy of ``mapping`` with command-line overrides ``"a.b.c=value"`` applied.

    Override keys are checked against the fields of ``cls`` before being set; ``value`` is
    parsed with ``yaml.safe_load``; ``origin`` names the configuration source in errors.

    Raises
    ------
    ConfigError
        If an override is malformed or names a key that does not exist.
    """
    result = copy.deepcopy(dict(mapping))
    for text in [overrides] if isinstance(overrides, str) else overrides:
        keys, value = _parse_override(text, origin)
        _set_override(cls, result, keys, value, text, origin)
    return result


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (lines {seen[key]} and {key_node.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | PathLike[str], error: type[Exception] | None = None) -> Any:
    """Parse a YAML file, raising ``error`` (default :class:`ConfigError`) with the path named
    when it is not UTF-8 text, not valid YAML or gives a key twice."""
    error = error or ConfigError
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}); expected a YAML file") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None


def _read_source(source: str | PathLike[str] | Mapping[str, Any]) -> tuple[Any, str]:
    """Return ``(parsed mapping, origin name)`` for a path or a mapping."""
    if isinstance(source, Mapping):
        return source, _MAPPING_ORIGIN
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"case file not found: {str(path)!r} (expected a YAML file)")
    data = read_yaml(path)
    return ({} if data is None else data), str(path)


def _parse_override(text: str, origin: str) -> tuple[list[str], Any]:
    """Split ``"a.b=value"`` into ``(["a", "b"], parsed value)``."""
    key, sep, raw = str(text).partition("=")
    keys = key.strip().split(".")
    if not sep or not all(part.strip() for part in keys):
        raise ConfigError(
            f"{_COMMAND_LINE}: override {text!r} is malformed; expected 'section.key=value' "
            f"(e.g. 'solver.dt=0.002'), applied on top of {origin}"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{_COMMAND_LINE}: value of override {text!r} is not valid YAML: {exc}") from None
    return [part.strip() for part in keys], value


def _set_override(cls: type, mapping: dict, keys: list[str], value: Any, text: str, origin: str) -> None:
    """Check the key path of one override against the model tree and set it in ``mapping``."""
    where = f"{_COMMAND_LINE} (override {text!r}, applied on top of {origin})"
    section_cls, target = cls, mapping
    for depth, key in enumerate(keys):
        fields = section_cls.model_fields
        if key not in fields:
            raise ConfigError(_unknown_key_message(where, keys[:depth], key, list(fields)))
        if depth == len(keys) - 1:
            target[key] = value
            return
        child_cls = _strip(fields[key].annotation)
        if not _is_model(child_cls):
            raise ConfigError(
                f"{where}: {'.'.join(keys[: depth + 1])!r} is a value, not a section, so it has no key "
                f"{keys[depth + 1]!r}; write '{'.'.join(keys[: depth + 1])}=VALUE'"
            )
        child = target.get(key)
        if child is None:
            child = target[key] = {}
        elif not isinstance(child, dict):
            raise ConfigError(
                f"{origin}: section {'.'.join(keys[: depth + 1])!r} is {child!r}, expected a mapping "
                f"(needed to apply override {text!r})"
            )
        section_cls, target = child_cls, child


# ====================================================================== error messages


def _error_message(cls: type, data: Any, error: Mapping[str, Any], origin: _Source) -> str:
    """One line for one pydantic error: source, dotted key, the value given and what was expected."""
    kind, loc = error["type"], tuple(error["loc"])
    if kind in ("missing", "extra_forbidden", "value_error", "assertion_error"):
        keys, value = list(loc), None
    else:  # keep the part of the location that is in the data (drop union member tags)
        keys, value = [], data
        for part in loc:
            if isinstance(value, Mapping) and part in value or (
                isinstance(value, (list, tuple)) and isinstance(part, int) and 0 <= part < len(value)
            ):
                keys.append(part)
                value = value[part]
            else:
                break
    path = _path(keys)
    if kind == "extra_forbidden":
        valid = list(_strip(_annotation_at(cls, keys[:-1])).model_fields)
        return _unknown_key_message(origin.label(path[:-1]), list(path[:-1]), str(keys[-1]), valid)
    if kind == "missing":
        return (
            f"{origin.label(path[:-1])}: missing required key {'.'.join(path)!r} "
            f"(expected {_describe(_annotation_at(cls, keys))})"
        )
    if kind in ("value_error", "assertion_error"):
        note = "" if _present(data, keys) else " (not given, so its defaults were used)"
        return (
            f"{origin.label(path, section=True)}: invalid section {'.'.join(path) or 'top level'!r}{note}: "
            f"{error['ctx']['error']}"
        )
    if loc[-1] == "[key]":  # a mapping's key, not its value
        key_type = typing.get_args(_strip(_annotation_at(cls, keys[:-1])))[0]
        return (
            f"{origin.label(path)}: bad key {keys[-1]!r} in {'.'.join(path[:-1])!r}; "
            f"expected {_describe(key_type)}{_choice_hint(key_type, keys[-1])}"
        )
    tp = _annotation_at(cls, keys)
    return (
        f"{origin.label(path)}: bad value for {'.'.join(path)!r}: got {value!r} ({_type_name(value)}); "
        f"expected {_describe(tp)}{_choice_hint(tp, value)}"
    )


def _path(keys: list[Any]) -> tuple[str, ...]:
    """Key parts as strings, list indices joined to their list: ``("surrogates[0]", "model")``."""
    parts: list[str] = []
    for key in keys:
        if isinstance(key, int) and parts:
            parts[-1] += f"[{key}]"
        else:
            parts.append(str(key))
    return tuple(parts)


def _present(data: Any, keys: list[Any]) -> bool:
    """True if the key path exists in the (overridden) source data."""
    for key in keys:
        if isinstance(data, Mapping) and key in data or isinstance(data, list) and isinstance(key, int):
            data = data[key]
        else:
            return False
    return True


def _strip(tp: Any) -> Any:
    """The annotation without ``Annotated`` metadata and, for ``X | None``, without ``None``."""
    while True:
        origin_tp, args = typing.get_origin(tp), typing.get_args(tp)
        if origin_tp is Annotated:
            tp = args[0]
        elif origin_tp in (Union, types.UnionType) and type(None) in args and len(args) == 2:
            tp = next(arg for arg in args if arg is not type(None))
        else:
            return tp


def _is_model(tp: Any) -> bool:
    """True for a pydantic model class (a section)."""
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _annotation_at(cls: type, keys: Iterable[Any]) -> Any:
    """The annotation of the value at the key path ``keys`` below the model ``cls``."""
    tp: Any = cls
    for key in keys:
        tp = _strip(tp)
        origin_tp, args = typing.get_origin(tp), typing.get_args(tp)
        if _is_model(tp):
            tp = tp.model_fields[key].annotation
        elif origin_tp is list or (origin_tp is tuple and len(args) == 2 and args[1] is Ellipsis):
            tp = args[0]
        elif origin_tp is tuple:
            tp = args[key] if isinstance(key, int) and key < len(args) else Any
        elif origin_tp is dict:
            tp = args[1]
        else:
            return Any
    return tp


def _unknown_key_message(where: str, section: list[str], key: str, valid: list[str]) -> str:
    """Error text for an unknown key, with the closest valid key and the list of valid keys."""
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return (
        f"{where}: unknown key {'.'.join(section + [key])!r}{hint} "
        f"(valid keys in section {'.'.join(section) or 'top level'!r}: {', '.join(sorted(valid))})"
    )


def _describe(tp: Any) -> str:
    """Human-readable description of what an annotation accepts."""
    origin_tp, args = typing.get_origin(tp), typing.get_args(tp)
    if origin_tp is Annotated:
        return _describe(args[0])
    if origin_tp in (Union, types.UnionType):
        parts = [_describe(arg) for arg in args if arg is not type(None)]
        return " or ".join(parts + ["null"] * (type(None) in args))
    if origin_tp is Literal:
        return "one of " + ", ".join(repr(choice) for choice in args)
    if _is_model(tp):
        return f"a mapping with keys {', '.join(tp.model_fields)}"
    if origin_tp is list or (origin_tp is tuple and len(args) == 2 and args[1] is Ellipsis):
        return f"a list of {_describe(args[0]) if args else 'values'}"
    if origin_tp is tuple:
        return f"a list of {len(args)} items ({', '.join(_describe(arg) for arg in args)})"
    if origin_tp is dict:
        return f"a mapping of {_describe(args[1]) if args else 'values'}"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(tp, getattr(tp, "__name__", repr(tp)))


def _choice_hint(tp: Any, value: Any) -> str:
    """``"; did you mean 'x'?"`` when a string is close to one of a Literal's choices."""
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, [str(arg) for arg in _literal_choices(tp)], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _literal_choices(tp: Any) -> list[Any]:
    """All Literal choices inside an annotation (looking through unions)."""
    origin_tp = typing.get_origin(tp)
    if origin_tp is Literal:
        return list(typing.get_args(tp))
    if origin_tp in (Union, types.UnionType, Annotated):
        return [choice for arg in typing.get_args(tp) for choice in _literal_choices(arg)]
    return []


def _type_name(value: Any) -> str:
    """YAML-flavoured name of a value's type for error messages."""
    if value is None:
        return "null"
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping"}
    return names.get(type(value), type(value).__name__)


# ====================================================================== provenance


def dump_config(obj: BaseModel) -> dict[str, Any]:
    """Convert a configuration model to plain nested dicts, lists and scalars.

    The mapping is one that ``yaml.safe_dump`` and ``json.dumps`` accept (tuples become lists)
    and that :func:`load_config` reads back into an equal instance.
    """
    if not isinstance(obj, BaseModel):
        raise TypeError(f"dump_config needs a configuration model instance, got {obj!r}")
    return _plain(obj.model_dump())


def _plain(value: Any) -> Any:
    """Recursively turn tuples into lists and mapping keys into strings."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def config_hash(obj: BaseModel | Mapping[str, Any], length: int = 12) -> str:
    """Short SHA-256 fingerprint of a configuration, stable across runs and machines.

    ``obj`` is a configuration model or the plain mapping of one (:func:`dump_config`); the
    result is the first ``length`` (1-64) hex digits of the SHA-256 of the canonical JSON of
    :func:`dump_config` (sorted keys, no whitespace).
    """
    plain = obj if isinstance(obj, Mapping) else dump_config(obj)
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:length]


def resolve_path(item: str, base: Path) -> Path:
    """A path from a case file: ``item`` relative to the case file's folder ``base`` where it
    exists there, else as given (absolute, or relative to the working directory)."""
    path = Path(item).expanduser()
    if path.is_absolute() or not (base / path).exists():
        return path
    return base / path


def source_folder(source: str | PathLike[str] | Mapping[str, Any]) -> Path:
    """The folder relative paths of a case are taken against: the file's folder (``.`` for a mapping)."""
    return Path(source).parent if isinstance(source, (str, PathLike)) else Path(".")


# ====================================================================== checks shared by the schemas


def require(condition: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``condition`` holds (inside a section's checks)."""
    if not condition:
        raise ValueError(message)


class NamedCase(ConfigModel):
    """What a case file that makes one folder has: its ``name``, the ``output`` folder template
    (``{name}`` is replaced by the name) and a free-text ``description``."""

    name: str
    output: str = "runs/{name}"
    description: str = ""

    @model_validator(mode="after")
    def check_name_and_output(self) -> "NamedCase":
        """A name usable as a folder name; an output template with no placeholder but ``{name}``."""
        check_folder_name(self.name)
        check_output_template(self.output)
        return self

    def output_dir(self) -> Path:
        """The folder the case writes: ``output`` with ``{name}`` replaced."""
        return Path(self.output.format(name=self.name))


def check_folder_name(value: str, key: str = "name") -> None:
    """Require ``value`` (the ``key`` of a section) to be usable as a folder name."""
    require(bool(value.strip()) and "/" not in value, f"{key} must be a folder name, got {value!r}")


def check_output_template(template: str) -> None:
    """Allow only the ``{name}`` placeholder in an output path template."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(f"output {template!r} is not a valid path template: {exc}") from None
    unknown = [name for name in fields if name != "name"]
    require(not unknown, f"output {template!r} uses unknown placeholder(s) {unknown}; only {{name}} is allowed")


def device_problem(name: str) -> str | None:
    """Why ``name`` is not a torch device this machine has (``None`` if it is one)."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        return f"device {name!r} is not a torch device name; expected e.g. 'cpu', 'cuda' or 'cuda:0'"
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return f"device {name!r}: CUDA is not available on this machine (torch {torch.__version__}); use device: cpu"
        if device.index is not None and device.index >= torch.cuda.device_count():
            return f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
    elif device.type == "mps" and not torch.backends.mps.is_available():
        return f"device {name!r}: MPS is not available on this machine; use device: cpu"
    elif device.type not in ("cpu", "cuda", "mps"):
        return f"device {name!r}: only cpu, cuda and mps devices are supported"
    return None
