"""Shared fixtures: small synthetic filtered-DNS datasets."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from surrogate.data import generate_dataset, load_dataset_case
from surrogate.fields import make_fields, write_fields
from surrogate.grid import ChannelGrid

SMALL_GRID = ChannelGrid(8, 9, 6, lx=2.0, lz=1.0, stretching=1.5)


@contextmanager
def logged_messages() -> Iterator[list[str]]:
    """The messages of the ``surrogate`` loggers (INFO and above) while the block runs."""
    messages: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("surrogate")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def advected_dataset(folder: Path, trajectories: int = 2, snapshots: int = 12, seed: int = 0) -> Path:
    """A dataset whose states move one cell in +x per snapshot: ``q_{n+1} = roll(q_n, 1, x)``.

    The mean profile ``10 y (2 - y)`` carries random fluctuations; the next state is an exact,
    learnable function of the current one. Returns the manifest path.
    """
    rng = np.random.default_rng(seed)
    grid = SMALL_GRID
    y = grid.y[None, :, None]
    sources = []
    for i in range(trajectories):
        base = rng.normal(size=(3,) + grid.shape)
        base[0] += 10.0 * y * (2.0 - y)
        states = np.stack([np.roll(base, n, axis=1) for n in range(snapshots)])  # (nt, 3, nx, ny, nz)
        ds = make_fields(grid, *states.transpose(1, 0, 2, 3, 4), re_tau=100.0, time=0.1 * np.arange(snapshots))
        sources.append(str(write_fields(ds, folder / f"source_{i}.nc")))
    case = load_dataset_case(
        {
            "name": "advected",
            "source": {"fields": sources},
            "coarse_grid": {"nx": grid.nx, "ny": grid.ny, "nz": grid.nz, "stretching": grid.stretching},
            "filter": {"horizontal": "spectral", "wall_normal": "average"},
            "dt_snapshot": 0.1,
            "split": {"test": 0.5 if trajectories > 1 else 0.25, "by": "trajectory" if trajectories > 1 else "time"},
            "output": str(folder / "dataset"),
        }
    )
    return generate_dataset(case, progress=False)


@pytest.fixture()
def advected(tmp_path) -> Path:
    """Manifest of a two-trajectory advected dataset on an 8 x 9 x 6 grid."""
    return advected_dataset(tmp_path)
