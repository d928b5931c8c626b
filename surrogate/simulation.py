"""Running a channel-flow case: initial state, time loop, snapshots, checkpoints and resume.

A run folder holds

* ``case.yaml`` — the case as run (after command-line overrides);
* ``fields.nc`` — cell-centred snapshots every ``run.snapshot_interval`` (``fields.nc.partial``
  while the run goes on, so an unfinished file never looks complete);
* ``checkpoint.pt`` — the full-precision state every ``run.checkpoint_interval`` and at the end;
* ``diagnostics.csv`` — one row per snapshot: bulk velocity, driving pressure gradient, Re_tau
  from the wall shear, maximum divergence.

Resuming restarts from the checkpoint, drops what was written after it, and continues along the
same path as an uninterrupted run, so both give the same numbers.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time as wallclock
from pathlib import Path

import numpy as np
import torch
import xarray as xr
import yaml
from tqdm.auto import tqdm

from .config import CaseConfig, ConfigError, config_hash, dump_config, load_case
from .fields import FieldWriter, grid_of, open_fields
from .filtering import filter_to_grid
from .grid import ChannelGrid
from .references import FIELD_REFERENCES, field_reference_path
from .run_folder import RunFolderError, start_fresh
from .solver.channel import ChannelSolver, ChannelState
from .solver.checkpoint import load_checkpoint, save_checkpoint
from .solver.sgs import EddyViscosityModel, build_sgs_model

log = logging.getLogger(__name__)

__all__ = ["build_sgs", "build_solver", "initial_state", "run_case", "RunFolderError"]

DIAGNOSTIC_COLUMNS = ("time", "step", "bulk_velocity", "pressure_gradient", "re_tau_wall", "max_divergence", "wall_seconds")


def build_sgs(case: CaseConfig) -> EddyViscosityModel | None:
    """The subgrid model of a case's ``sgs`` section (``None`` for DNS and the no-model control)."""
    if case.sgs is None or case.sgs.model == "none":
        return None
    try:
        return build_sgs_model(case.sgs.model, **case.sgs.parameters)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"case {case.name!r}: bad value in 'sgs.parameters': {exc}") from None


def build_solver(case: CaseConfig) -> ChannelSolver:
    """The :class:`ChannelSolver` described by a case."""
    grid = ChannelGrid(**case.grid.model_dump())
    return ChannelSolver(
        grid,
        case.physics.re_tau,
        case.physics.forcing,
        bulk_velocity=case.physics.bulk_velocity,
        sgs=build_sgs(case),
        sgs_update=case.solver.sgs_update,
        cfl=case.solver.cfl,
        device=case.solver.device,
        dtype=getattr(torch, case.solver.dtype),
        compile=case.solver.compile,
    )


def initial_state(case: CaseConfig, solver: ChannelSolver) -> ChannelState:
    """The initial state of a case (``initial.kind``: laminar, turbulent or a field file).

    A field file (its last snapshot) on another grid of the same box is coarse-grained onto the
    case's grid (:func:`surrogate.filtering.filter_to_grid`: sharp Fourier cutoff in x and z,
    conservative average in y) before the solver projects it onto divergence-free fields: an LES
    starts from a developed DNS field so. The run continues the file's clock: it starts at the
    snapshot's time, and ``run.t_end`` and ``run.stats_start`` count on from there.
    """
    init = case.initial
    if init.kind != "file":
        return solver.initial_condition(init.kind, seed=init.seed, amplitude=init.amplitude)
    path = Path(init.path)
    if not path.exists() and init.path.lower() in FIELD_REFERENCES:  # a shipped field, e.g. fdns180
        path = field_reference_path(init.path)
    ds = _snapshot(open_fields(path), init.time, path)
    grid = grid_of(ds)
    if _same_grid(grid, solver.grid):
        return solver.from_dataset(ds)
    try:
        coarse = filter_to_grid(ds[["u", "v", "w"]].load(), solver.grid)
    except ValueError as exc:
        raise ConfigError(
            f"initial.path {path} is on {grid.nx} x {grid.ny} x {grid.nz} cells over {grid.lx:.6g} x 2 x {grid.lz:.6g}, "
            f"the case on {solver.grid.nx} x {solver.grid.ny} x {solver.grid.nz} over {solver.grid.lx:.6g} x 2 x "
            f"{solver.grid.lz:.6g}: a field on another grid must cover the same box on at least as many cells ({exc})"
        ) from None
    log.info(f"{case.name}: initial field {path} filtered from {grid.nx} x {grid.ny} x {grid.nz} to the case's grid")
    return solver.from_dataset(coarse)


