"""Case files: YAML documents loaded into nested, validated dataclasses.

A case file is a YAML mapping whose sections mirror a tree of dataclasses (for a DNS,
:class:`CaseConfig` with its :class:`GridConfig`, :class:`PhysicsConfig`, ... sections). The loader
:func:`load_config` is generic: it walks any dataclass tree, checks every value against the field's
type annotation, rejects unknown or missing keys, runs each section's optional ``validate()``
method and applies command-line overrides of the form ``section.key=value``.

Every problem raises :class:`ConfigError` whose message names the file (or ``<command line>``),
the dotted key, the value given and what was expected, for example::

    cases/channel180.yaml: unknown key 'solver.cfll'; did you mean 'cfl'?
    (valid keys in section 'solver': cfl, device, dt, dtype)

Supported annotations: ``int``, ``float`` (integers accepted, booleans never), ``str``, ``bool``,
``Literal[...]``, ``X | None``, nested dataclasses, ``list[X]``, ``tuple[X, ...]``,
``tuple[X, Y]``, ``dict[str, X]`` and ``Any``. To add a section (subgrid model, training, ...)
define another dataclass, give it a ``validate(self)`` method raising ``ValueError`` for
out-of-range values, and use it as a field type; nothing in the loader needs to change.

Units follow the package conventions: lengths in channel half-heights h, velocities in friction
velocities u_tau, times in h/u_tau.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import math
import re
import string
import types
import typing
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, TypeVar, Union

import yaml

__all__ = [
    "ConfigError",
    "read_yaml",
    "load_config",
    "apply_overrides",
    "dump_config",
    "config_hash",
    "resolve_path",
    "resolve_sgs_weights",
    "GridConfig",
    "PhysicsConfig",
    "InitialConfig",
    "SolverConfig",
    "RunConfig",
    "CaseConfig",
    "load_case",
]

T = TypeVar("T")

_MAPPING_ORIGIN = "<mapping>"
_COMMAND_LINE = "<command line>"
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class ConfigError(ValueError):
    """A case file or override has an unknown key, a missing key or a bad value."""


class _Mismatch(Exception):
    """Internal: a value does not have the shape its annotation asks for (at this node)."""


@dataclass
class _Source:
    """Where configuration values came from: a file (or mapping) plus command-line overrides."""

    name: str
    overrides: dict[tuple[str, ...], str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name

    def label(self, path: tuple[str, ...], section: bool = False) -> str:
        """The source name, mentioning the overrides that set ``path`` (or, for a section, its keys)."""
        keys = tuple(part.split("[")[0] for part in path)
        texts = [
            text
            for target, text in self.overrides.items()
            if keys[: len(target)] == target or (section and target[: len(keys)] == keys)
        ]
        if not texts:
            return self.name
        listed = ", ".join(repr(text) for text in texts)
        return f"{self.name} (with command-line override {listed})"


# ====================================================================== loading


def load_config(
    cls: type[T],
    source: str | PathLike[str] | Mapping[str, Any],
    overrides: Iterable[str] = (),
) -> T:
    """Load a YAML file or a mapping into the dataclass ``cls``, checking every key and value.

    Parameters
    ----------
    cls
        The dataclass at the root of the configuration tree (e.g. :class:`CaseConfig`).
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
        wrong type or outside the allowed choices, failed ``validate()`` checks, malformed
        overrides and unreadable YAML.
    FileNotFoundError
        If ``source`` is a path that does not exist.
    """
    if not dataclasses.is_dataclass(cls) or not isinstance(cls, type):
        raise TypeError(f"load_config needs a dataclass type, got {cls!r}")
    mapping, origin = _read_source(source)
    if not isinstance(mapping, Mapping):
        raise ConfigError(
            f"{origin}: expected a mapping of sections at the top level "
            f"(keys {', '.join(_field_types(cls))}), got {_type_name(mapping)}"
        )
    overrides = [overrides] if isinstance(overrides, str) else list(overrides)
    mapping = apply_overrides(cls, mapping, overrides, origin=origin)
    source_info = _Source(origin, {tuple(_parse_override(text, origin)[0]): text for text in overrides})
    return _build_dataclass(cls, mapping, source_info, ())


def apply_overrides(
    cls: type,
    mapping: Mapping[str, Any],
    overrides: Iterable[str],
    *,
    origin: str = _MAPPING_ORIGIN,
) -> dict[str, Any]:
    """Return a copy of ``mapping`` with command-line overrides applied.

    Parameters
    ----------
    cls
        The root dataclass; override keys are checked against its fields before being set.
    mapping
        The parsed configuration (not modified).
    overrides
        Strings ``"a.b.c=value"``; ``value`` is parsed with ``yaml.safe_load``.
    origin
        Name of the configuration source, used in error messages.

    Returns
    -------
    dict
        The updated mapping (a deep copy).

    Raises
    ------
    ConfigError
        If an override is malformed or names a key that does not exist.
    """
    result = copy.deepcopy(dict(mapping))
    if isinstance(overrides, str):
        overrides = [overrides]
    for text in overrides:
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
    if data is None:
        data = {}
    return data, str(path)


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
    """Check the key path of one override against the dataclass tree and set it in ``mapping``."""
    where = f"{_COMMAND_LINE} (override {text!r}, applied on top of {origin})"
    section_cls, target = cls, mapping
    for depth, key in enumerate(keys):
        hints = _field_types(section_cls)
        if key not in hints:
            raise ConfigError(_unknown_key_message(where, keys[:depth], key, list(hints)))
        if depth == len(keys) - 1:
            target[key] = value
            return
        child_cls = _section_type(hints[key])
        if child_cls is None:
            raise ConfigError(
                f"{where}: {_dotted(keys[: depth + 1])!r} is a value, not a section, so it has no key "
                f"{keys[depth + 1]!r}; write '{_dotted(keys[: depth + 1])}=VALUE'"
            )
        child = target.get(key)
        if child is None:
            child = target[key] = {}
        elif not isinstance(child, dict):
            raise ConfigError(
                f"{origin}: section {_dotted(keys[: depth + 1])!r} is {child!r}, expected a mapping "
                f"(needed to apply override {text!r})"
            )
        section_cls, target = child_cls, child


# ====================================================================== building


def _build_dataclass(cls: type[T], data: Any, origin: _Source, path: tuple[str, ...]) -> T:
    """Build one dataclass instance from a mapping, recursing into nested sections."""
    where = _dotted(path) or "top level"
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{origin.label(path)}: section {where!r} must be a mapping of keys to values, got {data!r}"
        )
    hints = _field_types(cls)
    for key in data:
        if key not in hints:
            raise ConfigError(_unknown_key_message(origin.label(path), list(path), str(key), list(hints)))
    kwargs = {}
    for name, tp in hints.items():
        if name in data:
            kwargs[name] = _convert_field(tp, data[name], origin, path + (name,))
        elif _is_required(cls, name):
            raise ConfigError(
                f"{origin.label(path)}: missing required key {_dotted(path + (name,))!r} "
                f"(expected {_describe(tp)})"
            )
    instance = cls(**kwargs)
    for name in hints:
        if name not in data:
            _validate_default(getattr(instance, name), origin, path + (name,))
    _run_validate(instance, origin, path)
    return instance


def _validate_default(value: Any, origin: _Source, path: tuple[str, ...]) -> None:
    """Validate a section left at its default (so a default that needs settings is reported)."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return
    for spec in dataclasses.fields(value):
        _validate_default(getattr(value, spec.name), origin, path + (spec.name,))
    _run_validate(value, origin, path, note=" (not given, so its defaults were used)")


