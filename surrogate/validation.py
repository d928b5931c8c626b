r"""Comparing runs with references: statistics of runs and references, metrics, rollout errors.

A run (field file, run folder, dataset folder: :func:`open_run`) is turned into folded mean and
rms profiles in its own wall units (:func:`run_statistics`); a reference is either a published
data set (:mod:`surrogate.references`, names ``mkm180``, ..., ``lm550``) or a run as well
(:func:`load_reference`), then its spectra can be compared too. All profiles are in wall units:
``U+``, ``u_rms+``, ..., ``uv+`` against ``y+`` (the wall distance ``y`` in ``h`` times Re_tau).

Metrics: :func:`profile_deviation` (largest deviation), :func:`relative_l2`,
:func:`spectrum_error`, :func:`run_metrics` (one run's row of the table) and
:func:`rollout_errors` (a rollout against its truth, snapshot by snapshot).

:func:`evaluate` computes all of them for a set of runs (an :class:`Evaluation`, which
:mod:`surrogate.report` draws and writes); :func:`validate` (``surrogate validate RUN ...
--reference REF``) returns their table and, with ``out_dir``, writes the report through
:func:`surrogate.report.write_evaluation` (imported when called: :mod:`surrogate.report`
imports this module).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from .fields import open_fields, re_tau_of
from .grid import ChannelGrid
from .references import FIELD_REFERENCES, REFERENCE_NAMES, field_reference_path, load_mkm, load_published
from .stats import energy_spectra, friction_velocity, higher_moments, mean_profiles, velocity_pdfs, wall_units

__all__ = [
    "DEVIATION_VARIABLES",
    "SPECTRUM_Y_PLUS",
    "TABLE_METRICS",
    "TIME_MATCH_TOLERANCE",
    "ValidationError",
    "open_run",
    "time_window",
    "run_statistics",
    "load_reference",
    "profile_deviation",
    "relative_l2",
    "spectrum_error",
    "run_metrics",
    "rollout_errors",
    "compare_with_mkm",
    "Reference",
    "Evaluation",
    "RunResult",
    "evaluate",
    "validate",
]

#: Variables compared by :func:`profile_deviation` and :func:`relative_l2`.
DEVIATION_VARIABLES: tuple[str, ...] = ("U", "u_rms", "v_rms", "w_rms", "uv")
#: Wall distances (y+) of the planes whose spectra and PDFs are compared: planes of the MKM spectra.
SPECTRUM_Y_PLUS: tuple[float, ...] = (5.0, 30.0, 100.0)
#: Snapshot times closer than this (in h/u_tau) are the same time in :func:`rollout_errors`.
TIME_MATCH_TOLERANCE = 1e-6


class ValidationError(ValueError):
    """Bad input to a comparison: unknown reference name, no snapshots in the window, no common times."""


# ---------------------------------------------------------------------------------- comparison
def _profile_arrays(ds: xr.Dataset, name: str) -> np.ndarray:
    values = np.asarray(ds[name].values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"profile variable {name!r} must be 1-D, has dims {ds[name].dims}")
    return values


def _y_plus(ds: xr.Dataset, what: str) -> np.ndarray:
    if "y_plus" not in ds.variables:
        raise KeyError(f"{what} has no 'y_plus' coordinate (rescale with surrogate.stats.wall_units)")
    return _profile_arrays(ds, "y_plus")


def _paired_profiles(
    profile_plus: xr.Dataset, reference: xr.Dataset
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The run's points inside the reference's ``y+`` range, and the values compared there.

    Returns the mask of those points and, for each variable of :data:`DEVIATION_VARIABLES` both
    have, the run's values on them and the reference (sorted by ``y+``) interpolated linearly
    in ``y+`` onto them.
    """
    y_run = _y_plus(profile_plus, "profile_plus")
    y_ref = _y_plus(reference, "reference")
    order = np.argsort(y_ref)
    y_ref = y_ref[order]
    inside = (y_run >= y_ref[0]) & (y_run <= y_ref[-1])
    if not np.any(inside):
        raise ValueError(
            f"no run point in the reference range y+ = {y_ref[0]:g} .. {y_ref[-1]:g} "
            f"(run spans {np.min(y_run):g} .. {np.max(y_run):g})"
        )
    names = [name for name in DEVIATION_VARIABLES if name in profile_plus.variables and name in reference.variables]
    if not names:
        raise ValueError(f"no variable of {DEVIATION_VARIABLES} in both the run and the reference")
    pairs = {
        name: (
            _profile_arrays(profile_plus, name)[inside],
            np.interp(y_run[inside], y_ref, _profile_arrays(reference, name)[order]),
        )
        for name in names
    }
    return inside, pairs


