"""Write the shipped filtered-DNS reference ``fdns180`` (``surrogate/resources/reference/fdns180.nc``).

The test trajectory of ``validation/data/dataset_re180`` (box-filtered DNS at Re_tau = 180 on
16 x 33 x 12 cells over 2 pi x 2 x pi, made by ``surrogate dataset cases/dataset_re180.yaml``),
every 5th snapshot (41 snapshots, t = 20..60 h/u_tau every 1 h/u_tau), ``u, v, w`` in float32
with zlib. Its first snapshot is the initial window of the shipped Re_tau = 180 models; its
statistics are ``surrogate validate RUN --reference fdns180``. Against all 201 snapshots the
subsample's profiles differ by at most 1.3 % (relative L2 of uv+) and its Re_tau by 0.06 %::

    python validation/shipped_data/make_fdns180.py
"""

from __future__ import annotations

from pathlib import Path

from surrogate.fields import open_fields
from surrogate.references import default_reference_dir

SOURCE = Path(__file__).resolve().parents[1] / "data" / "dataset_re180" / "trajectory_001.nc"
EVERY = 5


def main() -> None:
    full = open_fields(SOURCE)
    sub = full[["u", "v", "w"]].isel(time=slice(None, None, EVERY)).load()
    sub.attrs = dict(full.attrs)
    for key in ("source_file", "complete"):
        sub.attrs.pop(key, None)
    sub.attrs["description"] = (
        f"Box-filtered DNS at Re_tau = 180 on 16 x 33 x 12 cells (2 pi x 2 x pi), test trajectory of "
        f"dataset_re180 ({full.attrs.get('dataset_hash', '')}), every {EVERY}th snapshot"
    )
    out = default_reference_dir() / "fdns180.nc"
    tmp = out.with_name(out.name + ".tmp")
    encoding = {name: {"zlib": True, "complevel": 4, "dtype": "float32"} for name in ("u", "v", "w")}
    sub.to_netcdf(tmp, encoding=encoding)
    tmp.replace(out)
    print(f"{out}: {sub.sizes['time']} snapshots, t = {float(sub.time[0]):g}..{float(sub.time[-1]):g}, "
          f"{out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
