"""Dataset case files: how a filtered-DNS dataset is made.

A dataset case is a YAML file run by ``surrogate dataset CASE``::

    name: dataset_quick
    source:
      case: quick.yaml          # DNS case file (relative to this file) run once per trajectory ...
      trajectories: 2           # ... with initial.seed = seed, seed + 1, ...
      seed: 0
      t_start: 2.0              # snapshots before this time (the transient) are not used
      # fields: [a.nc, b.nc]    # ... or existing DNS field files, one per trajectory
    coarse_grid: {nx: 16, ny: 17, nz: 16, stretching: 2.0}
    filter: {horizontal: box, wall_normal: average}
    dt_snapshot: 0.25           # spacing of the dataset's snapshots in h/u_tau
    split: {test: 0.2, by: trajectory}
    output: datasets/{name}

Times are in h/u_tau, lengths in channel half-heights h. The coarse grid takes the box lengths
``lx`` and ``lz`` of the DNS (filtering needs the same periodic box).
"""

from __future__ import annotations

import math
from os import PathLike
from typing import Any, Iterable, Literal, Mapping

from pydantic import Field, model_validator

from .base import ConfigModel, NamedCase, Float, load_config, require, resolve_path, source_folder
from .simulation import CellsConfig

__all__ = ["CoarseGridConfig", "DatasetCase", "FilterConfig", "SourceConfig", "SplitConfig", "load_dataset_case"]


class SourceConfig(ConfigModel):
    """Where the DNS snapshots come from.

    Either ``case`` (a DNS case file, run ``trajectories`` times from initial seeds ``seed``,
    ``seed + 1``, ... with ``overrides`` applied, its snapshots written every ``dt_snapshot``) or
    ``fields`` (existing DNS field files, one trajectory each). Snapshots before ``t_start``
    (h/u_tau) are skipped.
    """

    case: str | None = None
    fields: list[str] = []
    trajectories: int = 1
    seed: int = 0
    overrides: list[str] = []
    t_start: Float = 0.0

    @model_validator(mode="after")
    def check(self) -> SourceConfig:
        """Exactly one of ``case`` and ``fields``; counts and times in range."""
        require(
            (self.case is None) != (not self.fields),
            "give exactly one of 'case' (a DNS case file to run) and 'fields' (existing DNS field files)",
        )
        require(self.trajectories >= 1, f"trajectories must be >= 1, got {self.trajectories}")
        require(not self.fields or self.trajectories == 1, "'trajectories' counts DNS runs of 'case'; with 'fields' each file is one")
        require(not self.fields or not self.overrides, "'overrides' apply to 'case'; they cannot change existing 'fields'")
        require(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        require(math.isfinite(self.t_start) and self.t_start >= 0, f"t_start must be >= 0 (h/u_tau), got {self.t_start}")
        return self

    @property
    def n_trajectories(self) -> int:
        """Number of trajectories the source yields."""
        return len(self.fields) if self.fields else self.trajectories


class CoarseGridConfig(CellsConfig):
    """The coarse (LES / surrogate) grid: its cells; ``lx`` and ``lz`` default to the DNS box and,
    if given, must equal it."""

    lx: Float | None = None
    lz: Float | None = None


class FilterConfig(ConfigModel):
    """The filter (see :func:`surrogate.filtering.filter_to_grid`)."""

    horizontal: Literal["spectral", "box"] = "box"
    wall_normal: Literal["average", "interpolate"] = "average"


class SplitConfig(ConfigModel):
    """Train/test split.

    ``by: trajectory`` puts the last ``ceil(test * n)`` trajectories in the test split (needs at
    least two trajectories when ``test > 0``); ``by: time`` cuts every trajectory, the first
    ``1 - test`` of its snapshots for training and the rest for testing.
    """

    test: Float = 0.2
    by: Literal["trajectory", "time"] = "trajectory"

    @model_validator(mode="after")
    def check(self) -> SplitConfig:
        """``0 <= test < 1``."""
        require(0 <= self.test < 1, f"test must be a fraction in [0, 1), got {self.test}")
        return self


class DatasetCase(NamedCase):
    """A filtered-DNS dataset: source, coarse grid, filter, snapshot spacing, split, output."""

    source: SourceConfig
    coarse_grid: CoarseGridConfig
    dt_snapshot: Float
    filter: FilterConfig = Field(default_factory=FilterConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    dtype: Literal["float32", "float64"] = "float32"
    pressure: bool = False
    output: str = "datasets/{name}"

    @model_validator(mode="after")
    def check(self) -> DatasetCase:
        """A positive snapshot spacing."""
        require(math.isfinite(self.dt_snapshot) and self.dt_snapshot > 0, f"dt_snapshot must be positive (h/u_tau), got {self.dt_snapshot}")
        return self


def load_dataset_case(path: str | PathLike[str] | Mapping[str, Any], overrides: Iterable[str] = ()) -> DatasetCase:
    """Load a dataset case file; relative ``source.case`` and ``source.fields`` paths are resolved
    against the case file's folder (against the working directory for a mapping).

    Raises
    ------
    ConfigError
        For unknown keys, wrong types or values, naming the key and what was expected.
    """
    case = load_config(DatasetCase, path, overrides)
    base = source_folder(path)
    if case.source.case is not None:
        case.source.case = str(resolve_path(case.source.case, base))
    case.source.fields = [str(resolve_path(item, base)) for item in case.source.fields]
    return case