def _convert_field(tp: Any, value: Any, origin: _Source, path: tuple[str, ...]) -> Any:
    """Convert one value, turning a shallow type mismatch into a :class:`ConfigError`."""
    try:
        return _convert(tp, value, origin, path)
    except _Mismatch:
        raise ConfigError(
            f"{origin.label(path)}: bad value for {_dotted(path)!r}: got {value!r} ({_type_name(value)}); "
            f"expected {_describe(tp)}{_choice_hint(tp, value)}"
        ) from None


def _convert(tp: Any, value: Any, origin: _Source, path: tuple[str, ...]) -> Any:
    """Check ``value`` against annotation ``tp`` and return it in canonical form.

    Raises :class:`_Mismatch` when the value itself has the wrong type, and
    :class:`ConfigError` for problems deeper inside (list items, nested sections).
    """
    origin_tp = typing.get_origin(tp)
    if tp is Any or tp is object:
        return value
    if origin_tp in (Union, types.UnionType):
        return _convert_union(tp, value, origin, path)
    if origin_tp is Literal:
        if any(value == choice and type(value) is type(choice) for choice in typing.get_args(tp)):
            return value
        raise _Mismatch
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise _Mismatch
        return _build_dataclass(tp, value, origin, path)
    if origin_tp in (list, tuple, dict):
        return _convert_container(tp, value, origin, path)
    return _convert_scalar(tp, value)


