"""Making a filtered-DNS dataset: ``surrogate dataset CASE``.

:func:`generate_dataset` runs (or reads) the DNS trajectories of a :class:`DatasetCase`, filters
their snapshots every ``dt_snapshot`` onto the coarse grid and writes, in the dataset folder,

* ``trajectory_000.nc``, ``trajectory_001.nc``, ... — one field file per trajectory (the field
  Dataset conventions of :mod:`surrogate.fields`, chunked one snapshot per chunk, so reading a
  training window touches only its snapshots);
* ``normalization.nc`` — per-variable, per-y-plane mean and standard deviation over the training
  split (see :mod:`surrogate.data.normalization`);
* ``manifest.yaml`` — the files, their snapshot counts and times, the train/test split (snapshot
  ranges per file), the grid, and the dataset case that made them with its hash;
* ``dns/trajectory_000/`` ... — the DNS run folders when the source is a DNS case;
* ``dataset.yaml`` — the dataset case as run.

The manifest is written last and atomically: a folder without it is unfinished. Running the same
case again continues where it stopped: finished DNS runs and trajectory files are kept, an
interrupted DNS resumes from its checkpoint, an interrupted trajectory file continues after its
last filtered snapshot. A different case in the same folder is refused unless ``overwrite``.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import os
import shutil
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr
import yaml
from tqdm.auto import tqdm

from ..config import ConfigError, config_hash, dump_config, load_case
from ..fields import FieldError, FieldWriter, check_fields, open_fields, provenance_attrs
from ..filtering import filter_to_grid
from ..grid import ChannelGrid
from ..config import DatasetCase
from .manifest import MANIFEST_NAME, NORMALIZATION_NAME, write_manifest
from .normalization import compute_normalization

log = logging.getLogger(__name__)

__all__ = ["DatasetFolderError", "generate_dataset", "select_snapshots"]

CASE_NAME = "dataset.yaml"
_TIME_RTOL = 1e-6


class DatasetFolderError(RuntimeError):
    """The dataset folder holds a dataset made by another case."""


def generate_dataset(
    case: DatasetCase,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Make (or finish) the dataset of ``case`` and return the path of its ``manifest.yaml``.

    Parameters
    ----------
    case
        The dataset case (see :mod:`surrogate.config.dataset`).
    overwrite
        Delete what the folder holds from an earlier dataset and start afresh.
    progress
        Show progress bars (DNS runs and filtering).

    Raises
    ------
    DatasetFolderError
        If the folder holds a dataset of a different case and ``overwrite`` is false.
    FieldError, ValueError
        If a source file is not a field file, its box differs from the coarse grid's, or its
        snapshots do not contain a run of at least two spaced ``dt_snapshot`` apart after
        ``t_start``.
    """
    folder = case.output_dir()
    digest = config_hash(case)
    _prepare_folder(folder, case, digest, overwrite)
    manifest = folder / MANIFEST_NAME
    if manifest.exists():
        log.info(f"{case.name}: dataset already complete in {folder}")
        return manifest

    trajectories = []
    for index in range(case.source.n_trajectories):
        source = _source_fields(case, index, folder, progress)
        path = folder / f"trajectory_{index:03d}.nc"
        _filter_trajectory(case, index, source, path, digest, progress)
        with netCDF4.Dataset(path) as nc:
            times = np.asarray(nc["time"][:], dtype=np.float64)
        trajectories.append(
            {
                "file": path.name,
                "snapshots": int(times.size),
                "t_first": float(times[0]),
                "t_last": float(times[-1]),
                "source": os.path.relpath(source, folder),
            }
        )

    splits = _splits(case, trajectories)
    with open_fields(folder / trajectories[0]["file"]) as first:
        grid, re_tau = check_fields(first), float(first.attrs["re_tau"])
    variables = ["u", "v", "w"] + (["p"] if case.pressure else [])
    norm = compute_normalization([(folder / s["file"], s["start"], s["stop"]) for s in splits["train"]], variables)
    norm.save(folder / NORMALIZATION_NAME)
    write_manifest(
        manifest,
        {
            "name": case.name,
            "description": case.description,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "dataset_hash": digest,
            "re_tau": re_tau,
            "grid": dataclasses.asdict(grid),
            "dt_snapshot": case.dt_snapshot,
            "variables": variables,
            "normalization": NORMALIZATION_NAME,
            "trajectories": trajectories,
            "splits": splits,
            "case": dump_config(case),
        },
    )
    n_train = sum(s["stop"] - s["start"] for s in splits["train"])
    n_test = sum(s["stop"] - s["start"] for s in splits["test"])
    log.info(f"{case.name}: {len(trajectories)} trajectories, {n_train} training and {n_test} test snapshots in {folder}")
    return manifest


