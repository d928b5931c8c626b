"""The channel case schema: ``surrogate dns CASE`` and ``surrogate les CASE`` (with ``sgs``).

Lengths are in channel half-heights h, velocities in friction velocities u_tau, times in h/u_tau.
"""

from __future__ import annotations

import difflib
import math
from os import PathLike
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

from pydantic import Field, model_validator

from .base import ConfigModel, Float, Scalar, check_output_template, device_problem, load_config, require, resolve_path, source_folder

__all__ = [
    "CaseConfig", "CellsConfig", "GridConfig", "InitialConfig", "PhysicsConfig", "RunConfig", "SGSConfig",
    "SolverConfig", "load_case", "resolve_sgs_weights",
]


class CellsConfig(ConfigModel):
    """The cells of a channel grid: counts along x, y, z and the wall-normal stretching (0: uniform)."""

    nx: int
    ny: int
    nz: int
    stretching: Float = 0.0

    @model_validator(mode="after")
    def check_cells(self) -> CellsConfig:
        """Positive cell counts, ``ny >= 2`` and ``stretching >= 0``."""
        for name in ("nx", "ny", "nz"):
            require(getattr(self, name) >= 1, f"{name} must be a positive number of cells, got {getattr(self, name)}")
        require(self.ny >= 2, f"ny must be at least 2 cells between the walls, got {self.ny}")
        require(
            math.isfinite(self.stretching) and self.stretching >= 0,
            f"stretching must be >= 0 (0 = uniform), got {self.stretching}",
        )
        return self


class GridConfig(CellsConfig):
    """Grid section: the cells and the box size in h.

    The field names match :class:`surrogate.grid.ChannelGrid`, so
    ``ChannelGrid(**config.grid.model_dump())`` builds the grid.
    """

    lx: Float = 2.0 * math.pi
    lz: Float = math.pi

    @model_validator(mode="after")
    def check(self) -> GridConfig:
        """Positive box lengths."""
        for name in ("lx", "lz"):
            value = getattr(self, name)
            require(math.isfinite(value) and value > 0, f"{name} must be a positive length in h, got {value}")
        return self


class PhysicsConfig(ConfigModel):
    """Physics section: friction Reynolds number and how the flow is driven.

    ``bulk_velocity`` is the bulk velocity in u_tau units held by constant-flow-rate forcing;
    ``None`` means it is taken from Dean's correlation for ``re_tau``.
    """

    re_tau: Float
    forcing: Literal["constant_flow_rate", "constant_pressure_gradient"] = "constant_flow_rate"
    bulk_velocity: Float | None = None

    @model_validator(mode="after")
    def check(self) -> PhysicsConfig:
        """Check ``re_tau > 0`` and a positive bulk velocity if given."""
        require(math.isfinite(self.re_tau) and self.re_tau > 0, f"re_tau must be positive, got {self.re_tau}")
        if self.bulk_velocity is not None:
            require(
                math.isfinite(self.bulk_velocity) and self.bulk_velocity > 0,
                f"bulk_velocity must be positive (in u_tau) or null, got {self.bulk_velocity}",
            )
        return self


