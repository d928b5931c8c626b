"""``surrogate run CASE``: the whole study — data, LES baselines, surrogates, rollouts, report.

The stages of a study case (:mod:`surrogate.config.study`), in order:

``dataset``
    The filtered-DNS dataset: its DNS runs and the filtering (:func:`surrogate.data.generate_dataset`),
    or an existing dataset folder.
``les/<model>``
    One LES per subgrid model on the dataset's coarse grid and box (:func:`surrogate.simulation.run_case`).
``train/<label>``, ``rollout/<label>``
    Each surrogate trained on the dataset (:func:`surrogate.training.train`) and rolled out from
    the first window of the rollout split (:func:`surrogate.rollout.rollout_case`).
``report``
    The LES (statistics over their time after ``les.stats_start``) and the rollouts (all their states) against
    each reference (:func:`surrogate.evaluation.evaluate`): ``report/<reference>/report.md`` and
    ``.html`` with figures, and the summary ``summary.md`` / ``summary.csv`` of the first
    reference, with each method's stability and cost per h/u_tau.

Everything lands in the run folder, with ``study.yaml`` as its manifest: the case, and for each
stage its ``key``, ``status`` (``running``, ``done`` or ``failed``), ``started`` and ``finished``
times, ``wall_s`` (seconds, summed over the attempts with the same key) and its facts (output
``path``, epochs and best test loss of a training, steps and status of a rollout, ...). A stage's key is a hash of its own settings and
the keys of the stages it reads, so a stage whose inputs and settings did not change is not run
again; a stage whose key changed is redone from scratch, and a stage that was interrupted is
resumed (DNS and LES from their checkpoints, training from its last epoch, the dataset after its
last filtered snapshot).
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import logging
import math
import os
import time as wallclock
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import xarray as xr
import yaml

from .config import CaseConfig, ConfigError, StudyCase, TrainCase, config_hash, dump_config, load_case, read_yaml
from .fields import open_fields

log = logging.getLogger(__name__)

__all__ = ["MANIFEST_NAME", "energy_ratio", "forcing_re_tau", "read_study_manifest", "run_study", "solver_cost", "write_summary"]

MANIFEST_NAME = "study.yaml"


def read_study_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``study.yaml`` of a study run folder (empty stages if there is none yet)."""
    path = Path(folder) / MANIFEST_NAME
    if not path.exists():
        return {"stages": {}}
    data = yaml.safe_load(path.read_text()) or {}
    data.setdefault("stages", {})
    return data


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _key(*parts: Any) -> str:
    """The short hash of plain settings (mappings, lists, scalars) that keys a stage."""
    return config_hash({"parts": list(parts)})


def _last_row(path: Path) -> dict[str, str] | None:
    """The last row of a CSV file (None if missing or empty)."""
    if not path.exists():
        return None
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows[-1] if rows else None


def solver_cost(diagnostics: Path) -> float:
    """Steady cost of a DNS/LES run in wall seconds per h/u_tau, from its ``diagnostics.csv``.

    The median over the intervals between consecutive rows of (wall time) / (simulated time):
    start-up and compilation (the first interval) and the restart of a resumed run (where the
    wall clock starts again) do not move it.
    """
    with open(diagnostics, newline="") as handle:
        rows = [(float(r["time"]), float(r["wall_seconds"])) for r in csv.DictReader(handle)]
    rates = [(w1 - w0) / (t1 - t0) for (t0, w0), (t1, w1) in zip(rows[1:], rows[2:]) if t1 > t0 and w1 >= w0]
    return float(np.median(rates)) if rates else float("nan")


