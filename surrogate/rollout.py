r"""Autoregressive rollout of a surrogate: ``surrogate rollout CASE``.

From a window of ``n_history`` true states, the model predicts the next state, which joins the
window, and so on for ``steps`` steps. Every state (or every ``output_every``-th) is written to a
field file as soon as it is made (so a rollout of 10,000 steps never holds more than its window in
memory), in physical units (u_tau) with time ``t_0 + k dt`` (``dt`` the dataset's snapshot
spacing, h/u_tau) and the model, checkpoint and case in the attributes. With ``compile`` the model
runs through :func:`torch.compile`: a one-off cost of seconds to a minute, then predictions about
twice as fast on a CPU (``benchmarks/README.md``), equal to the eager ones to float32 round-off;
where compiling fails (no C++ compiler, an operation inductor cannot lower) the rollout runs eager
with a warning and says so in its ``rollout_compiled`` and ``rollout_compile_error`` attributes.

Optional constraints (:mod:`surrogate.constraints`): exact properties of the channel imposed on
every prediction — the mean profile advanced by the mean-momentum equation with the predicted
Reynolds stress, zero mean wall-normal velocity, the divergence-free projection, the flow rate of
the initial state. What was imposed is recorded in the file's ``rollout_constraints`` attribute,
apart from what the model predicted.

The rollout stops early, keeping the states made so far in a finished file whose
``rollout_status`` attribute says why, when a prediction is not finite or its fluctuation
energy exceeds ``energy_bound`` times that of the initial state.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from tqdm.auto import tqdm

from .config import ConfigError, TrainCase
from .constraints import ConstraintSettings, RolloutConstraints
from .data.normalization import Normalization
from .fields import FieldWriter
from .grid import ChannelGrid
from .models import SurrogateModel

log = logging.getLogger(__name__)

__all__ = ["Predictions", "RolloutResult", "fluctuation_energy", "rollout", "rollout_case"]


def fluctuation_energy(field: torch.Tensor, dy: torch.Tensor) -> float:
    """Volume-averaged kinetic energy of the fluctuations about the x-z plane means, in u_tau^2.

    ``field``: ``(3, nx, ny, nz)``; ``dy``: cell heights ``(ny,)`` in h.
    """
    fluct = field - field.mean(dim=(1, 3), keepdim=True)
    plane = 0.5 * fluct.double().square().sum(0).mean(dim=(0, 2))
    return float((plane * dy.double()).sum() / dy.double().sum())


@dataclass
class RolloutResult:
    """How a rollout ended: the field file, the steps made, and ``status`` (``"completed"`` or why it stopped).

    ``warm_up_s``: wall seconds of the first prediction (with ``compile``, the compilation);
    ``seconds_per_step``: the steady wall seconds per step after it, writing included (``nan``
    for fewer than two steps).
    """

    path: Path
    steps: int
    status: str
    warm_up_s: float = float("nan")
    seconds_per_step: float = float("nan")

    @property
    def completed(self) -> bool:
        return self.status == "completed"


class Predictions:
    """The states a model predicts from an initial window, one step at a time, constrained.

    Parameters are those of :func:`rollout`. :meth:`run` yields the constrained states in
    physical units ``(3, nx, ny, nz)``; it ends early when a prediction is not finite or its
    fluctuation energy exceeds ``energy_bound`` times the initial state's, and ``status`` then
    says why (``"completed"`` otherwise). ``compile``: run the model through :func:`torch.compile`;
    if compiling fails the model runs eager (``compiled`` turns false, ``compile_error`` says why).
    """

    def __init__(
        self,
        model: SurrogateModel,
        initial: torch.Tensor,
        *,
        normalization: Normalization,
        grid: ChannelGrid,
        dt: float,
        re_tau: float,
        constraints: ConstraintSettings = ConstraintSettings(),
        energy_bound: float = 10.0,
        device: Any = "cpu",
        compile: bool = False,
    ) -> None:
        device = torch.device(device)
        self.model, self.normalization, self.energy_bound = model.to(device).eval(), normalization, energy_bound
        self.compiled, self.compile_error = compile, None
        self.forward = torch.compile(self.model, dynamic=False) if compile else self.model
        self.coords = {name: torch.as_tensor(getattr(grid, name), dtype=torch.float32, device=device) for name in ("x", "y", "z")}
        self.dy = torch.as_tensor(grid.dy, device=device)
        self.window = normalization.normalize(initial.to(device, torch.float32))[None]  # (1, n_history, 3, nx, ny, nz)
        self.state = initial[-1].to(device, torch.float32)
        self.constraints = RolloutConstraints(constraints, self.state, grid, re_tau, dt, device=device)
        self.energy0 = fluctuation_energy(self.state, self.dy)
        self.status = "completed"

    def _predict(self) -> torch.Tensor:
        """The model's next normalised state; if :func:`torch.compile` fails, the eager model's, with a warning."""
        try:
            return self.forward(self.window, self.coords)
        except Exception as exc:  # inductor raises many kinds (no C++ compiler, an unsupported op)
            if not self.compiled or not type(exc).__module__.startswith("torch._"):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.compile_error = f"{type(exc).__name__}: {first}"
            log.warning(f"torch.compile of {self.model.registry_name} failed ({self.compile_error}); rolling out eager")
            self.forward, self.compiled = self.model, False
            return self.forward(self.window, self.coords)

    @torch.inference_mode()
    def run(self, steps: int) -> Iterator[torch.Tensor]:
        """Yield up to ``steps`` predicted states, ``(3, nx, ny, nz)`` in u_tau."""
        for k in range(1, steps + 1):
            prediction = self.normalization.denormalize(self._predict().float())[0]
            state = self.constraints(prediction, self.state)
            if not torch.isfinite(state).all():
                self.status = f"stopped at step {k}: the prediction has non-finite values"
                return
            energy = fluctuation_energy(state, self.dy)
            if energy > self.energy_bound * self.energy0:
                self.status = (
                    f"stopped at step {k}: fluctuation energy {energy:.4g} u_tau^2 exceeds {self.energy_bound} x the "
                    f"initial {self.energy0:.4g}"
                )
                return
            self.state = state
            self.window = torch.cat([self.window[:, 1:], self.normalization.normalize(state)[None, None]], dim=1)
            yield state


def _check_output_size(path: str | PathLike[str], steps: int, output_every: int, grid: ChannelGrid, max_output_gb: float) -> None:
    """Refuse a rollout file larger than ``max_output_gb`` or the free disk space (float32 u, v, w)."""
    size = (steps // output_every + 1) * 3 * 4 * grid.nx * grid.ny * grid.nz
    folder = Path(path).resolve().parent
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if size > max_output_gb * 1e9 or size > free:
        raise ConfigError(
            f"a rollout of {steps} steps on {grid.nx} x {grid.ny} x {grid.nz} cells writes about {size / 1e9:.3g} GB "
            f"to {path} ({free / 1e9:.3g} GB free there; the bound is rollout.max_output_gb = {max_output_gb:g}); "
            "roll out fewer steps, write fewer of them (rollout.output_every), or raise rollout.max_output_gb "
            "where the disk has room"
        )


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
    constraints: ConstraintSettings = ConstraintSettings(),
    energy_bound: float = 10.0,
    attrs: Mapping[str, Any] | None = None,
    device: Any = "cpu",
    overwrite: bool = False,
    progress: bool = True,
    max_output_gb: float = 2.0,
    output_every: int = 1,
    compile: bool = False,
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
    constraints
        What to impose on every prediction (see :mod:`surrogate.constraints`).
    energy_bound
        Stop when the fluctuation energy exceeds this multiple of the initial state's.
    attrs
        Provenance for the file (model, checkpoint, case).
    max_output_gb
        Refuse (before writing anything) a rollout whose file would exceed this many GB, or the
        free space of its folder.
    output_every
        Write the initial state and every ``output_every``-th prediction (1: all).
    compile
        Run the model through :func:`torch.compile` (see :class:`Predictions`).

    Returns
    -------
    RolloutResult
        The finished file, the number of predictions it holds and how the rollout ended.
    """
    predictions = Predictions(
        model, initial, normalization=normalization, grid=grid, dt=dt, re_tau=re_tau,
        constraints=constraints, energy_bound=energy_bound, device=device, compile=compile,
    )
    if output_every < 1:
        raise ConfigError(f"rollout.output_every must be >= 1, got {output_every}")
    meta = {
        "source": f"surrogate rollout of {model.registry_name}",
        "rollout_dt": dt,
        "rollout_projected": int(constraints.project),
        "rollout_constraints": predictions.constraints.describe(),
        "rollout_output_every": output_every,
    }
    meta.update(attrs or {})
    _check_output_size(path, steps, output_every, grid, max_output_gb)
    writer = FieldWriter(path, grid, re_tau=re_tau, dtype="float32", attrs=meta, overwrite=overwrite)
    writer.append(t0, *predictions.state)
    done = 0
    started = first = last = time.perf_counter()  # the end of the first and of the last step
    try:
        for k, state in enumerate(tqdm(predictions.run(steps), total=steps, disable=not progress, unit="step", desc="rollout"), 1):
            if k % output_every == 0:
                writer.append(t0 + k * dt, *state)
            done, last = k, time.perf_counter()
            if k == 1:
                first = last
    except BaseException:
        writer.close_partial()
        raise
    warm_up = first - started if done else float("nan")
    per_step = (last - first) / (done - 1) if done > 1 else float("nan")
    status = predictions.status
    path = writer.finalize({
        "rollout_status": status, "rollout_steps": done, "rollout_warm_up_s": warm_up, "rollout_seconds_per_step": per_step,
        "rollout_compiled": int(predictions.compiled), "rollout_compile_error": predictions.compile_error or "",
    })
    return RolloutResult(path, done, status, warm_up, per_step)


