"""Closure training case files: ``surrogate closure CASE`` (see :mod:`surrogate.closure_training`).

Example::

    name: closure_re180
    dataset: ../validation/data/dataset_re180   # a filtered-DNS dataset (surrogate dataset)
    closure: {hidden: 16, layers: 2, cs: 0.1}   # NeuralEddyViscosity (parts: mean_field, fluctuating, rotation, anisotropy, linear_forcing, forcing_target)
    training:
      epochs: 10                # 0: the closure as it starts (with mean_field, its a-priori fit)
      samples_per_epoch: 40     # start windows drawn from the training split each epoch
      batch_size: 4             # samples per optimiser step
      test_samples: 8           # evenly spaced windows of the test split, the same every epoch
      snapshots: 1              # snapshot intervals unrolled per sample (the loss at each)
      steps_per_snapshot: 17    # solver steps per snapshot interval: dt = dt_snapshot / this
      lr: 1.0e-3
      statistics_weight: 1.0    # weight of the plane-statistics error
      profile_weights: {}       # weights of its profiles (U, u_rms, v_rms, w_rms, uv; unnamed: 1)
      field_weight: 1.0         # weight of the field error
      frozen: []                # closure parts kept at their start, e.g. [mean_field]
      start: filtered_dns       # or attractor: unroll from the closure LES's own developed states
      spin_up: 15.0             # attractor: h/u_tau the LES states run with the closure first
      gap: 1.0                  # attractor: h/u_tau they run on between two unrolls
      select_hours: 0.0         # attractor: h/u_tau they run on after each epoch to choose closure.pt by
      start_fields: []          # attractor: field files on other grids, each carrying one more LES state
      target_rate: 1.0          # forcing_target: its relaxation rate at the start (u_tau/h)
    output: runs/{name}
"""

from __future__ import annotations

import math
from os import PathLike
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

from pydantic import Field, model_validator

from ..closure_parts import CLOSURE_PARTS, LINEAR_FORCING_BOUND, ClosurePart
from .base import ConfigError, ConfigModel, NamedCase, Float, device_problem, load_config, require, resolve_path, source_folder

__all__ = ["CLOSURE_PARTS", "ClosureCase", "ClosureNetworkConfig", "ClosureTrainingConfig", "load_closure_case"]


class ClosureNetworkConfig(ConfigModel):
    """The networks of :class:`surrogate.solver.NeuralEddyViscosity`: width, depth, initial ``C_s``,
    and which parts it has (``mean_field``: the mean-field eddy viscosity, started from its a-priori
    estimate on the training split; ``fluctuating``: the pointwise one; ``rotation``: the
    non-dissipative strain-rotation stress; ``anisotropy``: the stress of the traceless squares of
    strain and rotation; ``linear_forcing``: a force on each component's plane fluctuation, at a
    rate of the wall distance; ``forcing_target``: a return of that force toward target plane
    energies), and optionally the closure file it starts from."""

    hidden: int = 16
    layers: int = 2
    cs: Float = 0.1
    weights: str | None = None
    """Start from this closure file (a run's ``closure.pt``, or a shipped closure's name) instead of
    the initial networks; its sizes and parts must be those given here."""
    mean_field: bool = False
    fluctuating: bool = True
    rotation: bool = False
    anisotropy: bool = False
    linear_forcing: bool = False
    forcing_target: bool = False

    @model_validator(mode="after")
    def check(self) -> ClosureNetworkConfig:
        """Positive sizes, a finite start."""
        require(self.hidden >= 1 and self.layers >= 1, f"hidden and layers must be >= 1, got {self.hidden}, {self.layers}")
        require(math.isfinite(self.cs), f"cs must be a finite number, got {self.cs}")
        require(any(getattr(self, part) for part in CLOSURE_PARTS), f"{', '.join(CLOSURE_PARTS)} are all false: the closure would have no part")
        require(self.linear_forcing or not self.forcing_target, "forcing_target needs linear_forcing: true (it is a rate of that forcing)")
        return self