def _convert_union(tp: Any, value: Any, origin: _Source, path: tuple[str, ...]) -> Any:
    """Try each member of a union (``X | None``) in order."""
    members = typing.get_args(tp)
    if value is None:
        if type(None) in members:
            return None
        raise _Mismatch
    for member in members:
        if member is type(None):
            continue
        try:
            return _convert(member, value, origin, path)
        except _Mismatch:
            continue
    raise _Mismatch


def _convert_container(tp: Any, value: Any, origin: _Source, path: tuple[str, ...]) -> Any:
    """Check a ``list[X]``, ``tuple[...]`` or ``dict[str, X]`` value item by item."""
    container, args = typing.get_origin(tp), typing.get_args(tp)
    if container is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch
        key_tp, item_tp = args if args else (Any, Any)
        return {
            _convert_field(key_tp, key, origin, path + (f"<key {key!r}>",)): _convert_field(
                item_tp, item, origin, path + (str(key),)
            )
            for key, item in value.items()
        }
    if not isinstance(value, (list, tuple)):
        raise _Mismatch
    if container is list:
        item_types = [args[0] if args else Any] * len(value)
    elif len(args) == 2 and args[1] is Ellipsis:
        item_types = [args[0]] * len(value)
    else:
        item_types = list(args) if args else [Any] * len(value)
        if len(item_types) != len(value):
            raise _Mismatch
    items = [
        _convert_field(item_tp, item, origin, path[:-1] + (f"{path[-1]}[{i}]",))
        for i, (item_tp, item) in enumerate(zip(item_types, value))
    ]
    return items if container is list else tuple(items)


def _convert_scalar(tp: Any, value: Any) -> Any:
    """Check a value against ``bool``, ``int``, ``float`` or ``str``."""
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        # YAML 1.1 reads "1e-3" (no dot) as a string; accept plain numeric text for floats.
        if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(tp, type):
        if isinstance(value, tp):
            return value
    else:
        raise TypeError(f"unsupported annotation in a config dataclass: {tp!r}")
    raise _Mismatch


def _run_validate(instance: Any, origin: _Source, path: tuple[str, ...], note: str = "") -> None:
    """Call ``instance.validate()`` if it exists, wrapping ``ValueError`` in :class:`ConfigError`."""
    validate = getattr(instance, "validate", None)
    if validate is None:
        return
    try:
        validate()
    except ConfigError:
        raise
    except ValueError as exc:
        where = _dotted(path) or "top level"
        raise ConfigError(f"{origin.label(path, section=True)}: invalid section {where!r}{note}: {exc}") from None


# ====================================================================== helpers


def _field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations of the init fields of a dataclass, in declaration order."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _is_required(cls: type, name: str) -> bool:
    """True if dataclass field ``name`` has neither a default nor a default factory."""
    spec = next(f for f in dataclasses.fields(cls) if f.name == name)
    return spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING


