r"""Comparing runs with references: published DNS statistics, other runs, rollouts against the truth.

Published references, shipped unchanged in the repository's ``validation/reference/`` folder
(see ``SOURCES.md`` there):

* Moser, Kim & Mansour (1999) at nominal ``Re_tau = 180, 395, 590`` (exact 178.12, 392.24,
  587.19): :func:`load_mkm`, names ``mkm180``, ``mkm395``, ``mkm590``;
* Lee & Moser (2015) at nominal ``Re_tau = 180, 550`` (exact 182.088, 543.496):
  :func:`load_lee_moser`, names ``lm180``, ``lm550``.

All reference quantities are in wall units: ``U+``, ``u_rms+ = sqrt(R_uu)``, ..., ``uv+ = R_uv``
(``< 0`` near the lower wall), against ``y+ = y Re_tau`` with ``y`` the distance from the wall in
``h`` (``0 <= y <= 1``). A run (field file, run folder, dataset folder) can be a reference too
(:func:`load_reference`); then its statistics are computed the same way as a run's
(:func:`run_statistics`) and its spectra can be compared as well.

:func:`validate` (``surrogate validate RUN ... --reference REF``) computes the metrics of
:func:`run_metrics` for every run, the time-resolved errors of rollouts against their truth
(:func:`rollout_errors`) and, with ``out_dir``, writes a report (:func:`write_report`).
"""

from __future__ import annotations

import html
import re
import shlex
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import xarray as xr

__all__ = [
    "MKM_RE_TAU",
    "MKM_CITATION",
    "LM_RE_TAU",
    "LM_CITATION",
    "REFERENCE_NAMES",
    "SPECTRUM_Y_PLUS",
    "TABLE_METRICS",
    "ValidationError",
    "default_reference_dir",
    "load_mkm",
    "load_lee_moser",
    "load_reference",
    "open_run",
    "run_statistics",
    "profile_deviation",
    "relative_l2",
    "spectrum_error",
    "run_metrics",
    "rollout_errors",
    "plot_profiles_vs_reference",
    "compare_with_mkm",
    "write_report",
    "validate",
]

#: Nominal Re_tau of the MKM cases -> exact Re_tau stated in their file headers.
MKM_RE_TAU: dict[int, float] = {180: 178.12, 395: 392.24, 590: 587.19}
#: Nominal Re_tau of the Lee & Moser cases shipped -> exact Re_tau stated in their file headers.
LM_RE_TAU: dict[int, float] = {180: 182.088, 550: 543.496}
#: Largest relative distance ``|re_tau - nominal| / nominal`` accepted by :func:`load_mkm`.
MKM_MAX_RELATIVE_DISTANCE = 0.15
MKM_CITATION = (
    "R. D. Moser, J. Kim & N. N. Mansour, 'Direct numerical simulation of turbulent channel "
    "flow up to Re_tau = 590', Physics of Fluids 11(4), 943-945 (1999), doi:10.1063/1.869966"
)
LM_CITATION = (
    "M. Lee & R. D. Moser, 'Direct numerical simulation of turbulent channel flow up to "
    "Re_tau = 5200', Journal of Fluid Mechanics 774, 395-415 (2015), doi:10.1017/jfm.2015.268"
)
#: Log law ``U+ = ln(y+) / KAPPA + B`` drawn for orientation.
KAPPA = 0.41
B_LOG_LAW = 5.2
#: Variables compared by :func:`profile_deviation` and :func:`relative_l2`.
DEVIATION_VARIABLES: tuple[str, ...] = ("U", "u_rms", "v_rms", "w_rms", "uv")
#: Wall distances (y+) of the planes whose spectra and PDFs are compared: planes of the MKM spectra.
SPECTRUM_Y_PLUS: tuple[float, ...] = (5.0, 30.0, 100.0)
#: Snapshot times closer than this (in h/u_tau) are the same time in :func:`rollout_errors`.
TIME_MATCH_TOLERANCE = 1e-6

_RE_TAU_HEADER = re.compile(r"^#\s*Re_tau\s*=\s*([0-9.eE+-]+)", re.MULTILINE)
_LM_RE_TAU_HEADER = re.compile(r"^%\s*Re_tau\s+Re_tau\s*=\s*([0-9.eE+-]+)", re.MULTILINE)


class ValidationError(ValueError):
    """Bad input to a comparison: unknown reference name, no snapshots in the window, no common times."""


def default_reference_dir() -> Path:
    """The repository's ``validation/reference`` folder."""
    return Path(__file__).resolve().parents[1] / "validation" / "reference"


def _nearest_case(re_tau: float, cases: Mapping[int, float], what: str) -> int:
    """The nominal Re_tau of ``cases`` nearest to ``re_tau`` (relative distance at most 15 %)."""
    if not (np.isfinite(re_tau) and re_tau > 0):
        raise ValueError(f"re_tau must be a positive number, got {re_tau!r}")
    nominal = min(cases, key=lambda r: abs(re_tau - r) / r)
    distance = abs(re_tau - nominal) / nominal
    if distance > MKM_MAX_RELATIVE_DISTANCE:
        raise ValueError(
            f"no {what} reference within {MKM_MAX_RELATIVE_DISTANCE:.0%} of Re_tau = {re_tau:g} "
            f"(cases: {', '.join(str(r) for r in cases)}; nearest {nominal} is {distance:.0%} away)"
        )
    return nominal


def _read_profile_file(path: Path, ncols: int, header: re.Pattern[str], comments: str) -> tuple[np.ndarray, float]:
    """Data rows (comment lines start with ``comments``) and the header's Re_tau of one profile file."""
    if not path.is_file():
        raise FileNotFoundError(
            f"reference file {path} not found; the published profiles live in the repository's "
            "validation/reference folder (or pass reference_dir)"
        )
    text = path.read_text()
    match = header.search(text)
    if match is None:
        raise ValueError(f"{path}: no Re_tau header line")
    data = np.loadtxt(path, comments=comments, ndmin=2)
    if data.shape[1] < ncols:
        raise ValueError(f"{path}: expected at least {ncols} columns, found {data.shape[1]}")
    return data, float(match.group(1))


def _reference_folder(reference_dir: str | PathLike[str] | None) -> Path:
    folder = Path(reference_dir) if reference_dir is not None else default_reference_dir()
    if not folder.is_dir():
        raise FileNotFoundError(f"reference folder {folder} not found (expected the published profile files there)")
    return folder


