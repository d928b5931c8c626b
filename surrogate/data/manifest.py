"""The manifest of a dataset folder: which files, which snapshots belong to which split.

``manifest.yaml`` is a YAML mapping with at least::

    name: dataset_quick
    re_tau: 180.0
    dt_snapshot: 0.25                       # h/u_tau between consecutive snapshots
    grid: {nx: 16, ny: 17, nz: 16, lx: 6.28, lz: 3.14, stretching: 2.0}
    variables: [u, v, w]
    normalization: normalization.nc
    trajectories:
      - {file: trajectory_000.nc, snapshots: 41, t_first: 2.0, t_last: 12.0, source: ...}
    splits:
      train: [{file: trajectory_000.nc, start: 0, stop: 41}]   # snapshot index ranges [start, stop)
      test:  [{file: trajectory_001.nc, start: 0, stop: 41}]

File names are relative to the manifest's folder.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from ..atomic import atomic_write
from ..config import read_yaml

__all__ = ["MANIFEST_NAME", "NORMALIZATION_NAME", "ManifestError", "read_manifest", "write_manifest"]

MANIFEST_NAME = "manifest.yaml"
NORMALIZATION_NAME = "normalization.nc"
_REQUIRED = ("name", "re_tau", "dt_snapshot", "grid", "variables", "normalization", "trajectories", "splits")


class ManifestError(ValueError):
    """A manifest is missing, incomplete or names files that are not there."""


def write_manifest(path: str | PathLike[str], manifest: dict[str, Any]) -> Path:
    """Write ``manifest`` as YAML atomically (temporary file, fsync, rename)."""
    with atomic_write(path, "w", suffix=".partial") as handle:
        yaml.safe_dump(manifest, handle, sort_keys=False)
    return Path(path)


def read_manifest(path: str | PathLike[str]) -> dict[str, Any]:
    """Read and check a dataset manifest (a ``manifest.yaml`` or the folder holding one).

    Returns
    -------
    dict
        The manifest, with an added ``folder`` key (the :class:`~pathlib.Path` file names are
        relative to).

    Raises
    ------
    ManifestError
        If the file is missing (the dataset is unfinished), a required key is missing, a split
        names a file not among the trajectories or a snapshot range outside it, or a listed file
        does not exist.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.exists():
        raise ManifestError(
            f"{path} does not exist: not a dataset folder, or its generation has not finished "
            "(run 'surrogate dataset CASE' again to complete it)"
        )
    manifest = read_yaml(path, ManifestError)
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path}: expected a mapping, got {type(manifest).__name__}")
    missing = [key for key in _REQUIRED if key not in manifest]
    if missing:
        raise ManifestError(f"{path}: missing key(s) {', '.join(missing)} (a manifest needs {', '.join(_REQUIRED)})")
    folder = path.parent
    try:
        sizes = {item["file"]: int(item["snapshots"]) for item in manifest["trajectories"]}
        for name in list(sizes) + [manifest["normalization"]]:
            if not (folder / name).exists():
                raise ManifestError(f"{path} lists {name}, but {folder / name} does not exist")
        for split, segments in manifest["splits"].items():
            for segment in segments:
                size = sizes.get(segment["file"])
                if size is None:
                    raise ManifestError(f"{path}: split {split!r} names {segment['file']}, which is not among the trajectories")
                if not 0 <= segment["start"] < segment["stop"] <= size:
                    raise ManifestError(
                        f"{path}: split {split!r} range [{segment['start']}, {segment['stop']}) of {segment['file']} "
                        f"is outside its {size} snapshots"
                    )
    except ManifestError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ManifestError(
            f"{path}: malformed entry ({type(exc).__name__}: {exc}); expected trajectories as "
            "{file, snapshots} and splits as {name: [{file, start, stop}]}"
        ) from None
    manifest["folder"] = folder
    return manifest