def profile_deviation(profile_plus: xr.Dataset, reference: xr.Dataset) -> dict[str, float]:
    r"""Largest deviation of a run's wall-unit profiles from a reference.

    The reference (sorted by ``y+``) is linearly interpolated onto the run's ``y+`` points that
    lie inside the reference's ``y+`` range; for each variable ``q`` present in both,

    .. math::

        \Delta q = \max_j \left| q_{run}(y^+_j) - q_{ref}(y^+_j) \right|, \qquad
        \Delta q_{rel} = \Delta q \,/\, \max_{ref} |q_{ref}|,

    the relative one against the reference's peak (for ``U`` the centreline velocity).

    Parameters
    ----------
    profile_plus
        Run profiles in wall units with a ``y_plus`` coordinate (:func:`surrogate.stats.wall_units`).
    reference
        Reference in wall units, e.g. :func:`surrogate.references.load_mkm`.

    Returns
    -------
    dict
        ``{"U": dU+, "U_rel": ..., "u_rms": ..., "u_rms_rel": ..., "v_rms", "v_rms_rel",
        "w_rms", "w_rms_rel", "uv", "uv_rel", "n_points": number of compared points}``, only for
        the variables of :data:`DEVIATION_VARIABLES` both Datasets have.

    Raises
    ------
    ValueError
        If no run point lies in the reference's ``y+`` range or no variable is shared.
    """
    inside, pairs = _paired_profiles(profile_plus, reference)
    result: dict[str, float] = {}
    for name, (q_run, q_ref) in pairs.items():
        delta = float(np.max(np.abs(q_run - q_ref)))
        peak = float(np.max(np.abs(_profile_arrays(reference, name))))
        result[name] = delta
        result[f"{name}_rel"] = delta / peak if peak > 0 else float("nan")
    result["n_points"] = int(np.count_nonzero(inside))
    return result


# ---------------------------------------------------------------------------------- runs
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
    from .data.manifest import read_manifest
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


def _window_attrs(window: xr.Dataset) -> dict[str, float]:
    if "time" not in window.dims:
        time = float(window["time"]) if "time" in window.coords else float("nan")
        return {"n_snapshots": 1, "t_start": time, "t_end": time}
    times = np.asarray(window["time"].values, dtype=float)
    return {"n_snapshots": int(times.size), "t_start": float(times.min()), "t_end": float(times.max())}


def _friction(window: xr.Dataset) -> tuple[float, float]:
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
        with ``re_tau`` replaced by ``u_tau / nu`` (measured; the nominal value moves to
        ``re_tau_nominal``), plus ``u_tau``, ``label``, ``n_snapshots``, ``t_start``, ``t_end``.

    Raises
    ------
    ValidationError
        If no snapshot lies at ``time >= t_start``.
    """
    what = label or str(ds.attrs.get("case") or "run")
    window = time_window(ds, t_start, what)
    profiles = require_finite_profiles(mean_profiles(window).compute(), window, what)
    measured, nu = _friction(window)
    u_tau = measured if u_tau is None else float(u_tau)
    profiles = wall_units(profiles, u_tau, nu)
    profiles.attrs["re_tau_nominal"] = float(ds.attrs.get("re_tau", 1.0 / nu))
    profiles.attrs["re_tau"] = u_tau / nu
    profiles.attrs["label"] = what
    profiles.attrs.update(_window_attrs(window))
    return profiles


def compare_with_mkm(
    ds: xr.Dataset, *, t_start: float = 0.0, reference_dir: str | PathLike[str] | None = None
) -> tuple[xr.Dataset, xr.Dataset, dict[str, float]]:
    """Wall-unit profiles of a run's statistically steady window against Moser–Kim–Mansour.

    Parameters
    ----------
    ds
        Field Dataset of the run (dims ``(time, x, y, z)``).
    t_start
        Snapshots at ``time >= t_start`` (h/u_tau) enter the statistics.
    reference_dir
        Where the MKM files are (default: the profiles installed with the package).

    Returns
    -------
    profiles_plus, reference, deviation
        The run's :func:`run_statistics` (folded profiles in its own wall units; ``attrs["re_tau"]``
        and ``attrs["re_tau_wall"]`` the Re_tau it reached), the MKM case nearest the run's
        nominal Re_tau, and :func:`profile_deviation` plus ``re_tau`` (reached), ``n_snapshots``
        and, with a ``time`` dim, ``t_start``/``t_end`` of the window.

    Raises
    ------
    ValidationError
        If no snapshot lies at ``time >= t_start``.
    """
    profiles_plus = run_statistics(ds, t_start=t_start)
    reference = load_mkm(profiles_plus.attrs["re_tau_nominal"], reference_dir)
    deviation = profile_deviation(profiles_plus, reference)
    deviation["re_tau"] = profiles_plus.attrs["re_tau"]
    deviation["n_snapshots"] = profiles_plus.attrs["n_snapshots"]
    if "time" in ds.dims:
        deviation["t_start"] = profiles_plus.attrs["t_start"]
        deviation["t_end"] = profiles_plus.attrs["t_end"]
    return profiles_plus, reference, deviation


def _default_label(path: Path) -> str:
    """A run's label from its path: the folder name (of a run folder or ``fields.nc``), else the file stem."""
    if path.is_dir():
        return path.name
    if path.name in ("fields.nc", "rollout.nc"):
        return path.parent.name + (" rollout" if path.name == "rollout.nc" else "")
    return path.stem


@dataclass
class Reference:
    """A resolved reference: its wall-unit statistics and, for a run, its field Dataset (the window)."""

    stats: xr.Dataset
    fields: xr.Dataset | None = None


