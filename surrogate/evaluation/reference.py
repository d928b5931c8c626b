r"""References to compare with: a published data set (:mod:`surrogate.references`) or a run.

:func:`load_reference` resolves a name (``mkm180``, ..., ``lm550``, the shipped filtered DNS
``fdns180``), a path or a Dataset to wall-unit statistics; a reference run keeps its fields too
(:class:`Reference`), so that its spectra can be compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import xarray as xr

from ..fields import open_fields
from ..references import FIELD_REFERENCES, REFERENCE_NAMES, field_reference_path, load_mkm, load_published
from .metrics import profile_deviation
from .runs import ValidationError, default_label, open_run, run_statistics, time_window

__all__ = [
    "Reference",
    "compare_with_mkm",
    "load_reference",
    "resolve_reference",
]


@dataclass


class Reference:
    """A resolved reference: its wall-unit statistics and, for a run, its field Dataset (the window)."""

    stats: xr.Dataset
    fields: xr.Dataset | None = None


def resolve_reference(
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
    label = default_label(path)
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
    return resolve_reference(spec, t_start=t_start, reference_dir=reference_dir).stats


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
        nominal, ``attrs["re_tau_measured"]`` the Re_tau it reached), the MKM case nearest the run's
        nominal Re_tau, and :func:`profile_deviation` plus ``re_tau`` (reached), ``n_snapshots``
        and, with a ``time`` dim, ``t_start``/``t_end`` of the window.

    Raises
    ------
    ValidationError
        If no snapshot lies at ``time >= t_start``.
    """
    profiles_plus = run_statistics(ds, t_start=t_start)
    reference = load_mkm(profiles_plus.attrs["re_tau"], reference_dir)
    deviation = profile_deviation(profiles_plus, reference)
    deviation["re_tau"] = profiles_plus.attrs["re_tau_measured"]
    deviation["n_snapshots"] = profiles_plus.attrs["n_snapshots"]
    if "time" in ds.dims:
        deviation["t_start"] = profiles_plus.attrs["t_start"]
        deviation["t_end"] = profiles_plus.attrs["t_end"]
    return profiles_plus, reference, deviation
