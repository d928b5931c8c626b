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
from os import PathLike
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping

from pydantic import Field, model_validator

from .base import ConfigModel, NamedCase, Float, device_problem, load_config, require, resolve_path, source_folder

if TYPE_CHECKING:
    from ..constraints import ConstraintSettings

__all__ = [
    "DataConfig", "ModelConfig", "RolloutConfig", "TrainCase", "TrainingConfig", "check_unrolled_steps", "load_train_case",
]


class ModelConfig(ConfigModel):
    """Which model: a registered ``name`` (see ``surrogate.models.available_models()``), an
    optional named ``preset`` (``paper`` or ``cpu``) and ``parameters`` overriding it."""

    name: str
    preset: str | None = None
    parameters: dict[str, Any] = {}


class DataConfig(ConfigModel):
    """How samples are drawn from the dataset (see :class:`surrogate.data.WindowDataset`)."""

    n_history: int = 1
    n_target: int = 1
    stride: int = 1
    normalization: Literal["plane", "component"] = "component"
    in_memory: bool = True
    num_workers: int = 0
    augment: list[str] = []

    @model_validator(mode="after")
    def check(self) -> DataConfig:
        """Positive window sizes, a non-negative worker count, known symmetries."""
        from ..data.windows import AUGMENTATIONS

        for name in ("n_history", "n_target", "stride"):
            require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        require(self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}")
        unknown = [name for name in self.augment if name not in AUGMENTATIONS]
        require(not unknown, f"augment: unknown symmetries {unknown}; expected any of {list(AUGMENTATIONS)}")
        return self


