"""Training samples from a dataset folder: windows of consecutive snapshots.

:class:`WindowDataset` serves ``(history, target)`` pairs for a split of a dataset made by
``surrogate dataset`` (see :mod:`surrogate.data.generate`):

* ``history``: ``n_history`` consecutive snapshots, shape ``(n_history, n_var, nx, ny, nz)``;
* ``target``: the ``n_target`` snapshots that follow, shape ``(n_target, n_var, nx, ny, nz)``.

Windows never cross the boundary of a split range, so a test window never contains a training
snapshot. Data are read lazily: each sample reads only its own snapshots from the chunked files
(one snapshot per chunk) through xarray's lazily indexed backend arrays, so datasets larger than
memory work; ``in_memory=True`` loads the split's snapshots once for speed when they fit.
File handles are opened on first use in each process, so the dataset works with
``torch.utils.data.DataLoader(num_workers > 0)``.

Augmentation (``augment``) applies exact symmetries of the channel to each window, drawn anew
for every (epoch, window) from ``seed`` (so a resumed run draws the same ones; see
:meth:`WindowDataset.set_epoch`), in physical units before normalisation:

* ``reflect_y``: reflection about the centreplane, ``y -> 2 - y`` with ``v -> -v`` (the grid's
  wall-normal stretching is symmetric), with probability 1/2;
* ``reflect_z``: ``z -> -z`` with ``w -> -w``, with probability 1/2;
* ``shift``: a shift by a random whole number of cells in x and in z (periodic).
"""

from __future__ import annotations

import os
from os import PathLike
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
import xarray as xr

from ..grid import ChannelGrid
from .manifest import read_manifest
from .normalization import Normalization

__all__ = ["AUGMENTATIONS", "WindowDataset", "WindowError"]


class WindowError(ValueError):
    """The windows asked for do not exist in the dataset (split, history length, variables, start)."""

#: The symmetries ``WindowDataset(augment=...)`` accepts.
AUGMENTATIONS = ("reflect_y", "reflect_z", "shift")