def _resolve_reference(
    spec: str | PathLike[str] | xr.Dataset,
    *,
    t_start: float | None = None,
    reference_dir: str | PathLike[str] | None = None,
) -> Reference:
    if isinstance(spec, xr.Dataset):
        if "u" in spec.data_vars:
            label = str(spec.attrs.get("label") or spec.attrs.get("case") or "reference")
            window = time_window(spec, t_start, label)
            stats = run_statistics(window, label=label)
            stats.attrs["source"] = str(spec.encoding.get("source", "")) or "a field Dataset"
            return Reference(stats, window)
        if "y_plus" not in spec.variables:
            raise ValidationError(
                "a reference Dataset needs either fields u, v, w or profiles with a y_plus coordinate"
            )
        stats = spec.copy()
        stats.attrs.setdefault("label", "reference")
        return Reference(stats)
    text = str(spec)
    key = text.strip().lower()
    if key in FIELD_REFERENCES:
        window = open_fields(field_reference_path(key, reference_dir))
        stats = run_statistics(window, label=key)
        stats.attrs["source"] = window.attrs.get("description", key)
        return Reference(stats, window)
    if key in REFERENCE_NAMES:
        return Reference(load_published(key, reference_dir))
    names = ", ".join(REFERENCE_NAMES)
    path = Path(text)
    if not path.exists() and not path.with_name(path.name + ".partial").exists():
        if len(path.parts) == 1 and not path.suffix:
            raise ValidationError(
                f"unknown reference {text!r}: the published references are {names}; otherwise give a field "
                "file, a run folder (fields.nc) or a dataset folder (manifest.yaml)"
            )
        raise FileNotFoundError(
            f"reference {text!r} does not exist: give a field file, a run folder (fields.nc) or a dataset "
            f"folder (manifest.yaml), or one of the published references {names}"
        )
    fields = open_run(path)
    label = _default_label(path)
    is_dataset = "dataset_split" in fields.attrs
    window = time_window(fields, None if is_dataset else t_start, label)
    stats = run_statistics(window, label=label)
    stats.attrs["source"] = str(path)
    return Reference(stats, window)


def load_reference(
    spec: str | PathLike[str] | xr.Dataset,
    *,
    t_start: float | None = None,
    reference_dir: str | PathLike[str] | None = None,
) -> xr.Dataset:
    """Reference statistics in wall units, from a published data set or from a run.

    Parameters
    ----------
    spec
        One of :data:`REFERENCE_NAMES` (``"mkm180"``, ``"mkm395"``, ``"mkm590"``, ``"lm180"``,
        ``"lm550"``; case-insensitive), or the path of a field file, a run folder (``fields.nc``
        inside) or a dataset folder (``manifest.yaml``: its test split, else all trajectories;
        see :func:`open_run`), or a field Dataset, or profiles that already have ``y_plus``.
    t_start
        For a run: first time (h/u_tau) entering the statistics. Ignored for published data and
        for dataset folders, whose splits already are the steady window.
    reference_dir
        Folder of the published files (default :func:`surrogate.references.default_reference_dir`).

    Returns
    -------
    xarray.Dataset
        Profiles with a ``y_plus`` coordinate and ``U, u_rms, v_rms, w_rms, uv`` in wall units
        (:func:`surrogate.references.load_mkm` / :func:`~surrogate.references.load_lee_moser`, or
        :func:`run_statistics` for a run); attrs ``label`` and ``re_tau`` (exact published value,
        or the run's measured one).

    Raises
    ------
    ValidationError
        For a name that is neither a published reference nor an existing path (the message lists
        the valid names).
    FileNotFoundError
        For a path that does not exist.
    """
    return _resolve_reference(spec, t_start=t_start, reference_dir=reference_dir).stats


# ---------------------------------------------------------------------------------- metrics
def _profile_weights(profiles: xr.Dataset) -> np.ndarray:
    """Quadrature weights of the profile points along ``y``: the cell heights where the grid is known."""
    y = np.asarray(profiles["y"].values, dtype=float) if "y" in profiles.variables else _y_plus(profiles, "profiles")
    try:
        grid = ChannelGrid.from_attrs(profiles.attrs)
    except (KeyError, TypeError, ValueError):
        grid = None
    if grid is not None:
        folded = bool(profiles.attrs.get("folded", 0))
        size = (grid.ny + 1) // 2 if folded else grid.ny
        if size == y.size:
            weights = np.array(grid.dy[:size], dtype=float)
            if folded and grid.ny % 2 == 1:
                weights[-1] *= 0.5  # the centre cell: only its lower half belongs to the folded profile
            return weights
    if y.size == 1:
        return np.ones(1)
    edges = np.concatenate([[y[0]], 0.5 * (y[1:] + y[:-1]), [y[-1]]])
    return np.diff(edges)


def relative_l2(profile_plus: xr.Dataset, reference: xr.Dataset) -> dict[str, float]:
    r"""Relative L2 deviations of a run's wall-unit profiles from a reference.

    On the run's points ``j`` inside the reference's ``y+`` range (the reference interpolated
    linearly in ``y+`` there, as in :func:`profile_deviation`), with quadrature weights ``w_j``
    (the cell heights when ``profile_plus`` carries its grid, else the trapezoidal rule in ``y``):

    .. math::

        \epsilon_q = \left(\frac{\sum_j w_j (q_{run,j} - q_{ref,j})^2}{\sum_j w_j q_{ref,j}^2}\right)^{1/2}.

    Parameters
    ----------
    profile_plus
        Run profiles with a ``y_plus`` coordinate (:func:`run_statistics`).
    reference
        Reference in wall units (:func:`load_reference`).

    Returns
    -------
    dict
        ``{"U": ..., "u_rms": ..., "v_rms": ..., "w_rms": ..., "uv": ..., "n_points": ...}`` for the
        variables of :data:`DEVIATION_VARIABLES` both have (a fraction: 0.05 is 5 %).

    Raises
    ------
    ValueError
        If no run point lies in the reference's ``y+`` range or no variable is shared.
    """
    inside, pairs = _paired_profiles(profile_plus, reference)
    weights = _profile_weights(profile_plus)[inside]
    result: dict[str, float] = {}
    for name, (q_run, q_ref) in pairs.items():
        norm = float(np.sum(weights * q_ref**2))
        result[name] = float(np.sqrt(np.sum(weights * (q_run - q_ref) ** 2) / norm)) if norm > 0 else float("nan")
    result["n_points"] = int(np.count_nonzero(inside))
    return result


