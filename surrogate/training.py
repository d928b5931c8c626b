r"""Training a surrogate on a filtered-DNS dataset: ``surrogate train CASE``.

The loss of one sample is the relative L2 error of the predicted next state in physical units
(u_tau), as in the IFactFormer-m study,

.. math:: \mathcal{L} = \frac{\lVert \hat q - q \rVert_2}{\lVert q \rVert_2},

averaged over the batch and, with ``n_target > 1``, over an autoregressive unroll of
``n_target`` steps (each prediction fed back as input). Optional penalties: the mean square
size of the part of the prediction that is not divergence-free, relative to the rest
(``divergence_weight``, see :mod:`surrogate.projection`), and the relative L2 error of the amplitude of the x-z Fourier
coefficients, i.e. of the energy spectrum (``spectral_weight``).

AdamW with a step, warm-up + cosine or one-cycle schedule (stepped per batch), gradient
clipping, optional bfloat16 autocast. The run folder holds

* ``checkpoint.pt`` — the last finished epoch: model name, arguments and weights, optimiser,
  schedule, epoch, RNG states, normalisation statistics, the case (written atomically);
* ``best.pt`` — the model with the lowest test loss so far (what ``surrogate rollout`` uses);
* ``metrics.csv`` — one row per epoch: losses, learning rate, wall time, throughput;
* ``case.yaml`` — the case as run.

Batches are drawn from a permutation seeded by ``(seed, epoch)``, so ``--resume`` reaches the
same weights as an uninterrupted run on the CPU (deterministic mode). Under ``torchrun`` with
``N`` processes each global batch is split between the ranks (``batch[r::N]``) and each rank's
loss is scaled so that the averaged gradient equals the single-process gradient of the whole
batch: the loss curve matches one process to round-off.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.distributed as dist
import yaml
from tqdm.auto import tqdm

from .config import ConfigError, TrainCase, dump_config
from .data import Normalization, WindowDataset
from .losses import divergence_error, field_error, profile_error, relative_l2, spectral_error, statistics_error
from .mean_flow import PlaneStatistics, plane_statistics
from .projection import CentredProjection
from .run_folder import require_checkpoint, start_fresh
from .models import SurrogateModel, build_model, count_parameters, load_model, save_model

log = logging.getLogger(__name__)

__all__ = [
    "TrainingError",
    "divergence_error",
    "load_trained_model",
    "relative_l2",
    "spectral_error",
    "train",
]

METRIC_COLUMNS = ("epoch", "train_loss", "test_loss", "rollout_error", "lr", "seconds", "samples_per_second")


class TrainingError(RuntimeError):
    """A training run cannot start or continue (folder, checkpoint or loss problem)."""


# ---------------------------------------------------------------------------- distributed


def _distributed() -> tuple[int, int]:
    """``(rank, world_size)``, initialising the process group under ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() and os.environ.get("SURROGATE_BACKEND") != "gloo" else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _close_distributed(finished: bool) -> None:
    """Leave the process group: after a barrier when the run finished, so that no rank exits
    while another still writes its last checkpoint (gloo aborts a process left waiting)."""
    if not dist.is_initialized():
        return
    if finished:
        dist.barrier()
    dist.destroy_process_group()


def _all_sum(values: list[float], device: torch.device) -> list[float]:
    if not dist.is_initialized():
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


# ---------------------------------------------------------------------------- the run