def _profile_dataset(
    y: np.ndarray, y_plus: np.ndarray, mean: np.ndarray, stresses: np.ndarray, attrs: dict[str, Any]
) -> xr.Dataset:
    """Reference Dataset over ``y_plus`` from ``U+`` and the columns ``R_uu, R_vv, R_ww, R_uv``."""

    def rms(column: np.ndarray) -> np.ndarray:
        return np.sqrt(np.clip(column, 0.0, None))

    dims = ("y_plus",)
    return xr.Dataset(
        {
            "U": (dims, mean, {"long_name": "mean streamwise velocity U+", "units": "1"}),
            "u_rms": (dims, rms(stresses[:, 0]), {"long_name": "rms u'+ = sqrt(R_uu)", "units": "1"}),
            "v_rms": (dims, rms(stresses[:, 1]), {"long_name": "rms v'+ = sqrt(R_vv)", "units": "1"}),
            "w_rms": (dims, rms(stresses[:, 2]), {"long_name": "rms w'+ = sqrt(R_ww)", "units": "1"}),
            "uv": (dims, stresses[:, 3], {"long_name": "Reynolds shear stress <u'v'>+ = R_uv", "units": "1"}),
        },
        coords={
            "y_plus": (dims, y_plus, {"long_name": "wall distance in wall units", "units": "1"}),
            "y": (dims, y, {"long_name": "distance from the wall", "units": "h"}),
        },
        attrs=attrs,
    )


def _check_same_rows(a: np.ndarray, b: np.ndarray, a_path: Path, b_path: Path, re_a: float, re_b: float) -> None:
    if a.shape[0] != b.shape[0] or not np.allclose(a[:, 0], b[:, 0], rtol=0, atol=1e-8):
        raise ValueError(f"{a_path.name} and {b_path.name} are not on the same y points")
    if re_a != re_b:
        raise ValueError(f"{a_path.name} and {b_path.name} disagree on Re_tau ({re_a} vs {re_b})")


def load_mkm(re_tau: int | float, reference_dir: str | PathLike[str] | None = None) -> xr.Dataset:
    r"""Moser–Kim–Mansour (1999) mean and rms profiles at the nearest Reynolds number.

    Parameters
    ----------
    re_tau
        Wanted friction Reynolds number; the nearest of 180, 395 and 590 (by relative
        distance) is taken.
    reference_dir
        Folder holding ``mkm1999_re{180,395,590}_{means,reystress}.dat``; default
        :func:`default_reference_dir`.

    Returns
    -------
    xarray.Dataset
        Over dim ``y_plus`` (65 points at 180, 129 at 395 and 590, wall to centreline) with
        coords ``y_plus`` and ``y`` (distance from the wall in ``h``, 0..1); variables ``U``
        (``U+``), ``u_rms``, ``v_rms``, ``w_rms`` (``sqrt(R_uu)`` etc., in ``u_tau``) and ``uv``
        (``R_uv = <u'v'>+``, negative); attrs ``re_tau`` (exact, e.g. 178.12),
        ``re_tau_nominal``, ``label``, ``source`` (citation) and ``files``.

    Raises
    ------
    ValueError
        If ``re_tau`` is more than 15 % from every case, or the files are malformed.
    FileNotFoundError
        If a reference file is missing (the message names the path).
    """
    nominal = _nearest_case(float(re_tau), MKM_RE_TAU, "Moser-Kim-Mansour")
    folder = _reference_folder(reference_dir)
    means_path = folder / f"mkm1999_re{nominal}_means.dat"
    stress_path = folder / f"mkm1999_re{nominal}_reystress.dat"
    means, re_means = _read_profile_file(means_path, 7, _RE_TAU_HEADER, "#")
    stress, re_stress = _read_profile_file(stress_path, 8, _RE_TAU_HEADER, "#")
    _check_same_rows(means, stress, means_path, stress_path, re_means, re_stress)
    return _profile_dataset(
        means[:, 0],
        means[:, 1],
        means[:, 2],
        stress[:, 2:6],
        {
            "re_tau": re_means,
            "re_tau_nominal": nominal,
            "label": f"MKM 1999, Re_tau = {re_means:g}",
            "source": MKM_CITATION,
            "files": f"{means_path.name}, {stress_path.name}",
        },
    )


def load_lee_moser(re_tau: int | float, reference_dir: str | PathLike[str] | None = None) -> xr.Dataset:
    r"""Lee & Moser (2015) mean and rms profiles at the nearest Reynolds number.

    Parameters
    ----------
    re_tau
        Wanted friction Reynolds number; the nearest of 180 and 550 (by relative distance,
        at most 15 % away) is taken.
    reference_dir
        Folder holding ``lm2015_re{180,550}_{mean_prof,vel_fluc_prof}.dat``; default
        :func:`default_reference_dir`.

    Returns
    -------
    xarray.Dataset
        The form of :func:`load_mkm`: over dim ``y_plus`` (96 points at 180, 192 at 550, from
        the wall to just below the centreline, ``y = 0.9916`` at 180: the files omit ``y = 1``)
        with coords ``y_plus`` and ``y`` (in ``h``); ``U`` (``U+``), ``u_rms``, ``v_rms``,
        ``w_rms`` (square roots of the variances) and ``uv`` (``<u'v'>+``, negative); attrs
        ``re_tau`` (exact, 182.088 or 543.496), ``re_tau_nominal``, ``label``, ``source`` and
        ``files``.

    Raises
    ------
    ValueError
        If ``re_tau`` is more than 15 % from both cases, or the files are malformed.
    FileNotFoundError
        If a reference file is missing (the message names the path).
    """
    nominal = _nearest_case(float(re_tau), LM_RE_TAU, "Lee-Moser")
    folder = _reference_folder(reference_dir)
    mean_path = folder / f"lm2015_re{nominal}_mean_prof.dat"
    fluc_path = folder / f"lm2015_re{nominal}_vel_fluc_prof.dat"
    means, re_means = _read_profile_file(mean_path, 6, _LM_RE_TAU_HEADER, "%")
    fluc, re_fluc = _read_profile_file(fluc_path, 9, _LM_RE_TAU_HEADER, "%")
    _check_same_rows(means, fluc, mean_path, fluc_path, re_means, re_fluc)
    return _profile_dataset(
        means[:, 0],
        means[:, 1],
        means[:, 2],
        fluc[:, 2:6],
        {
            "re_tau": re_means,
            "re_tau_nominal": nominal,
            "label": f"Lee & Moser 2015, Re_tau = {re_means:g}",
            "source": LM_CITATION,
            "files": f"{mean_path.name}, {fluc_path.name}",
        },
    )


