"""Which ingredient keeps the turbulence in a long rollout: trained models x rollout constraints.

Each trained run folder (``NAME=FOLDER``, holding ``case.yaml`` and ``best.pt`` of ``surrogate
train``) is rolled out ``--steps`` steps from the first test window of its dataset under each
constraint set of ``--constraints`` (``none`` or ``+``-joined names of
:class:`surrogate.constraints.ConstraintSettings`), and every rollout's statistics over all its
states are compared with the filtered-DNS test split. The table (markdown and CSV in ``--out``)
keeps what the model predicts and what the rollout imposes in separate columns, with the
rollout's wall time per h/u_tau (loading, predictions, constraints, writing every state)::

    python validation/rollout_ablation_re180.py \\
        paper=runs/abl/train_re180_ifactformer_m rollout=runs/abl/train_re180_ifactformer_m_rollout \\
        --constraints none zero_mean_v+project+hold_flow_rate mean_momentum+zero_mean_v+project \\
        --steps 1000 --out validation/rollout_ablation_re180
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from surrogate.constraints import ConstraintSettings
from surrogate.fields import open_fields
from surrogate.rollout import rollout_case
from surrogate.study import energy_ratio
from surrogate.data import WindowDataset
from surrogate.config import load_train_case
from surrogate.training import step_change
from surrogate.evaluation import evaluate

METRICS = ("re_tau", "U_max_abs", "U_l2", "u_rms_l2", "v_rms_l2", "w_rms_l2", "uv_l2")


def constraint_settings(spec: str) -> ConstraintSettings:
    """``none`` or names joined by ``+`` -> settings."""
    names = [] if spec == "none" else spec.split("+")
    known = {f.name for f in dataclasses.fields(ConstraintSettings)}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"--constraints {spec}: unknown {unknown}; expected none or any of {sorted(known)} joined by +")
    return ConstraintSettings(**{n: True for n in names})


def _step_change(ds) -> float:
    return step_change(torch.as_tensor(np.stack([ds[n].values for n in ("u", "v", "w")], axis=1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="NAME=FOLDER of a training run")
    parser.add_argument("--constraints", nargs="+", default=["none"])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows, files, dataset = [], {}, None
    for item in args.runs:
        name, folder = item.split("=", 1)
        case = load_train_case(Path(folder) / "case.yaml", [f"output={folder}", f"rollout.checkpoint={args.checkpoint}"])
        dataset = dataset or case.dataset
        for spec in args.constraints:
            settings = constraint_settings(spec)
            fields = dataclasses.asdict(settings)
            rolled = case.model_copy(update={"rollout": case.rollout.model_copy(update={"steps": args.steps, **fields})})
            label = f"{name} / {spec}"
            path = Path(folder) / f"rollout_{spec.replace('+', '_')}.nc"
            started = time.perf_counter()
            result = rollout_case(rolled, path=path, overwrite=True, progress=False)
            seconds = time.perf_counter() - started
            with open_fields(result.path) as ds:
                rows.append(
                    {
                        "model": name, "imposed": spec, "status": result.status, "energy_ratio": energy_ratio(ds),
                        "step_change": _step_change(ds.isel(time=slice(ds.sizes["time"] // 2, None))),
                        "s_per_time_unit": seconds / (max(result.steps, 1) * float(ds.attrs["rollout_dt"])),
                    }
                )
            files[label] = result.path
            print(f"{label}: {result.status} in {seconds:.1f} s", flush=True)
    truth = WindowDataset(dataset, "test", n_target=1, normalization=None)
    truth_change = step_change(torch.as_tensor(np.concatenate([truth.window(0), *(truth.window(i)[1:] for i in range(1, len(truth)))])))
    runs = {label: open_fields(path) for label, path in files.items()}
    table = evaluate(runs, dataset, figures=False).table
    for row, label in zip(rows, files):
        row.update({m: float(table[m].sel(run=label)) for m in METRICS})
    columns = ["model", "imposed", "status", "energy_ratio", "step_change", *METRICS, "s_per_time_unit"]
    with open(args.out / "ablation.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        f"Reference: filtered DNS test split, Re_tau {float(table.attrs['reference_re_tau']):.4g}, rms change per step "
        f"{truth_change:.3g} u_tau; {args.steps} steps. step_change: the rollout's over its second half (0: frozen).",
        "",
        "| " + " | ".join(columns) + " |",
        "| " + " | ".join("---" if c in ("model", "imposed", "status") else "---:" for c in columns) + " |",
    ]
    for row in rows:
        lines.append("| " + " | ".join(f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns) + " |")
    (args.out / "ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