def _planes_within(window: xr.Dataset, re_tau: float, y_plus: Sequence[float]) -> list[float]:
    """The wall distances of ``y_plus`` inside the channel half of ``window`` (``Re_tau = u_tau / nu``)."""
    y = np.asarray(window["y"].values, dtype=float)
    y_max = float(np.max(np.minimum(y, 2.0 - y))) * re_tau
    return [float(p) for p in y_plus if p <= y_max]


def _plane_spectra(window: xr.Dataset, u_tau: float, nu: float, y_plus: Sequence[float]) -> xr.Dataset | None:
    r"""Spectra at the planes nearest ``y_plus`` in wall units: ``k+ = k nu / u_tau``, ``E+ = E / (u_tau nu)``.

    The Nyquist mode of an even number of points is left out: the cell-centred velocities hold
    almost no energy there (the component along the direction is interpolated from the faces),
    and its log would dominate the comparison.
    """
    planes = _planes_within(window, u_tau / nu, y_plus)
    if not planes:
        return None
    re_tau = u_tau / nu
    spectra = energy_spectra(window, y_plus=planes, u_tau=u_tau).compute()
    for dim in ("x", "z"):  # the Nyquist mode of an even size: removed by the staggered-to-centre interpolation
        if window.sizes[dim] % 2 == 0 and spectra.sizes[f"k_{dim}"] > 1:
            spectra = spectra.isel({f"k_{dim}": slice(0, -1)})
    names = [name for name in spectra.data_vars if str(name).startswith("E_")]
    out = spectra[names] / (u_tau * nu)
    for name in names:
        out[name].attrs = {"units": "1", "long_name": f"{spectra[name].attrs.get('long_name', name)} (wall units)"}
    out = out.assign_coords(
        k_x=(spectra["k_x"] * nu / u_tau).assign_attrs(units="1", long_name="streamwise wavenumber k_x+"),
        k_z=(spectra["k_z"] * nu / u_tau).assign_attrs(units="1", long_name="spanwise wavenumber k_z+"),
        y_plus=("y", np.asarray(spectra["y"].values, dtype=float) * re_tau),
    )
    out.attrs = {"u_tau": u_tau, "nu": nu, "planes_y_plus": planes}
    return out


def _nearest_plane(spectra: xr.Dataset, target: float) -> int:
    return int(np.argmin(np.abs(np.asarray(spectra["y_plus"].values, dtype=float) - target)))


def _spectrum_log_error(run: xr.Dataset, reference: xr.Dataset, y_plus: Sequence[float]) -> float:
    """Mean over planes, components and directions of the mean |log10 E_run - log10 E_ref| over k."""
    errors = []
    for target in y_plus:
        if target > float(np.max(run["y_plus"])) * 1.05 or target > float(np.max(reference["y_plus"])) * 1.05:
            continue
        j_run, j_ref = _nearest_plane(run, target), _nearest_plane(reference, target)
        for name in run.data_vars:
            if name not in reference.data_vars:
                continue
            k_dim = run[name].dims[0]
            k_run = np.asarray(run[k_dim].values, dtype=float)
            e_run = np.asarray(run[name].isel(y=j_run).values, dtype=float)
            k_ref = np.asarray(reference[k_dim].values, dtype=float)
            e_ref = np.asarray(reference[name].isel(y=j_ref).values, dtype=float)
            good_ref = (k_ref > 0) & (e_ref > 0) & np.isfinite(e_ref)
            good_run = (k_run > 0) & (e_run > 0) & np.isfinite(e_run)
            if np.count_nonzero(good_ref) < 2 or not np.any(good_run):
                continue
            low, high = k_ref[good_ref].min(), k_ref[good_ref].max()
            inside = good_run & (k_run >= low * (1 - 1e-9)) & (k_run <= high * (1 + 1e-9))
            if not np.any(inside):
                continue
            log_ref = np.interp(np.log(k_run[inside]), np.log(k_ref[good_ref]), np.log10(e_ref[good_ref]))
            errors.append(float(np.mean(np.abs(np.log10(e_run[inside]) - log_ref))))
    return float(np.mean(errors)) if errors else float("nan")


