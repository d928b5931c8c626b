"""Compare a DNS run of ``cases/dns_re180.yaml`` with Moser, Kim & Mansour (1999).

Run the case, then this script::

    surrogate dns cases/dns_re180.yaml
    python validation/dns_re180.py runs/dns_re180/fields.nc --t-start 15

It prints Re_tau reached and the largest deviations of U+ and the rms profiles, and writes
``validation/dns_re180/profiles.png`` and ``validation/dns_re180/summary.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from surrogate.fields import open_fields
from surrogate.report import plot_profiles_vs_reference
from surrogate.evaluation import compare_with_mkm

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fields", type=Path, help="fields.nc of the run")
    parser.add_argument("--t-start", type=float, default=15.0, help="start of the averaging window (h/u_tau)")
    parser.add_argument("--out", type=Path, default=HERE / "dns_re180")
    args = parser.parse_args()

    ds = open_fields(args.fields)
    profiles, reference, deviation = compare_with_mkm(ds, t_start=args.t_start)
    args.out.mkdir(parents=True, exist_ok=True)
    label = f"surrogate DNS {ds.sizes['x']}x{ds.sizes['y']}x{ds.sizes['z']}, Re_tau = {deviation['re_tau']:.1f}"
    plot_profiles_vs_reference(
        {label: profiles}, reference, args.out / "profiles.png", title="Turbulent channel, Re_tau = 180"
    )
    summary = {"fields": str(args.fields), "reference": reference.attrs["source"], **deviation}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"window t = {deviation['t_start']:g} .. {deviation['t_end']:g} h/u_tau, {deviation['n_snapshots']} snapshots")
    print(f"Re_tau reached: {deviation['re_tau']:.2f} (MKM {reference.attrs['re_tau_measured']})")
    for name in ("U", "u_rms", "v_rms", "w_rms", "uv"):
        print(f"max |d {name}+| = {deviation[name]:.3f}  ({100 * deviation[name + '_rel']:.1f} % of the MKM peak)")


if __name__ == "__main__":
    main()
