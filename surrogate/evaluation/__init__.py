r"""Comparing runs with references: statistics of runs and references, metrics, rollout errors.

A run (field file, run folder, dataset folder: :func:`open_run`) is turned into folded mean and
rms profiles in its own wall units (:func:`run_statistics`, :mod:`.runs`); a reference is either a
published data set (:mod:`surrogate.references`, names ``mkm180``, ..., ``lm550``) or a run as
well (:func:`load_reference`, :mod:`.reference`), then its spectra can be compared too. All
profiles are in wall units: ``U+``, ``u_rms+``, ..., ``uv+`` against ``y+``.

Metrics (:mod:`.metrics`): :func:`profile_deviation` (largest deviation), :func:`relative_l2`,
:func:`spectrum_error` and the suite :data:`PROFILE_METRICS` behind :func:`run_metrics` (one run's
row of the table); :func:`rollout_errors` (:mod:`.rollout_errors`) compares a rollout with its
truth, snapshot by snapshot. :func:`evaluate` computes all of them for a set of runs (an
:class:`Evaluation`, which :mod:`surrogate.report` draws and writes); :func:`validate`
(``surrogate validate RUN ... --reference REF``) returns their table and, with ``out_dir``, writes
the report (:mod:`.evaluate`).
"""

from .evaluate import Evaluation, RunResult, evaluate, validate
from .metrics import (
    DEVIATION_VARIABLES,
    FIELD_METRICS,
    PROFILE_METRICS,
    SPECTRUM_Y_PLUS,
    TABLE_METRICS,
    Metric,
    profile_deviation,
    relative_l2,
    run_metrics,
    spectrum_error,
)
from .reference import Reference, compare_with_mkm, load_reference
from .rollout_errors import rollout_errors
from .runs import TIME_MATCH_TOLERANCE, ValidationError, open_run, require_finite_profiles, run_statistics, time_window

__all__ = [
    "DEVIATION_VARIABLES",
    "FIELD_METRICS",
    "PROFILE_METRICS",
    "SPECTRUM_Y_PLUS",
    "TABLE_METRICS",
    "TIME_MATCH_TOLERANCE",
    "Evaluation",
    "Metric",
    "Reference",
    "RunResult",
    "ValidationError",
    "compare_with_mkm",
    "evaluate",
    "load_reference",
    "open_run",
    "profile_deviation",
    "relative_l2",
    "require_finite_profiles",
    "rollout_errors",
    "run_metrics",
    "run_statistics",
    "spectrum_error",
    "time_window",
    "validate",
]