#: Reference names accepted by :func:`load_reference` -> (loader, nominal Re_tau).
_PUBLISHED: dict[str, tuple[Callable[..., xr.Dataset], int]] = {
    **{f"mkm{re}": (load_mkm, re) for re in MKM_RE_TAU},
    **{f"lm{re}": (load_lee_moser, re) for re in LM_RE_TAU},
}
#: The names of the published references, e.g. ``"mkm180"``.
REFERENCE_NAMES: tuple[str, ...] = tuple(_PUBLISHED)


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
        Reference in wall units, e.g. :func:`load_mkm`.

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
    result: dict[str, float] = {}
    for name in names:
        q_ref = _profile_arrays(reference, name)[order]
        q_run = _profile_arrays(profile_plus, name)[inside]
        delta = float(np.max(np.abs(q_run - np.interp(y_run[inside], y_ref, q_ref))))
        peak = float(np.max(np.abs(q_ref)))
        result[name] = delta
        result[f"{name}_rel"] = delta / peak if peak > 0 else float("nan")
    result["n_points"] = int(np.count_nonzero(inside))
    return result


# ---------------------------------------------------------------------------------- figures
def plot_profiles_vs_reference(
    profiles_plus: Mapping[str, xr.Dataset],
    reference: xr.Dataset,
    path: str | PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    r"""Two-panel PNG comparing runs with a reference, all in wall units.

    Left: ``U+`` against ``y+`` (log axis) with the log law
    ``U+ = ln(y+) / 0.41 + 5.2`` (dashed grey). Right: ``u_rms+``, ``v_rms+``, ``w_rms+`` and
    ``-uv+`` against ``y+`` (linear axis). The reference is drawn in black; each run gets one
    colour, and line styles tell the four quantities of the right panel apart. Uses the Agg
    canvas directly, so the global matplotlib backend is not touched.

    Parameters
    ----------
    profiles_plus
        Run label -> profiles with a ``y_plus`` coordinate (missing variables are skipped).
    reference
        Reference profiles in wall units (e.g. :func:`load_mkm`).
    path
        Output PNG file; parent folders are created.
    title
        Figure title; default names the reference's ``re_tau``.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    path = Path(path)
    fig = Figure(figsize=(11.0, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax_mean, ax_rms = fig.subplots(1, 2)
    stresses = (
        ("u_rms", "-", r"$u'^+$"),
        ("v_rms", "--", r"$v'^+$"),
        ("w_rms", ":", r"$w'^+$"),
        ("uv", "-.", r"$-\overline{uv}^+$"),
    )

    def draw(ds: xr.Dataset, colour: str, label: str, width: float) -> None:
        y_plus = _y_plus(ds, label)
        positive = y_plus > 0
        if "U" in ds.variables:
            ax_mean.plot(y_plus[positive], _profile_arrays(ds, "U")[positive], color=colour, lw=width, label=label)
        for name, style, _ in stresses:
            if name in ds.variables:
                values = _profile_arrays(ds, name)
                ax_rms.plot(y_plus, -values if name == "uv" else values, color=colour, ls=style, lw=width)

    y_ref = _y_plus(reference, "reference")
    _draw_wall_laws(ax_mean, float(np.max(y_ref)))
    ref_label = f"reference (Re_tau = {reference.attrs.get('re_tau', '?')})"
    draw(reference, "black", ref_label, 1.8)
    colours = [f"C{i}" for i in range(10)]
    for i, (label, ds) in enumerate(profiles_plus.items()):
        draw(ds, colours[i % len(colours)], str(label), 1.3)

    ax_mean.set_xscale("log")
    ax_mean.set_xlabel(r"$y^+$")
    ax_mean.set_ylabel(r"$U^+$")
    ax_mean.legend(fontsize="small", loc="upper left")
    ax_mean.grid(True, which="both", alpha=0.3)
    ax_rms.set_xlabel(r"$y^+$")
    ax_rms.set_ylabel("rms and shear stress (wall units)")
    ax_rms.set_xlim(0.0, float(np.max(y_ref)))
    handles = [Line2D([], [], color="black", ls=style, label=text) for _, style, text in stresses]
    ax_rms.legend(handles=handles, fontsize="small", loc="upper right")
    ax_rms.grid(True, alpha=0.3)
    if title is None:
        title = f"Mean and rms profiles against the reference (Re_tau = {reference.attrs.get('re_tau', '?')})"
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


# ---------------------------------------------------------------------------------- DNS runs
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
        Where the MKM files are (default: the repository's ``validation/reference``).

    Returns
    -------
    profiles_plus, reference, deviation
        The run's folded profiles in its own wall units (``attrs["re_tau_wall"]`` is the
        Re_tau it reached), the MKM case nearest the run's nominal Re_tau, and :func:`profile_deviation`
        plus ``re_tau`` (reached), ``n_snapshots`` and ``t_start``/``t_end`` of the window.
    """
    from .stats import friction_velocity, mean_profiles, wall_units

    window = ds.sel(time=slice(t_start, None)) if "time" in ds.dims else ds
    n_snapshots = int(window.sizes.get("time", 1))
    if n_snapshots == 0:
        raise ValueError(f"no snapshot at time >= {t_start}; the run ends at {float(ds.time.max()):g}")
    nu = float(ds.attrs["nu"])
    u_tau = friction_velocity(window)
    profiles_plus = wall_units(mean_profiles(window).compute(), u_tau, nu)
    reference = load_mkm(float(ds.attrs["re_tau"]), reference_dir)  # the case's nominal Re_tau
    deviation = profile_deviation(profiles_plus, reference)
    deviation["re_tau"] = u_tau / nu
    deviation["n_snapshots"] = n_snapshots
    if "time" in window.dims:
        deviation["t_start"] = float(window.time.min())
        deviation["t_end"] = float(window.time.max())
    return profiles_plus, reference, deviation


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
    from .fields import open_fields

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
    from .fields import open_fields

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


def _time_window(ds: xr.Dataset, t_start: float | None, what: str) -> xr.Dataset:
    """The snapshots at ``time >= t_start`` (all without ``t_start`` or a time dim)."""
    if "time" not in ds.dims:
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


def _window_attrs(window: xr.Dataset) -> dict[str, float]:
    if "time" not in window.dims:
        time = float(window["time"]) if "time" in window.coords else float("nan")
        return {"n_snapshots": 1, "t_start": time, "t_end": time}
    times = np.asarray(window["time"].values, dtype=float)
    return {"n_snapshots": int(times.size), "t_start": float(times.min()), "t_end": float(times.max())}


def _friction(window: xr.Dataset) -> tuple[float, float]:
    """Measured friction velocity (in the nominal ``u_tau``) and ``nu`` of a field Dataset."""
    from .stats import friction_velocity

    if "nu" not in window.attrs:
        raise KeyError("the field Dataset has no attrs['nu'] (a field Dataset of this package carries it)")
    return friction_velocity(window), float(window.attrs["nu"])


def run_statistics(ds: xr.Dataset, *, t_start: float | None = None, label: str | None = None) -> xr.Dataset:
    r"""Folded mean and rms profiles of a run in its own wall units, in the form of :func:`load_mkm`.

    The statistics are :func:`surrogate.stats.mean_profiles` over the snapshots at
    ``time >= t_start``, rescaled by :func:`surrogate.stats.wall_units` with the friction
    velocity measured from the mean wall shear (:func:`surrogate.stats.friction_velocity`).

    Parameters
    ----------
    ds
        Field Dataset (dims ``(time, x, y, z)``, ``attrs["nu"]``).
    t_start
        First time (h/u_tau) entering the statistics; default all snapshots.
    label
        Name of the run for figures and tables (``attrs["label"]``); default ``attrs["case"]``.

    Returns
    -------
    xarray.Dataset
        Over dim ``y`` (wall distance of the lower-half cell centres, in ``h``) with coord
        ``y_plus``; ``U, V, W, u_rms, v_rms, w_rms, uv`` in wall units; attrs those of ``ds``
        with ``re_tau`` replaced by the measured ``u_tau / nu`` (the nominal value moves to
        ``re_tau_nominal``), plus ``u_tau``, ``label``, ``n_snapshots``, ``t_start``, ``t_end``.

    Raises
    ------
    ValidationError
        If no snapshot lies at ``time >= t_start``.
    """
    from .stats import mean_profiles, wall_units

    what = label or str(ds.attrs.get("case") or "run")
    window = _time_window(ds, t_start, what)
    u_tau, nu = _friction(window)
    profiles = wall_units(mean_profiles(window).compute(), u_tau, nu)
    profiles.attrs["re_tau_nominal"] = float(ds.attrs.get("re_tau", 1.0 / nu))
    profiles.attrs["re_tau"] = u_tau / nu
    profiles.attrs["label"] = what
    profiles.attrs.update(_window_attrs(window))
    return profiles


def _default_label(path: Path) -> str:
    """A run's label from its path: the folder name (of a run folder or ``fields.nc``), else the file stem."""
    if path.is_dir():
        return path.name
    if path.name in ("fields.nc", "rollout.nc"):
        return path.parent.name + (" rollout" if path.name == "rollout.nc" else "")
    return path.stem


@dataclass
class _Reference:
    """A resolved reference: its wall-unit statistics and, for a run, its field Dataset (the window)."""

    stats: xr.Dataset
    fields: xr.Dataset | None = None


def _resolve_reference(
    spec: str | PathLike[str] | xr.Dataset,
    *,
    t_start: float | None = None,
    reference_dir: str | PathLike[str] | None = None,
) -> _Reference:
    if isinstance(spec, xr.Dataset):
        if "u" in spec.data_vars:
            label = str(spec.attrs.get("label") or spec.attrs.get("case") or "reference")
            window = _time_window(spec, t_start, label)
            stats = run_statistics(window, label=label)
            stats.attrs["source"] = str(spec.encoding.get("source", "")) or "a field Dataset"
            return _Reference(stats, window)
        if "y_plus" not in spec.variables:
            raise ValidationError(
                "a reference Dataset needs either fields u, v, w or profiles with a y_plus coordinate"
            )
        stats = spec.copy()
        stats.attrs.setdefault("label", "reference")
        return _Reference(stats)
    text = str(spec)
    key = text.strip().lower()
    if key in _PUBLISHED:
        loader, re_tau = _PUBLISHED[key]
        return _Reference(loader(re_tau, reference_dir))
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
    window = _time_window(fields, None if is_dataset else t_start, label)
    stats = run_statistics(window, label=label)
    stats.attrs["source"] = str(path)
    return _Reference(stats, window)


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
        Folder of the published files (default :func:`default_reference_dir`).

    Returns
    -------
    xarray.Dataset
        Profiles with a ``y_plus`` coordinate and ``U, u_rms, v_rms, w_rms, uv`` in wall units
        (:func:`load_mkm` / :func:`load_lee_moser`, or :func:`run_statistics` for a run); attrs
        ``label`` and ``re_tau`` (exact published value, or the run's measured one).

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
    from .grid import ChannelGrid

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
    weights = _profile_weights(profile_plus)[inside]
    result: dict[str, float] = {}
    for name in names:
        q_ref = np.interp(y_run[inside], y_ref, _profile_arrays(reference, name)[order])
        q_run = _profile_arrays(profile_plus, name)[inside]
        norm = float(np.sum(weights * q_ref**2))
        result[name] = float(np.sqrt(np.sum(weights * (q_run - q_ref) ** 2) / norm)) if norm > 0 else float("nan")
    result["n_points"] = int(np.count_nonzero(inside))
    return result


def _optional_stats(name: str) -> Callable[..., xr.Dataset] | None:
    """``surrogate.stats.<name>`` where the installed version has it, else None."""
    from . import stats

    return getattr(stats, name, None)


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
    energy_spectra = _optional_stats("energy_spectra")
    planes = _planes_within(window, u_tau / nu, y_plus)
    if energy_spectra is None or not planes:
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

    Raises
    ------
    ValidationError
        If :func:`surrogate.stats.energy_spectra` is not available.
    """
    spectra = []
    for ds, what in ((run, "run"), (reference, "reference")):
        window = _time_window(ds, t_start, what)
        u_tau, nu = _friction(window)
        planes = _plane_spectra(window, u_tau, nu, y_plus)
        if planes is None:
            if _optional_stats("energy_spectra") is None:
                raise ValidationError("surrogate.stats has no energy_spectra: spectra cannot be compared")
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
    from .grid import ChannelGrid

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
class _RunResult:
    """Everything the report shows of one run."""

    label: str
    source: str
    stats: xr.Dataset
    metrics: dict[str, float]
    spectra: xr.Dataset | None = None
    pdfs: xr.Dataset | None = None
    moments: xr.Dataset | None = None
    rollout: xr.Dataset | None = None


@dataclass
class _Evaluation:
    reference: _Reference
    runs: list[_RunResult]
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
) -> tuple[xr.Dataset | None, xr.Dataset | None]:
    """PDFs at ``planes`` and skewness/flatness profiles (with ``y_plus``), where surrogate.stats has them."""
    velocity_pdfs = _optional_stats("velocity_pdfs")
    higher_moments = _optional_stats("higher_moments")
    pdfs = moments = None
    if velocity_pdfs is not None and planes:
        pdfs = velocity_pdfs(window, y_plus=list(planes), bins=81, variables=("u", "v", "w"), u_tau=u_tau).compute()
        pdfs = pdfs.assign_coords(y_plus=("y", np.asarray(pdfs["y"].values, dtype=float) * u_tau / nu))
    if higher_moments is not None:
        moments = higher_moments(window).compute()
        moments = moments.assign_coords(y_plus=("y", np.asarray(moments["y"].values, dtype=float) * u_tau / nu))
    return pdfs, moments


def _as_reference(reference: str | PathLike[str] | xr.Dataset | _Reference, t_start: float | None) -> _Reference:
    return reference if isinstance(reference, _Reference) else _resolve_reference(reference, t_start=t_start)


def _evaluate(
    runs: Mapping[str, xr.Dataset],
    reference: str | PathLike[str] | xr.Dataset | _Reference,
    *,
    t_start: float | None,
    truth: Mapping[str, xr.Dataset],
    figures: bool,
) -> _Evaluation:
    """Statistics, metrics and (with ``figures``) spectra, PDFs and moments of every run."""
    ref = _as_reference(reference, t_start)
    ref_label = str(ref.stats.attrs.get("label", "reference"))
    evaluation = _Evaluation(ref, [], xr.Dataset())
    have_spectra = _optional_stats("energy_spectra") is not None
    if ref.fields is not None:
        u_tau, nu = float(ref.stats.attrs["u_tau"]), float(ref.stats.attrs["nu"])
        if have_spectra:
            evaluation.reference_spectra = _plane_spectra(ref.fields, u_tau, nu, SPECTRUM_Y_PLUS)
        if figures:
            planes = _planes_within(ref.fields, u_tau / nu, SPECTRUM_Y_PLUS)
            evaluation.reference_pdfs, evaluation.reference_moments = _extras(ref.fields, u_tau, nu, planes)
    if not have_spectra:
        evaluation.notes.append("No spectra: this version of surrogate.stats has no energy_spectra.")
    elif ref.fields is None:
        evaluation.notes.append(
            f"No spectrum error: the reference ({ref_label}) is a set of published profiles; published spectra "
            "are not shipped, so spectra are compared only against a reference run with fields."
        )
    for label, ds in runs.items():
        window = _time_window(ds, t_start, label)
        stats = run_statistics(window, label=label)
        u_tau, nu = float(stats.attrs["u_tau"]), float(stats.attrs["nu"])
        result = _RunResult(label, _source_of(ds), stats, run_metrics(stats, ref.stats))
        if have_spectra and (figures or evaluation.reference_spectra is not None):
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


def _table(evaluation: _Evaluation) -> xr.Dataset:
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


# ---------------------------------------------------------------------------------- figures
REPORT_DPI = 100


def _new_figure(nrows: int, ncols: int, width: float, height: float) -> tuple[Any, np.ndarray]:
    """A Figure on its own Agg canvas (the global matplotlib backend is not touched) and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _colour(index: int) -> str:
    return f"C{index % 10}"


def _draw_wall_laws(ax: Any, y_max: float) -> None:
    """The log law ``ln(y+)/0.41 + 5.2`` (dashed grey) and the viscous sublayer ``U+ = y+`` (dotted grey)."""
    y_log = np.geomspace(5.0, max(y_max, 10.0), 100)
    ax.plot(y_log, np.log(y_log) / KAPPA + B_LOG_LAW, color="0.6", ls="--", lw=1.0,
            label=rf"$\ln(y^+)/{KAPPA} + {B_LOG_LAW}$")
    y_lin = np.geomspace(0.1, 12.0, 50)
    ax.plot(y_lin, y_lin, color="0.6", ls=":", lw=1.0, label=r"$U^+ = y^+$")


def _profile_lines(evaluation: _Evaluation) -> list[tuple[xr.Dataset, str, dict[str, Any]]]:
    """(profiles, label, line style) for the reference (black) and each run (one colour each)."""
    ref = evaluation.reference.stats
    lines = [(ref, str(ref.attrs.get("label", "reference")), {"color": "black", "lw": 1.8})]
    lines += [(r.stats, r.label, {"color": _colour(i), "lw": 1.3}) for i, r in enumerate(evaluation.runs)]
    return lines


def _figure_mean_velocity(evaluation: _Evaluation, path: Path) -> Path:
    fig, axes = _new_figure(1, 1, 6.0, 4.5)
    ax = axes[0, 0]
    y_max = float(np.max(_y_plus(evaluation.reference.stats, "reference")))
    _draw_wall_laws(ax, y_max)
    for ds, label, style in _profile_lines(evaluation):
        y_plus = _y_plus(ds, label)
        positive = y_plus > 0
        ax.plot(y_plus[positive], _profile_arrays(ds, "U")[positive], label=label, **style)
    ax.set_xscale("log")
    ax.set_xlabel(r"$y^+$")
    ax.set_ylabel(r"$U^+$")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left")
    ax.set_title("Mean velocity")
    fig.savefig(path, dpi=REPORT_DPI)
    return path


def _figure_stresses(evaluation: _Evaluation, path: Path) -> Path:
    fig, axes = _new_figure(2, 2, 9.0, 6.5)
    panels = (("u_rms", r"$u'^+_{rms}$", 1), ("v_rms", r"$v'^+_{rms}$", 1),
              ("w_rms", r"$w'^+_{rms}$", 1), ("uv", r"$-\overline{u'v'}^+$", -1))
    for ax, (name, text, sign) in zip(axes.flat, panels):
        for ds, label, style in _profile_lines(evaluation):
            if name not in ds.variables:
                continue
            y_plus = _y_plus(ds, label)
            positive = y_plus > 0
            ax.plot(y_plus[positive], sign * _profile_arrays(ds, name)[positive], label=label, **style)
        ax.set_xscale("log")
        ax.set_xlabel(r"$y^+$")
        ax.set_ylabel(text)
        ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize="small", loc="upper left")
    fig.suptitle("Rms velocity fluctuations and Reynolds shear stress")
    fig.savefig(path, dpi=REPORT_DPI)
    return path


def _field_lines(evaluation: _Evaluation, attr: str, ref_attr: str) -> list[tuple[xr.Dataset, str, dict[str, Any]]]:
    """(data, label, style) of the reference (if it has ``ref_attr``) and the runs that have ``attr``."""
    lines = []
    reference = getattr(evaluation, ref_attr)
    if reference is not None:
        label = str(evaluation.reference.stats.attrs.get("label", "reference"))
        lines.append((reference, label, {"color": "black", "lw": 1.6}))
    lines += [(getattr(r, attr), r.label, {"color": _colour(i), "lw": 1.2})
              for i, r in enumerate(evaluation.runs) if getattr(r, attr) is not None]
    return lines


def _planes_shown(lines: list[tuple[xr.Dataset, str, dict[str, Any]]]) -> list[float]:
    planes: list[float] = []
    for ds, _, _ in lines:
        planes += [p for p in ds.attrs.get("planes_y_plus", SPECTRUM_Y_PLUS) if p not in planes]
    limit = min(float(np.max(ds["y_plus"])) for ds, _, _ in lines) * 1.05
    return sorted(p for p in planes if p <= limit)


def _figure_spectra(evaluation: _Evaluation, path: Path) -> Path | None:
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter

    lines = _field_lines(evaluation, "spectra", "reference_spectra")
    if not lines:
        return None
    planes = _planes_shown(lines)
    fig, axes = _new_figure(len(planes), 2, 9.0, 2.8 * len(planes) + 0.6)
    components = (("uu", "-"), ("vv", "--"), ("ww", ":"))
    for row, target in enumerate(planes):
        for col, k_dim in enumerate(("k_x", "k_z")):
            ax = axes[row, col]
            for ds, label, style in lines:
                j = _nearest_plane(ds, target)
                k = np.asarray(ds[k_dim].values, dtype=float)
                for component, dash in components:
                    values = np.asarray(ds[f"E_{component}_{k_dim.replace('_', '')}"].isel(y=j).values, dtype=float)
                    keep = (k > 0) & (values > 0)
                    ax.loglog(k[keep], values[keep], ls=dash, **style)
            ax.xaxis.set_minor_formatter(NullFormatter())  # labels on a narrow k range would overlap
            ax.set_xlabel(rf"${k_dim[0]}_{k_dim[-1]}^+$")
            ax.set_ylabel(rf"$E^+({k_dim[0]}_{k_dim[-1]}^+)$")
            ax.set_title(rf"$y^+ \approx {target:g}$", fontsize="medium")
            ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(handles=[Line2D([], [], label=label, **style) for _, label, style in lines], fontsize="small")
    axes[0, 1].legend(handles=[Line2D([], [], color="0.3", ls=dash, label=f"$E_{{{c}}}$") for c, dash in components],
                      fontsize="small")
    fig.suptitle("One-dimensional energy spectra (wall units)")
    fig.savefig(path, dpi=REPORT_DPI)
    return path


def _figure_pdfs(evaluation: _Evaluation, path: Path) -> Path | None:
    lines = _field_lines(evaluation, "pdfs", "reference_pdfs")
    if not lines:
        return None
    planes = sorted({float(p) for ds, _, _ in lines for p in np.asarray(ds["y_plus"].values)})
    targets = [p for p in SPECTRUM_Y_PLUS if p <= max(planes) * 1.05] or planes[:1]
    fig, axes = _new_figure(len(targets), 3, 10.0, 2.8 * len(targets) + 0.6)
    gauss = np.linspace(-6.0, 6.0, 200)
    for row, target in enumerate(targets):
        for col, name in enumerate(("u", "v", "w")):
            ax = axes[row, col]
            ax.plot(gauss, np.exp(-0.5 * gauss**2) / np.sqrt(2 * np.pi), color="0.6", ls=":", lw=1.0, label="Gaussian")
            for ds, label, style in lines:
                j = _nearest_plane(ds, target)
                values = np.asarray(ds[f"pdf_{name}"].isel(y=j).values, dtype=float)
                keep = values > 0
                ax.plot(np.asarray(ds["value"].values)[keep], values[keep], label=label, **style)
            ax.set_yscale("log")
            ax.set_ylim(1e-5, 1.0)
            ax.set_xlabel(rf"${name}'/{name}_{{rms}}$")
            ax.set_title(rf"$y^+ \approx {target:g}$", fontsize="medium")
            ax.grid(True, alpha=0.3)
    axes[0, 0].legend(fontsize="small")
    fig.suptitle("PDFs of the velocity fluctuations")
    fig.savefig(path, dpi=REPORT_DPI)
    return path


def _figure_moments(evaluation: _Evaluation, path: Path) -> Path | None:
    lines = _field_lines(evaluation, "moments", "reference_moments")
    if not lines:
        return None
    fig, axes = _new_figure(2, 3, 10.0, 5.8)
    for row, (prefix, title, gaussian) in enumerate((("S", "skewness", 0.0), ("F", "flatness", 3.0))):
        for col, name in enumerate(("u", "v", "w")):
            ax = axes[row, col]
            ax.axhline(gaussian, color="0.6", ls=":", lw=1.0)
            for ds, label, style in lines:
                y_plus = np.asarray(ds["y_plus"].values, dtype=float)
                positive = y_plus > 0
                ax.plot(y_plus[positive], np.asarray(ds[f"{prefix}_{name}"].values, dtype=float)[positive],
                        label=label, **style)
            ax.set_xscale("log")
            ax.set_xlabel(r"$y^+$")
            ax.set_ylabel(f"${prefix}({name}')$")
            ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize="small")
    fig.suptitle("Skewness and flatness of the velocity fluctuations")
    fig.savefig(path, dpi=REPORT_DPI)
    return path


