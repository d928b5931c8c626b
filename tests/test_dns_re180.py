"""Turbulent channel flow at Re_tau = 180 against Moser, Kim & Mansour (1999) — a long run.

Runs ``cases/dns_re180.yaml`` (64 x 65 x 64 cells, 50 h/u_tau; 30-60 minutes on 2 CPU cores)
and compares the profiles averaged over its statistically steady window with MKM. The bounds
were set for a second-order finite-difference DNS at this resolution before the run; the
figures reached are recorded in validation/README.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from surrogate.config import load_case
from surrogate.fields import open_fields
from surrogate.simulation import run_case
from surrogate.evaluation import compare_with_mkm

CASE = Path(__file__).resolve().parents[1] / "cases" / "dns_re180.yaml"


@pytest.mark.slow
@pytest.mark.timeout(3 * 3600)
def test_dns_re180_matches_moser_kim_mansour(tmp_path):
    case = load_case(CASE, [f"run.output={tmp_path}/{{name}}"])
    fields = run_case(case, progress=False)
    _, _, deviation = compare_with_mkm(open_fields(fields), t_start=case.run.stats_start)
    assert abs(deviation["re_tau"] / 180.0 - 1.0) < 0.05, deviation
    assert deviation["U"] < 1.0, deviation  # U+ within one wall unit everywhere
    for name in ("u_rms", "v_rms", "w_rms"):
        assert deviation[f"{name}_rel"] < 0.15, (name, deviation)
