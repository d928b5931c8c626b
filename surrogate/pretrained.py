"""Trained surrogates shipped with the package (``surrogate/resources/pretrained/``).

Each model is two files read through :mod:`importlib.resources`: ``NAME.pt``, the weights with the
normalisation, grid, time step and Re_tau they were trained on (the ``best.pt`` of a training run
without its optimiser state), and ``NAME.yaml``, its card: what it was trained on, the command that
trained it and what its long rollout measured against the filtered DNS.

>>> import surrogate as sg
>>> [card.name for card in sg.pretrained_models()]  # doctest: +SKIP
['ifactformer_m-re180', 'ifactformer_o-re180']
>>> model, card = sg.pretrained("ifactformer_m-re180")  # doctest: +SKIP
>>> sg.rollout_pretrained("ifactformer_m-re180", steps=1000, path="rollout.nc")  # doctest: +SKIP
>>> sg.rollout_pretrained("ifactformer_m-re180", ds, steps=1000, path="rollout.nc")  # doctest: +SKIP

Without ``ds`` the rollout starts from the card's ``initial`` window, the first snapshots of a
shipped field reference (``fdns180`` for the Re_tau = 180 models, see
:mod:`surrogate.references`), so no dataset need be on disk; ``surrogate validate rollout.nc
--reference fdns180`` then compares it with that filtered DNS. ``ds`` is any field Dataset on
the model's grid (its coordinates are checked; attributes are not needed): its last
``n_history`` snapshots (at or before ``t_start``) start the rollout. ``surrogate pretrained``
lists the models; ``surrogate pretrained NAME --steps N --out FILE [--initial FILE]`` rolls one out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from importlib.resources import files
from os import PathLike, fspath
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
import yaml

from .constraints import ConstraintSettings
from .fields import FieldError, check_fields_on_grid, open_fields
from .grid import ChannelGrid
from .models import SurrogateModel, save_model
from .references import field_reference_path
from .rollout import RolloutResult, rollout

__all__ = [
    "PretrainedCard", "export_pretrained", "load_pretrained", "pretrained", "pretrained_dir", "pretrained_models", "rollout_pretrained",
]

#: Checkpoint entries a shipped model keeps (the rest of a training checkpoint is dropped).
_KEPT = ("normalization", "case", "grid", "dt", "re_tau", "variables", "n_history", "epoch", "selection_score")


@dataclass(frozen=True)
class PretrainedCard:
    """What a shipped model is: its name, its card's text and its measured rollout."""

    name: str
    description: str
    model: str
    trained_on: str
    command: str
    initial: str | None = None
    rollout: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One paragraph for ``surrogate pretrained``."""
        lines = [f"{self.name}: {self.description}", f"  model {self.model}; trained on {self.trained_on}", f"  made by: {self.command}"]
        if self.initial:
            lines.append(f"  starts by default from the first snapshot of {self.initial} (validate against it: --reference {self.initial})")
        if self.rollout:
            lines.append("  rollout: " + ", ".join(f"{k} {v}" for k, v in self.rollout.items()))
        return "\n".join(lines)


def pretrained_dir() -> Path:
    """The folder of shipped models installed with the package."""
    return Path(fspath(files("surrogate.resources") / "pretrained"))


def _card_path(name: str) -> Path:
    path = pretrained_dir() / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(card.name for card in pretrained_models()) or "none"
        raise ValueError(f"no pretrained model {name!r}; shipped: {known}")
    return path


def _read_card(path: Path) -> PretrainedCard:
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    return PretrainedCard(name=path.stem, **spec)


def pretrained_models() -> list[PretrainedCard]:
    """The cards of every shipped model, by name."""
    return [_read_card(path) for path in sorted(pretrained_dir().glob("*.yaml"))]


def pretrained(name: str, map_location: Any = "cpu") -> tuple[SurrogateModel, PretrainedCard]:
    """A shipped model (in eval mode) and its card (data, grid, time step, recipe, measured rollout).

    Raises
    ------
    ValueError
        If no model of that name is shipped (the message lists those that are).
    """
    card = _read_card(_card_path(name))
    model, _ = load_pretrained(name, map_location)
    return model, card


def load_pretrained(name: str, map_location: Any = "cpu") -> tuple[SurrogateModel, dict[str, Any]]:
    """A shipped model (in eval mode) and its checkpoint (normalisation, grid, ``dt``, ``re_tau``).

    Raises
    ------
    ValueError
        If no model of that name is shipped (the message lists those that are).
    """
    from .training import load_trained_model

    _card_path(name)
    model, checkpoint = load_trained_model(pretrained_dir() / f"{name}.pt", map_location=map_location)
    checkpoint["grid"] = ChannelGrid(**checkpoint["grid"])
    return model, checkpoint


def export_pretrained(run_checkpoint: str | PathLike[str], path: str | PathLike[str]) -> Path:
    """Write the weights of a training run's ``best.pt`` (or ``checkpoint.pt``) as a shipped ``.pt``.

    Keeps the model, its constructor arguments, weights and what a rollout needs
    (normalisation, grid, ``dt``, ``re_tau``, ``n_history``, the training case); drops the
    optimiser, scheduler and random-number state.
    """
    from .training import load_trained_model

    model, checkpoint = load_trained_model(run_checkpoint)
    extra = {key: checkpoint[key] for key in _KEPT if key in checkpoint}
    extra["normalization"] = asdict(checkpoint["normalization"])
    return save_model(model, path, extra)


def _initial_window(initial: xr.Dataset | str | PathLike[str], grid: ChannelGrid, n_history: int, t_start: float | None) -> tuple[torch.Tensor, float, str]:
    """The ``(n_history, 3, nx, ny, nz)`` window ending at ``t_start`` (default: the last snapshot)."""
    source = "the Dataset given"
    if not isinstance(initial, xr.Dataset):
        source = str(initial)
        initial = open_fields(initial)
    try:
        check_fields_on_grid(initial, grid, what="the model's grid")
    except FieldError as exc:
        raise FieldError(f"{source}: {exc}") from None
    if "time" not in initial.dims:
        initial = initial.expand_dims(time=[0.0])
    times = np.asarray(initial["time"].values, dtype=np.float64)
    last = len(times) - 1 if t_start is None else int(np.searchsorted(times, t_start + 1e-9, side="right")) - 1
    if t_start is not None and (last < 0 or times[-1] < t_start - 1e-9):
        raise ValueError(f"{source}: t_start = {t_start:g} lies outside its times {times[0]:g}..{times[-1]:g} h/u_tau")
    if last + 1 < n_history:
        raise ValueError(f"{source}: the model needs {n_history} snapshots up to t = {times[last]:g}, the file has {last + 1}")
    window = initial.isel(time=slice(last + 1 - n_history, last + 1))
    values = np.stack([window[name].values for name in ("u", "v", "w")], axis=1)
    if not np.all(np.isfinite(values)):
        raise FieldError(f"{source}: the initial snapshots hold NaN or infinite velocities")
    return torch.from_numpy(values.astype(np.float32)), float(times[last]), source


def rollout_pretrained(
    name: str,
    initial: xr.Dataset | str | PathLike[str] | None = None,
    steps: int = 1000,
    path: str | PathLike[str] = "rollout.nc",
    *,
    t_start: float | None = None,
    constraints: ConstraintSettings = ConstraintSettings(),
    device: Any = "cpu",
    output_every: int = 1,
    compile: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> RolloutResult:
    """Roll the shipped model ``name`` out for ``steps`` steps from a field Dataset or file.

    Parameters
    ----------
    initial
        Fields on the model's grid (``u, v, w`` in u_tau, dims ``(time, x, y, z)`` or
        ``(x, y, z)``); attributes are not needed. Default: the first ``n_history`` snapshots
        of the card's shipped ``initial`` reference.
    t_start
        Time (h/u_tau) of the last snapshot of the start window; default the last one (for the
        shipped window: its first time).
    path, output_every, compile
        Output field file, how often to write and whether to compile, as in
        :func:`surrogate.rollout.rollout`.
    """
    card = _read_card(_card_path(name))
    model, checkpoint = load_pretrained(name, map_location=device)
    grid = checkpoint["grid"]
    if initial is None:
        if card.initial is None:
            raise ValueError(f"the pretrained model {name!r} ships no initial window: give a field file to start from")
        initial = open_fields(field_reference_path(card.initial))
        if t_start is None:
            t_start = float(initial["time"][checkpoint["n_history"] - 1])
    window, t0, source = _initial_window(initial, grid, checkpoint["n_history"], t_start)
    return rollout(
        model, window, steps, path, normalization=checkpoint["normalization"], grid=grid, dt=checkpoint["dt"],
        re_tau=checkpoint["re_tau"], t0=t0, constraints=constraints, device=device, output_every=output_every,
        compile=compile, overwrite=overwrite, progress=progress,
        attrs={"pretrained": name, "model": model.registry_name, "initial_file": source},
    )