class ClosureTrainingConfig(ConfigModel):
    """How the closure is trained through the solver (module docstring)."""

    epochs: int = 10
    samples_per_epoch: int = 40
    batch_size: int = 4
    test_samples: int = 8
    snapshots: int = 1
    steps_per_snapshot: int = 17
    lr: Float = 1.0e-3
    statistics_weight: Float = 1.0
    field_weight: Float = 1.0
    profile_weights: dict[Literal["U", "u_rms", "v_rms", "w_rms", "uv"], Float] = Field(default_factory=dict)
    frozen: list[ClosurePart] = Field(default_factory=list)
    start: Literal["filtered_dns", "attractor"] = "filtered_dns"
    spin_up: Float = 15.0
    gap: Float = 1.0
    select_hours: Float = 0.0
    start_fields: list[str] = Field(default_factory=list)
    """``start: attractor``: field files (e.g. a developed LES on a larger box) whose last snapshot each
    starts one more carried LES state, on the file's own grid (the dataset's wall-normal cells, any
    horizontal box and cells). The loss and the selection weigh each grid alike: the closure is
    trained and chosen for every grid at once."""
    target_rate: Float = 1.0
    """``closure.forcing_target`` not read from a file: the rate (u_tau / h) it starts at, toward the
    training split's resolved plane energies."""
    max_grad_norm: Float = 1.0
    recompute: bool = True
    seed: int = 0
    device: str = "cpu"
    dtype: Literal["float64", "float32"] = "float64"

    @model_validator(mode="after")
    def check(self) -> ClosureTrainingConfig:
        """Positive counts and rates; an available device."""
        require(self.epochs >= 0, f"epochs must be >= 0 (0: the closure as it starts), got {self.epochs}")
        for name in ("samples_per_epoch", "batch_size", "test_samples", "snapshots", "steps_per_snapshot"):
            require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        require(self.lr > 0 and self.max_grad_norm > 0, f"lr and max_grad_norm must be positive, got {self.lr}, {self.max_grad_norm}")
        require(
            min(self.statistics_weight, self.field_weight) >= 0 and self.statistics_weight + self.field_weight > 0,
            f"statistics_weight and field_weight must be >= 0 and not both 0, got {self.statistics_weight}, {self.field_weight}",
        )
        require(
            all(weight >= 0 for weight in self.profile_weights.values()) and (not self.profile_weights or sum(self.profile_weights.values()) > 0),
            f"profile_weights must be >= 0 and not all 0, got {self.profile_weights}",
        )
        require(
            abs(self.target_rate) < LINEAR_FORCING_BOUND,
            f"target_rate must lie within +-{LINEAR_FORCING_BOUND:g} u_tau/h (the linear forcing's bound), got {self.target_rate}",
        )
        require(
            min(self.spin_up, self.gap, self.select_hours) >= 0,
            f"spin_up, gap and select_hours must be >= 0 h/u_tau, got {self.spin_up}, {self.gap}, {self.select_hours}",
        )
        require(
            self.start == "attractor" or (self.select_hours == 0 and not self.start_fields),
            f"select_hours and start_fields carry LES states, which start: attractor does; got start: {self.start}",
        )
        require(
            self.start == "filtered_dns" or (self.field_weight == 0 and self.statistics_weight > 0),
            f"start: attractor compares statistics only (the LES's own states have no filtered-DNS field to match): "
            f"set field_weight: 0 and statistics_weight > 0, got {self.field_weight}, {self.statistics_weight}",
        )
        problem = device_problem(self.device)
        require(problem is None, f"device: {problem}")
        return self


class ClosureCase(NamedCase):
    """A closure training case."""

    dataset: str
    closure: ClosureNetworkConfig = Field(default_factory=ClosureNetworkConfig)
    training: ClosureTrainingConfig = Field(default_factory=ClosureTrainingConfig)

    @model_validator(mode="after")
    def check_frozen(self) -> ClosureCase:
        """Frozen parts are parts of the closure, and one part is left to train."""
        parts = [name for name in CLOSURE_PARTS if getattr(self.closure, name)]
        unknown = [name for name in self.training.frozen if name not in parts]
        require(not unknown, f"training.frozen names {unknown}, which the closure does not have (its parts: {parts})")
        require(set(parts) - set(self.training.frozen), f"training.frozen holds every part of the closure {parts}: nothing to train")
        return self


def load_closure_case(path: str | PathLike[str] | Mapping[str, Any], overrides: Iterable[str] = ()) -> ClosureCase:
    """Load a closure training case; a relative ``dataset`` is resolved against the case file's folder
    when it exists there, else against the working directory.

    Raises
    ------
    ConfigError
        For unknown keys or bad values, naming the key and what was expected.
    """
    case = load_config(ClosureCase, path, overrides)
    base = source_folder(path)
    case.dataset = str(resolve_path(case.dataset, base))
    if case.closure.weights is not None:  # a path next to the case file, else as given (or a shipped name)
        case.closure.weights = str(resolve_path(case.closure.weights, base))
    case.training.start_fields = [str(resolve_path(item, base)) for item in case.training.start_fields]
    missing = [item for item in case.training.start_fields if not Path(item).is_file()]
    if missing:
        origin = path if isinstance(path, (str, PathLike)) else "<mapping>"
        raise ConfigError(f"{origin}: training.start_fields: {', '.join(missing)} is not a file (expected a field netCDF file)")
    return case
