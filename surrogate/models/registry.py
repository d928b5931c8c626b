"""The model interface, the registry and model checkpoints.

Every surrogate is a :class:`SurrogateModel`: a ``torch.nn.Module`` whose

``forward(x, coords) -> y``
    takes ``x`` of shape ``(batch, n_history, n_var, nx, ny, nz)`` (the last ``n_history``
    normalised states, oldest first) and the grid's cell-centre coordinates
    ``coords = {"x": (nx,), "y": (ny,), "z": (nz,)}`` in h (from the dataset, see
    :meth:`surrogate.data.WindowDataset.coordinates`), and returns the next normalised state
    ``(batch, n_var, nx, ny, nz)``.

Constructor arguments are recorded automatically in ``model.hparams`` (defaults included), so
:func:`save_model` / :func:`load_model` rebuild a model from its name and arguments alone.
A model registers under a name, with its named presets (``"paper"``: the published
configuration; ``"cpu"``: a configuration that trains on a 2-core CPU in well under an hour), in
its class statement: ``class FNO(SurrogateModel, name="fno", presets={"cpu": {...}})``.
"""

from __future__ import annotations

import functools
import inspect
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar, Mapping

import torch
from torch import nn

from ..atomic import save_torch

__all__ = [
    "SurrogateModel",
    "available_models",
    "build_model",
    "count_parameters",
    "load_model",
    "model_presets",
    "save_model",
]

_REGISTRY: dict[str, type["SurrogateModel"]] = {}
_PRESETS: dict[str, dict[str, dict[str, Any]]] = {}


class SurrogateModel(nn.Module):
    """Base class of the surrogates: records its constructor arguments in ``hparams``."""

    registry_name: ClassVar[str] = ""
    weight_init_arguments: ClassVar[tuple[str, ...]] = ()
    """Constructor arguments that only choose initial weights (e.g. a pretrained file): :func:`load_model`
    rebuilds without them, since the checkpoint's state dict holds the weights."""
    hparams: dict[str, Any]

    def __init_subclass__(cls, name: str = "", presets: Mapping[str, Mapping[str, Any]] | None = None, **kwargs: Any) -> None:
        """``class FNO(SurrogateModel, name="fno", presets={...})`` registers the class under ``name``
        with its named presets; every subclass records its constructor arguments in ``hparams``."""
        super().__init_subclass__(**kwargs)
        if name:
            known = _REGISTRY.get(name)
            if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
                raise ValueError(f"a model is already registered as {name!r}: {known.__name__}")
            cls.registry_name = name
            _REGISTRY[name] = cls
            _PRESETS[name] = {key: dict(value) for key, value in (presets or {}).items()}
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self: "SurrogateModel", *args: Any, **kw: Any) -> None:
            init(self, *args, **kw)
            if type(self) is cls:
                bound = signature.bind(self, *args, **kw)
                bound.apply_defaults()
                self.hparams = {k: v for k, v in bound.arguments.items() if k != "self"}

        cls.__init__ = recording_init  # type: ignore[method-assign]

    def forward(self, x: torch.Tensor, coords: Mapping[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def check_input(x: torch.Tensor, coords: Mapping[str, torch.Tensor], n_history: int, n_var: int) -> None:
        """Raise a clear ``ValueError`` unless ``x`` is ``(batch, n_history, n_var, nx, ny, nz)`` matching ``coords``."""
        if x.ndim != 6 or x.shape[1] != n_history or x.shape[2] != n_var:
            raise ValueError(
                f"expected input of shape (batch, {n_history}, {n_var}, nx, ny, nz) "
                f"(n_history={n_history}, n_var={n_var}), got {tuple(x.shape)}"
            )
        for axis, size in zip("xyz", x.shape[3:]):
            if axis not in coords:
                raise ValueError(f"coords lacks {axis!r}; expected 1-D cell-centre coordinates for x, y and z")
            if coords[axis].shape != (size,):
                raise ValueError(f"coords[{axis!r}] has shape {tuple(coords[axis].shape)}, expected ({size},) for the input grid")


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`, sorted."""
    return sorted(_REGISTRY)


def model_presets(name: str) -> dict[str, dict[str, Any]]:
    """The named presets of a model (e.g. ``{"paper": {...}, "cpu": {...}}``)."""
    _check_name(name)
    return {key: dict(value) for key, value in _PRESETS[name].items()}


def _check_name(name: str) -> None:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")


def build_model(name: str, preset: str | None = None, **kwargs: Any) -> SurrogateModel:
    """Build a registered model: ``preset`` arguments (if any) updated by ``kwargs``.

    Raises
    ------
    ValueError
        For an unknown model or preset, naming the available ones.
    TypeError
        For an argument the model does not take, naming the ones it does.
    """
    _check_name(name)
    cls = _REGISTRY[name]
    arguments: dict[str, Any] = {}
    if preset is not None:
        if preset not in _PRESETS[name]:
            raise ValueError(f"model {name!r} has no preset {preset!r}; presets: {', '.join(_PRESETS[name]) or 'none'}")
        arguments.update(_PRESETS[name][preset])
    arguments.update(kwargs)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = [key for key in arguments if key not in accepted]
    if unknown:
        raise TypeError(f"model {name!r} takes no argument(s) {', '.join(unknown)}; it takes {', '.join(accepted)}")
    return cls(**arguments)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (each shared tensor counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def save_model(model: SurrogateModel, path: str | PathLike[str], extra: Mapping[str, Any] | None = None) -> Path:
    """Save name, constructor arguments and weights (plus ``extra`` entries) atomically with ``torch.save``."""
    if not model.registry_name:
        raise ValueError(f"{type(model).__name__} is not registered; register it to save it")
    payload = {"model": model.registry_name, "hparams": model.hparams, "state_dict": model.state_dict(), **(extra or {})}
    return save_torch(payload, path)


def load_model(path: str | PathLike[str], map_location: Any = "cpu") -> tuple[SurrogateModel, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_model`; returns ``(model, checkpoint)``.

    Arguments named in the model class's ``weight_init_arguments`` are left at their defaults.
    """
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    except FileNotFoundError:
        raise
    except Exception as exc:  # truncated, empty or foreign bytes: torch raises EOFError, RuntimeError, UnpicklingError, ...
        raise ValueError(
            f"{path} cannot be read as a checkpoint (truncated, empty or not written by torch.save): {type(exc).__name__}"
        ) from None
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path} is not a model checkpoint: it holds a {type(checkpoint).__name__}, expected a dict")
    for key in ("model", "hparams", "state_dict"):
        if key not in checkpoint:
            raise ValueError(f"{path} is not a model checkpoint: it lacks {key!r} (expected model, hparams, state_dict)")
    _check_name(checkpoint["model"])
    skipped = _REGISTRY[checkpoint["model"]].weight_init_arguments
    model = build_model(checkpoint["model"], **{k: v for k, v in checkpoint["hparams"].items() if k not in skipped})
    model.load_state_dict(checkpoint["state_dict"])
    return model, checkpoint