class TrainingConfig(ConfigModel):
    """Optimisation settings.

    ``schedule``: ``step`` (multiply the rate by ``gamma`` every ``step_size`` epochs),
    ``cosine`` (linear warm-up over ``warmup_epochs``, then cosine decay to 0) or ``onecycle``.
    ``loss``: ``relative_l2`` (of the whole field, as in the IFactFormer-m study) or ``field``
    (each component's fluctuations and mean profile on the scale of its own fluctuations, see
    :mod:`surrogate.losses`). ``statistics_weight``, ``divergence_weight`` and
    ``spectral_weight`` add the error of the plane statistics, a penalty on the divergence and
    the error of the x-z spectrum without the plane mean; ``statistics_terms`` weighs the
    profiles within the statistics error (``{w_rms: 0.5}``; those not named weigh 1, see
    :data:`surrogate.losses.PROFILES`). With ``data.n_target > 1`` the loss is
    averaged over the unrolled steps after the first ``pushforward`` ones, which are made
    without gradient; with ``field_steps`` set, only the first ``field_steps`` of the counted
    steps count the field error and the later ones the statistics error alone (a chaotic flow
    makes the state several steps ahead unpredictable, its plane statistics not); ``input_noise`` adds Gaussian noise of that standard deviation (in
    normalised units) to every input window. ``selection``: ``test_loss`` keeps as ``best.pt``
    the epoch with the lowest one-step test loss; ``rollout`` the one whose rollout of
    ``selection_steps`` steps from the first training window (with the case's rollout
    constraints) has the plane statistics and the change per step closest to those of the training
    split (a rollout frozen in a steady field scores badly however good its statistics).
    ``amp``: ``bf16`` runs forward and loss under bfloat16 autocast; ``none`` in full precision.
    ``max_batches`` limits the batches per epoch (``null``: all).
    """

    epochs: int = 30
    batch_size: int = 5
    lr: Float = 5e-4
    weight_decay: Float = 1e-4
    schedule: Literal["step", "cosine", "onecycle"] = "step"
    step_size: int = 5
    gamma: Float = 0.7
    warmup_epochs: int = 0
    grad_clip: Float | None = 1.0
    loss: Literal["relative_l2", "field"] = "relative_l2"
    statistics_weight: Float = 0.0
    statistics_terms: dict[str, Float] = {}
    divergence_weight: Float = 0.0
    spectral_weight: Float = 0.0
    pushforward: int = 0
    field_steps: int | None = None
    input_noise: Float = 0.0
    selection: Literal["test_loss", "rollout"] = "test_loss"
    selection_steps: int = 200
    amp: Literal["none", "bf16"] = "none"
    seed: int = 0
    deterministic: bool = True
    device: str = "cpu"
    max_batches: int | None = None

    @model_validator(mode="after")
    def check(self) -> TrainingConfig:
        """Positive sizes and rates, weights >= 0."""
        from ..losses import PROFILES

        for name in ("epochs", "batch_size", "step_size"):
            require(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        require(self.lr > 0 and math.isfinite(self.lr), f"lr must be positive, got {self.lr}")
        require(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        require(0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}")
        require(0 <= self.warmup_epochs < self.epochs, f"warmup_epochs must be in [0, epochs), got {self.warmup_epochs}")
        require(self.grad_clip is None or self.grad_clip > 0, f"grad_clip must be positive or null, got {self.grad_clip}")
        for name in ("statistics_weight", "divergence_weight", "spectral_weight", "pushforward", "input_noise"):
            require(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        require(self.field_steps is None or self.field_steps >= 1, f"field_steps must be >= 1 or null, got {self.field_steps}")
        require(
            self.field_steps is None or self.statistics_weight > 0,
            f"field_steps ({self.field_steps}) leaves the later unrolled steps only the statistics error: set statistics_weight > 0",
        )
        unknown = [name for name in self.statistics_terms if name not in PROFILES]
        require(not unknown, f"statistics_terms: unknown profile(s) {unknown}; expected any of {list(PROFILES)}")
        weights = [self.statistics_terms.get(name, 1.0) for name in PROFILES]
        require(min(weights) >= 0 and sum(weights) > 0, f"statistics_terms must be >= 0 and not all 0, got {self.statistics_terms}")
        require(self.selection_steps >= 1, f"selection_steps must be >= 1, got {self.selection_steps}")
        require(self.max_batches is None or self.max_batches >= 1, f"max_batches must be >= 1 or null, got {self.max_batches}")
        problem = device_problem(self.device)
        require(problem is None, str(problem))
        return self


class RolloutConfig(ConfigModel):
    """Autoregressive rollout: ``steps`` predictions from the ``start`` window of the ``split``.

    What is imposed on every prediction (see :mod:`surrogate.constraints`): ``mean_momentum``
    advances the mean u and w profiles by the mean-momentum equation with the predicted
    Reynolds stresses at the initial state's flow rate; ``zero_mean_v`` removes the plane mean
    of v; ``project`` projects onto divergence-free fields with zero velocity at the walls;
    ``hold_flow_rate`` shifts the mean u to the initial state's bulk velocity. The rollout stops
    (keeping what it made) when a field turns non-finite or its energy
    exceeds ``energy_bound`` times that of the initial state. ``checkpoint``: ``best`` (lowest test
    loss) or ``last``. A rollout file larger than ``max_output_gb`` (or the free disk space) is
    refused before it starts; ``output_every`` writes every so many predictions (1: all).
    ``compile`` runs the model through :func:`torch.compile` (seconds to a minute once, then
    about twice as fast on a CPU).
    """

    steps: int = 100
    split: str = "test"
    start: int = 0
    mean_momentum: bool = False
    zero_mean_v: bool = False
    project: bool = False
    hold_flow_rate: bool = False
    energy_bound: Float = 10.0
    checkpoint: Literal["best", "last"] = "best"
    max_output_gb: Float = 2.0
    output_every: int = 1
    compile: bool = False

    def constraints(self) -> ConstraintSettings:
        """The constraints this rollout imposes."""
        from ..constraints import ConstraintSettings

        return ConstraintSettings(self.mean_momentum, self.zero_mean_v, self.project, self.hold_flow_rate)

    @model_validator(mode="after")
    def check(self) -> RolloutConfig:
        """Positive counts and bound."""
        require(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        require(self.start >= 0, f"start must be >= 0, got {self.start}")
        require(self.energy_bound > 1, f"energy_bound must be > 1, got {self.energy_bound}")
        require(self.output_every >= 1, f"output_every must be >= 1, got {self.output_every}")
        require(self.max_output_gb > 0, f"max_output_gb must be a positive size in GB, got {self.max_output_gb}")
        return self


class TrainCase(NamedCase):
    """A surrogate training (and rollout) case."""

    dataset: str
    model: ModelConfig
    data: DataConfig = Field(default_factory=DataConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)

    @model_validator(mode="after")
    def check(self) -> TrainCase:
        """Gradient steps left after the pushforward ones."""
        check_unrolled_steps(self.data, self.training)
        return self


def check_unrolled_steps(data: DataConfig, training: TrainingConfig) -> None:
    """Require a step with gradient after the ``training.pushforward`` ones among ``data.n_target``."""
    require(
        training.pushforward < data.n_target,
        f"training.pushforward ({training.pushforward}) must be less than data.n_target ({data.n_target})",
    )


def load_train_case(path: str | PathLike[str] | Mapping[str, Any], overrides: Iterable[str] = ()) -> TrainCase:
    """Load a training case; a relative ``dataset`` is resolved against the case file's folder
    when it exists there, else against the working directory.

    Raises
    ------
    ConfigError
        For unknown keys or bad values, naming the key and what was expected.
    """
    case = load_config(TrainCase, path, overrides)
    case.dataset = str(resolve_path(case.dataset, source_folder(path)))
    return case