# ---------------------------------------------------------------------------- the folder


def _prepare_folder(folder: Path, case: DatasetCase, digest: str, overwrite: bool) -> None:
    """Check that the folder is empty or holds this case's dataset; clear it on ``overwrite``."""
    record = folder / CASE_NAME
    if overwrite and folder.exists():
        for item in folder.iterdir():
            if item.name == "dns" or item.name in (MANIFEST_NAME, NORMALIZATION_NAME, CASE_NAME) or item.name.startswith("trajectory_"):
                shutil.rmtree(item) if item.is_dir() else item.unlink()
    elif record.exists():
        stored = yaml.safe_load(record.read_text()) or {}
        if stored.get("dataset_hash") != digest:
            raise DatasetFolderError(
                f"{folder} holds a dataset made by another case ({stored.get('name')!r}, hash "
                f"{stored.get('dataset_hash')}; this case has hash {digest}); start over with --overwrite "
                "or set output to another folder"
            )
    folder.mkdir(parents=True, exist_ok=True)
    record.write_text(yaml.safe_dump({"dataset_hash": digest, **dump_config(case)}, sort_keys=False))


# ---------------------------------------------------------------------------- DNS sources


def _source_fields(case: DatasetCase, index: int, folder: Path, progress: bool) -> Path:
    """The finished DNS field file of trajectory ``index``, running (or resuming) the DNS if needed."""
    from ..simulation import run_case

    if case.source.fields:
        path = Path(case.source.fields[index])
        if not path.exists():
            raise FileNotFoundError(f"source field file {path} (trajectory {index}) does not exist")
        return path
    run_folder = folder / "dns" / f"trajectory_{index:03d}"
    dns = load_case(
        case.source.case,
        [
            *case.source.overrides,
            f"initial.seed={case.source.seed + index}",
            f"run.snapshot_interval={case.dt_snapshot!r}",
            f"run.output={run_folder}",
        ],
    )
    if dns.sgs is not None:
        raise ConfigError(f"source.case {case.source.case} is an LES case (it has an 'sgs' section); a dataset needs a DNS")
    if dns.initial.kind == "file" and case.source.trajectories > 1:
        raise ConfigError(
            f"source.case {case.source.case} starts from the file {dns.initial.path}, so its {case.source.trajectories} "
            "trajectories would be identical; use trajectories: 1 or an initial kind drawn from initial.seed"
        )
    fields = run_folder / "fields.nc"
    if fields.exists():
        return fields
    resume = (run_folder / "checkpoint.pt").exists()
    log.info(f"{case.name}: {'resuming' if resume else 'running'} DNS trajectory {index} in {run_folder}")
    return run_case(dns, resume=resume, overwrite=not resume, progress=progress)


def select_snapshots(times: np.ndarray, t_start: float, dt: float) -> np.ndarray:
    """Indices of the snapshots ``t_0, t_0 + dt, t_0 + 2 dt, ...`` from the first one at or after ``t_start``.

    Parameters
    ----------
    times
        Snapshot times of a field file in h/u_tau, increasing, shape ``(nt,)``.
    t_start, dt
        First time wanted and spacing in h/u_tau; a snapshot matches ``t_0 + k dt`` to within
        ``1e-6 dt``.

    Raises
    ------
    ValueError
        If fewer than two snapshots match, or a snapshot of the sequence is missing before the
        last one found (the spacing of the file does not divide ``dt``).
    """
    times = np.asarray(times, dtype=np.float64)
    after = np.flatnonzero(times >= t_start - _TIME_RTOL * dt)
    if after.size == 0:
        raise ValueError(f"no snapshot at or after t_start = {t_start} (the file ends at t = {times[-1]:.6g})")
    t0 = times[after[0]]
    steps = (times[after] - t0) / dt
    on_grid = np.abs(steps - np.round(steps)) < _TIME_RTOL
    picked = after[on_grid]
    expected = np.arange(picked.size)
    if picked.size < 2 or not np.array_equal(np.round(steps[on_grid]).astype(int), expected):
        spacing = np.diff(times[after]).min() if after.size > 1 else float("nan")
        raise ValueError(
            f"the snapshots after t = {t0:.6g} (spacing {spacing:.6g}) do not give a run of at least two "
            f"snapshots every dt_snapshot = {dt}; dt_snapshot must be a multiple of the file's snapshot spacing"
        )
    return picked