def _snapshot(ds: xr.Dataset, time: float | None, path: Path) -> xr.Dataset:
    """The snapshot of ``ds`` at ``time`` (h/u_tau; default the last), or one line naming ``initial.time``."""
    if "time" not in ds.dims:
        return ds
    if time is None:
        return ds.isel(time=-1)
    times = np.asarray(ds["time"].values, dtype=float)
    index = int(np.argmin(np.abs(times - time)))
    if abs(times[index] - time) > 1e-6 * max(1.0, abs(time)):
        raise ConfigError(
            f"initial.time = {time:g} h/u_tau is not a snapshot of {path} (it holds {times.size} from t = "
            f"{times.min():g} to {times.max():g})"
        )
    return ds.isel(time=index)


def _same_grid(a: ChannelGrid, b: ChannelGrid) -> bool:
    """Whether two grids have the same cells (sizes, box and wall-normal faces)."""
    return (a.nx, a.ny, a.nz) == (b.nx, b.ny, b.nz) and math.isclose(a.lx, b.lx) and math.isclose(a.lz, b.lz) and bool(
        np.allclose(a.y_faces, b.y_faces, rtol=0, atol=1e-10)
    )


def _physics(case: CaseConfig) -> dict:
    """The case's settings that change the solution (not the run length or output settings)."""
    plain = dump_config(case)
    plain.pop("run")
    plain.pop("description", None)
    plain["solver"].pop("device")
    plain["solver"].pop("compile")
    return plain


def _physics_hash(case: CaseConfig) -> str:
    """Hash of :func:`_physics`."""
    return config_hash(_physics(case))


def _changed_keys(old: object, new: object, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts, as ``key: old -> new``."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            change
            for key in sorted(set(old) | set(new), key=str)
            for change in _changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")
        ]
    return [] if old == new else [f"{prefix[:-1]}: {old!r} -> {new!r}"]


def _resume_mismatch(meta: dict, case: CaseConfig) -> str:
    """What differs between the checkpoint's case and ``case``, for the refusal message."""
    try:
        changes = _changed_keys(_physics(load_case(meta["case"])), _physics(case))
    except (KeyError, ConfigError):
        changes = []
    return "; ".join(changes) if changes else "its stored case cannot be compared key by key"


def _stored_physics_hash(meta: dict) -> str | None:
    """Physics hash of the case stored in a checkpoint, read through the current case schema.

    Keys added to the schema since the checkpoint was written take their defaults, so a newer
    version of the package resumes an older run whose physics it would reproduce.
    """
    try:
        return _physics_hash(load_case(meta["case"]))
    except (KeyError, ConfigError):
        return meta.get("physics_hash")


def _require_a_snapshot_after_the_start(case: CaseConfig, t_start: float) -> None:
    """Refuse a run whose ``fields.nc`` would hold only its initial field."""
    run = case.run
    if run.t_end is not None and _next_event(t_start, run.snapshot_interval) > run.t_end * (1 + 1e-9):
        raise ConfigError(
            f"run.snapshot_interval = {run.snapshot_interval:g} h/u_tau is longer than the run (t = {t_start:g} .. "
            f"{run.t_end:g}): fields.nc would hold the initial field only; lower run.snapshot_interval or raise run.t_end"
        )


def _next_event(time: float, interval: float) -> float:
    """First multiple of ``interval`` strictly after ``time`` (with a round-off margin)."""
    return (math.floor(time / interval + 1e-9) + 1) * interval


def _reached(time: float, target: float) -> bool:
    return time >= target - 1e-9 * max(1.0, abs(target))


class _Diagnostics:
    """Append-only CSV of run diagnostics, truncated to the resume time on restart."""

    def __init__(self, path: Path, resume_time: float | None) -> None:
        self.path = path
        rows = []
        if resume_time is not None and path.exists():
            with open(path, newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if float(row["time"]) <= resume_time + 1e-9]
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, DIAGNOSTIC_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    def append(self, row: dict) -> None:
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, DIAGNOSTIC_COLUMNS).writerow(row)


