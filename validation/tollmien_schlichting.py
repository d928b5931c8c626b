"""Grid convergence of the Tollmien–Schlichting growth rate (Re_c = 7500, alpha = 1).

Run: ``python validation/tollmien_schlichting.py`` — prints one row per grid.
"""

from surrogate.solver.tollmien_schlichting import tollmien_schlichting_growth

GRIDS = [(32, 64), (64, 128), (32, 256), (64, 256), (128, 256)]

if __name__ == "__main__":
    print(f"{'nx':>4} {'ny':>4} {'measured':>12} {'Orr-Sommerfeld':>15} {'error %':>8}")
    for nx, ny in GRIDS:
        r = tollmien_schlichting_growth(nx=nx, ny=ny, stretching=1.5)
        print(f"{nx:4d} {ny:4d} {r.measured:12.6e} {r.expected:15.6e} {100 * r.relative_error:+8.2f}", flush=True)