def _last_training_snapshot(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The ``initial`` section that starts a run from the last snapshot of the dataset's first training range."""
    segment = manifest["splits"]["train"][0]
    path = Path(manifest["folder"]) / segment["file"]
    with open_fields(path) as ds:
        time = float(ds["time"].values[segment["stop"] - 1])
    return {"kind": "file", "path": str(path), "time": time}


def _stats_start(run_folder: Path) -> float:
    """``run.stats_start`` of the case a DNS/LES run folder was run with (its ``case.yaml``)."""
    return float(read_yaml(run_folder / "case.yaml")["run"].get("stats_start", 0.0))


def forcing_re_tau(diagnostics: Path, re_tau: float, t_start: float = 0.0) -> float:
    """Re_tau that the mean driving force of a DNS/LES run balances, from its ``diagnostics.csv``.

    In a statistically steady channel the mean pressure gradient balances the wall shear,
    ``-dP/dx h = u_tau^2``; with ``-dP/dx`` in the nominal ``u_tau^2 / h`` (the column
    ``pressure_gradient``), averaged over the rows at ``time >= t_start``, this is
    ``re_tau * sqrt(<-dP/dx>)``. Against the Re_tau of the mean wall gradient it checks that the
    run's wall shear is resolved (they differ when it is not, or when the run is not steady).
    """
    with open(diagnostics, newline="") as handle:
        gradients = [float(r["pressure_gradient"]) for r in csv.DictReader(handle) if float(r["time"]) >= t_start]
    mean = float(np.mean(gradients)) if gradients else float("nan")
    return re_tau * math.sqrt(mean) if mean >= 0 else float("nan")


class _Study:
    """Runs the stages of one study in its run folder, keeping ``study.yaml`` up to date."""

    def __init__(
        self, case: StudyCase, progress: bool, redo: list[str], command: str | None
    ) -> None:
        self.case = case
        self.redo = redo
        self.command = command
        self.folder = case.output_dir()
        self.progress = progress
        self.folder.mkdir(parents=True, exist_ok=True)
        self.manifest = read_study_manifest(self.folder)
        self.manifest.update({"name": case.name, "case": dump_config(case)})
        self.keys: dict[str, str] = {}

    # -------------------------------------------------------------------- bookkeeping
    def _save(self) -> None:
        path = self.folder / MANIFEST_NAME
        tmp = path.with_name(path.name + ".partial")
        tmp.write_text(yaml.safe_dump(self.manifest, sort_keys=False))
        tmp.replace(path)

    def stage(self, name: str, key: str, work: Callable[[bool], dict[str, Any]]) -> dict[str, Any]:
        """Run ``work(fresh)`` unless the stage is done with this key; returns the stage's record.

        ``fresh`` is true when the stage has no earlier attempt with this key (its outputs, if
        any, belong to other settings and must be replaced); false for a resumed attempt.
        """
        self.keys[name] = key
        stages = self.manifest["stages"]
        record = stages.get(name)
        if any(name == item or name.startswith(item.rstrip("/") + "/") for item in self.redo):
            record = None
        if record is not None and record.get("key") == key and record.get("status") == "done":
            log.info(f"{name}: up to date ({key})")
            return record
        fresh = record is None or record.get("key") != key
        if fresh and record is not None:
            log.info(f"{name}: settings or inputs changed ({record.get('key')} -> {key}); redoing it")
        previous = 0.0 if fresh else float(record.get("wall_s", 0.0))
        record = {"key": key, "status": "running", "started": _now(), "wall_s": previous}
        stages[name] = record
        self._save()
        started = wallclock.perf_counter()
        try:
            info = work(fresh)
        except BaseException:
            record.update(status="failed", wall_s=round(previous + wallclock.perf_counter() - started, 3))
            self._save()
            raise
        record.update(status="done", finished=_now(), wall_s=round(previous + wallclock.perf_counter() - started, 3))
        record.update(info)
        self._save()
        log.info(f"{name}: done in {record['wall_s']:.1f} s")
        return record

    # -------------------------------------------------------------------- stages
    def dataset(self) -> Path:
        """The dataset stage; returns the dataset folder."""
        from .data import generate_dataset, load_dataset_case
        from .data.manifest import read_manifest

        settings = self.case.dataset
        if settings.path is not None:
            folder = Path(settings.path)
            manifest = folder / "manifest.yaml"
            if not manifest.is_file():
                raise FileNotFoundError(f"dataset.path {folder} holds no manifest.yaml: make the dataset first (surrogate dataset)")
            key = hashlib.sha256(manifest.read_bytes()).hexdigest()[:12]
            self.stage("dataset", key, lambda fresh: {"path": str(folder), "made_here": False})
            return folder
        folder = self.folder / "dataset"
        dataset_case = load_dataset_case(settings.case, [*settings.overrides, f"output={folder}"])
        key = _key(
            {k: v for k, v in dump_config(dataset_case).items() if k not in ("output", "description")},
            _source_content(dataset_case),
        )

        def work(fresh: bool) -> dict[str, Any]:
            generate_dataset(dataset_case, overwrite=fresh and folder.exists(), progress=self.progress)
            manifest = read_manifest(folder)
            dns = sorted((folder / "dns").glob("trajectory_*/diagnostics.csv"))
            info: dict[str, Any] = {"path": str(folder), "made_here": True}
            if dns:
                info["dns_wall_s"] = round(sum(float((_last_row(p) or {}).get("wall_seconds", 0.0)) for p in dns), 1)
                info["dns_s_per_time_unit"] = float(np.nanmean([solver_cost(p) for p in dns]))
            info["snapshots"] = {split: sum(s["stop"] - s["start"] for s in items) for split, items in manifest["splits"].items()}
            return info

        self.stage("dataset", key, work)
        return folder

    def les_case(self, model: str, manifest: Mapping[str, Any], initial: Mapping[str, Any] | None = None) -> CaseConfig:
        """The LES case of ``model``: the base case on the coarse grid and box of the dataset ``manifest``,
        started from ``initial`` (an ``initial`` section; ``None``: the base case's own)."""
        settings = self.case.les
        assert settings is not None
        base = settings.case or (manifest.get("case", {}).get("source", {}) or {}).get("case")
        if base is None:
            raise ConfigError(
                "les.case is not set and the dataset names no DNS case to build the LES from; "
                "set les.case to a channel case file (e.g. cases/dns_re180.yaml)"
            )
        mapping = read_yaml(base)
        if not isinstance(mapping, dict):
            raise ConfigError(f"les.case {base} is not a case file (a YAML mapping)")
        grid = manifest["grid"]
        mapping["name"] = f"les_{model}"
        mapping["description"] = f"LES ({model}) of study {self.case.name} on the dataset's coarse grid"
        mapping["grid"] = {key: grid[key] for key in ("nx", "ny", "nz", "lx", "lz", "stretching")}
        mapping["sgs"] = {"model": model, "parameters": dict(settings.parameters.get(model, {}))}
        start = 0.0
        if initial is not None:
            mapping["initial"] = dict(initial)
            start = initial["time"]  # the run continues the snapshot's clock
        mapping.setdefault("solver", {})["device"] = self.case.device
        mapping["run"] = {
            "t_end": start + settings.t_end,
            "snapshot_interval": settings.snapshot_interval,
            "checkpoint_interval": settings.checkpoint_interval,
            "stats_start": start + settings.stats_start,
            "output": str(self.folder / "les" / model),
        }
        return load_case(mapping, settings.overrides)

    def les(self, dataset_folder: Path) -> dict[str, Path]:
        """The LES stages; returns model -> run folder."""
        from .data.manifest import read_manifest
        from .simulation import run_case

        if self.case.les is None:
            return {}
        manifest = read_manifest(dataset_folder)
        initial = _last_training_snapshot(manifest) if self.case.les.start == "developed" else None
        folders = {}
        for model in self.case.les.models:
            case = self.les_case(model, manifest, initial)
            plain = dump_config(case)
            plain["run"].pop("output")
            # the dataset enters through its grid, and through its training snapshot when the runs start from it
            key = _key(plain, self.keys["dataset"]) if initial is not None else _key(plain)
            folder = case.output_dir()

            def work(fresh: bool, case: CaseConfig = case, folder: Path = folder) -> dict[str, Any]:
                resume = not fresh and (folder / "checkpoint.pt").exists()
                run_case(case, resume=resume, overwrite=not resume, progress=self.progress)
                return {"path": str(folder)}

            self.stage(f"les/{model}", key, work)
            folders[model] = folder
        return folders

    def train_case(self, index: int, dataset_folder: Path) -> TrainCase:
        """The training case of surrogate ``index`` in the run folder."""
        item = self.case.surrogates[index]
        return TrainCase(
            name=item.label,
            dataset=str(dataset_folder),
            model=item.model,
            data=item.data,
            training=item.training.model_copy(update={"device": self.case.device}),
            rollout=self.case.rollout,
            output=str(self.folder / "surrogates" / item.label),
            description=f"surrogate {item.label} of study {self.case.name}",
        )

    def surrogates(self, dataset_folder: Path) -> dict[str, Path]:
        """Training and rollout stages; returns label -> rollout file."""
        from .rollout import rollout_case
        from .training import train

        rollouts = {}
        for index, item in enumerate(self.case.surrogates):
            case = self.train_case(index, dataset_folder)
            folder = case.output_dir()
            train_key = _key(dump_config(item.model), dump_config(item.data), dump_config(case.training), self.keys["dataset"])

            def fit(fresh: bool, case: TrainCase = case, folder: Path = folder) -> dict[str, Any]:
                resume = not fresh and (folder / "checkpoint.pt").exists()
                train(case, resume=resume, overwrite=not resume, progress=self.progress)
                return _training_facts(folder)

            self.stage(f"train/{item.label}", train_key, fit)

            def roll(fresh: bool, case: TrainCase = case) -> dict[str, Any]:
                result = rollout_case(case, overwrite=True, progress=self.progress)
                with open_fields(result.path) as ds:
                    dt = float(ds.attrs["rollout_dt"])
                return {
                    "path": str(result.path),
                    "steps": result.steps,
                    "rollout_status": result.status,
                    "dt": dt,
                    "warm_up_s": round(result.warm_up_s, 3),
                    "s_per_time_unit": round(result.seconds_per_step / dt, 6),
                }

            record = self.stage(f"rollout/{item.label}", _key(train_key, dump_config(self.case.rollout)), roll)
            rollouts[item.label] = Path(record["path"])
        return rollouts

    def report(self, dataset_folder: Path, les: dict[str, Path], rollouts: dict[str, Path]) -> Path:
        """The report stage; returns the summary file."""
        settings = self.case.validation
        key = _key(dump_config(settings), sorted(self.keys.items()))  # LES keys hold their stats_start

        def work(fresh: bool) -> dict[str, Any]:
            tables = [self._evaluate(reference, dataset_folder, les, rollouts) for reference in settings.references]
            summary = write_summary(
                self.folder, self.manifest, tables[0], settings.references[0], settings.speed_baseline, list(self.keys)
            )
            return {"summary": str(summary), "reports": [str(self.folder / "report" / _slug(r)) for r in settings.references]}

        self.stage("report", key, work)
        return self.folder / "summary.md"

    def _evaluate(self, reference: str, dataset_folder: Path, les: dict[str, Path], rollouts: dict[str, Path]) -> xr.Dataset:
        """One report against ``reference`` (:func:`surrogate.evaluation.validate`); returns its table.

        The LES enter as their statistics windows, the rollouts as files, so that validate finds
        each rollout's truth and compares the two.
        """
        from .evaluation import open_run, time_window, validate

        runs: dict[str, Any] = {} if reference == "dataset" else {"filtered DNS": dataset_folder}
        for model, folder in les.items():
            runs[f"LES {model}"] = time_window(open_run(folder / "fields.nc"), _stats_start(folder), f"LES {model}")
        runs.update(rollouts)
        return validate(
            list(runs.values()),
            str(dataset_folder) if reference == "dataset" else reference,
            out_dir=self.folder / "report" / _slug(reference),
            labels=list(runs),
            command=self.command or f"surrogate run (study {self.case.name})",
        )

    def run(self) -> Path:
        dataset_folder = self.dataset()
        les = self.les(dataset_folder)
        rollouts = self.surrogates(dataset_folder)
        return self.report(dataset_folder, les, rollouts)


def _source_content(case: Any) -> Any:
    """What the DNS of a dataset case is, beyond its file names: the DNS case's settings (its
    output aside), or the size and modification time of each existing source field file."""
    source = case.source
    if source.case is not None:
        dns = dump_config(load_case(source.case, source.overrides))
        dns["run"].pop("output")
        return dns
    return [[str(p), os.stat(p).st_size, os.stat(p).st_mtime_ns] for p in source.fields]


def _slug(reference: str) -> str:
    """A folder name for a reference (a name, or the last part of a path)."""
    return Path(reference).name or "reference"


def energy_ratio(ds: xr.Dataset) -> float:
    """Fluctuation energy of the last state over that of the first (see :func:`surrogate.rollout.fluctuation_energy`).

    Near 1 for a rollout that keeps the turbulence; towards 0 when it decays, large when it grows.
    """
    import torch

    from .fields import check_fields
    from .rollout import fluctuation_energy

    dy = torch.as_tensor(check_fields(ds).dy)

    def energy(index: int) -> float:
        state = np.stack([ds[name].isel(time=index).values for name in ("u", "v", "w")])
        return fluctuation_energy(torch.as_tensor(state, dtype=torch.float64), dy)

    return energy(-1) / energy(0)


def _training_facts(folder: Path) -> dict[str, Any]:
    """Epochs trained and the best one-step test relative L2, from ``metrics.csv``."""
    with open(folder / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    losses = [float(r["test_loss"]) for r in rows]
    return {"path": str(folder), "epochs": len(rows), "best_test_loss": min(losses) if losses else float("nan")}


SUMMARY_COLUMNS = ("re_tau", "re_tau_error", "U_max_abs", "U_l2", "u_rms_l2", "v_rms_l2", "w_rms_l2", "uv_l2")


def write_summary(
    folder: Path,
    manifest: Mapping[str, Any],
    table: xr.Dataset,
    reference: str,
    speed_baseline: str,
    stage_names: list[str],
) -> Path:
    """Write ``summary.md`` and ``summary.csv``: per method its stability, statistics errors and cost.

    ``table`` is the validation table (:func:`surrogate.evaluation.evaluate`) against ``reference``;
    ``stage_names`` the stages of this study whose wall times are listed (records of stages
    the case no longer has stay in ``study.yaml`` but are not shown).

    Cost is wall seconds per h/u_tau of simulated time: for an LES its steady time-step cost
    (from ``diagnostics.csv``), for a surrogate its steady cost per step after the first
    prediction, writing the states included (model loading and the first prediction, with
    ``rollout.compile`` its compilation, are the stage's ``warm_up_s`` and wall time). The
    speed-up is the baseline LES cost over the method's.
    """
    stages = manifest["stages"]

    def les_cost(model: str) -> float:
        record = stages.get(f"les/{model}")
        return solver_cost(Path(record["path"]) / "diagnostics.csv") if record else float("nan")

    baseline = les_cost(speed_baseline)
    rows = []
    for i, label in enumerate(table["run"].values):
        label = str(label)
        nan = float("nan")
        row: dict[str, Any] = {
            "method": label, "kind": "data", "stable": "", "imposed": "", "one_step_l2": nan, "energy_ratio": nan, "cost": nan,
            "re_tau_forcing": nan,
        }
        if label.startswith("LES "):
            row.update(kind="LES", stable="yes", cost=les_cost(label[4:]))
            run_folder = Path(stages[f"les/{label[4:]}"]["path"])
            settings = read_yaml(run_folder / "case.yaml")
            row["re_tau_forcing"] = forcing_re_tau(
                run_folder / "diagnostics.csv", float(settings["physics"]["re_tau"]), float(settings["run"]["stats_start"])
            )
        elif f"rollout/{label}" in stages:
            record, fit = stages[f"rollout/{label}"], stages[f"train/{label}"]
            status = record["rollout_status"]
            with open_fields(record["path"]) as ds:
                energy = energy_ratio(ds)
                imposed = str(ds.attrs.get("rollout_constraints", "none"))
            row.update(
                kind="surrogate",
                imposed=imposed,
                stable="yes" if status == "completed" else f"no: {status}",
                one_step_l2=fit["best_test_loss"],
                energy_ratio=energy,
                cost=record["s_per_time_unit"],
            )
        row["speed_up"] = baseline / row["cost"] if row["cost"] and math.isfinite(row["cost"]) else float("nan")
        for name in SUMMARY_COLUMNS + ("rollout_error_last", "rollout_correlation_last"):
            row[name] = float(table[name].values[i]) if name in table else float("nan")
        rows.append(row)
    columns = ["method", "kind", "stable", "imposed", "one_step_l2", "energy_ratio", SUMMARY_COLUMNS[0], "re_tau_forcing",
               *SUMMARY_COLUMNS[1:], "cost", "speed_up"]
    with open(folder / "summary.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*columns, "rollout_error_last", "rollout_correlation_last"])
        writer.writeheader()
        writer.writerows(rows)

    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.4g}"
        return str(value)

    headers = {
        "method": "method", "kind": "kind", "stable": "stable over the run", "imposed": "imposed in the rollout",
        "one_step_l2": "one-step test L2",
        "energy_ratio": "energy end/start",
        "re_tau": "Re_tau", "re_tau_forcing": "Re_tau from forcing", "re_tau_error": "Re_tau error", "U_max_abs": "max abs(dU+)", "U_l2": "L2 U+",
        "u_rms_l2": "L2 u_rms+", "v_rms_l2": "L2 v_rms+", "w_rms_l2": "L2 w_rms+", "uv_l2": "L2 uv+",
        "cost": "s per h/u_tau", "speed_up": f"x faster than LES {speed_baseline}",
    }
    lines = [
        f"# Study {manifest['name']}: summary against {reference}",
        "",
        f"Reference Re_tau: {float(table.attrs.get('reference_re_tau', float('nan'))):.4g}. "
        "LES statistics over t >= les.stats_start (counted from the LES's start); surrogate statistics over their whole rollout. "
        "Energy end/start: fluctuation energy of a rollout's last state over its first (1: kept; 0: decayed). "
        "Imposed in the rollout: what the rollout set rather than the model predicted (surrogate.constraints). "
        "Re_tau from the mean wall gradient; for an LES also from its mean driving force over the same window. "
        "Relative L2 deviations of the wall-unit profiles; cost in wall seconds per h/u_tau on this machine, "
        "steady (an LES's time steps; a surrogate's predictions after its first, which holds any compilation).",
        "",
        "| " + " | ".join(headers[c] for c in columns) + " |",
        "| " + " | ".join("---" if c in ("method", "kind", "stable", "imposed") else "---:" for c in columns) + " |",
    ]
    lines += ["| " + " | ".join(fmt(row[c]) for c in columns) + " |" for row in rows]
    lines += ["", "## Stages", "", "| stage | wall time (s) | status | key |", "| --- | ---: | --- | --- |"]
    for name in stage_names:
        record = stages[name]
        if name == "report":
            continue
        lines.append(f"| {name} | {float(record.get('wall_s', 0.0)):.1f} | {record.get('status')} | {record.get('key')} |")
    dataset = stages.get("dataset", {})
    if "dns_wall_s" in dataset:
        lines += ["", f"The dataset stage includes {dataset['dns_wall_s']:.0f} s of DNS "
                  f"({dataset['dns_s_per_time_unit']:.3g} s per h/u_tau)."]
    path = folder / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_study(
    case: StudyCase,
    *,
    redo: list[str] | tuple[str, ...] = (),
    progress: bool = True,
    command: str | None = None,
) -> Path:
    """Run (or finish) every stage of a study and return the path of its ``summary.md``.

    Parameters
    ----------
    case
        The study (see :mod:`surrogate.config.study`).
    redo
        Stages to run again from scratch even if up to date: names (``report``, ``train/fno``)
        or a group (``les`` for every LES). Later stages reading them are not redone unless named.
    progress
        Progress bars of the DNS, LES, training and rollouts.
    command
        The command line, for the top of the reports.
    """
    return _Study(case, progress, list(redo), command).run()