def _section_type(tp: Any) -> type | None:
    """The dataclass behind a field annotation (``Section`` or ``Section | None``), else None."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return tp
    if typing.get_origin(tp) in (Union, types.UnionType):
        sections = [arg for arg in typing.get_args(tp) if dataclasses.is_dataclass(arg)]
        if len(sections) == 1:
            return sections[0]
    return None


def _unknown_key_message(where: str, section: list[str], key: str, valid: list[str]) -> str:
    """Error text for an unknown key, with the closest valid key and the list of valid keys."""
    full = _dotted(section + [key])
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    section_name = _dotted(section) or "top level"
    return (
        f"{where}: unknown key {full!r}{hint} "
        f"(valid keys in section {section_name!r}: {', '.join(sorted(valid))})"
    )


def _describe(tp: Any) -> str:
    """Human-readable description of what an annotation accepts."""
    origin_tp, args = typing.get_origin(tp), typing.get_args(tp)
    if origin_tp in (Union, types.UnionType):
        parts = [_describe(arg) for arg in args if arg is not type(None)]
        if type(None) in args:
            parts.append("null")
        return " or ".join(parts)
    if origin_tp is Literal:
        return "one of " + ", ".join(repr(choice) for choice in args)
    if dataclasses.is_dataclass(tp):
        return f"a mapping with keys {', '.join(_field_types(tp))}"
    if origin_tp is list:
        return f"a list of {_describe(args[0]) if args else 'values'}"
    if origin_tp is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_describe(args[0])}"
        return f"a list of {len(args)} items ({', '.join(_describe(arg) for arg in args)})"
    if origin_tp is dict:
        return f"a mapping of {_describe(args[1]) if args else 'values'}"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(tp, getattr(tp, "__name__", repr(tp)))


def _choice_hint(tp: Any, value: Any) -> str:
    """``"; did you mean 'x'?"`` when a string is close to one of a Literal's choices."""
    if not isinstance(value, str):
        return ""
    choices = [str(arg) for arg in _literal_choices(tp)]
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _literal_choices(tp: Any) -> list[Any]:
    """All Literal choices inside an annotation (looking through unions)."""
    origin_tp = typing.get_origin(tp)
    if origin_tp is Literal:
        return list(typing.get_args(tp))
    if origin_tp in (Union, types.UnionType):
        return [choice for arg in typing.get_args(tp) for choice in _literal_choices(arg)]
    return []


def _type_name(value: Any) -> str:
    """YAML-flavoured name of a value's type for error messages."""
    if value is None:
        return "null"
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping"}
    return names.get(type(value), type(value).__name__)


def _dotted(keys: Iterable[str]) -> str:
    """Join key parts as ``a.b.c``."""
    return ".".join(keys)


# ====================================================================== provenance


def dump_config(obj: Any) -> dict[str, Any]:
    """Convert a configuration dataclass to plain nested dicts, lists and scalars.

    Parameters
    ----------
    obj
        A configuration dataclass instance (e.g. a :class:`CaseConfig`).

    Returns
    -------
    dict
        A mapping that ``yaml.safe_dump`` and ``json.dumps`` accept (tuples become lists) and
        that :func:`load_config` reads back into an equal instance.
    """
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"dump_config needs a dataclass instance, got {obj!r}")
    return _plain(dataclasses.asdict(obj))


def _plain(value: Any) -> Any:
    """Recursively turn tuples into lists and mapping keys into strings."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def config_hash(obj: Any, length: int = 12) -> str:
    """Short SHA-256 fingerprint of a configuration, stable across runs and machines.

    Parameters
    ----------
    obj
        A configuration dataclass instance, or the plain mapping of one (:func:`dump_config`).
    length
        Number of hexadecimal characters to keep (1-64).

    Returns
    -------
    str
        The first ``length`` hex digits of the SHA-256 of the canonical JSON of
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


# ====================================================================== the DNS case schema


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