# ---------------------------------------------------------------------------- filtering


def _coarse_grid(case: DatasetCase, fine: ChannelGrid) -> ChannelGrid:
    spec = case.coarse_grid
    for name in ("lx", "lz"):
        given, box = getattr(spec, name), getattr(fine, name)
        if given is not None and not math.isclose(given, box, rel_tol=1e-12):
            raise ValueError(f"coarse_grid.{name} = {given} differs from the DNS box {name} = {box}; filtering needs the same box")
    return ChannelGrid(spec.nx, spec.ny, spec.nz, lx=fine.lx, lz=fine.lz, stretching=spec.stretching)


def _filter_trajectory(case: DatasetCase, index: int, source: Path, path: Path, digest: str, progress: bool) -> None:
    """Filter the selected snapshots of ``source`` into ``path``, continuing an unfinished file."""
    if path.exists():
        return
    dns = open_fields(source)
    if case.pressure and "p" not in dns:
        raise FieldError(f"{source} has no pressure 'p', but the dataset case asks for pressure: true")
    fine = check_fields(dns, require_time=True)
    coarse = _coarse_grid(case, fine)
    picked = select_snapshots(dns["time"].values, case.source.t_start, case.dt_snapshot)
    names = ["u", "v", "w"] + (["p"] if case.pressure else [])
    dns = dns[names]

    def filtered(k: int) -> xr.Dataset:
        return filter_to_grid(
            dns.isel(time=[k]), coarse, horizontal=case.filter.horizontal, wall_normal=case.filter.wall_normal
        ).isel(time=0)

    partial = Path(str(path) + ".partial")
    if partial.exists():
        writer = FieldWriter.resume(path, math.inf)
    else:
        first = filtered(picked[0])
        attrs = provenance_attrs(first.attrs)
        attrs.update(dataset=case.name, dataset_hash=digest, trajectory=index, source_file=str(source))
        writer = FieldWriter(path, coarse, re_tau=float(dns.attrs["re_tau"]), dtype=case.dtype, pressure=case.pressure, attrs=attrs)
    done = writer.n_snapshots
    bar = tqdm(total=picked.size, initial=done, disable=not progress, unit="snapshot", desc=f"filter trajectory {index}")
    try:
        for k in picked[done:]:
            snap = filtered(k)
            writer.append(float(snap["time"]), *(snap[name].values for name in names))
            bar.update(1)
    except BaseException:
        writer.close_partial()
        raise
    finally:
        bar.close()
        dns.close()
    writer.finalize()


# ---------------------------------------------------------------------------- splits


def _splits(case: DatasetCase, trajectories: list[dict]) -> dict[str, list[dict]]:
    """Snapshot ranges ``[start, stop)`` per file for the train and test splits."""
    fraction = case.split.test
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    if case.split.by == "trajectory":
        n = len(trajectories)
        n_test = math.ceil(fraction * n) if fraction > 0 else 0
        if n_test >= n:
            raise ConfigError(
                f"split.by 'trajectory' with test = {fraction} leaves no training trajectory out of {n}; "
                "use more trajectories or split.by: time"
            )
        for i, item in enumerate(trajectories):
            splits["test" if i >= n - n_test else "train"].append({"file": item["file"], "start": 0, "stop": item["snapshots"]})
        return splits
    for item in trajectories:
        cut = item["snapshots"] - round(fraction * item["snapshots"])
        splits["train"].append({"file": item["file"], "start": 0, "stop": cut})
        if cut < item["snapshots"]:
            splits["test"].append({"file": item["file"], "start": cut, "stop": item["snapshots"]})
    return splits
