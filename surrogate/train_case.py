"""Training case files: a surrogate, the dataset it learns from, how it is trained and rolled out.

Run by ``surrogate train CASE`` and ``surrogate rollout CASE``::

    name: ifactformer_m_quick
    dataset: ../datasets/dataset_quick      # folder with manifest.yaml (relative to this file or cwd)
    model: {name: ifactformer_m, preset: cpu, parameters: {n_layer: 4}}
    data: {n_history: 1, normalization: component, in_memory: true}
    training: {epochs: 30, batch_size: 5, lr: 5.0e-4, schedule: step, step_size: 5, gamma: 0.7}
    rollout: {steps: 200, project: true}
    output: runs/{name}

Defaults follow the IFactFormer-m study (AdamW, lr 5e-4, batch 5, 30 epochs, step schedule of
5 epochs with factor 0.7, relative L2 loss). Times are in h/u_tau.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

from .config import _check_placeholders, _require, load_config, resolve_path

__all__ = ["DataConfig", "ModelConfig", "RolloutConfig", "TrainCase", "TrainingConfig", "load_train_case"]


@dataclass
class ModelConfig:
    """Which model: a registered ``name`` (see ``surrogate.models.available_models()``), an
    optional named ``preset`` (``paper`` or ``cpu``) and ``parameters`` overriding it."""

    name: str
    preset: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """How samples are drawn from the dataset (see :class:`surrogate.data.WindowDataset`)."""

    n_history: int = 1
    n_target: int = 1
    stride: int = 1
    normalization: Literal["plane", "component"] = "component"
    in_memory: bool = True
    num_workers: int = 0

    def validate(self) -> None:
        """Positive window sizes and a non-negative worker count."""
        for name in ("n_history", "n_target", "stride"):
            _require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        _require(self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}")


@dataclass
class TrainingConfig:
    """Optimisation settings.

    ``schedule``: ``step`` (multiply the rate by ``gamma`` every ``step_size`` epochs),
    ``cosine`` (linear warm-up over ``warmup_epochs``, then cosine decay to 0) or ``onecycle``.
    ``divergence_weight`` and ``spectral_weight`` add a penalty on the divergence of the
    prediction and a relative error of its x-z energy spectrum to the relative L2 loss.
    ``amp``: ``bf16`` runs forward and loss under bfloat16 autocast; ``none`` in full precision.
    ``max_batches`` limits the batches per epoch (``null``: all).
    """

    epochs: int = 30
    batch_size: int = 5
    lr: float = 5e-4
    weight_decay: float = 1e-4
    schedule: Literal["step", "cosine", "onecycle"] = "step"
    step_size: int = 5
    gamma: float = 0.7
    warmup_epochs: int = 0
    grad_clip: float | None = 1.0
    divergence_weight: float = 0.0
    spectral_weight: float = 0.0
    amp: Literal["none", "bf16"] = "none"
    seed: int = 0
    deterministic: bool = True
    device: str = "cpu"
    max_batches: int | None = None

    def validate(self) -> None:
        """Positive sizes and rates, weights >= 0."""
        for name in ("epochs", "batch_size", "step_size"):
            _require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        _require(self.lr > 0 and math.isfinite(self.lr), f"lr must be positive, got {self.lr}")
        _require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _require(0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}")
        _require(0 <= self.warmup_epochs < self.epochs, f"warmup_epochs must be in [0, epochs), got {self.warmup_epochs}")
        _require(self.grad_clip is None or self.grad_clip > 0, f"grad_clip must be positive or null, got {self.grad_clip}")
        for name in ("divergence_weight", "spectral_weight"):
            _require(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        _require(self.max_batches is None or self.max_batches >= 1, f"max_batches must be >= 1 or null, got {self.max_batches}")


@dataclass
class RolloutConfig:
    """Autoregressive rollout: ``steps`` predictions from the ``start`` window of the ``split``.

    ``project`` projects every prediction onto divergence-free fields with zero velocity at the
    walls; the rollout stops (keeping what it made) when a field turns non-finite or its energy
    exceeds ``energy_bound`` times that of the initial state. ``checkpoint``: ``best`` (lowest test
    loss) or ``last``.
    """

    steps: int = 100
    split: str = "test"
    start: int = 0
    project: bool = False
    energy_bound: float = 10.0
    checkpoint: Literal["best", "last"] = "best"

    def validate(self) -> None:
        """Positive counts and bound."""
        _require(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        _require(self.start >= 0, f"start must be >= 0, got {self.start}")
        _require(self.energy_bound > 1, f"energy_bound must be > 1, got {self.energy_bound}")


@dataclass
class TrainCase:
    """A surrogate training (and rollout) case."""

    name: str
    dataset: str
    model: ModelConfig
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    output: str = "runs/{name}"
    description: str = ""

    def validate(self) -> None:
        """A usable name and output template."""
        _require(bool(self.name.strip()) and "/" not in self.name, f"name must be a folder name, got {self.name!r}")
        _check_placeholders(self.output)

    def output_dir(self) -> Path:
        """The run folder: ``output`` with ``{name}`` replaced."""
        return Path(self.output.format(name=self.name))


def load_train_case(path: str | PathLike[str] | Mapping[str, Any], overrides: Iterable[str] = ()) -> TrainCase:
    """Load a training case; a relative ``dataset`` is resolved against the case file's folder
    when it exists there, else against the working directory.

    Raises
    ------
    ConfigError
        For unknown keys or bad values, naming the key and what was expected.
    """
    case = load_config(TrainCase, path, overrides)
    base = Path(path).parent if isinstance(path, (str, PathLike)) else Path(".")
    case.dataset = str(resolve_path(case.dataset, base))
    return case
