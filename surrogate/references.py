r"""Published reference profiles of turbulent channel flow, shipped with the package
(``surrogate/resources/reference/``, read through :mod:`importlib.resources`).

* Moser, Kim & Mansour (1999) at nominal ``Re_tau = 180, 395, 590`` (exact 178.12, 392.24,
  587.19): :func:`load_mkm`, names ``mkm180``, ``mkm395``, ``mkm590``;
* Lee & Moser (2015) at nominal ``Re_tau = 180, 550`` (exact 182.088, 543.496):
  :func:`load_lee_moser`, names ``lm180``, ``lm550``.

* ``fdns180``: box-filtered DNS fields at ``Re_tau = 180`` on 16 x 33 x 12 cells over
  ``2 pi x 2 x pi`` (41 snapshots of the test trajectory of the project's ``dataset_re180``),
  the reference and initial window of the shipped Re_tau = 180 surrogates; a field file, so
  its statistics and spectra are measured like a run's (:func:`field_reference_path`).

The published files are shipped unchanged (see ``SOURCES.md`` there). All quantities are in wall units:
``U+``, ``u_rms+ = sqrt(R_uu)``, ..., ``uv+ = R_uv`` (``< 0`` near the lower wall), against
``y+ = y Re_tau`` with ``y`` the distance from the wall in ``h`` (``0 <= y <= 1``).
:func:`load_published` loads one by name (:data:`REFERENCE_NAMES`).
"""

from __future__ import annotations

import re
from importlib.resources import files
from os import PathLike, fspath
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import xarray as xr

__all__ = [
    "MKM_RE_TAU",
    "MKM_CITATION",
    "LM_RE_TAU",
    "LM_CITATION",
    "FIELD_REFERENCES",
    "REFERENCE_NAMES",
    "default_reference_dir",
    "field_reference_path",
    "load_mkm",
    "load_lee_moser",
    "load_published",
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

_RE_TAU_HEADER = re.compile(r"^#\s*Re_tau\s*=\s*([0-9.eE+-]+)", re.MULTILINE)
_LM_RE_TAU_HEADER = re.compile(r"^%\s*Re_tau\s+Re_tau\s*=\s*([0-9.eE+-]+)", re.MULTILINE)


def default_reference_dir() -> Path:
    """The folder of published profiles installed with the package."""
    return Path(fspath(files("surrogate.resources") / "reference"))


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
            f"reference file {path} not found; the published profiles are installed with the package "
            f"in {default_reference_dir()} (or pass reference_dir)"
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
        (``R_uv = <u'v'>+``, negative); attrs ``re_tau`` (nominal, e.g. 180),
        ``re_tau_measured`` (the published value, e.g. 178.12), ``label``, ``source`` (citation) and ``files``.

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
            "re_tau": nominal,
            "re_tau_measured": re_means,
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
        ``re_tau`` (nominal, 180 or 550), ``re_tau_measured`` (182.088 or 543.496), ``label``, ``source`` and
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
            "re_tau": nominal,
            "re_tau_measured": re_means,
            "label": f"Lee & Moser 2015, Re_tau = {re_means:g}",
            "source": LM_CITATION,
            "files": f"{mean_path.name}, {fluc_path.name}",
        },
    )


#: Reference names of :func:`load_published` -> (loader, nominal Re_tau).
_PUBLISHED: dict[str, tuple[Callable[..., xr.Dataset], int]] = {
    **{f"mkm{re}": (load_mkm, re) for re in MKM_RE_TAU},
    **{f"lm{re}": (load_lee_moser, re) for re in LM_RE_TAU},
}
#: Shipped field references (name -> file in the reference folder), measured like a run.
FIELD_REFERENCES: dict[str, str] = {"fdns180": "fdns180.nc"}
#: The names of the shipped references, e.g. ``"mkm180"``, ``"fdns180"``.
REFERENCE_NAMES: tuple[str, ...] = (*_PUBLISHED, *FIELD_REFERENCES)


def field_reference_path(name: str, reference_dir: str | PathLike[str] | None = None) -> Path:
    """The field file of a shipped field reference (:data:`FIELD_REFERENCES`), e.g. ``"fdns180"``."""
    key = name.strip().lower()
    if key not in FIELD_REFERENCES:
        raise ValueError(f"unknown field reference {name!r}: the names are {', '.join(FIELD_REFERENCES)}")
    return _reference_folder(reference_dir) / FIELD_REFERENCES[key]


def load_published(name: str, reference_dir: str | PathLike[str] | None = None) -> xr.Dataset:
    """A published reference by name: one of :data:`REFERENCE_NAMES` (case-insensitive).

    Raises
    ------
    ValueError
        For another name (the message lists the valid ones).
    """
    key = name.strip().lower()
    if key not in _PUBLISHED:
        raise ValueError(f"unknown published reference {name!r}: the names are {', '.join(REFERENCE_NAMES)}")
    loader, re_tau = _PUBLISHED[key]
    return loader(re_tau, reference_dir)