def spectrum_error(
    run: xr.Dataset,
    reference: xr.Dataset,
    *,
    y_plus: Sequence[float] = SPECTRUM_Y_PLUS,
    t_start: float | None = None,
) -> float:
    r"""Mean distance of two runs' energy spectra in log space, at planes of given wall distance.

    For each plane ``y+`` of ``y_plus`` (the nearest cell centre of each run, in its own wall
    units), each component ``uu, vv, ww`` and each direction ``k_x, k_z``, the spectra of
    :func:`surrogate.stats.energy_spectra` are taken in wall units (``k+ = k nu / u_tau``,
    ``E+ = E / (u_tau nu)``, ``u_tau`` measured from the mean wall shear); the reference is
    interpolated linearly in ``log k`` onto the run's positive wavenumbers inside its range, and

    .. math:: \epsilon_E = \operatorname{mean}_{k} \left| \log_{10} E_{run}(k) - \log_{10} E_{ref}(k) \right|

    is averaged over the planes, components and directions (0.1 is a factor of 10^0.1 = 1.26).
    The Nyquist mode of an even number of points is left out.
    Published spectra are not shipped, so the reference is a run with fields.

    Parameters
    ----------
    run, reference
        Field Datasets (dims ``(time, x, y, z)``).
    y_plus
        Plane wall distances; default :data:`SPECTRUM_Y_PLUS` (planes of the MKM spectra).
    t_start
        First time (h/u_tau) of both windows.

    Returns
    -------
    float
        NaN when no plane or wavenumber is shared.
    """
    spectra = []
    for ds, what in ((run, "run"), (reference, "reference")):
        window = time_window(ds, t_start, what)
        u_tau, nu = _friction(window)
        planes = _plane_spectra(window, u_tau, nu, y_plus)
        if planes is None:
            return float("nan")
        spectra.append(planes)
    return _spectrum_log_error(spectra[0], spectra[1], y_plus)


#: Table columns of :func:`validate`: name -> (long name, units).
TABLE_METRICS: dict[str, tuple[str, str]] = {
    "re_tau": ("Re_tau measured from the mean wall shear", "1"),
    "re_tau_error": ("(Re_tau - Re_tau,ref) / Re_tau,ref", "1"),
    "U_max_abs": ("max |U+ - U+_ref|", "1"),
    "U_l2": ("relative L2 deviation of U+", "1"),
    "u_rms_l2": ("relative L2 deviation of u_rms+", "1"),
    "v_rms_l2": ("relative L2 deviation of v_rms+", "1"),
    "w_rms_l2": ("relative L2 deviation of w_rms+", "1"),
    "uv_l2": ("relative L2 deviation of uv+", "1"),
    "spectrum_log_error": ("mean |log10 E+ - log10 E+_ref| at the planes y+ = 5, 30, 100", "1"),
    "rollout_error_last": ("relative L2 error of the velocity against the truth, last common time", "1"),
    "rollout_correlation_last": ("correlation of the fluctuations with the truth, last common time", "1"),
}


def run_metrics(profile_plus: xr.Dataset, reference: xr.Dataset) -> dict[str, float]:
    """The profile metrics of one run against a reference (the rows of :func:`validate`'s table).

    Parameters
    ----------
    profile_plus
        The run's statistics (:func:`run_statistics`; ``attrs["re_tau"]`` the measured Re_tau).
    reference
        Reference statistics (:func:`load_reference`; ``attrs["re_tau"]``).

    Returns
    -------
    dict
        ``re_tau`` and ``re_tau_error = (re_tau - re_tau_ref) / re_tau_ref``; ``U_max_abs``
        (``max |dU+|``, :func:`profile_deviation`); ``U_l2``, ``u_rms_l2``, ``v_rms_l2``,
        ``w_rms_l2``, ``uv_l2`` (:func:`relative_l2`, fractions); ``n_points`` compared.
        Values that cannot be computed are NaN.
    """
    deviation = profile_deviation(profile_plus, reference)
    l2 = relative_l2(profile_plus, reference)
    re_run = float(profile_plus.attrs.get("re_tau", float("nan")))
    re_ref = float(reference.attrs.get("re_tau", float("nan")))
    metrics = {
        "re_tau": re_run,
        "re_tau_error": (re_run - re_ref) / re_ref,
        "U_max_abs": float(deviation.get("U", float("nan"))),
    }
    for name in DEVIATION_VARIABLES:
        metrics[f"{name}_l2"] = float(l2.get(name, float("nan")))
    metrics["n_points"] = l2["n_points"]
    return metrics


# ---------------------------------------------------------------------------------- rollouts
def _velocity(ds: xr.Dataset, index: int) -> np.ndarray:
    return np.stack([np.asarray(ds[name].isel(time=index).values, dtype=np.float64) for name in ("u", "v", "w")])


