r"""Runs and their statistics: opening a run, its time window, its profiles in its own wall units.

A run is a field file, a run folder or a dataset folder (:func:`open_run`); its statistics are
folded mean and rms profiles in its own wall units (:func:`run_statistics`), the form of the
published references: ``U+``, ``u_rms+``, ..., ``uv+`` against ``y+`` (the wall distance ``y``
in ``h`` times Re_tau).
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
import xarray as xr

from ..fields import open_fields, re_tau_of
from ..stats import friction_velocity, mean_profiles, wall_units

__all__ = [
    "TIME_MATCH_TOLERANCE",
    "ValidationError",
    "default_label",
    "friction",
    "open_run",
    "require_finite_profiles",
    "run_statistics",
    "time_window",
    "window_attrs",
]

#: Snapshot times closer than this (in h/u_tau) are the same time in :func:`rollout_errors`.
TIME_MATCH_TOLERANCE = 1e-6


class ValidationError(ValueError):
    """Bad input to a comparison: unknown reference name, no snapshots in the window, no common times."""


def open_run(path: str | PathLike[str], *, split: str = "test") -> xr.Dataset:
    """The field Dataset of a run, opened lazily.

    Parameters
    ----------
    path
        A field file (``fields.nc``, a rollout's ``rollout.nc``, a dataset's
        ``trajectory_NNN.nc``), a run folder (holding ``fields.nc``, else ``rollout.nc``) or a
        dataset folder (holding ``manifest.yaml``).
    split
        For a dataset folder: the split whose snapshot ranges are taken (all trajectories
        entirely if the manifest has no such split).

    Returns
    -------
    xarray.Dataset
        Field Dataset with dims ``(time, x, y, z)``; for a dataset folder the split's ranges of
        all its trajectories one after the other along ``time`` (``u, v, w`` only; times may
        repeat), with attrs ``dataset_split`` and ``dataset_files``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist or a folder holds none of the files above.
    surrogate.fields.FieldError
        If a field file is unfinished (``.partial``) or malformed.
    surrogate.data.ManifestError
        If a dataset folder's manifest is incomplete.
    """
    path = Path(path)
    if not path.exists():
        if path.with_name(path.name + ".partial").exists():
            return open_fields(path)  # names the unfinished .partial
        raise FileNotFoundError(f"{path} does not exist (expected a field file, a run folder or a dataset folder)")
    if path.is_dir():
        for name in ("fields.nc", "rollout.nc"):
            if (path / name).is_file():
                return open_fields(path / name)
        if (path / "manifest.yaml").is_file():
            return _open_dataset_folder(path, split)
        if (path / "fields.nc.partial").exists():
            return open_fields(path / "fields.nc")  # names the unfinished .partial
        raise FileNotFoundError(
            f"{path} is a folder without fields.nc or rollout.nc (a run folder) or manifest.yaml (a dataset folder)"
        )
    return open_fields(path)


def _open_dataset_folder(folder: Path, split: str) -> xr.Dataset:
    """A dataset folder's ``split`` (else all trajectories) as one field Dataset along ``time``."""
    from ..data.manifest import read_manifest

    manifest = read_manifest(folder)
    segments = manifest["splits"].get(split)
    used = split
    if not segments:
        segments = [
            {"file": item["file"], "start": 0, "stop": int(item["snapshots"])} for item in manifest["trajectories"]
        ]
        used = "all"
    parts = [
        open_fields(folder / segment["file"])[["u", "v", "w"]].isel(time=slice(segment["start"], segment["stop"]))
        for segment in segments
    ]
    ds = xr.concat(parts, dim="time", coords="minimal", compat="override", combine_attrs="override", join="override")
    ds.attrs["dataset_split"] = used
    ds.attrs["dataset_files"] = ", ".join(sorted({segment["file"] for segment in segments}))
    return ds


def time_window(ds: xr.Dataset, t_start: float | None = None, what: str = "the Dataset") -> xr.Dataset:
    """The snapshots at ``time >= t_start`` (all without ``t_start`` or a time dim).

    Times within :data:`TIME_MATCH_TOLERANCE` below ``t_start`` count as ``t_start``. Raises
    :class:`ValidationError` (naming ``what``) if no snapshot is left or there is none at all.
    """
    if "time" not in ds.dims:
        if t_start is not None and "time" in ds.coords and float(ds["time"]) < t_start - TIME_MATCH_TOLERANCE:
            raise ValidationError(
                f"{what}: its one snapshot is at t = {float(ds['time']):g} h/u_tau, before --t-start {t_start:g}; "
                "lower --t-start"
            )
        return ds
    times = np.asarray(ds["time"].values, dtype=float)
    if times.size == 0:
        raise ValidationError(f"{what} has no snapshots")
    if t_start is None:
        return ds
    keep = np.flatnonzero(times >= t_start - TIME_MATCH_TOLERANCE)
    if keep.size == 0:
        raise ValidationError(
            f"{what}: no snapshot at time >= {t_start:g} h/u_tau (its snapshots span t = {times.min():g} .. "
            f"{times.max():g}); lower --t-start"
        )
    return ds.isel(time=keep)