class InitialConfig(ConfigModel):
    """Initial-condition section.

    ``kind``: ``laminar`` (parabolic profile), ``turbulent`` (mean profile plus random
    perturbations of relative size ``amplitude``, drawn with ``seed``) or ``file`` (a field file or
    checkpoint at ``path``, or a shipped field reference such as ``fdns180``; of a file with
    several snapshots the one at ``time`` in h/u_tau, default the last). A file on a finer grid of
    the same box is filtered onto the case's grid (:func:`surrogate.simulation.initial_state`);
    the run starts at the snapshot's time.
    """

    kind: Literal["laminar", "turbulent", "file"] = "turbulent"
    seed: int = 0
    amplitude: Float = 0.3
    path: str | None = None
    time: Float | None = None

    @model_validator(mode="after")
    def check(self) -> InitialConfig:
        """Check that ``path`` is given exactly when ``kind`` is ``file``."""
        if self.kind == "file":
            require(bool(self.path), "kind 'file' needs path: the field file to start from")
        else:
            require(self.path is None, f"path is only used with kind 'file', but kind is {self.kind!r}")
            require(self.time is None, f"time is only used with kind 'file', but kind is {self.kind!r}")
        require(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        require(
            math.isfinite(self.amplitude) and self.amplitude >= 0,
            f"amplitude must be >= 0, got {self.amplitude}",
        )
        return self


class SolverConfig(ConfigModel):
    """Solver section: time step (fixed ``dt`` in h/u_tau, or adaptive from ``cfl``), dtype, device.

    ``compile`` fuses each Runge–Kutta substep with ``torch.compile`` (faster long runs after a
    one-off compilation; agrees with the eager solver to round-off). ``sgs_update``: the subgrid
    model's ``nu_t`` evaluated every Runge–Kutta ``substep`` (default) or once per ``step`` and held
    over its substeps (:class:`~surrogate.solver.channel.ChannelSolver`).
    """

    dt: Float | None = None
    cfl: Float = 0.8
    dtype: Literal["float64", "float32"] = "float64"
    device: str = "cpu"
    compile: bool = False
    sgs_update: Literal["substep", "step"] = "substep"

    @model_validator(mode="after")
    def check(self) -> SolverConfig:
        """Check ``dt > 0`` if given and ``0 < cfl <= 2``."""
        if self.dt is not None:
            require(math.isfinite(self.dt) and self.dt > 0, f"dt must be positive (h/u_tau) or null, got {self.dt}")
        require(0 < self.cfl <= 2, f"cfl must be in (0, 2], got {self.cfl}")
        problem = device_problem(self.device)
        require(problem is None, str(problem))
        return self


class RunConfig(ConfigModel):
    """Run section: how long to run and what to write.

    Times are in h/u_tau. Exactly one of ``t_end`` and ``steps`` is given. ``output`` is the run
    folder; ``{name}`` is replaced by the case name (see :meth:`CaseConfig.output_dir`).
    Snapshots after ``stats_start`` count for statistics; they are stored in ``snapshot_dtype``
    (checkpoints always keep the solver's full precision).
    """

    t_end: Float | None = None
    steps: int | None = None
    snapshot_interval: Float = 1.0
    checkpoint_interval: Float = 10.0
    output: str = "runs/{name}"
    stats_start: Float = 0.0
    snapshot_dtype: Literal["float64", "float32"] = "float32"

    @model_validator(mode="after")
    def check(self) -> RunConfig:
        """Check the run length, the intervals and the ``output`` placeholders."""
        require(
            (self.t_end is None) != (self.steps is None),
            f"give exactly one of t_end and steps (got t_end={self.t_end}, steps={self.steps})",
        )
        if self.t_end is not None:
            require(self.t_end > 0, f"t_end must be positive (h/u_tau), got {self.t_end}")
        if self.steps is not None:
            require(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        for name in ("snapshot_interval", "checkpoint_interval"):
            value = getattr(self, name)
            require(math.isfinite(value) and value > 0, f"{name} must be positive (h/u_tau), got {value}")
        require(self.stats_start >= 0, f"stats_start must be >= 0 (h/u_tau), got {self.stats_start}")
        check_output_template(self.output)
        return self


class SGSConfig(ConfigModel):
    """Subgrid-scale section of an LES case.

    ``model`` is a name of :data:`surrogate.solver.sgs.SGS_MODELS`: ``smagorinsky``
    (parameters ``cs``, ``a_plus``, ``van_driest``), ``wale`` (``cw``), ``dynamic_smagorinsky``
    (``alpha_squared``, ``clip``, ``test_filter``), ``neural`` (``hidden``, ``layers``, ``cs``, ``weights``:
    a file written by ``NeuralEddyViscosity.save``), or ``none`` (the no-model control run on
    the LES grid). Unset parameters take the model's defaults.
    """

    model: str
    parameters: dict[str, Scalar] = {}

    @model_validator(mode="after")
    def check(self) -> SGSConfig:
        """A known model; the no-model control takes no parameters."""
        from ..solver.sgs import SGS_MODELS

        names = ["none", *SGS_MODELS]
        if self.model not in names:
            close = difflib.get_close_matches(self.model, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"model must be one of {', '.join(names)}, got {self.model!r}{hint}")
        require(self.model != "none" or not self.parameters, "model 'none' takes no parameters")
        return self


class CaseConfig(ConfigModel):
    """A channel-flow case: run by ``surrogate dns CASE``, or ``surrogate les CASE`` with ``sgs``."""

    name: str
    grid: GridConfig
    physics: PhysicsConfig
    solver: SolverConfig = Field(default_factory=SolverConfig)
    initial: InitialConfig = Field(default_factory=InitialConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    sgs: SGSConfig | None = None
    description: str = ""

    @model_validator(mode="after")
    def check(self) -> CaseConfig:
        """Check that ``name`` is a usable folder name."""
        require(bool(self.name.strip()), "name must not be empty")
        require(
            "/" not in self.name and "\\" not in self.name,
            f"name must not contain path separators, got {self.name!r}",
        )
        return self

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
        resolve_sgs_weights(case.sgs.parameters, source_folder(path))
    return case


def resolve_sgs_weights(parameters: dict[str, Any], base: Path) -> None:
    """Resolve a subgrid model's ``weights`` file (a learned closure) against the case file's folder ``base``."""
    if isinstance(parameters.get("weights"), str):
        parameters["weights"] = str(resolve_path(parameters["weights"], base))
