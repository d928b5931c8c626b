"""The Tollmien–Schlichting wave of plane Poiseuille flow grows at the Orr–Sommerfeld rate.

Re_c = U_c h / nu = 7500 and alpha = 1: Orszag (1971) gives c = 0.24989154 + 0.00223497 i, so the
amplitude grows as exp(alpha c_i t) with t in h / U_c.
"""

from __future__ import annotations

from surrogate.solver.tollmien_schlichting import tollmien_schlichting_growth

ORSZAG_GROWTH_RATE = 1.0 * 0.00223497


def test_tollmien_schlichting_growth_rate_matches_orr_sommerfeld_within_two_percent():
    result = tollmien_schlichting_growth(re_centre=7500.0, alpha=1.0, nx=64, ny=256, stretching=1.5)
    assert abs(result.expected - ORSZAG_GROWTH_RATE) < 1e-7
    assert abs(result.relative_error) < 0.02, (
        f"growth rate {result.measured:.6g} vs {result.expected:.6g} ({100 * result.relative_error:+.2f} %)"
    )
    assert result.final_divergence < 1e-10