def require_finite_profiles(profiles: xr.Dataset, ds: xr.Dataset, what: str) -> xr.Dataset:
    """``profiles`` (computed from ``ds``) if finite; else :class:`ValidationError` naming ``what``,
    the velocity that is not finite and the first time it is not."""
    if all(np.isfinite(profiles[name].values).all() for name in profiles.data_vars):
        return profiles
    for name in ("u", "v", "w"):
        finite = np.isfinite(ds[name]).all([d for d in ds[name].dims if d != "time"]).values
        if not finite.all():
            when = f" (first at t = {float(ds['time'].values[np.argmin(finite)]):g} h/u_tau)" if "time" in ds[name].dims else ""
            raise ValidationError(f"{what}: {name} holds NaN or infinite values{when}; its statistics would not be finite")
    raise ValidationError(f"{what}: the statistics are not finite")


def window_attrs(window: xr.Dataset) -> dict[str, float]:
    if "time" not in window.dims:
        time = float(window["time"]) if "time" in window.coords else float("nan")
        return {"n_snapshots": 1, "t_start": time, "t_end": time}
    times = np.asarray(window["time"].values, dtype=float)
    return {"n_snapshots": int(times.size), "t_start": float(times.min()), "t_end": float(times.max())}


def friction(window: xr.Dataset) -> tuple[float, float]:
    """Measured friction velocity (in the nominal ``u_tau``) and ``nu`` of a field Dataset."""
    return friction_velocity(window), 1.0 / re_tau_of(window)


def run_statistics(
    ds: xr.Dataset, *, t_start: float | None = None, label: str | None = None, u_tau: float | None = None
) -> xr.Dataset:
    r"""Folded mean and rms profiles of a run in its own wall units, in the form of the published references.

    The statistics are :func:`surrogate.stats.mean_profiles` over the snapshots at
    ``time >= t_start`` (:func:`time_window`), rescaled by :func:`surrogate.stats.wall_units`
    with the friction velocity measured from the mean wall shear
    (:func:`surrogate.stats.friction_velocity`) unless ``u_tau`` is given.

    Parameters
    ----------
    ds
        Field Dataset (dims ``(time, x, y, z)``, ``attrs["nu"]``).
    t_start
        First time (h/u_tau) entering the statistics; default all snapshots.
    label
        Name of the run for figures and tables (``attrs["label"]``); default ``attrs["case"]``.
    u_tau
        Friction velocity of the wall units, in the nominal ``u_tau``; default the measured one.

    Returns
    -------
    xarray.Dataset
        Over dim ``y`` (wall distance of the lower-half cell centres, in ``h``) with coord
        ``y_plus``; ``U, V, W, u_rms, v_rms, w_rms, uv`` in wall units; attrs those of ``ds``
        (``re_tau`` the nominal value, ``1 / nu`` where ``ds`` lacks it) plus ``re_tau_measured``
        (from the mean wall shear), ``re_tau_wall`` (``u_tau / nu`` of the wall units), ``u_tau``,
        ``label``, ``n_snapshots``, ``t_start``, ``t_end``.

    Raises
    ------
    ValidationError
        If no snapshot lies at ``time >= t_start``.
    """
    what = label or str(ds.attrs.get("case") or "run")
    window = time_window(ds, t_start, what)
    profiles = require_finite_profiles(mean_profiles(window).compute(), window, what)
    measured, nu = friction(window)
    u_tau = measured if u_tau is None else float(u_tau)
    profiles = wall_units(profiles, u_tau, nu)
    profiles.attrs["re_tau"] = float(ds.attrs.get("re_tau", 1.0 / nu))
    profiles.attrs["re_tau_measured"] = measured / nu
    profiles.attrs["label"] = what
    profiles.attrs.update(window_attrs(window))
    return profiles


def default_label(path: Path) -> str:
    """A run's label from its path: the folder name (of a run folder or ``fields.nc``), else the file stem."""
    if path.is_dir():
        return path.name
    if path.name in ("fields.nc", "rollout.nc"):
        return path.parent.name + (" rollout" if path.name == "rollout.nc" else "")
    return path.stem