def rollout_errors(rollout_ds: xr.Dataset, truth_ds: xr.Dataset) -> xr.Dataset:
    r"""Error and correlation of a rollout against the true trajectory, snapshot by snapshot.

    The snapshots are paired by time value (within :data:`TIME_MATCH_TOLERANCE` h/u_tau);
    rollout times without a true snapshot are left out. With ``q = (u, v, w)``, sums over all
    cells and the three components weighted by the cell heights ``dy`` (uniform weights when
    the grid is unknown) and ``q'`` the fluctuation about each snapshot's ``x``-``z`` plane mean,

    .. math::

        \epsilon(t) = \left(\frac{\sum (q_{roll} - q_{true})^2}{\sum q_{true}^2}\right)^{1/2},
        \qquad
        \rho(t) = \frac{\sum q'_{roll} q'_{true}}{\left(\sum q'^2_{roll} \sum q'^2_{true}\right)^{1/2}}.

    Parameters
    ----------
    rollout_ds
        Field Dataset of the rollout (dims ``(time, x, y, z)``).
    truth_ds
        Field Dataset of the truth on the same grid (e.g. the dataset trajectory the rollout
        started from, its ``attrs["truth_file"]``).

    Returns
    -------
    xarray.Dataset
        Over dim ``time`` (the common times): ``relative_l2`` and ``correlation``; coord
        ``step`` (the rollout's snapshot index).

    Raises
    ------
    ValidationError
        If either has no ``time`` dim, the grids differ, or no time is shared.
    """
    for ds, what in ((rollout_ds, "rollout"), (truth_ds, "truth")):
        missing = [name for name in ("u", "v", "w") if name not in ds.data_vars]
        if missing:
            raise ValidationError(f"the {what} lacks {', '.join(missing)}")
        if "time" not in ds["u"].dims:
            raise ValidationError(f"the {what} has no time dimension; rollout errors compare trajectories")
    for dim in ("x", "y", "z"):
        a, b = np.asarray(rollout_ds[dim].values, dtype=float), np.asarray(truth_ds[dim].values, dtype=float)
        if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=1e-8):
            raise ValidationError(
                f"the rollout and the truth are on different grids: {dim} has {a.size} vs {b.size} points"
                + ("" if a.shape != b.shape else " at different positions")
            )
    t_roll = np.asarray(rollout_ds["time"].values, dtype=float)
    t_true = np.asarray(truth_ds["time"].values, dtype=float)
    order = np.argsort(t_true, kind="stable")
    sorted_true = t_true[order]
    position = np.clip(np.searchsorted(sorted_true, t_roll), 1, max(sorted_true.size - 1, 1))
    candidates = np.stack([position - 1, np.minimum(position, sorted_true.size - 1)])
    nearest = np.take_along_axis(candidates, np.abs(sorted_true[candidates] - t_roll).argmin(0)[None], 0)[0]
    matched = np.abs(sorted_true[nearest] - t_roll) <= TIME_MATCH_TOLERANCE
    if not np.any(matched):
        raise ValidationError(
            f"the rollout (t = {t_roll.min():g} .. {t_roll.max():g}) and the truth (t = {t_true.min():g} .. "
            f"{t_true.max():g}) share no snapshot time"
        )
    try:
        weights = np.asarray(ChannelGrid.from_attrs(truth_ds.attrs).dy, dtype=float)
        if weights.size != truth_ds.sizes["y"]:
            raise ValueError
    except (KeyError, TypeError, ValueError):
        weights = np.ones(truth_ds.sizes["y"])
    dims = truth_ds["u"].dims
    space = [dim for dim in dims if dim != "time"]
    shape = [1] * (1 + len(space))  # (component, *space)
    shape[1 + space.index("y")] = -1
    w = weights.reshape(shape)
    plane_axes = tuple(1 + k for k, dim in enumerate(space) if dim != "y")
    rollout_t, truth_t = rollout_ds[["u", "v", "w"]].transpose(*dims), truth_ds[["u", "v", "w"]].transpose(*dims)
    steps = np.flatnonzero(matched)
    errors, correlations = [], []
    for i in steps:
        roll = _velocity(rollout_t, int(i))
        true = _velocity(truth_t, int(order[nearest[i]]))
        norm = float(np.sum(w * true**2))
        errors.append(float(np.sqrt(np.sum(w * (roll - true) ** 2) / norm)) if norm > 0 else float("nan"))
        roll_f = roll - roll.mean(axis=plane_axes, keepdims=True)
        true_f = true - true.mean(axis=plane_axes, keepdims=True)
        denominator = float(np.sqrt(np.sum(w * roll_f**2) * np.sum(w * true_f**2)))
        correlations.append(float(np.sum(w * roll_f * true_f)) / denominator if denominator > 0 else float("nan"))
    time = xr.DataArray(t_roll[steps], dims=("time",), attrs={"units": "h/u_tau", "long_name": "time", "axis": "T"})
    return xr.Dataset(
        {
            "relative_l2": ("time", np.array(errors), {"units": "1", "long_name": "relative L2 error of (u, v, w)"}),
            "correlation": (
                "time",
                np.array(correlations),
                {"units": "1", "long_name": "correlation coefficient of the fluctuations with the truth"},
            ),
        },
        coords={"time": time, "step": ("time", steps, {"long_name": "rollout snapshot index"})},
        attrs={
            "model": str(rollout_ds.attrs.get("model", "")),
            "rollout_status": str(rollout_ds.attrs.get("rollout_status", "")),
        },
    )


# ---------------------------------------------------------------------------------- evaluation
@dataclass
class RunResult:
    """One run of an :class:`Evaluation`: its statistics, metrics and what the report draws of it."""

    label: str
    source: str
    stats: xr.Dataset
    metrics: dict[str, float]
    spectra: xr.Dataset | None = None
    pdfs: xr.Dataset | None = None
    moments: xr.Dataset | None = None
    rollout: xr.Dataset | None = None


@dataclass
class Evaluation:
    """Runs compared with a reference (:func:`evaluate`): the input of :mod:`surrogate.report`."""

    reference: Reference
    runs: list[RunResult]
    table: xr.Dataset
    reference_spectra: xr.Dataset | None = None
    reference_pdfs: xr.Dataset | None = None
    reference_moments: xr.Dataset | None = None
    notes: list[str] = field(default_factory=list)


