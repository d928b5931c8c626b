r"""Every run against one reference: :func:`evaluate` (an :class:`Evaluation`) and :func:`validate`.

:func:`evaluate` computes the statistics and metrics of a set of runs (and what the report draws of
them); :func:`validate` (``surrogate validate RUN ... --reference REF``) opens runs from paths,
finds a rollout's truth, returns the table and, with ``out_dir``, writes the report through
:func:`surrogate.report.write_evaluation` (imported when called: :mod:`surrogate.report` imports
this package).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from ..fields import open_fields
from ..stats import higher_moments, velocity_pdfs
from .metrics import SPECTRUM_Y_PLUS, TABLE_METRICS, plane_spectra, planes_within, run_metrics, spectrum_log_error
from .reference import Reference, resolve_reference
from .rollout_errors import rollout_errors
from .runs import ValidationError, default_label, open_run, run_statistics, time_window

__all__ = [
    "Evaluation",
    "RunResult",
    "evaluate",
    "validate",
]


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
    return dict(zip(unique_labels(labels), runs))


def unique_labels(labels: Sequence[str]) -> list[str]:
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
    ref = reference if isinstance(reference, Reference) else resolve_reference(reference, t_start=t_start)
    ref_label = str(ref.stats.attrs.get("label", "reference"))
    evaluation = Evaluation(ref, [], xr.Dataset())
    if ref.fields is not None:
        u_tau, nu = float(ref.stats.attrs["u_tau"]), float(ref.stats.attrs["nu"])
        evaluation.reference_spectra = plane_spectra(ref.fields, u_tau, nu, SPECTRUM_Y_PLUS)
        if figures:
            planes = planes_within(ref.fields, u_tau / nu, SPECTRUM_Y_PLUS)
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
            result.spectra = plane_spectra(window, u_tau, nu, SPECTRUM_Y_PLUS)
        if result.spectra is not None and evaluation.reference_spectra is not None:
            result.metrics["spectrum_log_error"] = spectrum_log_error(
                result.spectra, evaluation.reference_spectra, SPECTRUM_Y_PLUS
            )
        if figures:
            planes = planes_within(window, u_tau / nu, SPECTRUM_Y_PLUS)
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
        "reference_re_tau": float(ref.get("re_tau_measured", np.nan)),
        "reference_source": str(ref.get("source", "")),
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


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
    reference_obj = resolve_reference(reference, t_start=t_start)
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
            default_labels.append(default_label(path))
    names = unique_labels([str(label) for label in (labels if labels is not None else default_labels)])
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
    from ..report import write_evaluation  # here, not at the top: surrogate.report imports this package

    return write_evaluation(evaluation, out_dir, command=command)
