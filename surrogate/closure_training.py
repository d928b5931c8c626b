"""Training a subgrid closure a posteriori: through the LES solver, against filtered DNS.

The coarse solver with a learned closure (:class:`surrogate.solver.NeuralEddyViscosity`) is
unrolled from a filtered-DNS state over one or more snapshot intervals; the loss compares each
state it reaches with the filtered DNS at that time, and torch autograd carries the gradient back
through every RK3 substep, pressure projection and implicit diffusion solve to the network's
weights (List, Chen & Thuerey, JFM 949, 2022; Kochkov et al., PNAS 118, 2021). Each solver step
is recomputed in the backward pass (``torch.utils.checkpoint``), so memory holds one step's
graph, not the whole unroll.

Loss of one sample: at every snapshot, ``field_weight`` times :func:`surrogate.losses.field_error`
(each component's fluctuations and mean profile on the scale of its own fluctuations) plus
``statistics_weight`` times :func:`surrogate.losses.statistics_error` (mean U, the rms and
``<u'v'>`` profiles, weighted by ``profile_weights``), averaged over the snapshots.

An unroll from filtered DNS sees the LES leave the filtered-DNS state for its own statistics: on
a coarse grid that transient lasts hours, and a closure that is right over it need not be right
over the long run. With ``training.start: attractor`` the unrolls start instead from LES states
carried on with the closure being trained (spun up ``spin_up`` h/u_tau from training-split states,
then run on ``gap`` h/u_tau between unrolls, without gradients), and the loss is
:func:`surrogate.losses.profile_error` of the statistics pooled over each unroll's snapshots
against the long-time statistics of the training split (:func:`attractor_loss`): what the closure
is trained for is then the statistics of its own developed LES. A short unroll's statistics are
noisy, and so is a test loss made of a few of them; with ``select_hours`` the carried states run
on that long after each epoch without gradients, and the closure kept is the one whose statistics
pooled over that run are closest to the training split's (:meth:`_Attractor.selection_loss`):
neither the gradient nor the choice sees the test split. The statistics a closure gives depend on
the box as well as on the cell sizes; with ``start_fields`` each field file (a developed LES on
another box with the dataset's wall-normal cells) carries one more LES state on its own grid, and
the gradient and the choice weigh every grid's loss alike.

``surrogate closure CASE`` (:func:`train_closure`) trains on the windows of a filtered-DNS
dataset (:mod:`surrogate.config.closure`) and writes to the run folder: ``closure.pt`` (the epoch
with the lowest test loss, or with ``select_hours`` the lowest selection loss;
``sgs: {model: neural, parameters: {weights: .../closure.pt}}`` runs it),
``checkpoint.pt`` (the last epoch, to ``--resume`` from; with ``mean_field`` the closure's
mean-field part starts from :func:`surrogate.solver.neural_sgs.a_priori_mean_field_viscosity` of the
training split's statistics), ``metrics.csv`` (epoch 0: the untrained
closure; the no-model LES's test loss in every row for comparison) and ``case.yaml``.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch
import yaml
from torch.utils.checkpoint import checkpoint
from tqdm.auto import tqdm

from .atomic import save_torch
from .config import CLOSURE_PARTS, ClosureCase, ConfigError, dump_config
from .losses import field_error, profile_error, statistics_error
from .mean_flow import PlaneStatistics, plane_statistics
from .run_folder import require_checkpoint, start_fresh
from .solver.channel import ChannelSolver, ChannelState
from .solver.neural_sgs import NeuralEddyViscosity

log = logging.getLogger(__name__)

__all__ = [
    "ClosureSample",
    "ClosureTrainingError",
    "a_posteriori_loss",
    "attractor_loss",
    "pooled_statistics",
    "train_closure",
    "train_closure_step",
    "unroll",
]

METRIC_COLUMNS = ("epoch", "train_loss", "test_loss", "select_loss", "select_loss_by_grid", "no_model_test_loss", "lr", "seconds")


class ClosureTrainingError(RuntimeError):
    """A closure run folder that does not fit the requested start or resume."""


@dataclass(frozen=True)
class ClosureSample:
    """One training sample: a start state and the filtered DNS after each of ``len(targets)`` intervals.

    ``targets`` holds ``u, v, w`` at the cell centres, ``(n_snapshots, 3, nx, ny, nz)`` in u_tau;
    ``steps`` solver steps lead from one to the next.
    """

    initial: ChannelState
    targets: torch.Tensor
    steps: int


def unroll(solver: ChannelSolver, state: ChannelState, steps: int, dt: float, recompute: bool = True) -> ChannelState:
    """``steps`` solver steps of size ``dt`` (h/u_tau), differentiable; ``recompute`` checkpoints each step."""

    def advance(u, v, w, p):
        new = solver.step(replace(state, u=u, v=v, w=w, p=p), dt)
        return new.u, new.v, new.w, new.p

    fields = (state.u, state.v, state.w, state.p)
    for _ in range(steps):
        fields = checkpoint(advance, *fields, use_reentrant=False) if recompute else advance(*fields)
    u, v, w, p = fields
    return replace(state, u=u, v=v, w=w, p=p, time=state.time + steps * dt, step=state.step + steps)


def a_posteriori_loss(
    solver: ChannelSolver,
    sample: ClosureSample,
    dt: float,
    statistics_weight: float = 0.0,
    recompute: bool = True,
    field_weight: float = 1.0,
    profile_weights: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """The loss of the module docstring for one sample (a 0-d tensor with a graph to the closure);
    ``profile_weights`` weighs the profiles of the statistics error (:func:`surrogate.losses.profile_error`)."""
    state, losses = sample.initial, []
    for target in sample.targets:
        state = unroll(solver, state, sample.steps, dt, recompute)
        predicted = torch.stack(solver.ops.to_centres(state.u, state.v, state.w))[None]
        truth = target.to(predicted)[None]
        loss = predicted.new_zeros(1)
        if field_weight:
            loss = loss + field_weight * field_error(predicted, truth)
        if statistics_weight:
            loss = loss + statistics_weight * statistics_error(predicted, truth, profile_weights)
        losses.append(loss[0])
    return torch.stack(losses).mean()


def pooled_statistics(states: torch.Tensor) -> PlaneStatistics:
    """Plane statistics pooled over a sequence of states ``(n_states, 3, nx, ny, nz)`` (u_tau): the
    moments over every plane of every state, each profile ``(1, ..., ny)``."""
    return plane_statistics(torch.cat(list(states.unbind(0)), dim=-3)[None])


def attractor_loss(
    solver: ChannelSolver,
    state: ChannelState,
    snapshots: int,
    steps: int,
    dt: float,
    target: PlaneStatistics,
    recompute: bool = True,
    profile_weights: Mapping[str, float] | None = None,
) -> tuple[torch.Tensor, ChannelState]:
    """The profile error of the statistics pooled over ``snapshots`` states, ``steps`` solver steps
    apart from ``state``, against ``target`` (e.g. :func:`pooled_statistics` of a long filtered-DNS
    record); returns the loss (0-d, with a graph to the closure) and the last state."""
    reached, state = _snapshots(solver, state, snapshots, steps, dt, recompute)
    return profile_error(pooled_statistics(torch.stack(reached)), target, profile_weights)[0], state


def _snapshots(
    solver: ChannelSolver, state: ChannelState, snapshots: int, steps: int, dt: float, recompute: bool
) -> tuple[list[torch.Tensor], ChannelState]:
    """The ``snapshots`` states ``steps`` solver steps apart from ``state``, each ``(3, nx, ny, nz)``
    at the cell centres, and the last state."""
    reached = []
    for _ in range(snapshots):
        state = unroll(solver, state, steps, dt, recompute)
        reached.append(torch.stack(solver.ops.to_centres(state.u, state.v, state.w)))
    return reached, state


def _detached(state: ChannelState) -> ChannelState:
    return replace(state, u=state.u.detach(), v=state.v.detach(), w=state.w.detach(), p=state.p.detach())


def train_closure_step(
    solver: ChannelSolver,
    samples: Sequence[ClosureSample] | Iterable[ClosureSample],
    optimizer: torch.optim.Optimizer,
    dt: float,
    statistics_weight: float = 0.0,
    recompute: bool = True,
    max_grad_norm: float = 1.0,
    field_weight: float = 1.0,
    profile_weights: Mapping[str, float] | None = None,
) -> float:
    """One optimiser step on the mean loss of ``samples``; returns that loss (before the step).

    The gradient is clipped to norm ``max_grad_norm``: an eddy viscosity past the explicit
    diffusion limit of ``dt`` makes the unrolled solver (and its gradient) explode, and one such
    gradient would otherwise wreck the optimiser's state. A non-finite loss leaves the weights
    as they were and returns NaN.
    """
    optimizer.zero_grad(set_to_none=True)
    loss = torch.stack(
        [a_posteriori_loss(solver, sample, dt, statistics_weight, recompute, field_weight, profile_weights)
         for sample in samples]
    ).mean()
    return _descend(optimizer, loss, max_grad_norm)


def _descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor, max_grad_norm: float) -> float:
    """Back-propagate ``loss``, clip the gradient and step (nothing for a non-finite loss: NaN)."""
    if not torch.isfinite(loss):
        return float("nan")
    loss.backward()
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
    optimizer.step()
    return float(loss.detach())


@dataclass
class _Carried:
    """LES states carried on one grid, with the closure LES ``solver`` of that grid."""

    solver: ChannelSolver
    states: list[ChannelState]


class _Attractor:
    """LES states carried on with the closure being trained (``training.start: attractor``).

    ``grids``: the states on each grid (the dataset's first, then one per ``start_fields`` file);
    ``target``: the training split's pooled statistics. Each :meth:`step` runs every state on
    ``gap`` steps without gradients, then takes one optimiser step on the mean over the grids of the
    mean :func:`attractor_loss` of their unrolls; the states move on to the unrolls' ends (back to
    where they were when the loss is not finite).
    """

    def __init__(self, case: ClosureCase, grids: list[_Carried], dt: float, target: PlaneStatistics) -> None:
        settings = case.training
        self.grids, self.dt, self.target, self.settings = grids, dt, target, settings
        self.spin_up_steps, self.gap_steps = (round(hours / dt) for hours in (settings.spin_up, settings.gap))
        self.select_snapshots = max(1, round(settings.select_hours / (dt * settings.steps_per_snapshot)))

    def settle(self, starts: list[ChannelState], solver: ChannelSolver) -> list[ChannelState]:
        """``starts`` run ``spin_up`` h/u_tau with ``solver``, no gradients."""
        with torch.no_grad():
            return [unroll(solver, state, self.spin_up_steps, self.dt, recompute=False) for state in starts]

    def loss(self, solver: ChannelSolver, state: ChannelState, target: PlaneStatistics, recompute: bool) -> tuple[torch.Tensor, ChannelState]:
        settings = self.settings
        return attractor_loss(solver, state, settings.snapshots, settings.steps_per_snapshot, self.dt, target,
                              recompute, settings.profile_weights)

    def _gap(self, grid: _Carried, state: ChannelState) -> ChannelState:
        with torch.no_grad():
            return unroll(grid.solver, state, self.gap_steps, self.dt, recompute=False)

    def step(self, optimizer: torch.optim.Optimizer) -> float:
        optimizer.zero_grad(set_to_none=True)
        losses, ends = [], []
        for grid in self.grids:
            reached = [self.loss(grid.solver, self._gap(grid, state), self.target, self.settings.recompute) for state in grid.states]
            losses.append(torch.stack([loss for loss, _ in reached]).mean())
            ends.append([_detached(end) for _, end in reached])
        value = _descend(optimizer, self.settings.statistics_weight * torch.stack(losses).mean(), self.settings.max_grad_norm)
        if math.isfinite(value):
            for grid, states in zip(self.grids, ends):
                grid.states = states
        return value

    def selection_loss(self) -> list[float]:
        """Run the states on ``gap`` and then ``select_hours`` h/u_tau with the closure, without gradients
        (the states move on to where they end); for each grid, the loss of the statistics pooled over
        every snapshot of the latter run against the training split's. All NaN, and the states stay,
        where one is not finite."""
        settings, losses, ends = self.settings, [], []
        with torch.no_grad():
            for grid in self.grids:
                runs = [_snapshots(grid.solver, self._gap(grid, state), self.select_snapshots, settings.steps_per_snapshot, self.dt, False)
                        for state in grid.states]
                pooled = pooled_statistics(torch.stack([snapshot for reached, _ in runs for snapshot in reached]))
                losses.append(float(settings.statistics_weight * profile_error(pooled, self.target, settings.profile_weights)[0]))
                ends.append([end for _, end in runs])
        if not all(math.isfinite(loss) for loss in losses):
            return [math.nan] * len(losses)
        for grid, states in zip(self.grids, ends):
            grid.states = states
        return losses

    def test_loss(self, solver: ChannelSolver, starts: list[ChannelState], target: PlaneStatistics) -> float:
        """The mean loss of one unroll after ``spin_up`` from each of ``starts`` with ``solver``."""
        with torch.no_grad():
            losses = [self.loss(solver, state, target, recompute=False)[0] for state in self.settle(starts, solver)]
        return float(self.settings.statistics_weight * torch.stack(losses).mean())


# ---------------------------------------------------------------------------------------------
# a training run on a dataset
# ---------------------------------------------------------------------------------------------
class _Samples:
    """The windows of one dataset split as closure samples for ``solver``."""

    def __init__(self, windows, solver: ChannelSolver, steps: int) -> None:
        self.windows, self.solver, self.steps = windows, solver, steps

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> ClosureSample:
        history, target = self.windows[index]
        start = float(self.windows.times(index)[0])
        return ClosureSample(self.solver.state_from_centres(history[0], start), target, self.steps)


def _solvers(case: ClosureCase, closure: NeuralEddyViscosity, train) -> dict[str, ChannelSolver]:
    """The LES with the closure and the no-model LES on the grid of the windows ``train``, at the
    flow rate of its first state."""
    first = train[0][0][0, 0].double()
    bulk = float((first.mean(dim=(0, 2)) * torch.as_tensor(train.grid.dy)).sum() / 2.0)
    return {
        label: ChannelSolver(
            train.grid, train.re_tau, "constant_flow_rate", bulk_velocity=bulk, sgs=sgs,
            device=case.training.device, dtype=train.dtype,
        )
        for label, sgs in (("closure", closure), ("none", None))
    }


def _start_field(path: str, solver: ChannelSolver) -> tuple[ChannelSolver, ChannelState]:
    """The LES with ``solver``'s closure, physics and flow rate on the grid of the field file ``path``,
    and the state of its last snapshot (``training.start_fields``)."""
    from .fields import FieldError, grid_of, open_fields

    try:
        ds = open_fields(path)
    except (FieldError, OSError) as exc:
        raise ConfigError(f"training.start_fields: {exc}") from None
    grid = grid_of(ds)
    if grid.ny != solver.grid.ny or not np.allclose(grid.y_faces, solver.grid.y_faces, rtol=0, atol=1e-10):
        raise ConfigError(
            f"training.start_fields: {path} has {grid.ny} wall-normal cells stretched {grid.stretching:g}, the dataset "
            f"{solver.grid.ny} stretched {solver.grid.stretching:g}: the statistics it is trained for are profiles on "
            f"the dataset's wall-normal cells"
        )
    les = ChannelSolver(grid, solver.re_tau, "constant_flow_rate", bulk_velocity=solver.bulk_velocity, sgs=solver.sgs,
                        device=solver.device, dtype=solver.dtype)
    return les, les.from_dataset(ds[["u", "v", "w"]].load())


def _mean_loss(solver: ChannelSolver, samples: list[ClosureSample], dt: float, case: ClosureCase) -> float:
    weights = {"statistics_weight": case.training.statistics_weight, "field_weight": case.training.field_weight,
               "profile_weights": case.training.profile_weights}
    with torch.no_grad():
        return float(torch.stack([a_posteriori_loss(solver, s, dt, recompute=False, **weights) for s in samples]).mean())


def _write_metrics(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, METRIC_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _read_metrics(path: Path, epoch: int) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return [row for row in csv.DictReader(handle) if int(row["epoch"]) <= epoch]


def train_closure(
    case: ClosureCase,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Train the closure of ``case`` through the solver on its dataset; returns ``closure.pt``.

    Raises
    ------
    ClosureTrainingError
        If the run folder already holds a run (without ``resume``/``overwrite``) or has nothing to
        resume.
    ConfigError
        If ``steps_per_snapshot`` gives a time step past the solver's stability limit.
    """
    settings = case.training
    dtype = getattr(torch, settings.dtype)
    folder = case.output_dir()
    paths = {name: folder / name for name in ("closure.pt", "checkpoint.pt", "metrics.csv")}
    torch.manual_seed(settings.seed)
    spec = case.closure
    try:
        closure = NeuralEddyViscosity(spec.hidden, spec.layers, spec.cs, spec.weights, **{part: getattr(spec, part) for part in CLOSURE_PARTS})
    except ValueError as exc:  # a closure file that is missing, unreadable or of other sizes or parts
        raise ConfigError(f"closure: {exc}") from None
    closure.networks().to(device=settings.device, dtype=dtype)

    from .data import WindowDataset

    windows = {
        split: WindowDataset(case.dataset, split, n_history=1, n_target=settings.snapshots, normalization=None, dtype=dtype)
        for split in ("train", "test")
    }
    solvers = _solvers(case, closure, windows["train"])
    if "mean_field" in closure.fresh_parts and not resume:
        _start_mean_field(closure, case.dataset, solvers["closure"])
    if "forcing_target" in closure.fresh_parts and not resume:
        _start_forcing_target(closure, case.dataset, solvers["closure"], settings.target_rate)
    trained = [module for part, module in closure.networks().items() if part not in settings.frozen]
    optimizer = torch.optim.Adam([p for module in trained for p in module.parameters()], lr=settings.lr)
    train_set, test_set = (_Samples(windows[split], solvers["closure"], settings.steps_per_snapshot) for split in ("train", "test"))
    n_test = min(settings.test_samples, len(test_set))
    test = [test_set[int(i)] for i in torch.linspace(0, len(test_set) - 1, n_test).round().long()]
    dt = train_set.windows.dt / settings.steps_per_snapshot
    others = [_start_field(path, solvers["closure"]) for path in settings.start_fields]
    with torch.no_grad():
        limit = min([solvers["closure"].stable_dt(sample.initial, cfl=1.0) for sample in test]
                    + [les.stable_dt(state, cfl=1.0) for les, state in others])
    if dt > limit:
        raise ConfigError(
            f"training.steps_per_snapshot = {settings.steps_per_snapshot} gives dt = {dt:.4g} h/u_tau, past the "
            f"solver's stability limit {limit:.4g} on the test states and start fields; use at least "
            f"{math.ceil(train_set.windows.dt / limit)}"
        )
    attractor = None
    if settings.start == "attractor":
        targets = {split: pooled_statistics(_split_states(case.dataset, split, dtype)) for split in ("train", "test")}
        grids = [_Carried(solver, []) for solver in (solvers["closure"], *(les for les, _ in others))]
        attractor = _Attractor(case, grids, dt, targets["train"])
        test_starts = [sample.initial for sample in test]

    def test_loss(solver: ChannelSolver) -> float:
        if attractor is None:
            return _mean_loss(solver, test, dt, case)
        return attractor.test_loss(solver, test_starts, targets["test"])

    epoch, best, rows = 0, math.inf, []
    if resume:
        require_checkpoint(paths["checkpoint.pt"], ClosureTrainingError)
        try:
            saved = torch.load(paths["checkpoint.pt"], map_location="cpu", weights_only=True)
            closure.networks().load_state_dict(saved["networks"])
            optimizer.load_state_dict(saved["optimizer"])
        except Exception as exc:  # truncated, or another network's weights
            raise ClosureTrainingError(f"cannot resume from {paths['checkpoint.pt']}: {type(exc).__name__}; start over with --overwrite") from None
        torch.set_rng_state(saved["rng"])
        epoch, best = int(saved["epoch"]), float(saved["best"])
        if attractor is not None:
            carried = saved["carried"]
            if carried and isinstance(carried[0], dict):  # a checkpoint of the dataset grid's states alone
                carried = [carried]
            for grid, held in zip(attractor.grids, carried):
                grid.states = [ChannelState.from_dict(state, grid.solver.device, grid.solver.dtype) for state in held]
        rows = _read_metrics(paths["metrics.csv"], epoch)
        log.info(f"{case.name}: resuming after epoch {epoch}")
    else:
        start_fresh(folder, paths.values(), overwrite=overwrite, what="a closure run", error=ClosureTrainingError)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "case.yaml").write_text(yaml.safe_dump(dump_config(case), sort_keys=False))
    no_model = test_loss(solvers["none"])
    if attractor is not None:
        picks = torch.linspace(0, len(train_set) - 1, settings.batch_size).round().long()
        starts = [[train_set[int(i)].initial for i in picks], *([state] for _, state in others)]
        for grid, first in zip(attractor.grids, starts):
            if not grid.states:
                grid.states = attractor.settle(first, grid.solver)
    selecting = attractor is not None and settings.select_hours > 0

    def scores() -> dict:
        """The test loss and, when ``select_hours``, the selection loss of the closure as it is now (the
        mean over the grids of each grid's)."""
        by_grid = attractor.selection_loss() if selecting else []
        return {"test_loss": test_loss(solvers["closure"]), "select_loss": sum(by_grid) / len(by_grid) if by_grid else "",
                "select_loss_by_grid": " ".join(f"{loss:.6g}" for loss in by_grid)}

    def score(row: dict) -> float:
        """What chooses ``closure.pt``: the selection loss, or else the test loss."""
        return float(row["select_loss" if selecting else "test_loss"])

    if not rows:
        rows = [{"epoch": 0, "train_loss": "", **scores(), "no_model_test_loss": no_model, "lr": settings.lr, "seconds": 0.0}]
        best = score(rows[0])
        closure.save(paths["closure.pt"])
    _write_metrics(paths["metrics.csv"], rows)
    log.info(
        f"{case.name}: closure with {sum(p.numel() for p in closure.networks().parameters())} weights, {len(train_set)} "
        f"training windows, {settings.steps_per_snapshot} steps of {dt:.4g} h/u_tau per snapshot; test loss of the "
        f"no-model LES {no_model:.5f}, of the untrained closure {float(rows[0]['test_loss']):.5f}"
    )
    bar = tqdm(total=settings.samples_per_epoch * (settings.epochs - epoch), disable=not progress, unit="sample", desc=case.name)
    try:
        while epoch < settings.epochs:
            started = time.perf_counter()
            losses = []
            if attractor is not None:  # the carried states, not drawn windows, start each unroll
                for _ in range(0, settings.samples_per_epoch, settings.batch_size):
                    losses.append(attractor.step(optimizer))
                    bar.update(settings.batch_size)
            else:
                order = torch.randperm(len(train_set))[: settings.samples_per_epoch].tolist()
                for k in range(0, len(order), settings.batch_size):
                    batch = [train_set[i] for i in order[k : k + settings.batch_size]]
                    losses.append(train_closure_step(
                        solvers["closure"], batch, optimizer, dt, settings.statistics_weight, settings.recompute,
                        settings.max_grad_norm, settings.field_weight, settings.profile_weights,
                    ))
                    bar.update(len(batch))
            epoch += 1
            row = scores()
            if score(row) < best:
                best = score(row)
                closure.save(paths["closure.pt"])
            carried = [] if attractor is None else [[state.to_dict() for state in grid.states] for grid in attractor.grids]
            save_torch(
                {"networks": closure.networks().state_dict(), "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
                 "epoch": epoch, "best": best, "carried": carried},
                paths["checkpoint.pt"],
            )
            finite = [value for value in losses if math.isfinite(value)]
            rows.append({"epoch": epoch, "train_loss": sum(finite) / len(finite) if finite else math.nan, **row,
                         "no_model_test_loss": no_model, "lr": settings.lr, "seconds": round(time.perf_counter() - started, 3)})
            _write_metrics(paths["metrics.csv"], rows)
            selected = f", selection {row['select_loss']:.5f}" if selecting else ""
            if selecting and len(attractor.grids) > 1:
                selected += f" (by grid {row['select_loss_by_grid']})"
            bar.write(f"epoch {epoch}/{settings.epochs}: train {rows[-1]['train_loss']:.5f}, test {row['test_loss']:.5f}{selected} (no model {no_model:.5f})")
    finally:
        bar.close()
    return paths["closure.pt"]


