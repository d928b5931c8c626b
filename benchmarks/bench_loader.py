"""Throughput of the dataset loader against reading the same arrays with plain netCDF4 and h5py.

A dataset in the package's format (chunked netCDF, one snapshot per chunk) is made on the coarse
grid of the IFactFormer-m study, 32 x 33 x 16, from synthetic fields, and every training window
(``n_history`` snapshots plus one target, three velocity components, normalised per y-plane) is
read once in a shuffled order by

* ``WindowDataset`` reading lazily through xarray (the default),
* ``WindowDataset(in_memory=True)``,
* a plain loop over ``netCDF4.Dataset`` slices and the same normalisation (the baseline),
* the same loop over ``h5py.File`` slices (netCDF-4 files are HDF5 files).

    python benchmarks/bench_loader.py
    python benchmarks/bench_loader.py --snapshots 400 --history 4
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import h5py
import netCDF4
import numpy as np
import torch

from surrogate.data import WindowDataset, generate_dataset, load_dataset_case
from surrogate.fields import FieldWriter
from surrogate.grid import ChannelGrid

GRID = ChannelGrid(32, 33, 16, lx=4 * math.pi, lz=4 * math.pi / 3, stretching=2.0)
NAMES = ("u", "v", "w")


def make_dataset(folder: Path, trajectories: int, snapshots: int) -> Path:
    """Synthetic source files on the coarse grid, turned into a dataset by ``generate_dataset``."""
    rng = np.random.default_rng(0)
    sources = []
    for i in range(trajectories):
        path = folder / f"source_{i}.nc"
        with FieldWriter(path, GRID, re_tau=180.0, dtype="float32") as writer:
            for n in range(snapshots):
                writer.append(0.1 * n, *(rng.normal(size=GRID.shape) for _ in NAMES))
        sources.append(str(path))
    case = load_dataset_case(
        {
            "name": "bench",
            "source": {"fields": sources},
            "coarse_grid": {"nx": GRID.nx, "ny": GRID.ny, "nz": GRID.nz, "stretching": GRID.stretching},
            "filter": {"horizontal": "spectral", "wall_normal": "average"},
            "dt_snapshot": 0.1,
            "split": {"test": 0.0, "by": "time"},
            "output": str(folder / "dataset"),
        }
    )
    return generate_dataset(case, progress=False, echo=lambda _: None)


class PlainReader:
    """The baseline: open each file once, slice the window, stack, normalise."""

    def __init__(self, dataset: WindowDataset, opener) -> None:
        self.windows = dataset._windows
        self.files = [opener(path) for path in dataset._files]
        self.length = dataset.n_history + dataset.n_target
        norm = dataset.normalization
        self.mean = torch.as_tensor(norm.plane_mean[:, None, :, None], dtype=torch.float32)
        self.std = torch.as_tensor(norm.plane_std[:, None, :, None], dtype=torch.float32)
        self.n_history = dataset.n_history

    def __getitem__(self, index: int):
        i, start = self.windows[index]
        f = self.files[i]
        data = np.stack([f[name][start : start + self.length] for name in NAMES], axis=1)
        data = (torch.from_numpy(data) - self.mean) / self.std
        return data[: self.n_history], data[self.n_history :]


def samples_per_second(reader, order: np.ndarray) -> float:
    reader[int(order[0])]  # warm-up: open files, first read
    start = time.perf_counter()
    for index in order:
        reader[int(index)]
    return len(order) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trajectories", type=int, default=2)
    parser.add_argument("--snapshots", type=int, default=200, help="snapshots per trajectory")
    parser.add_argument("--history", type=int, default=1, help="n_history of each window")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = make_dataset(Path(tmp), args.trajectories, args.snapshots)
        lazy = WindowDataset(manifest, "train", n_history=args.history)
        order = np.random.default_rng(1).permutation(len(lazy))
        readers = {
            "netCDF4 (baseline)": PlainReader(lazy, lambda p: netCDF4.Dataset(p)),
            "h5py": PlainReader(lazy, lambda p: h5py.File(p, "r")),
            "WindowDataset (lazy)": lazy,
            "WindowDataset (in memory)": WindowDataset(manifest, "train", n_history=args.history, in_memory=True),
        }
        size = 3 * (args.history + 1) * math.prod(GRID.shape) * 4 / 2**20
        print(f"grid {GRID.nx}x{GRID.ny}x{GRID.nz}, {len(lazy)} windows of {args.history}+1 snapshots "
              f"({size:.2f} MiB each, float32), torch {torch.__version__}, {torch.get_num_threads()} threads")
        print(f"{'reader':>28} {'samples/s':>10} {'vs netCDF4':>11}")
        baseline = None
        for label, reader in readers.items():
            rate = samples_per_second(reader, order)
            baseline = baseline or rate
            print(f"{label:>28} {rate:10.1f} {rate / baseline:10.2f}x", flush=True)


if __name__ == "__main__":
    main()