def _source_of(ds: xr.Dataset) -> str:
    if "dataset_files" in ds.attrs:
        return f"dataset split {ds.attrs.get('dataset_split', '?')} ({ds.attrs['dataset_files']})"
    return str(ds.encoding.get("source", ""))


def _extras(
    window: xr.Dataset, u_tau: float, nu: float, planes: Sequence[float]
) -> tuple[xr.Dataset | None, xr.Dataset]:
    """PDFs at ``planes`` (None without planes) and skewness/flatness profiles, with ``y_plus``."""
    pdfs = None
    if planes:
        pdfs = velocity_pdfs(window, y_plus=list(planes), bins=81, variables=("u", "v", "w"), u_tau=u_tau).compute()
        pdfs = pdfs.assign_coords(y_plus=("y", np.asarray(pdfs["y"].values, dtype=float) * u_tau / nu))
    moments = higher_moments(window).compute()
    moments = moments.assign_coords(y_plus=("y", np.asarray(moments["y"].values, dtype=float) * u_tau / nu))
    return pdfs, moments


def _label_runs(runs: Mapping[str, xr.Dataset] | Sequence[xr.Dataset] | xr.Dataset) -> dict[str, xr.Dataset]:
    if isinstance(runs, xr.Dataset):
        runs = [runs]
    if isinstance(runs, Mapping):
        return {str(label): ds for label, ds in runs.items()}
    labels = [str(ds.attrs.get("label") or ds.attrs.get("case") or f"run {i + 1}") for i, ds in enumerate(runs)]
    return dict(zip(_unique(labels), runs))