def _schedule(optimizer: torch.optim.Optimizer, training: Any, steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    total = training.epochs * steps_per_epoch
    if training.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=training.lr, total_steps=total)
    if training.schedule == "step":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: training.gamma ** ((step // steps_per_epoch) // training.step_size)
        )
    warmup = training.warmup_epochs * steps_per_epoch

    def cosine(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)


def _batches(n: int, batch_size: int, seed: int, epoch: int, limit: int | None) -> list[torch.Tensor]:
    """The epoch's global batches: a permutation of ``range(n)`` seeded by ``(seed, epoch)``."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    batches = list(torch.randperm(n, generator=generator).split(batch_size))
    return batches[:limit] if limit else batches


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


class _Run:
    """One training run: data, model, optimiser, and the loops over epochs and batches."""

    def __init__(self, case: TrainCase, progress: bool) -> None:
        self.case, self.progress = case, progress
        self.rank, self.world = _distributed()
        training, data = case.training, case.data
        self.device = torch.device(training.device)
        torch.manual_seed(training.seed)
        np.random.seed(training.seed)
        random.seed(training.seed)
        if training.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        options = dict(
            n_history=data.n_history,
            normalization=data.normalization,
            in_memory=data.in_memory,
        )
        self.train_set = WindowDataset(
            case.dataset, "train", n_target=data.n_target, stride=data.stride, augment=data.augment, seed=training.seed, **options
        )
        manifest = self.train_set.manifest
        self.test_set = WindowDataset(case.dataset, "test", n_target=1, **options) if manifest["splits"].get("test") else None
        self.norm: Normalization = self.train_set.normalization
        self.coords = self.train_set.coordinates(self.device)
        self.projection = CentredProjection(self.train_set.grid, self.device) if training.divergence_weight else None
        arguments = {"n_history": data.n_history, "n_var": len(self.train_set.variables), **case.model.parameters}
        try:
            self.module: SurrogateModel = build_model(case.model.name, case.model.preset, **arguments).to(self.device)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"case {case.name!r}, section 'model': {exc}") from None
        self.model: torch.nn.Module = self.module
        if self.world > 1:
            self.model = torch.nn.parallel.DistributedDataParallel(self.module)
        self.optimizer = torch.optim.AdamW(self.module.parameters(), lr=training.lr, weight_decay=training.weight_decay)
        self.steps_per_epoch = math.ceil(len(self.train_set) / training.batch_size)
        if training.max_batches:
            self.steps_per_epoch = min(self.steps_per_epoch, training.max_batches)
        self.scheduler = _schedule(self.optimizer, training, self.steps_per_epoch)
        self.epoch = 0
        self.best = math.inf
        self.folder = case.output_dir()
        self.loss_fn = relative_l2 if training.loss == "relative_l2" else field_error
        self.reference_stats = self.first_window = None
        if training.selection == "rollout":
            self.reference_stats = _split_statistics(self.train_set)
            self.first_window = torch.as_tensor(self.train_set.window(0)[: data.n_history])

    # -------------------------------------------------------------- pieces
    def _autocast(self):
        if self.case.training.amp == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _stack(self, indices: list[int], dataset: WindowDataset) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [dataset[i] for i in indices]
        return (
            torch.stack([p[0] for p in pairs]).to(self.device),
            torch.stack([p[1] for p in pairs]).to(self.device),
        )

    def _loss(self, history: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Summed per-sample loss over the local batch (unrolled over the target window).

        The first ``training.pushforward`` steps of the unroll are made without gradient and
        not counted; the loss is the mean over the remaining steps, of which the first
        ``training.field_steps`` (all when unset) count the field error and the later ones the
        statistics error alone.
        """
        training = self.case.training
        window, total = history, 0.0
        if training.input_noise:
            window = window + training.input_noise * torch.randn_like(window)
        n_target = target.shape[1]
        for k in range(n_target):
            counted = k >= training.pushforward
            with self._autocast(), (nullcontext() if counted else torch.no_grad()):
                pred = self.model(window, self.coords)
            pred = pred.float()
            if counted:
                field = training.field_steps is None or k - training.pushforward < training.field_steps
                total = total + self._step_loss(self.norm.denormalize(pred), self.norm.denormalize(target[:, k]), field).sum()
            window = torch.cat([window[:, 1:], pred[:, None]], dim=1)
        return total / (n_target - training.pushforward)

    def _step_loss(self, pred: torch.Tensor, true: torch.Tensor, field: bool = True) -> torch.Tensor:
        """Per-sample loss of one predicted state in physical units, ``(batch,)``; without
        ``field`` the statistics error alone (with its weight)."""
        training = self.case.training
        if not field:
            return training.statistics_weight * statistics_error(pred, true, training.statistics_terms)
        loss = self.loss_fn(pred, true)
        if training.statistics_weight:
            loss = loss + training.statistics_weight * statistics_error(pred, true, training.statistics_terms)
        if training.divergence_weight:
            loss = loss + training.divergence_weight * divergence_error(pred, self.projection)
        if training.spectral_weight:
            loss = loss + training.spectral_weight * spectral_error(pred, true, include_mean=False)
        return loss

    def _train_epoch(self, bar: tqdm) -> float:
        training = self.case.training
        self.model.train()
        self.train_set.set_epoch(self.epoch)
        batches = _batches(len(self.train_set), training.batch_size, training.seed, self.epoch, training.max_batches)
        sums = [0.0, 0.0]
        for batch in batches:
            local = batch[self.rank :: self.world].tolist()
            self.optimizer.zero_grad(set_to_none=True)
            if local:
                history, target = self._stack(local, self.train_set)
                loss_sum = self._loss(history, target)
            else:  # a rank without samples in a short last batch still joins the gradient reduction
                loss_sum = sum(p.sum() * 0.0 for p in self.module.parameters())
            # DDP averages gradients over ranks: scale so the result is the mean over the global batch
            (loss_sum * self.world / len(batch)).backward()
            if training.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.module.parameters(), training.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            loss_value = float(loss_sum.detach())
            if not math.isfinite(loss_value):
                raise TrainingError(
                    f"the training loss became {loss_value} in epoch {self.epoch + 1}; lower training.lr or enable "
                    "training.grad_clip (the last checkpoint is kept)"
                )
            sums[0] += loss_value
            sums[1] += len(local)
            bar.update(len(batch))
            bar.set_postfix(loss=f"{sums[0] / max(sums[1], 1):.4f}", refresh=False)
        total, count = _all_sum(sums, self.device)
        return total / count

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean one-step relative L2 error over the test windows (``nan`` without a test split)."""
        if self.test_set is None:
            return math.nan
        self.model.eval()
        sums = [0.0, 0.0]
        indices = list(range(self.rank, len(self.test_set), self.world))
        for start in range(0, len(indices), self.case.training.batch_size):
            history, target = self._stack(indices[start : start + self.case.training.batch_size], self.test_set)
            with self._autocast():
                pred = self.module(history, self.coords)
            err = relative_l2(self.norm.denormalize(pred.float()), self.norm.denormalize(target[:, 0]))
            sums[0] += float(err.sum())
            sums[1] += len(err)
        total, count = _all_sum(sums, self.device)
        return total / count

    def rollout_error(self) -> float:
        """Statistics error of a ``selection_steps`` rollout from the first training window (``nan`` unless selected by it).

        The mean relative L2 error over y of mean u, the three rms and ``<u'v'>`` of the
        rollout's states against those of the training split, plus the log-ratio of their step
        changes (:func:`_statistics_distance`), with the case's rollout constraints; ``inf``
        when the rollout stops early.
        """
        if self.reference_stats is None or self.rank != 0:
            return math.nan
        from .rollout import Predictions

        training = self.case.training
        data = self.train_set
        predictions = Predictions(
            self.module, self.first_window, normalization=self.norm, grid=data.grid, dt=data.dt, re_tau=data.re_tau,
            constraints=self.case.rollout.constraints(), energy_bound=self.case.rollout.energy_bound, device=self.device,
        )
        states = list(predictions.run(training.selection_steps))
        self.module.train()
        if len(states) < training.selection_steps:
            return math.inf
        return _statistics_distance(torch.stack(states).cpu(), self.reference_stats)

    # -------------------------------------------------------------- checkpoints
    def _extra(self) -> dict[str, Any]:
        return {
            "normalization": asdict(self.norm),
            "case": dump_config(self.case),
            "grid": asdict(self.train_set.grid),
            "dt": self.train_set.dt,
            "re_tau": self.train_set.re_tau,
            "variables": list(self.train_set.variables),
            "n_history": self.case.data.n_history,
        }

    def save(self, score: float) -> None:
        """Write ``checkpoint.pt``, and ``best.pt`` when ``score`` (the selection measure) is the lowest so far."""
        if self.rank != 0:
            return
        extra = {
            **self._extra(),
            "epoch": self.epoch,
            "best": self.best,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": _rng_state(),
        }
        save_model(self.module, self.folder / "checkpoint.pt", extra)
        if score <= self.best or math.isnan(score):
            save_model(
                self.module,
                self.folder / "best.pt",
                {**self._extra(), "epoch": self.epoch, "test_loss": self.last_test_loss, "selection_score": score},
            )

    def restore(self) -> None:
        path = require_checkpoint(self.folder / "checkpoint.pt", TrainingError)
        try:
            model, checkpoint = load_model(path, map_location=self.device)
        except ValueError as exc:
            raise TrainingError(f"cannot resume: {exc}; start over with --overwrite") from None
        if checkpoint["model"] != self.module.registry_name or checkpoint["hparams"] != self.module.hparams:
            raise TrainingError(
                f"{path} holds {checkpoint['model']} {checkpoint['hparams']}, but the case builds "
                f"{self.module.registry_name} {self.module.hparams}; resume with the case it was started with"
            )
        self.module.load_state_dict(model.state_dict())
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        _set_rng_state(checkpoint["rng"])
        self.epoch, self.best = checkpoint["epoch"], checkpoint["best"]

    # -------------------------------------------------------------- the loop
    def run(self, resume: bool, overwrite: bool) -> Path:
        folder, metrics = self.folder, self.folder / "metrics.csv"
        if resume:
            self.restore()
            log.info(f"{self.case.name}: resuming after epoch {self.epoch}")
        elif self.rank == 0:
            start_fresh(folder, [folder / "checkpoint.pt", folder / "best.pt", metrics], overwrite=overwrite,
                        what="a training run", error=TrainingError)
        if self.rank == 0:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "case.yaml").write_text(yaml.safe_dump(dump_config(self.case), sort_keys=False))
            _truncate_metrics(metrics, self.epoch)
            log.info(
                f"{self.case.name}: {self.module.registry_name} with {count_parameters(self.module):,} parameters, "
                f"{len(self.train_set)} training windows, {self.world} process(es)"
            )
        training = self.case.training
        n_samples = min(len(self.train_set), self.steps_per_epoch * training.batch_size)
        bar = tqdm(
            total=n_samples * (training.epochs - self.epoch),
            disable=not self.progress or self.rank != 0,
            unit="sample",
            desc=self.case.name,
        )
        try:
            while self.epoch < training.epochs:
                started = time.perf_counter()
                lr = self.optimizer.param_groups[0]["lr"]
                train_loss = self._train_epoch(bar)
                seconds = time.perf_counter() - started
                test_loss = self.last_test_loss = self.evaluate()
                rollout_error = self.rollout_error()
                score = rollout_error if training.selection == "rollout" else test_loss
                self.epoch += 1
                if not math.isnan(score):
                    self.best = min(self.best, score)
                self.save(score)
                if self.rank == 0:
                    _append_metrics(
                        metrics,
                        {
                            "epoch": self.epoch,
                            "train_loss": train_loss,
                            "test_loss": test_loss,
                            "rollout_error": rollout_error,
                            "lr": lr,
                            "seconds": round(seconds, 3),
                            "samples_per_second": round(n_samples / seconds, 3),
                        },
                    )
                    selected = f", rollout statistics {rollout_error:.4f}" if training.selection == "rollout" else ""
                    bar.write(f"epoch {self.epoch}/{training.epochs}: train {train_loss:.5f}, test {test_loss:.5f}{selected}")
        finally:
            bar.close()
        return folder


def step_change(states: torch.Tensor) -> float:
    """Rms change of the velocity from one state to the next, ``(time, 3, nx, ny, nz)`` -> u_tau.

    About 1 u_tau per 0.2 h/u_tau in the filtered DNS at Re_tau = 180; 0 for a rollout frozen in a
    steady field, however good its statistics.
    """
    return float((states[1:, :3] - states[:-1, :3]).double().square().mean().sqrt())


def _split_statistics(dataset: WindowDataset) -> tuple[PlaneStatistics, float]:
    """Plane statistics and the step change (:func:`step_change`) of the training split.

    Statistics over the first snapshot of every window: means over snapshots of the plane means,
    of the mean square fluctuations (then the root) and of ``<u'v'>``, ``<v'w'>``, each ``(..., ny)``;
    the step change over the first two snapshots of every window.
    """
    windows = [torch.as_tensor(dataset.window(i)[:2]).double() for i in range(len(dataset))]
    stats = _time_average(plane_statistics(torch.stack([w[0, :3] for w in windows])))
    change = float(torch.stack([(w[1, :3] - w[0, :3]).square().mean() for w in windows]).mean().sqrt())
    return stats, change


def _time_average(stats: PlaneStatistics) -> PlaneStatistics:
    return PlaneStatistics(stats.mean.mean(0), stats.rms.square().mean(0).sqrt(), stats.uv.mean(0), stats.vw.mean(0))


def _statistics_distance(states: torch.Tensor, reference: tuple[PlaneStatistics, float]) -> float:
    """How far a rollout's statistics are from the training split's.

    The mean relative L2 error of mean u, the rms of u, v, w and ``<u'v'>`` of the time-averaged
    plane statistics of ``states`` ``(time, 3, nx, ny, nz)``, plus ``|log(c / c_ref)|`` of the step
    changes (:func:`step_change`), which a frozen or an over-agitated rollout makes large.
    """
    (b, change), a = reference, _time_average(plane_statistics(states.double()))
    batch = lambda stats: PlaneStatistics(*(x[None] for x in stats))  # noqa: E731
    profiles = float(profile_error(batch(a), batch(b))[0])
    return profiles + abs(math.log(max(step_change(states), 1e-12) / change))


def _truncate_metrics(path: Path, epoch: int) -> None:
    rows = []
    if path.exists():
        with open(path, newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if int(row["epoch"]) <= epoch]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, METRIC_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _append_metrics(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a", newline="") as handle:
        csv.DictWriter(handle, METRIC_COLUMNS).writerow(row)


def train(
    case: TrainCase,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Train the model of ``case`` on its dataset; returns the run folder.

    Parameters
    ----------
    case
        The training case (see :mod:`surrogate.config.training`).
    resume
        Continue from the folder's ``checkpoint.pt`` (the same case; ``training.epochs`` may grow).
    overwrite
        Start afresh, deleting an earlier run's checkpoints and metrics.
    progress
        Show a progress bar (rank 0 only under ``torchrun``); one-line messages go to the
        ``surrogate`` logger.

    Raises
    ------
    TrainingError
        If the folder holds a run and neither ``resume`` nor ``overwrite`` is given, the
        checkpoint belongs to another model, or the loss turns non-finite.
    """
    finished = False
    try:
        folder = _Run(case, progress).run(resume, overwrite)
        finished = True
        return folder
    finally:
        _close_distributed(finished)


def load_trained_model(path: str | os.PathLike[str], map_location: Any = "cpu") -> tuple[SurrogateModel, dict[str, Any]]:
    """A trained model and its checkpoint (``best.pt`` or ``checkpoint.pt`` of a run folder).

    The checkpoint's ``"normalization"`` entry is rebuilt as a :class:`Normalization`.
    """
    try:
        model, checkpoint = load_model(path, map_location=map_location)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    if "normalization" not in checkpoint:
        raise TrainingError(f"{path} holds no normalisation statistics: not written by surrogate train")
    checkpoint["normalization"] = Normalization(**checkpoint["normalization"])
    return model.eval(), checkpoint