@torch.no_grad()  # a run needs no gradients, also with a trainable closure
def run_case(
    case: CaseConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Run a case to its end and return the path of its finished ``fields.nc``.

    Parameters
    ----------
    case
        The case (see :mod:`surrogate.config`).
    resume
        Continue from the run folder's checkpoint (the case may extend ``run.t_end`` or
        ``run.steps`` but must not change the physics, grid or numerics).
    overwrite
        Start afresh even when the run folder already holds a run.
    progress
        Show a progress bar.
    """
    folder = case.output_dir()
    fields_path = folder / "fields.nc"
    checkpoint_path = folder / "checkpoint.pt"
    solver = build_solver(case)
    physics_hash = _physics_hash(case)

    if resume:
        state, meta = load_checkpoint(checkpoint_path, device=solver.device, dtype=solver.dtype)
        if _stored_physics_hash(meta) != physics_hash:
            raise RunFolderError(
                f"{checkpoint_path} was written by a case with other physics, grid or numerics "
                f"({meta.get('case_name')!r}: {_resume_mismatch(meta, case)}); only run.t_end, run.steps "
                "and output settings may change on resume"
            )
        writer = FieldWriter.resume(fields_path, state.time)
        log.info(f"resuming {case.name} from t = {state.time:.4f} (step {state.step})")
    else:
        start_fresh(
            folder, [checkpoint_path, fields_path, Path(str(fields_path) + ".partial")], overwrite=overwrite,
            checkpoint=checkpoint_path, hint=", or set run.output",
        )
        state = initial_state(case, solver)
        _require_a_snapshot_after_the_start(case, state.time)
        folder.mkdir(parents=True, exist_ok=True)
        writer = FieldWriter(
            fields_path,
            solver.grid,
            re_tau=solver.re_tau,
            dtype=case.run.snapshot_dtype,
            pressure=True,
            attrs={
                "source": "surrogate.ChannelSolver",
                "case": case.name,
                "forcing": solver.forcing,
                "sgs_model": json.dumps(solver.sgs.describe()) if solver.sgs is not None else "none",
            },
            overwrite=True,
        )
    with open(folder / "case.yaml", "w") as handle:
        yaml.safe_dump(dump_config(case), handle, sort_keys=False)
    diagnostics = _Diagnostics(folder / "diagnostics.csv", state.time if resume else None)
    started = wallclock.perf_counter()

    def snapshot(current: ChannelState) -> None:
        uc, vc, wc = solver.ops.to_centres(current.u, current.v, current.w)
        writer.append(current.time, uc, vc, wc, current.p)
        diagnostics.append(
            {
                "time": current.time,
                "step": current.step,
                "bulk_velocity": solver.bulk(current),
                "pressure_gradient": current.pressure_gradient,
                "re_tau_wall": math.sqrt(max(solver.wall_shear(current), 0.0)) * solver.re_tau,
                "max_divergence": float(solver.divergence(current).abs().max()),
                "wall_seconds": round(wallclock.perf_counter() - started, 3),
            }
        )

    def checkpoint(current: ChannelState) -> None:
        save_checkpoint(
            checkpoint_path,
            current,
            {"physics_hash": physics_hash, "case_name": case.name, "case": dump_config(case)},
        )

    run = case.run
    if not resume:
        snapshot(state)
    next_snapshot = _next_event(state.time, run.snapshot_interval)
    next_checkpoint = _next_event(state.time, run.checkpoint_interval)
    by_steps = run.steps is not None
    total = run.steps if by_steps else run.t_end
    bar = tqdm(
        total=total,
        initial=state.step if by_steps else state.time,
        disable=not progress,
        unit="step" if by_steps else " h/u_tau",
        desc=case.name,
        bar_format="{l_bar}{bar}| {n:.4g}/{total:.4g} [{elapsed}<{remaining}{postfix}]",
    )
    last = [state.step if by_steps else state.time]

    def advance(current: ChannelState) -> None:
        position = current.step if by_steps else current.time
        bar.update(position - last[0])
        last[0] = position
        if current.step % 20 == 0:
            bar.set_postfix(t=f"{current.time:.3f}", step=current.step, refresh=False)

    try:
        while (state.step < run.steps) if by_steps else not _reached(state.time, run.t_end):
            if by_steps:
                state = solver.run(state, steps=1, dt=case.solver.dt, callback=advance)
            else:
                target = min(next_snapshot, next_checkpoint, run.t_end)
                state = solver.run(state, t_end=target, dt=case.solver.dt, callback=advance)
            if _reached(state.time, next_snapshot):
                snapshot(state)
                next_snapshot = _next_event(state.time, run.snapshot_interval)
            if _reached(state.time, next_checkpoint):
                checkpoint(state)
                next_checkpoint = _next_event(state.time, run.checkpoint_interval)
        checkpoint(state)
    except KeyboardInterrupt:
        checkpoint(state)  # the last whole step, so that --resume always has a way on
        writer.close_partial()
        raise
    except BaseException:
        writer.close_partial()
        raise
    finally:
        bar.close()
    path = writer.finalize()
    log.info(f"{case.name}: t = {state.time:.4f} after {state.step} steps; fields in {path}")
    return path
