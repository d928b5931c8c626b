"""The dynamic Smagorinsky coefficient on developed Re_tau = 180 fields: its sensitivity to alpha^2 and the test filter.

Run from the repository root (seconds)::

    python validation/dynamic_coefficient_re180.py

For the last 20 training snapshots of the shipped filtered-DNS dataset (validation/data/dataset_re180,
16 x 33 x 12 on 2 pi x 2 x pi), the plane coefficient C(y) of the Germano-Lilly model
(surrogate.solver.sgs.DynamicSmagorinsky, unclipped) is computed for alpha^2 = 2^(4/3) (the ratio-2
x-z filter measured by the cube root of its volume), 6^(2/3) (the width with the weights' second
moment), 4 (Germano et al. 1991) and for the x-z and the 3-D test filter, and averaged over the
snapshots. It prints sqrt(C) (the equivalent Smagorinsky constant, clipped at 0) at the centreline,
at y+ ~ 30 and at y+ ~ 100, and the mean ratio of the SGS to the resolved dissipation-like term
<nu_t |S|^2> / <nu |S|^2> over the channel.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from surrogate.fields import grid_of, open_fields
from surrogate.solver import ChannelSolver
from surrogate.solver.sgs import DynamicSmagorinsky, strain_rate_magnitude, velocity_gradient

DATA = Path(__file__).resolve().parent / "data" / "dataset_re180" / "trajectory_000.nc"
SETTINGS = [(2 ** (4 / 3), "xz"), (6 ** (2 / 3), "xz"), (4.0, "xz"), (4.0, "xyz")]


def main() -> None:
    ds = open_fields(DATA)
    grid = grid_of(ds)
    solver = ChannelSolver(grid, float(ds.attrs["re_tau"]), "constant_flow_rate")
    snapshots = range(ds.sizes["time"] - 20, ds.sizes["time"])
    y_plus = np.minimum(grid.y, 2 - grid.y) * solver.re_tau
    rows = {j: int(np.argmin(np.abs(y_plus[: grid.ny // 2 + 1] - target))) for j, target in (("30", 30.0), ("100", 100.0))}
    centre = grid.ny // 2
    print(f"{len(snapshots)} snapshots of {DATA.name}, {grid.nx} x {grid.ny} x {grid.nz}")
    print("| alpha^2 | test filter | sqrt(C) centreline | sqrt(C) y+~30 | sqrt(C) y+~100 | <nu_t S^2> / <nu S^2> |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for alpha_squared, test_filter in SETTINGS:
        model = DynamicSmagorinsky(alpha_squared=alpha_squared, clip=True, test_filter=test_filter)
        coefficients, ratios = [], []
        for index in snapshots:
            state = solver.from_dataset(ds.isel(time=[index]))
            with torch.no_grad():
                nu_t = model.eddy_viscosity(solver.ops, state.u, state.v, state.w, solver.nu)
                magnitude = strain_rate_magnitude(velocity_gradient(solver.ops, state.u, state.v, state.w))
            coefficients.append(model.last_unclipped_coefficient.numpy())
            ratios.append(float((nu_t * magnitude**2).mean() / (solver.nu * magnitude**2).mean()))
        c = np.mean(coefficients, axis=0)
        root = lambda j: math.sqrt(max(c[j], 0.0))  # noqa: E731
        print(f"| {alpha_squared:.3f} | {test_filter} | {root(centre):.3f} | {root(rows['30']):.3f} | {root(rows['100']):.3f} | "
              f"{np.mean(ratios):.3f} |")


if __name__ == "__main__":
    main()
