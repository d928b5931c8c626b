r"""Autoregressive rollout of a surrogate: ``surrogate rollout CASE``.

From a window of ``n_history`` true states, the model predicts the next state, which joins the
window, and so on for ``steps`` steps. Every state is written to a field file as soon as it is
made (so a rollout of 10,000 steps never holds more than its window in memory), in physical units
(u_tau) with time ``t_0 + k dt`` (``dt`` the dataset's snapshot spacing, h/u_tau) and the model,
checkpoint and case in the attributes.

Optional projection (``project=True``): each prediction is replaced by its divergence-free part,
the exact discrete projection of :class:`~surrogate.projection.CentredProjection` on the cell
centres (spectral in x and z, zero wall-normal velocity on the walls), which removes the least
energy that makes the field divergence-free and leaves the mean streamwise profile unchanged.

The rollout stops early, keeping the states made so far in a finished file whose
``rollout_status`` attribute says why, when a prediction is not finite or its fluctuation
energy exceeds ``energy_bound`` times that of the initial state.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Mapping

import torch
from tqdm.auto import tqdm

from .data.normalization import Normalization
from .fields import FieldWriter
from .grid import ChannelGrid
from .models import SurrogateModel
from .projection import CentredProjection
from .train_case import TrainCase

__all__ = ["RolloutResult", "fluctuation_energy", "rollout", "rollout_case"]


def fluctuation_energy(field: torch.Tensor, dy: torch.Tensor) -> float:
    """Volume-averaged kinetic energy of the fluctuations about the x-z plane means, in u_tau^2.

    ``field``: ``(3, nx, ny, nz)``; ``dy``: cell heights ``(ny,)`` in h.
    """
    fluct = field - field.mean(dim=(1, 3), keepdim=True)
    plane = 0.5 * fluct.double().square().sum(0).mean(dim=(0, 2))
    return float((plane * dy.double()).sum() / dy.double().sum())


@dataclass
class RolloutResult:
    """How a rollout ended: the field file, the steps made, and ``status`` (``"completed"`` or why it stopped)."""

    path: Path
    steps: int
    status: str

    @property
    def completed(self) -> bool:
        return self.status == "completed"


@torch.no_grad()
def rollout(
    model: SurrogateModel,
    initial: torch.Tensor,
    steps: int,
    path: str | PathLike[str],
    *,
    normalization: Normalization,
    grid: ChannelGrid,
    dt: float,
    re_tau: float,
    t0: float = 0.0,
    project: bool = False,
    energy_bound: float = 10.0,
    attrs: Mapping[str, Any] | None = None,
    device: Any = "cpu",
    overwrite: bool = False,
    progress: bool = True,
) -> RolloutResult:
    """Roll ``model`` out for ``steps`` steps from ``initial`` and stream the states to ``path``.

    Parameters
    ----------
    model
        A trained surrogate (see :mod:`surrogate.models`).
    initial
        The true window in physical units, ``(n_history, 3, nx, ny, nz)``, oldest first; its last
        state is written first, at ``t0``.
    steps
        Number of predictions.
    path
        Output field file (``.partial`` until finished).
    normalization
        The statistics the model was trained with.
    grid, dt, re_tau
        Grid of the states, time between them (h/u_tau) and the friction Reynolds number.
    project
        Project every prediction onto divergence-free fields (see the module docstring).
    energy_bound
        Stop when the fluctuation energy exceeds this multiple of the initial state's.
    attrs
        Provenance for the file (model, checkpoint, case).

    Returns
    -------
    RolloutResult
        The finished file, the number of predictions it holds and how the rollout ended.
    """
    device = torch.device(device)
    model = model.to(device).eval()
    coords = {name: torch.as_tensor(getattr(grid, name), dtype=torch.float32, device=device) for name in ("x", "y", "z")}
    dy = torch.as_tensor(grid.dy, device=device)
    window = normalization.normalize(initial.to(device, torch.float32))[None]  # (1, n_history, 3, nx, ny, nz)
    projector = CentredProjection(grid, device=device) if project else None
    state = initial[-1].to(device)
    energy0 = fluctuation_energy(state, dy)
    meta = {"source": f"surrogate rollout of {model.registry_name}", "rollout_dt": dt, "rollout_projected": int(project)}
    meta.update(attrs or {})
    writer = FieldWriter(path, grid, re_tau=re_tau, dtype="float32", attrs=meta, overwrite=overwrite)
    writer.append(t0, *state)
    status, done = "completed", 0
    try:
        for k in tqdm(range(1, steps + 1), disable=not progress, unit="step", desc="rollout"):
            state = normalization.denormalize(model(window, coords).float())[0]
            if projector is not None:
                state = projector(state)
            energy = fluctuation_energy(state, dy)
            if not torch.isfinite(state).all():
                status = f"stopped at step {k}: the prediction has non-finite values"
                break
            if energy > energy_bound * energy0:
                status = (
                    f"stopped at step {k}: fluctuation energy {energy:.4g} u_tau^2 exceeds {energy_bound} x the "
                    f"initial {energy0:.4g}"
                )
                break
            writer.append(t0 + k * dt, *state)
            done = k
            window = torch.cat([window[:, 1:], normalization.normalize(state)[None, None]], dim=1)
    except BaseException:
        writer.close_partial()
        raise
    path = writer.finalize({"rollout_status": status, "rollout_steps": done})
    return RolloutResult(path, done, status)


def rollout_case(case: TrainCase, *, overwrite: bool = False, progress: bool = True) -> RolloutResult:
    """Roll out the trained model of a training case as its ``rollout`` section says.

    Uses the run folder's ``best.pt`` (or ``checkpoint.pt`` with ``checkpoint: last``), starts
    from window ``rollout.start`` of the dataset split ``rollout.split`` and writes
    ``rollout.nc`` in the run folder.

    Raises
    ------
    FileNotFoundError
        If the run has no such checkpoint (train it first).
    ValueError
        If the start window does not exist.
    """
    from .data import WindowDataset
    from .training import load_trained_model

    settings = case.rollout
    folder = case.output_dir()
    path = folder / ("best.pt" if settings.checkpoint == "best" else "checkpoint.pt")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: train the model first (surrogate train CASE)")
    model, checkpoint = load_trained_model(path, map_location=case.training.device)
    truth = WindowDataset(case.dataset, settings.split, n_history=checkpoint["n_history"], n_target=1, normalization=None)
    if settings.start >= len(truth):
        raise ValueError(f"rollout.start = {settings.start}, but split {settings.split!r} has {len(truth)} windows")
    history, _ = truth[settings.start]
    source, first = truth.source(settings.start)
    return rollout(
        model,
        history,
        settings.steps,
        folder / "rollout.nc",
        normalization=checkpoint["normalization"],
        grid=truth.grid,
        dt=truth.dt,
        re_tau=truth.re_tau,
        t0=float(truth.times(settings.start)[checkpoint["n_history"] - 1]),
        project=settings.project,
        energy_bound=settings.energy_bound,
        attrs={
            "case": case.name,
            "model": model.registry_name,
            "checkpoint": str(path),
            "checkpoint_epoch": checkpoint.get("epoch", -1),
            "truth_file": str(source),
            "truth_first_snapshot": first,
        },
        device=case.training.device,
        overwrite=overwrite,
        progress=progress,
    )