def _require(condition: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``condition`` holds."""
    if not condition:
        raise ValueError(message)


@dataclass
class GridConfig:
    """Grid section: cell counts, box size in h and wall-normal stretching.

    The field names match :class:`surrogate.grid.ChannelGrid`, so
    ``ChannelGrid(**dataclasses.asdict(config.grid))`` builds the grid.
    """

    nx: int
    ny: int
    nz: int
    lx: float = 2.0 * math.pi
    lz: float = math.pi
    stretching: float = 0.0

    def validate(self) -> None:
        """Check positive sizes, ``ny >= 2`` and ``stretching >= 0``."""
        for name in ("nx", "ny", "nz"):
            _require(getattr(self, name) >= 1, f"{name} must be a positive number of cells, got {getattr(self, name)}")
        _require(self.ny >= 2, f"ny must be at least 2 cells between the walls, got {self.ny}")
        for name in ("lx", "lz"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value > 0, f"{name} must be a positive length in h, got {value}")
        _require(
            math.isfinite(self.stretching) and self.stretching >= 0,
            f"stretching must be >= 0 (0 = uniform), got {self.stretching}",
        )


@dataclass
class PhysicsConfig:
    """Physics section: friction Reynolds number and how the flow is driven.

    ``bulk_velocity`` is the bulk velocity in u_tau units held by constant-flow-rate forcing;
    ``None`` means it is taken from Dean's correlation for ``re_tau``.
    """

    re_tau: float
    forcing: Literal["constant_flow_rate", "constant_pressure_gradient"] = "constant_flow_rate"
    bulk_velocity: float | None = None

    def validate(self) -> None:
        """Check ``re_tau > 0`` and a positive bulk velocity if given."""
        _require(math.isfinite(self.re_tau) and self.re_tau > 0, f"re_tau must be positive, got {self.re_tau}")
        if self.bulk_velocity is not None:
            _require(
                math.isfinite(self.bulk_velocity) and self.bulk_velocity > 0,
                f"bulk_velocity must be positive (in u_tau) or null, got {self.bulk_velocity}",
            )


@dataclass
class InitialConfig:
    """Initial-condition section.

    ``kind``: ``laminar`` (parabolic profile), ``turbulent`` (mean profile plus random
    perturbations of relative size ``amplitude``, drawn with ``seed``) or ``file`` (a field file or
    checkpoint at ``path``, or a shipped field reference such as ``fdns180``; the last snapshot of
    a file with several).
    """

    kind: Literal["laminar", "turbulent", "file"] = "turbulent"
    seed: int = 0
    amplitude: float = 0.3
    path: str | None = None

    def validate(self) -> None:
        """Check that ``path`` is given exactly when ``kind`` is ``file``."""
        if self.kind == "file":
            _require(bool(self.path), "kind 'file' needs path: the field file to start from")
        else:
            _require(self.path is None, f"path is only used with kind 'file', but kind is {self.kind!r}")
        _require(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        _require(
            math.isfinite(self.amplitude) and self.amplitude >= 0,
            f"amplitude must be >= 0, got {self.amplitude}",
        )


@dataclass
class SolverConfig:
    """Solver section: time step (fixed ``dt`` in h/u_tau, or adaptive from ``cfl``), dtype, device.

    ``compile`` fuses each Runge–Kutta substep with ``torch.compile`` (faster long runs after a
    one-off compilation; agrees with the eager solver to round-off).
    """

    dt: float | None = None
    cfl: float = 0.8
    dtype: Literal["float64", "float32"] = "float64"
    device: str = "cpu"
    compile: bool = False

    def validate(self) -> None:
        """Check ``dt > 0`` if given and ``0 < cfl <= 2``."""
        if self.dt is not None:
            _require(math.isfinite(self.dt) and self.dt > 0, f"dt must be positive (h/u_tau) or null, got {self.dt}")
        _require(0 < self.cfl <= 2, f"cfl must be in (0, 2], got {self.cfl}")
        problem = device_problem(self.device)
        _require(problem is None, str(problem))


@dataclass
class RunConfig:
    """Run section: how long to run and what to write.

    Times are in h/u_tau. Exactly one of ``t_end`` and ``steps`` is given. ``output`` is the run
    folder; ``{name}`` is replaced by the case name (see :meth:`CaseConfig.output_dir`).
    Snapshots after ``stats_start`` count for statistics; they are stored in ``snapshot_dtype``
    (checkpoints always keep the solver's full precision).
    """

    t_end: float | None = None
    steps: int | None = None
    snapshot_interval: float = 1.0
    checkpoint_interval: float = 10.0
    output: str = "runs/{name}"
    stats_start: float = 0.0
    snapshot_dtype: Literal["float64", "float32"] = "float32"

    def validate(self) -> None:
        """Check the run length, the intervals and the ``output`` placeholders."""
        _require(
            (self.t_end is None) != (self.steps is None),
            f"give exactly one of t_end and steps (got t_end={self.t_end}, steps={self.steps})",
        )
        if self.t_end is not None:
            _require(self.t_end > 0, f"t_end must be positive (h/u_tau), got {self.t_end}")
        if self.steps is not None:
            _require(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        for name in ("snapshot_interval", "checkpoint_interval"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value > 0, f"{name} must be positive (h/u_tau), got {value}")
        _require(self.stats_start >= 0, f"stats_start must be >= 0 (h/u_tau), got {self.stats_start}")
        _check_placeholders(self.output)


def _check_placeholders(template: str) -> None:
    """Allow only the ``{name}`` placeholder in an output path template."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(f"output {template!r} is not a valid path template: {exc}") from None
    unknown = [name for name in fields if name != "name"]
    _require(not unknown, f"output {template!r} uses unknown placeholder(s) {unknown}; only {{name}} is allowed")


@dataclass
class SGSConfig:
    """Subgrid-scale section of an LES case.

    ``model`` is a name of :data:`surrogate.solver.sgs.SGS_MODELS`: ``smagorinsky``
    (parameters ``cs``, ``a_plus``, ``van_driest``), ``wale`` (``cw``), ``dynamic_smagorinsky``
    (``test_filter_ratio``, ``clip``), ``neural`` (``hidden``, ``layers``, ``cs``, ``weights``:
    a file written by ``NeuralEddyViscosity.save``), or ``none`` (the no-model control run on
    the LES grid). Unset parameters take the model's defaults.
    """

    model: str
    parameters: dict[str, bool | int | float | str] = field(default_factory=dict)

    def validate(self) -> None:
        """A known model; the no-model control takes no parameters."""
        from .solver.sgs import SGS_MODELS

        names = ["none", *SGS_MODELS]
        if self.model not in names:
            close = difflib.get_close_matches(self.model, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"model must be one of {', '.join(names)}, got {self.model!r}{hint}")
        _require(self.model != "none" or not self.parameters, "model 'none' takes no parameters")


@dataclass
class CaseConfig:
    """A channel-flow case: run by ``surrogate dns CASE``, or ``surrogate les CASE`` with ``sgs``."""

    name: str
    grid: GridConfig
    physics: PhysicsConfig
    solver: SolverConfig = field(default_factory=SolverConfig)
    initial: InitialConfig = field(default_factory=InitialConfig)
    run: RunConfig = field(default_factory=RunConfig)
    sgs: SGSConfig | None = None
    description: str = ""

    def validate(self) -> None:
        """Check that ``name`` is a usable folder name."""
        _require(bool(self.name.strip()), "name must not be empty")
        _require(
            "/" not in self.name and "\\" not in self.name,
            f"name must not contain path separators, got {self.name!r}",
        )

    def output_dir(self) -> Path:
        """The run folder: ``run.output`` with ``{name}`` replaced by the case name."""
        return Path(self.run.output.format(name=self.name))


def load_case(path: str | PathLike[str] | Mapping[str, Any], overrides: Iterable[str] = ()) -> CaseConfig:
    """Load a DNS case file.

    Parameters
    ----------
    path
        YAML case file (or a parsed mapping).
    overrides
        Command-line overrides ``"section.key=value"``, e.g. ``["solver.dt=0.002"]``.

    Returns
    -------
    CaseConfig
        The validated case.
    """
    case = load_config(CaseConfig, path, overrides)
    if case.sgs is not None:
        resolve_sgs_weights(case.sgs.parameters, Path(path).parent if isinstance(path, (str, PathLike)) else Path("."))
    return case


def resolve_sgs_weights(parameters: dict[str, Any], base: Path) -> None:
    """Resolve a subgrid model's ``weights`` file (a learned closure) against the case file's folder ``base``."""
    if isinstance(parameters.get("weights"), str):
        parameters["weights"] = str(resolve_path(parameters["weights"], base))
