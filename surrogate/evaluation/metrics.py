r"""Metrics of a run's statistics against a reference's: profile deviations, relative L2, spectra.

:data:`PROFILE_METRICS` is the metric suite of the profiles, as data: each :class:`Metric`
names a column of :func:`surrogate.evaluation.validate`'s table and computes it from the run's and
the reference's wall-unit profiles (:func:`run_metrics`). A new profile statistic is one function
and one entry there; :data:`TABLE_METRICS` (the table's columns) follows from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Sequence

import numpy as np
import xarray as xr

from ..grid import ChannelGrid
from ..stats import energy_spectra
from .runs import friction, time_window

__all__ = [
    "DEVIATION_VARIABLES",
    "FIELD_METRICS",
    "Metric",
    "PROFILE_METRICS",
    "SPECTRUM_Y_PLUS",
    "TABLE_METRICS",
    "nearest_plane",
    "plane_spectra",
    "planes_within",
    "profile_array",
    "profile_deviation",
    "relative_l2",
    "run_metrics",
    "spectrum_error",
    "spectrum_log_error",
    "y_plus_of",
]

#: Variables compared by :func:`profile_deviation` and :func:`relative_l2`.
DEVIATION_VARIABLES: tuple[str, ...] = ("U", "u_rms", "v_rms", "w_rms", "uv")


#: Wall distances (y+) of the planes whose spectra and PDFs are compared: planes of the MKM spectra.
SPECTRUM_Y_PLUS: tuple[float, ...] = (5.0, 30.0, 100.0)


def profile_array(ds: xr.Dataset, name: str) -> np.ndarray:
    """The 1-D values of profile variable ``name``."""
    values = np.asarray(ds[name].values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"profile variable {name!r} must be 1-D, has dims {ds[name].dims}")
    return values


def y_plus_of(ds: xr.Dataset, what: str) -> np.ndarray:
    """The ``y_plus`` coordinate of profiles (``KeyError`` naming ``what`` without one)."""
    if "y_plus" not in ds.variables:
        raise KeyError(f"{what} has no 'y_plus' coordinate (rescale with surrogate.stats.wall_units)")
    return profile_array(ds, "y_plus")


def _paired_profiles(
    profile_plus: xr.Dataset, reference: xr.Dataset
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The run's points inside the reference's ``y+`` range, and the values compared there.

    Returns the mask of those points and, for each variable of :data:`DEVIATION_VARIABLES` both
    have, the run's values on them and the reference (sorted by ``y+``) interpolated linearly
    in ``y+`` onto them.
    """
    y_run = y_plus_of(profile_plus, "profile_plus")
    y_ref = y_plus_of(reference, "reference")
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
            profile_array(profile_plus, name)[inside],
            np.interp(y_run[inside], y_ref, profile_array(reference, name)[order]),
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
        peak = float(np.max(np.abs(profile_array(reference, name))))
        result[name] = delta
        result[f"{name}_rel"] = delta / peak if peak > 0 else float("nan")
    result["n_points"] = int(np.count_nonzero(inside))
    return result


def _profile_weights(profiles: xr.Dataset) -> np.ndarray:
    """Quadrature weights of the profile points along ``y``: the cell heights where the grid is known."""
    y = np.asarray(profiles["y"].values, dtype=float) if "y" in profiles.variables else y_plus_of(profiles, "profiles")
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


def planes_within(window: xr.Dataset, re_tau: float, y_plus: Sequence[float]) -> list[float]:
    """The wall distances of ``y_plus`` inside the channel half of ``window`` (``Re_tau = u_tau / nu``)."""
    y = np.asarray(window["y"].values, dtype=float)
    y_max = float(np.max(np.minimum(y, 2.0 - y))) * re_tau
    return [float(p) for p in y_plus if p <= y_max]


def plane_spectra(window: xr.Dataset, u_tau: float, nu: float, y_plus: Sequence[float]) -> xr.Dataset | None:
    r"""Spectra at the planes nearest ``y_plus`` in wall units: ``k+ = k nu / u_tau``, ``E+ = E / (u_tau nu)``.

    The Nyquist mode of an even number of points is left out: the cell-centred velocities hold
    almost no energy there (the component along the direction is interpolated from the faces),
    and its log would dominate the comparison.
    """
    planes = planes_within(window, u_tau / nu, y_plus)
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