def _split_states(dataset: str, split: str, dtype: torch.dtype) -> torch.Tensor:
    """Every state of a dataset split, ``(n_times, 3, nx, ny, nz)`` in u_tau."""
    from .evaluation import open_run

    record = open_run(dataset, split=split)
    return torch.stack([torch.as_tensor(record[name].values, dtype=dtype) for name in ("u", "v", "w")], dim=1)


def _training_profiles(dataset: str):
    """The unfolded one-point profiles (:func:`surrogate.stats.mean_profiles`) of the dataset's
    training split, an ``xarray.Dataset`` over its ``ny`` cell centres."""
    from .evaluation import open_run
    from .stats import mean_profiles

    return mean_profiles(open_run(dataset, split="train")[["u", "v", "w"]], fold=False)


def _start_forcing_target(closure: NeuralEddyViscosity, dataset: str, solver: ChannelSolver, rate: float) -> None:
    """Fit the closure's forcing target to the resolved plane energies of the training split's
    filtered DNS (squared rms profiles, symmetrised about the centreline) at the rate ``rate``."""
    profiles = _training_profiles(dataset)
    energies = torch.stack([torch.as_tensor(profiles[f"{name}_rms"].values, dtype=solver.dtype) ** 2 for name in "uvw"])
    energies = 0.5 * (energies + energies.flip(-1))
    misfit = closure.fit_forcing_target(solver.ops, solver.nu, energies, rate)
    centre = energies[:, energies.shape[1] // 2].tolist()
    log.info(
        f"forcing target from the training split's resolved energies: centreline u, v, w "
        f"{', '.join(f'{e:.3f}' for e in centre)} u_tau^2, rate {rate:g} u_tau/h, fitted to {misfit:.1%}"
    )


def _start_mean_field(closure: NeuralEddyViscosity, dataset: str, solver: ChannelSolver) -> None:
    """Fit the closure's mean-field part to the a-priori estimate of the training split's statistics."""
    from .solver.neural_sgs import a_priori_mean_field_viscosity

    profiles = _training_profiles(dataset)
    mean_u, uv = (torch.as_tensor(profiles[name].values, dtype=solver.dtype) for name in ("U", "uv"))
    target = a_priori_mean_field_viscosity(solver.ops, solver.nu, mean_u, uv)
    misfit = closure.fit_mean_field(solver.ops, solver.nu, target)
    log.info(
        f"mean-field eddy viscosity from the training split's momentum balance: max nu_T / nu "
        f"{float(target.max()) / solver.nu:.2f}, fitted to {misfit:.1%}"
    )