class WindowDataset(torch.utils.data.Dataset):
    """``(history, target)`` windows of a dataset split, normalised.

    Parameters
    ----------
    manifest
        The dataset's ``manifest.yaml`` or its folder.
    split
        ``"train"`` or ``"test"`` (any split the manifest lists).
    n_history, n_target
        Snapshots in the input window and after it (``>= 1``).
    stride
        Snapshots between the starts of consecutive windows.
    variables
        Channels, in order; default ``("u", "v", "w")``.
    normalization
        ``"plane"`` (per-variable, per-y-plane mean and std of the training split),
        ``"component"`` (one mean and std per variable) or ``None`` (physical units, u_tau).
    in_memory
        Load the split's snapshots once instead of reading each sample from disk.
    dtype
        Floating type of the returned tensors.
    augment
        Symmetries to draw for each window (see the module docstring), any of
        :data:`AUGMENTATIONS`.
    seed
        Seed of the augmentation draws.

    Raises
    ------
    ManifestError
        If the manifest is missing or inconsistent.
    ValueError
        For an unknown split or variable, or windows longer than every split range.
    """

    def __init__(
        self,
        manifest: str | PathLike[str],
        split: str = "train",
        *,
        n_history: int = 1,
        n_target: int = 1,
        stride: int = 1,
        variables: Sequence[str] = ("u", "v", "w"),
        normalization: Literal["plane", "component"] | None = "plane",
        in_memory: bool = False,
        dtype: torch.dtype = torch.float32,
        augment: Sequence[str] = (),
        seed: int = 0,
    ) -> None:
        info = read_manifest(manifest)
        unknown_aug = [name for name in augment if name not in AUGMENTATIONS]
        if unknown_aug:
            raise WindowError(f"augment: unknown symmetries {unknown_aug}; expected any of {list(AUGMENTATIONS)}")
        if split not in info["splits"]:
            raise WindowError(f"split {split!r} is not in the dataset {info['folder']}; it has {', '.join(info['splits'])}")
        for name, value in (("n_history", n_history), ("n_target", n_target), ("stride", stride)):
            if value < 1:
                raise WindowError(f"{name} must be >= 1, got {value}")
        unknown = [name for name in variables if name not in info["variables"]]
        if unknown:
            raise WindowError(f"variables {unknown} are not in the dataset; it has {info['variables']}")
        self.manifest = info
        self.split = split
        self.n_history, self.n_target, self.stride = n_history, n_target, stride
        self.variables = tuple(variables)
        self.dtype = dtype
        self.augment, self.seed, self.epoch = tuple(augment), seed, 0
        self.grid = ChannelGrid(**info["grid"])
        self.dt = float(info["dt_snapshot"])
        self.re_tau = float(info["re_tau"])
        stats = Normalization.load(info["folder"] / info["normalization"]).select(self.variables)
        self.normalization = None if normalization is None else stats.with_mode(normalization)

        window = n_history + n_target
        self._files = [info["folder"] / segment["file"] for segment in info["splits"][split]]
        self._segments = [(segment["start"], segment["stop"]) for segment in info["splits"][split]]
        self._windows = [
            (i, start)
            for i, (first, stop) in enumerate(self._segments)
            for start in range(first, stop - window + 1, stride)
        ]
        if not self._windows:
            longest = max(stop - first for first, stop in self._segments) if self._segments else 0
            raise WindowError(
                f"split {split!r} has no window of {window} snapshots (n_history {n_history} + n_target {n_target}); "
                f"its longest range holds {longest}"
            )
        self._handles: dict[int, xr.Dataset] = {}
        self._pid = os.getpid()
        self._memory: list[np.ndarray] | None = None
        if in_memory:
            self._memory = [self._read(i, first, stop) for i, (first, stop) in enumerate(self._segments)]

    # ------------------------------------------------------------------ reading
    def _dataset(self, i: int) -> xr.Dataset:
        if os.getpid() != self._pid:  # a forked DataLoader worker: open its own handles
            self._handles, self._pid = {}, os.getpid()
        if i not in self._handles:
            self._handles[i] = xr.open_dataset(self._files[i], cache=False)
        return self._handles[i]

    def _read(self, i: int, start: int, stop: int) -> np.ndarray:
        """Snapshots ``start <= n < stop`` of file ``i``, shape ``(n, n_var, nx, ny, nz)``."""
        ds = self._dataset(i)
        return np.stack([ds[name][start:stop].values for name in self.variables], axis=1)

    def window(self, index: int) -> np.ndarray:
        """The raw snapshots of window ``index`` in physical units, shape ``(n_history + n_target, n_var, nx, ny, nz)``."""
        i, start = self._windows[index]
        stop = start + self.n_history + self.n_target
        if self._memory is not None:
            first = self._segments[i][0]
            return self._memory[i][start - first : stop - first]
        return self._read(i, start, stop)

    def times(self, index: int) -> np.ndarray:
        """Times (h/u_tau) of the snapshots of window ``index``, shape ``(n_history + n_target,)``."""
        i, start = self._windows[index]
        return np.asarray(self._dataset(i)["time"][start : start + self.n_history + self.n_target].values, dtype=np.float64)

    def source(self, index: int) -> tuple[Path, int]:
        """The file of window ``index`` and the index of its first snapshot in that file."""
        i, start = self._windows[index]
        return self._files[i], start

    def __len__(self) -> int:
        return len(self._windows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        data = torch.as_tensor(self.window(index % len(self))).to(self.dtype)
        if self.augment:
            data = self._symmetry(data, index % len(self))
        if self.normalization is not None:
            data = self.normalization.normalize(data)
        return data[: self.n_history], data[self.n_history :]

    # ------------------------------------------------------------------ augmentation
    def set_epoch(self, epoch: int) -> None:
        """Draw the augmentations of epoch ``epoch`` (each window's draw depends on the epoch and its index)."""
        self.epoch = epoch

    def _symmetry(self, data: torch.Tensor, index: int) -> torch.Tensor:
        """``data`` ``(time, n_var, nx, ny, nz)`` in physical units under this window's drawn symmetries."""
        rng = np.random.default_rng((self.seed, self.epoch, index))
        flips = rng.integers(0, 2, size=2)
        shifts = (int(rng.integers(0, self.grid.nx)), int(rng.integers(0, self.grid.nz)))
        sign = torch.ones(len(self.variables), dtype=data.dtype)
        if "reflect_y" in self.augment and flips[0]:
            data = data.flip(-2)
            if "v" in self.variables:
                sign[self.variables.index("v")] *= -1
        if "reflect_z" in self.augment and flips[1]:
            data = data.flip(-1).roll(1, dims=-1)  # z_k -> z_{-k}: cell centres at k dz
            if "w" in self.variables:
                sign[self.variables.index("w")] *= -1
        if "shift" in self.augment:
            data = data.roll(shifts, dims=(-3, -1))
        return data * sign[:, None, None, None]

    # ------------------------------------------------------------------ helpers
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Physical units → model units (identity without normalisation); ``x`` is ``(..., n_var, nx, ny, nz)``."""
        return x if self.normalization is None else self.normalization.normalize(x)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Model units → physical units (u_tau); the inverse of :meth:`normalize`."""
        return x if self.normalization is None else self.normalization.denormalize(x)

    def coordinates(self, device: Any = None, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        """Cell-centre coordinates in h: ``{"x": (nx,), "y": (ny,), "z": (nz,)}``."""
        return {
            name: torch.as_tensor(np.asarray(getattr(self.grid, name)), device=device, dtype=dtype or self.dtype)
            for name in ("x", "y", "z")
        }

    def close(self) -> None:
        """Close the open files."""
        for ds in self._handles.values():
            ds.close()
        self._handles.clear()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state

    def __repr__(self) -> str:
        return (
            f"WindowDataset({self.manifest['name']!r}, split={self.split!r}, windows={len(self)}, "
            f"n_history={self.n_history}, n_target={self.n_target}, grid={self.grid.shape}, "
            f"normalization={None if self.normalization is None else self.normalization.mode!r})"
        )