def _figure_rollout(evaluation: _Evaluation, path: Path) -> Path | None:
    runs = [(i, r) for i, r in enumerate(evaluation.runs) if r.rollout is not None]
    if not runs:
        return None
    fig, axes = _new_figure(1, 2, 10.0, 4.0)
    for i, r in runs:
        time = np.asarray(r.rollout["time"].values, dtype=float)
        axes[0, 0].plot(time, r.rollout["relative_l2"].values, color=_colour(i), lw=1.3, label=r.label)
        axes[0, 1].plot(time, r.rollout["correlation"].values, color=_colour(i), lw=1.3, label=r.label)
    axes[0, 0].set_ylabel("relative L2 error of (u, v, w)")
    axes[0, 0].set_ylim(bottom=0.0)
    axes[0, 1].set_ylabel("correlation of the fluctuations")
    axes[0, 1].set_ylim(top=1.02)
    for ax in axes.flat:
        ax.set_xlabel(r"$t\ (h/u_\tau)$")
        ax.grid(True, alpha=0.3)
    axes[0, 0].legend(fontsize="small")
    fig.suptitle("Rollouts against the truth")
    fig.savefig(path, dpi=REPORT_DPI)
    return path


# ---------------------------------------------------------------------------------- report
_NAN_TEXT = "n/a"
_NUMERIC = re.compile(r"^([-+]?[0-9.]|n/a$)")


