"""LES at Re_tau = 180 against Moser, Kim & Mansour and against the filtered DNS — long runs.

Each MKM case runs 150 h/u_tau (minutes to tens of minutes on a CPU core) and its profiles
averaged from 50 h/u_tau on are compared with MKM; the learned closure's case runs 200 h/u_tau
from the developed field on the dataset grid and is compared with the filtered DNS fdns180. The
bounds were set before the runs; the figures reached, including the no-model control, are
recorded in validation/README.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from surrogate.config import load_case
from surrogate.fields import open_fields
from surrogate.simulation import run_case
from surrogate.evaluation import compare_with_mkm

CASES = Path(__file__).resolve().parents[1] / "cases"


def _run(name: str, tmp_path) -> dict:
    case = load_case(CASES / f"{name}.yaml", [f"run.output={tmp_path}/{{name}}"])
    fields = run_case(case, progress=False)
    return compare_with_mkm(open_fields(fields), t_start=case.run.stats_start)[2]


@pytest.mark.slow
@pytest.mark.timeout(3 * 3600)
@pytest.mark.parametrize("model", ["smagorinsky", "wale", "dynamic"])
def test_les_re180_with_a_subgrid_model_stays_near_mkm(model, tmp_path):
    deviation = _run(f"les_re180_{model}", tmp_path)
    assert abs(deviation["re_tau"] / 180.0 - 1.0) < 0.10, deviation
    assert deviation["U"] < 2.5, deviation


@pytest.mark.slow
@pytest.mark.timeout(3 * 3600)
def test_les_re180_control_without_model_reaches_a_turbulent_state(tmp_path):
    deviation = _run("les_re180_nomodel", tmp_path)
    assert abs(deviation["re_tau"] / 180.0 - 1.0) < 0.25, deviation


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_les_with_the_shipped_learned_closure_holds_the_filtered_dns_statistics(tmp_path):
    """The closure issue's bar on the dataset grid: 200 h/u_tau from the developed field, against
    fdns180; each rms and uv+ error below the best classical LES's or the no-model run's
    (validation/les_learned_re180/README.md: v_rms+ WALE C_w = 0.5, w_rms+ no model, u_rms+
    Smagorinsky, uv+ dynamic Smagorinsky)."""
    from surrogate.evaluation import load_reference, run_statistics
    from surrogate.evaluation.metrics import run_metrics

    case = load_case(CASES / "les_re180_learned.yaml", [f"run.output={tmp_path}/{{name}}"])
    fields = open_fields(run_case(case, progress=False))
    metrics = run_metrics(run_statistics(fields, t_start=case.run.stats_start), load_reference("fdns180"))
    assert abs(metrics["re_tau_error"]) < 0.05, metrics
    assert metrics["U_max_abs"] < 1.0, metrics
    bar = {"u_rms_l2": 0.72, "v_rms_l2": 0.043, "w_rms_l2": 0.041, "uv_l2": 0.552}
    assert all(metrics[key] < value for key, value in bar.items()), metrics