def rollout_case(
    case: TrainCase, *, path: str | PathLike[str] | None = None, overwrite: bool = False, progress: bool = True
) -> RolloutResult:
    """Roll out the trained model of a training case as its ``rollout`` section says.

    Uses the run folder's ``best.pt`` (or ``checkpoint.pt`` with ``checkpoint: last``), starts
    from window ``rollout.start`` of the dataset split ``rollout.split`` and writes ``path``
    (default ``rollout.nc`` in the run folder).

    Raises
    ------
    FileNotFoundError
        If the run has no such checkpoint (train it first).
    WindowError
        If the start window does not exist.
    """
    from .data import WindowDataset, WindowError
    from .training import load_trained_model

    settings = case.rollout
    folder = case.output_dir()
    weights = folder / ("best.pt" if settings.checkpoint == "best" else "checkpoint.pt")
    if not weights.exists():
        raise FileNotFoundError(f"{weights} does not exist: train the model first (surrogate train CASE)")
    model, checkpoint = load_trained_model(weights, map_location=case.training.device)
    truth = WindowDataset(case.dataset, settings.split, n_history=checkpoint["n_history"], n_target=1, normalization=None)
    if settings.start >= len(truth):
        raise WindowError(f"rollout.start = {settings.start}, but split {settings.split!r} has {len(truth)} windows (0..{len(truth) - 1})")
    history, _ = truth[settings.start]
    source, first = truth.source(settings.start)
    return rollout(
        model,
        history,
        settings.steps,
        folder / "rollout.nc" if path is None else path,
        normalization=checkpoint["normalization"],
        grid=truth.grid,
        dt=truth.dt,
        re_tau=truth.re_tau,
        t0=float(truth.times(settings.start)[checkpoint["n_history"] - 1]),
        constraints=settings.constraints(),
        energy_bound=settings.energy_bound,
        max_output_gb=settings.max_output_gb,
        output_every=settings.output_every,
        compile=settings.compile,
        attrs={
            "case": case.name,
            "model": model.registry_name,
            "checkpoint": str(weights),
            "checkpoint_epoch": checkpoint.get("epoch", -1),
            "truth_file": str(source),
            "truth_first_snapshot": first,
        },
        device=case.training.device,
        overwrite=overwrite,
        progress=progress,
    )