def nearest_plane(spectra: xr.Dataset, target: float) -> int:
    return int(np.argmin(np.abs(np.asarray(spectra["y_plus"].values, dtype=float) - target)))


def spectrum_log_error(run: xr.Dataset, reference: xr.Dataset, y_plus: Sequence[float]) -> float:
    """Mean over planes, components and directions of the mean |log10 E_run - log10 E_ref| over k."""
    errors = []
    for target in y_plus:
        if target > float(np.max(run["y_plus"])) * 1.05 or target > float(np.max(reference["y_plus"])) * 1.05:
            continue
        j_run, j_ref = nearest_plane(run, target), nearest_plane(reference, target)
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
        u_tau, nu = friction(window)
        planes = plane_spectra(window, u_tau, nu, y_plus)
        if planes is None:
            return float("nan")
        spectra.append(planes)
    return spectrum_log_error(spectra[0], spectra[1], y_plus)


@dataclass(frozen=True)
class Metric:
    """A column of the comparison table: its name, long name, units and, for a profile metric,
    ``compute(run_profiles, reference_profiles) -> float`` (NaN where it cannot be computed)."""

    name: str
    long_name: str
    units: str = "1"
    compute: Callable[[xr.Dataset, xr.Dataset], float] | None = None


def _re_tau(run: xr.Dataset, reference: xr.Dataset) -> float:
    return float(run.attrs.get("re_tau_measured", float("nan")))


def _re_tau_error(run: xr.Dataset, reference: xr.Dataset) -> float:
    return (_re_tau(run, reference) - _re_tau(reference, run)) / _re_tau(reference, run)


def _max_abs_deviation(name: str, run: xr.Dataset, reference: xr.Dataset) -> float:
    return float(profile_deviation(run, reference).get(name, float("nan")))


def _l2_deviation(name: str, run: xr.Dataset, reference: xr.Dataset) -> float:
    return float(relative_l2(run, reference).get(name, float("nan")))


#: The profile metrics of :func:`run_metrics`, in table order.
PROFILE_METRICS: tuple[Metric, ...] = (
    Metric("re_tau", "Re_tau measured from the mean wall shear", compute=_re_tau),
    Metric("re_tau_error", "(Re_tau - Re_tau,ref) / Re_tau,ref", compute=_re_tau_error),
    Metric("U_max_abs", "max |U+ - U+_ref|", compute=partial(_max_abs_deviation, "U")),
    *(Metric(f"{name}_l2", f"relative L2 deviation of {name}+", compute=partial(_l2_deviation, name)) for name in DEVIATION_VARIABLES),
)

#: Metrics that need more than the profiles (computed by :func:`surrogate.evaluation.evaluate`).
FIELD_METRICS: tuple[Metric, ...] = (
    Metric("spectrum_log_error", "mean |log10 E+ - log10 E+_ref| at the planes y+ = 5, 30, 100"),
    Metric("rollout_error_last", "relative L2 error of the velocity against the truth, last common time"),
    Metric("rollout_correlation_last", "correlation of the fluctuations with the truth, last common time"),
)

#: Table columns of :func:`surrogate.evaluation.validate`: name -> (long name, units).
TABLE_METRICS: dict[str, tuple[str, str]] = {m.name: (m.long_name, m.units) for m in (*PROFILE_METRICS, *FIELD_METRICS)}


def run_metrics(profile_plus: xr.Dataset, reference: xr.Dataset) -> dict[str, float]:
    """The profile metrics (:data:`PROFILE_METRICS`) of one run against a reference.

    ``profile_plus``: the run's statistics (:func:`surrogate.evaluation.run_statistics`;
    ``attrs["re_tau_measured"]`` the Re_tau it reached); ``reference``: reference statistics
    (:func:`surrogate.evaluation.load_reference`). ``re_tau_error = (re_tau - re_tau_ref) /
    re_tau_ref``; ``U_max_abs`` is ``max |dU+|`` (:func:`profile_deviation`); the ``*_l2`` are
    :func:`relative_l2` fractions. Values that cannot be computed are NaN.
    """
    return {metric.name: metric.compute(profile_plus, reference) for metric in PROFILE_METRICS}