def _unique(labels: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        count = seen.get(label, 0)
        seen[label] = count + 1
        out.append(label if count == 0 else f"{label} ({count + 1})")
    return out


def _truth_mapping(truth: xr.Dataset | Mapping[str, xr.Dataset] | None, labels: Sequence[str]) -> dict[str, xr.Dataset]:
    if truth is None:
        return {}
    if isinstance(truth, xr.Dataset):
        return {label: truth for label in labels}
    unknown = [label for label in truth if label not in labels]
    if unknown:
        raise ValidationError(f"truth given for unknown run(s) {', '.join(unknown)}; the runs are {', '.join(labels)}")
    return dict(truth)


def evaluate(
    runs: Mapping[str, xr.Dataset] | Sequence[xr.Dataset] | xr.Dataset,
    reference: str | PathLike[str] | xr.Dataset | Reference,
    *,
    t_start: float | None = None,
    truth: xr.Dataset | Mapping[str, xr.Dataset] | None = None,
    figures: bool = True,
) -> Evaluation:
    """Statistics and metrics of every run against a reference; with ``figures`` also what the report draws.

    Parameters
    ----------
    runs
        Field Datasets: label -> Dataset, or a sequence (labels from ``attrs["label"]`` or
        ``attrs["case"]``).
    reference
        See :func:`load_reference`.
    t_start
        First time (h/u_tau) of the statistics of every run (and of a reference run).
    truth
        True trajectory for :func:`rollout_errors`: one Dataset for every run, or label -> Dataset.
    figures
        Also compute the spectra, PDFs and moments of every run (and of a reference run).

    Returns
    -------
    Evaluation
        ``table`` is the table of :func:`validate`; ``notes`` say what could not be compared.
    """
    runs = _label_runs(runs)
    truth = _truth_mapping(truth, list(runs))
    ref = reference if isinstance(reference, Reference) else _resolve_reference(reference, t_start=t_start)
    ref_label = str(ref.stats.attrs.get("label", "reference"))
    evaluation = Evaluation(ref, [], xr.Dataset())
    if ref.fields is not None:
        u_tau, nu = float(ref.stats.attrs["u_tau"]), float(ref.stats.attrs["nu"])
        evaluation.reference_spectra = _plane_spectra(ref.fields, u_tau, nu, SPECTRUM_Y_PLUS)
        if figures:
            planes = _planes_within(ref.fields, u_tau / nu, SPECTRUM_Y_PLUS)
            evaluation.reference_pdfs, evaluation.reference_moments = _extras(ref.fields, u_tau, nu, planes)
    else:
        evaluation.notes.append(
            f"No spectrum error: the reference ({ref_label}) is a set of published profiles; published spectra "
            "are not shipped, so spectra are compared only against a reference run with fields."
        )
    for label, ds in runs.items():
        window = time_window(ds, t_start, label)
        stats = run_statistics(window, label=label)
        u_tau, nu = float(stats.attrs["u_tau"]), float(stats.attrs["nu"])
        result = RunResult(label, _source_of(ds), stats, run_metrics(stats, ref.stats))
        if figures or evaluation.reference_spectra is not None:
            result.spectra = _plane_spectra(window, u_tau, nu, SPECTRUM_Y_PLUS)
        if result.spectra is not None and evaluation.reference_spectra is not None:
            result.metrics["spectrum_log_error"] = _spectrum_log_error(
                result.spectra, evaluation.reference_spectra, SPECTRUM_Y_PLUS
            )
        if figures:
            planes = _planes_within(window, u_tau / nu, SPECTRUM_Y_PLUS)
            result.pdfs, result.moments = _extras(window, u_tau, nu, planes)
        if label in truth:
            try:
                result.rollout = rollout_errors(ds, truth[label])
            except ValidationError as exc:
                evaluation.notes.append(f"No rollout errors for {label}: {exc}.")
            else:
                result.metrics["rollout_error_last"] = float(result.rollout["relative_l2"][-1])
                result.metrics["rollout_correlation_last"] = float(result.rollout["correlation"][-1])
        evaluation.runs.append(result)
    evaluation.table = _table(evaluation)
    return evaluation


def _table(evaluation: Evaluation) -> xr.Dataset:
    results = evaluation.runs
    data = {
        name: (
            "run",
            np.array([r.metrics.get(name, np.nan) for r in results], dtype=float),
            {"long_name": long_name, "units": units},
        )
        for name, (long_name, units) in TABLE_METRICS.items()
    }
    coords = {
        "run": ("run", [r.label for r in results], {"long_name": "run label"}),
        "n_snapshots": ("run", [int(r.stats.attrs["n_snapshots"]) for r in results], {"long_name": "snapshots averaged"}),
        "t_start": ("run", [float(r.stats.attrs["t_start"]) for r in results], {"units": "h/u_tau"}),
        "t_end": ("run", [float(r.stats.attrs["t_end"]) for r in results], {"units": "h/u_tau"}),
    }
    ref = evaluation.reference.stats.attrs
    attrs = {
        "reference": str(ref.get("label", "reference")),
        "reference_re_tau": float(ref.get("re_tau", np.nan)),
        "reference_source": str(ref.get("source", "")),
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


# ---------------------------------------------------------------------------------- validate
def _truth_of(ds: xr.Dataset, path: Path | None, notes: list[str], label: str) -> xr.Dataset | None:
    """The field Dataset named by a rollout's ``attrs["truth_file"]``, if it can be found."""
    name = str(ds.attrs.get("truth_file", "") or "")
    if not name:
        return None
    candidates = [Path(name)]
    if path is not None and not Path(name).is_absolute():
        candidates.append((path if path.is_dir() else path.parent) / name)
    for candidate in candidates:
        if candidate.is_file():
            return open_fields(candidate)
    notes.append(f"No rollout errors for {label}: its truth file {name} was not found.")
    return None


def validate(
    runs: str | PathLike[str] | xr.Dataset | Sequence[str | PathLike[str] | xr.Dataset],
    reference: str | PathLike[str] | xr.Dataset,
    *,
    out_dir: str | PathLike[str] | None = None,
    labels: Sequence[str] | None = None,
    t_start: float | None = None,
    command: str | None = None,
) -> xr.Dataset:
    """Compare runs with a reference; with ``out_dir``, write the report of :func:`surrogate.report.write_report`.

    Parameters
    ----------
    runs
        Field files, run folders, dataset folders (see :func:`open_run`) or field Datasets.
        A rollout (``attrs["truth_file"]`` naming an existing file) is also compared with its
        truth (:func:`rollout_errors`).
    reference
        A published reference name (:data:`REFERENCE_NAMES`), a run path or a Dataset
        (see :func:`load_reference`).
    out_dir
        Where to write ``report.md``, ``report.html`` and the figures; nothing is written without it.
    labels
        One label per run; default the file or folder name (``attrs["case"]`` for a Dataset).
    t_start
        First time (h/u_tau) entering the statistics of the runs and of a reference run (not
        of a reference dataset folder, whose split is the window).
    command
        Command line for the top of the report.

    Returns
    -------
    xarray.Dataset
        One variable per metric of :data:`TABLE_METRICS` over dim ``run`` (the labels), NaN
        where a metric does not apply (no spectra without a reference run, no rollout error
        without a truth); coords ``n_snapshots``, ``t_start``, ``t_end``; attrs ``reference``,
        ``reference_re_tau``, ``reference_source``.

    Raises
    ------
    ValidationError
        For an unknown reference name, labels that do not match the runs, or a run without
        snapshots at ``t >= t_start``.
    FileNotFoundError
        For a run or reference path that does not exist.
    """
    if isinstance(runs, (str, PathLike, xr.Dataset)):
        runs = [runs]
    runs = list(runs)
    if not runs:
        raise ValidationError("no runs to validate")
    if labels is not None and len(labels) != len(runs):
        raise ValidationError(f"{len(labels)} labels for {len(runs)} runs; give one label per run")
    reference_obj = _resolve_reference(reference, t_start=t_start)
    opened, default_labels, paths = [], [], []
    for i, run in enumerate(runs):
        if isinstance(run, xr.Dataset):
            opened.append(run)
            paths.append(None)
            default_labels.append(str(run.attrs.get("label") or run.attrs.get("case") or f"run {i + 1}"))
        else:
            path = Path(run)
            opened.append(open_run(path))
            paths.append(path)
            default_labels.append(_default_label(path))
    names = _unique([str(label) for label in (labels if labels is not None else default_labels)])
    notes: list[str] = []
    truth = {}
    for label, ds, path in zip(names, opened, paths):
        found = _truth_of(ds, path, notes, label)
        if found is not None:
            truth[label] = found
    evaluation = evaluate(dict(zip(names, opened)), reference_obj, t_start=t_start, truth=truth,
                          figures=out_dir is not None)
    evaluation.notes[:0] = notes
    if out_dir is None:
        return evaluation.table
    from .report import write_evaluation  # here, not at the top: surrogate.report imports this module

    return write_evaluation(evaluation, out_dir, command=command)