def _format_metric(name: str, value: float) -> str:
    if not np.isfinite(value):
        return _NAN_TEXT
    if name == "re_tau":
        return f"{value:.1f}"
    if name == "re_tau_error":
        return f"{100 * value:+.1f} %"
    if name.endswith("_l2"):
        return f"{100 * value:.1f} %"
    if name == "U_max_abs":
        return f"{value:.2f}"
    return f"{value:.3f}"


_COLUMN_HEADERS = {
    "re_tau": "Re_tau",
    "re_tau_error": "Re_tau error",
    "U_max_abs": "max abs(dU+)",
    "U_l2": "L2 U+",
    "u_rms_l2": "L2 u_rms+",
    "v_rms_l2": "L2 v_rms+",
    "w_rms_l2": "L2 w_rms+",
    "uv_l2": "L2 uv+",
    "spectrum_log_error": "spectrum log10 error",
    "rollout_error_last": "rollout error (last)",
    "rollout_correlation_last": "rollout correlation (last)",
}


def _report_blocks(evaluation: _Evaluation, figures: list[tuple[str, str]], command: str | None) -> list[tuple]:
    """The report as blocks: ``("h1" | "h2" | "p" | "code", text)``, ``("table", header, rows)``,
    ``("list", items)``, ``("img", file, caption)``."""
    ref = evaluation.reference.stats
    ref_label = str(ref.attrs.get("label", "reference"))
    blocks: list[tuple] = [("h1", f"Validation against {ref_label}")]
    if command:
        blocks += [("p", "Made with:"), ("code", command)]
    if evaluation.reference.fields is None:
        source, files = ref.attrs.get("source", ""), ref.attrs.get("files", "?")
        blocks.append(("p", f"Reference: {ref_label}: {source}; files {files}."))
    else:
        blocks.append(("p", (
            f"Reference: the run `{ref.attrs.get('source', ref_label)}`, {int(ref.attrs['n_snapshots'])} snapshots "
            f"over t = {float(ref.attrs['t_start']):g} .. {float(ref.attrs['t_end']):g} h/u_tau, "
            f"Re_tau = {float(ref.attrs['re_tau']):.1f} measured."
        )))
    blocks.append(("h2", "Runs"))
    rows = []
    for r in evaluation.runs:
        attrs = r.stats.attrs
        grid = f"{attrs.get('grid_nx', '?')} x {attrs.get('grid_ny', '?')} x {attrs.get('grid_nz', '?')}"
        rows.append([r.label, f"`{r.source}`" if r.source else "", grid, str(int(attrs["n_snapshots"])),
                     f"{float(attrs['t_start']):g} .. {float(attrs['t_end']):g}", f"{float(attrs['re_tau_nominal']):g}"])
    blocks.append(("table", ["run", "source", "grid", "snapshots", "t (h/u_tau)", "nominal Re_tau"], rows))

    blocks.append(("h2", "Metrics"))
    table = evaluation.table
    shown = [name for name in TABLE_METRICS if np.any(np.isfinite(table[name].values))]
    rows = [[str(label)] + [_format_metric(name, float(table[name].values[i])) for name in shown]
            for i, label in enumerate(table["run"].values)]
    blocks.append(("table", ["run"] + [_COLUMN_HEADERS[name] for name in shown], rows))
    definitions = [
        "Statistics: averages over x, z, time (t >= t_start) and the two channel halves; wall units with each "
        "run's own friction velocity from the mean wall shear (second-order one-sided gradient).",
        "Re_tau error: (Re_tau - Re_tau,ref) / Re_tau,ref, with the reference's "
        f"Re_tau = {float(ref.attrs['re_tau']):g}.",
        "max abs(dU+): largest |U+ - U+_ref| on the run's points inside the reference's y+ range (reference "
        "interpolated linearly in y+).",
        "L2 q: relative L2 deviation sqrt(sum w (q - q_ref)^2 / sum w q_ref^2) on the same points, weights w the "
        "cell heights.",
    ]
    if "spectrum_log_error" in shown:
        definitions.append(
            "spectrum log10 error: mean |log10 E+ - log10 E+_ref| over the wavenumbers of E_uu, E_vv, E_ww in k_x "
            f"and k_z at the planes nearest y+ = {', '.join(f'{p:g}' for p in SPECTRUM_Y_PLUS)} (0.1 = a factor 1.26)."
        )
    if "rollout_error_last" in shown:
        definitions.append(
            "rollout error / correlation: relative L2 error of (u, v, w) and correlation coefficient of the "
            "fluctuations about the plane means, against the truth at the last common time."
        )
    blocks.append(("list", definitions))
    if figures:
        blocks.append(("h2", "Figures"))
        for name, caption in figures:
            blocks.append(("img", name, caption))
    if evaluation.notes:
        blocks.append(("h2", "Notes"))
        blocks.append(("list", list(evaluation.notes)))
    return blocks


