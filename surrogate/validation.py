r"""Comparing runs with published DNS statistics: reference profiles, deviations, figures.

Reference data are the Moser, Kim & Mansour (1999) channel-flow profiles at nominal
``Re_tau = 180, 395, 590`` (exact values 178.12, 392.24, 587.19), shipped unchanged in the
repository's ``validation/reference/`` folder (see ``SOURCES.md`` there). All reference
quantities are in wall units: ``U+``, ``u_rms+ = sqrt(R_uu)``, ..., ``uv+ = R_uv`` (``< 0``
near the lower wall), against ``y+ = y Re_tau`` with ``y`` the distance from the wall in ``h``
(``0 <= y <= 1``).
"""

from __future__ import annotations

import re
from os import PathLike
from pathlib import Path
from typing import Mapping

import numpy as np
import xarray as xr

__all__ = [
    "MKM_RE_TAU",
    "MKM_CITATION",
    "default_reference_dir",
    "load_mkm",
    "profile_deviation",
    "plot_profiles_vs_reference",
    "compare_with_mkm",
]

#: Nominal Re_tau of the MKM cases -> exact Re_tau stated in their file headers.
MKM_RE_TAU: dict[int, float] = {180: 178.12, 395: 392.24, 590: 587.19}
#: Largest relative distance ``|re_tau - nominal| / nominal`` accepted by :func:`load_mkm`.
MKM_MAX_RELATIVE_DISTANCE = 0.15
MKM_CITATION = (
    "R. D. Moser, J. Kim & N. N. Mansour, 'Direct numerical simulation of turbulent channel "
    "flow up to Re_tau = 590', Physics of Fluids 11(4), 943-945 (1999), doi:10.1063/1.869966"
)
#: Log law ``U+ = ln(y+) / KAPPA + B`` drawn for orientation.
KAPPA = 0.41
B_LOG_LAW = 5.2
#: Variables compared by :func:`profile_deviation`.
DEVIATION_VARIABLES: tuple[str, ...] = ("U", "u_rms", "v_rms", "w_rms", "uv")

_RE_TAU_HEADER = re.compile(r"^#\s*Re_tau\s*=\s*([0-9.eE+-]+)", re.MULTILINE)


def default_reference_dir() -> Path:
    """The repository's ``validation/reference`` folder."""
    return Path(__file__).resolve().parents[1] / "validation" / "reference"


def _nearest_mkm_case(re_tau: float) -> int:
    if not (np.isfinite(re_tau) and re_tau > 0):
        raise ValueError(f"re_tau must be a positive number, got {re_tau!r}")
    nominal = min(MKM_RE_TAU, key=lambda r: abs(re_tau - r) / r)
    distance = abs(re_tau - nominal) / nominal
    if distance > MKM_MAX_RELATIVE_DISTANCE:
        raise ValueError(
            f"no Moser-Kim-Mansour reference within {MKM_MAX_RELATIVE_DISTANCE:.0%} of Re_tau = {re_tau:g} "
            f"(cases: {', '.join(str(r) for r in MKM_RE_TAU)}; nearest {nominal} is {distance:.0%} away)"
        )
    return nominal


def _read_mkm_file(path: Path, ncols: int) -> tuple[np.ndarray, float]:
    """Data rows (comment lines start with '#') and the header's Re_tau of one MKM file."""
    if not path.is_file():
        raise FileNotFoundError(
            f"reference file {path} not found; the MKM profiles live in the repository's "
            "validation/reference folder (or pass reference_dir)"
        )
    text = path.read_text()
    match = _RE_TAU_HEADER.search(text)
    if match is None:
        raise ValueError(f"{path}: no '# Re_tau = ...' header line")
    data = np.loadtxt(path, comments="#", ndmin=2)
    if data.shape[1] < ncols:
        raise ValueError(f"{path}: expected at least {ncols} columns, found {data.shape[1]}")
    return data, float(match.group(1))


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
        ``re_tau_nominal``, ``source`` (citation) and ``files``.

    Raises
    ------
    ValueError
        If ``re_tau`` is more than 15 % from every case, or the files are malformed.
    FileNotFoundError
        If a reference file is missing (the message names the path).
    """
    nominal = _nearest_mkm_case(float(re_tau))
    folder = Path(reference_dir) if reference_dir is not None else default_reference_dir()
    if not folder.is_dir():
        raise FileNotFoundError(f"reference folder {folder} not found (expected the MKM profile files there)")
    means_path = folder / f"mkm1999_re{nominal}_means.dat"
    stress_path = folder / f"mkm1999_re{nominal}_reystress.dat"
    means, re_means = _read_mkm_file(means_path, 7)
    stress, re_stress = _read_mkm_file(stress_path, 8)
    if means.shape[0] != stress.shape[0] or not np.allclose(means[:, 0], stress[:, 0], rtol=0, atol=1e-8):
        raise ValueError(f"{means_path.name} and {stress_path.name} are not on the same y points")
    if re_means != re_stress:
        raise ValueError(f"{means_path.name} and {stress_path.name} disagree on Re_tau ({re_means} vs {re_stress})")

    def rms(column: np.ndarray) -> np.ndarray:
        return np.sqrt(np.clip(column, 0.0, None))

    dims = ("y_plus",)
    ds = xr.Dataset(
        {
            "U": (dims, means[:, 2], {"long_name": "mean streamwise velocity U+", "units": "1"}),
            "u_rms": (dims, rms(stress[:, 2]), {"long_name": "rms u'+ = sqrt(R_uu)", "units": "1"}),
            "v_rms": (dims, rms(stress[:, 3]), {"long_name": "rms v'+ = sqrt(R_vv)", "units": "1"}),
            "w_rms": (dims, rms(stress[:, 4]), {"long_name": "rms w'+ = sqrt(R_ww)", "units": "1"}),
            "uv": (dims, stress[:, 5], {"long_name": "Reynolds shear stress <u'v'>+ = R_uv", "units": "1"}),
        },
        coords={
            "y_plus": (dims, means[:, 1], {"long_name": "wall distance in wall units", "units": "1"}),
            "y": (dims, means[:, 0], {"long_name": "distance from the wall", "units": "h"}),
        },
        attrs={
            "re_tau": re_means,
            "re_tau_nominal": nominal,
            "source": MKM_CITATION,
            "files": f"{means_path.name}, {stress_path.name}",
        },
    )
    return ds


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
    y_log = np.geomspace(5.0, max(float(np.max(y_ref)), 10.0), 100)
    ax_mean.plot(y_log, np.log(y_log) / KAPPA + B_LOG_LAW, color="0.6", ls="--", lw=1.0,
                 label=rf"$\ln(y^+)/{KAPPA} + {B_LOG_LAW}$")
    y_lin = np.geomspace(0.1, 12.0, 50)
    ax_mean.plot(y_lin, y_lin, color="0.6", ls=":", lw=1.0, label=r"$U^+ = y^+$")
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