def _markdown(blocks: list[tuple]) -> str:
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h1":
            out.append(f"# {block[1]}")
        elif kind == "h2":
            out.append(f"## {block[1]}")
        elif kind == "p":
            out.append(block[1])
        elif kind == "code":
            out.append(f"```bash\n{block[1]}\n```")
        elif kind == "list":
            out.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "table":
            header, rows = block[1], block[2]
            numeric = [all(_NUMERIC.match(row[i]) for row in rows) for i in range(len(header))]
            rule = ["---:" if right and i > 0 else "---" for i, right in enumerate(numeric)]
            lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
            lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
            out.append("\n".join(lines))
        elif kind == "img":
            out.append(f"![{block[2]}]({block[1]})\n\n{block[2]}")
    return "\n\n".join(out) + "\n"


def _inline_html(text: str) -> str:
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text, quote=False))


def _html(blocks: list[tuple], title: str) -> str:
    body: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{_inline_html(block[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline_html(block[1])}</p>")
        elif kind == "code":
            body.append(f"<pre><code>{html.escape(block[1], quote=False)}</code></pre>")
        elif kind == "list":
            body.append("<ul>\n" + "\n".join(f"  <li>{_inline_html(item)}</li>" for item in block[1]) + "\n</ul>")
        elif kind == "table":
            header, rows = block[1], block[2]
            lines = ["<table>", "  <tr>" + "".join(f"<th>{_inline_html(h)}</th>" for h in header) + "</tr>"]
            lines += ["  <tr>" + "".join(f"<td>{_inline_html(cell)}</td>" for cell in row) + "</tr>" for row in rows]
            body.append("\n".join(lines + ["</table>"]))
        elif kind == "img":
            caption = _inline_html(block[2])
            body.append(f'<figure><img src="{html.escape(block[1])}" alt="{html.escape(block[2])}">'
                        f"<figcaption>{caption}</figcaption></figure>")
    style = (
        "body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.25em .6em;text-align:right}"
        "td:first-child,th:first-child{text-align:left}pre{background:#f4f4f4;padding:.6em;overflow-x:auto}"
        "img{max-width:100%}figure{margin:1.5em 0}"
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{style}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


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


def write_report(
    runs: Mapping[str, xr.Dataset] | Sequence[xr.Dataset] | xr.Dataset,
    reference: str | PathLike[str] | xr.Dataset,
    out_dir: str | PathLike[str],
    *,
    t_start: float | None = None,
    truth: xr.Dataset | Mapping[str, xr.Dataset] | None = None,
    command: str | None = None,
) -> xr.Dataset:
    """Compare runs with a reference and write ``report.md``, ``report.html`` and PNG figures.

    Figures (100 dpi; the reference in black, one colour per run): ``mean_velocity.png``
    (``U+`` against ``y+`` on a log axis with the log law ``ln(y+)/0.41 + 5.2`` and the viscous
    sublayer ``U+ = y+``), ``stresses.png`` (``u_rms+, v_rms+, w_rms+, -uv+``), and where
    :mod:`surrogate.stats` provides them ``spectra.png`` (``E_uu, E_vv, E_ww`` in ``k_x`` and
    ``k_z`` at ``y+ ~ 5, 30, 100``), ``pdfs.png`` (PDFs of ``u'/u_rms`` etc. at those planes) and
    ``moments.png`` (skewness, flatness); the reference enters those three only when it is a
    run. ``rollout.png`` (error and correlation against time) when a run has a truth.

    Parameters
    ----------
    runs
        Field Datasets: label -> Dataset, or a sequence (labels from ``attrs["label"]`` or
        ``attrs["case"]``).
    reference
        See :func:`load_reference`.
    out_dir
        Folder for the report (created).
    t_start
        First time (h/u_tau) of the statistics of every run (and of a reference run).
    truth
        True trajectory for :func:`rollout_errors`: one Dataset for every run, or label -> Dataset.
    command
        Command line shown at the top of the report.

    Returns
    -------
    xarray.Dataset
        The table of :func:`validate`.
    """
    runs = _label_runs(runs)
    truth_map = _truth_mapping(truth, list(runs))
    evaluation = _evaluate(runs, reference, t_start=t_start, truth=truth_map, figures=True)
    return _write(evaluation, Path(out_dir), command)


def _write(evaluation: _Evaluation, out_dir: Path, command: str | None) -> xr.Dataset:
    out_dir.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, str]] = []
    makers = (
        ("mean_velocity.png", _figure_mean_velocity,
         "Mean velocity U+ against y+ (log axis), with the log law ln(y+)/0.41 + 5.2 (dashed) and U+ = y+ (dotted)."),
        ("stresses.png", _figure_stresses, "Rms velocity fluctuations and Reynolds shear stress -uv+ against y+."),
        ("spectra.png", _figure_spectra,
         "One-dimensional spectra in wall units at the planes nearest y+ = 5, 30, 100: E_uu solid, E_vv dashed, "
         "E_ww dotted."),
        ("pdfs.png", _figure_pdfs,
         "PDFs of the standardised velocity fluctuations at the planes nearest y+ = 5, 30, 100."),
        ("moments.png", _figure_moments, "Skewness (Gaussian 0) and flatness (Gaussian 3) of the velocity fluctuations."),
        ("rollout.png", _figure_rollout,
         "Rollouts against the truth: relative L2 error of (u, v, w) and correlation of the fluctuations."),
    )
    for name, maker, caption in makers:
        (out_dir / name).unlink(missing_ok=True)
        if maker(evaluation, out_dir / name) is not None:
            figures.append((name, caption))
    if not any(r.rollout is not None for r in evaluation.runs):
        evaluation.notes.append("No rollout figure: no run is a rollout with its truth.")
    if evaluation.reference.fields is None and any(r.pdfs is not None for r in evaluation.runs):
        evaluation.notes.append("PDFs and moments are shown for the runs only: the published reference has none shipped.")
    blocks = _report_blocks(evaluation, figures, command)
    title = blocks[0][1]
    (out_dir / "report.md").write_text(_markdown(blocks))
    (out_dir / "report.html").write_text(_html(blocks, title))
    return evaluation.table


def _truth_of(ds: xr.Dataset, path: Path | None, notes: list[str], label: str) -> xr.Dataset | None:
    """The field Dataset named by a rollout's ``attrs["truth_file"]``, if it can be found."""
    from .fields import open_fields

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
    """Compare runs with a reference; with ``out_dir``, write the report of :func:`write_report`.

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
    evaluation = _evaluate(dict(zip(names, opened)), reference_obj, t_start=t_start, truth=truth,
                           figures=out_dir is not None)
    evaluation.notes[:0] = notes
    if out_dir is None:
        return evaluation.table
    return _write(evaluation, Path(out_dir), command)
