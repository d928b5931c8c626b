"""Study case files: the whole IFactFormer-m study in one file, run by ``surrogate run CASE``.

A study names its stages and their settings::

    name: quickstart
    output: runs/{name}              # the run folder: every stage's output and study.yaml
    device: cpu                      # LES solver and surrogate training/rollout device
    dataset:
      case: dataset_quick.yaml       # a dataset case (DNS + filter), made in <run>/dataset ...
      overrides: [dt_snapshot=0.1]
      # path: datasets/dataset_re180 # ... or an existing dataset folder, used as it is
    les:
      case: quick.yaml               # channel case the LES runs are made from; its grid becomes
                                     # the dataset's coarse grid (default: the dataset's DNS case)
      models: [none, smagorinsky, wale, dynamic_smagorinsky]
      start: developed               # from the dataset's last training snapshot (or: case)
      t_end: 40.0                    # h/u_tau
      stats_start: 10.0              # statistics over t >= stats_start
    surrogates:
      - label: ifactformer_m
        model: {name: ifactformer_m, preset: cpu}
        training: {epochs: 20}
      - {label: fno, model: {name: fno, preset: cpu}}
    rollout: {steps: 200, split: test, start: 0}
    validation:
      references: [dataset, mkm180]  # the dataset's filtered DNS test split, published profiles, a run
      speed_baseline: wale           # the LES whose cost the surrogates are compared with

Relative paths (``dataset.case``, ``dataset.path``, ``les.case``) are taken against the study
file's folder where they exist there, else against the working directory. Times are in h/u_tau.
"""

from __future__ import annotations

import math
from os import PathLike
from typing import Any, Iterable, Literal, Mapping

from pydantic import Field, model_validator

from .base import ConfigModel, NamedCase, Float, Scalar, check_folder_name, load_config, require, resolve_path, source_folder
from .simulation import resolve_sgs_weights
from .training import DataConfig, ModelConfig, RolloutConfig, TrainingConfig, check_unrolled_steps

__all__ = [
    "LESStageConfig", "StudyCase", "StudyDatasetConfig", "SurrogateConfig", "ValidationConfig",
    "load_study_case",
]

class StudyDatasetConfig(ConfigModel):
    """The filtered-DNS data: a dataset ``case`` file made in the run folder, or an existing ``path``."""

    case: str | None = None
    overrides: list[str] = []
    path: str | None = None

    @model_validator(mode="after")
    def check(self) -> StudyDatasetConfig:
        """Exactly one of ``case`` and ``path``."""
        require(
            (self.case is None) != (self.path is None),
            "give exactly one of 'case' (a dataset case file to make) and 'path' (an existing dataset folder)",
        )
        require(self.path is None or not self.overrides, "'overrides' apply to 'case'; they cannot change an existing dataset")
        return self


class LESStageConfig(ConfigModel):
    """The LES baselines: one run per subgrid model on the dataset's coarse grid and box.

    ``case`` is the channel case the runs are built from (physics, initial field, solver); its
    grid is replaced by the dataset's coarse grid and its ``sgs`` section by each model with
    ``parameters[model]`` (unset: the model's defaults). ``start``: ``developed`` (default) starts
    every run from a developed field, the last training snapshot of the dataset (filtered DNS on
    the same cells; the test split is never used), ``case`` from the case's own initial field
    (e.g. a random trip, from which some models relaminarise). ``overrides`` then apply to every run.
    """

    start: Literal["developed", "case"] = "developed"

    models: list[str] = Field(default_factory=lambda: ["none", "smagorinsky", "wale", "dynamic_smagorinsky"])
    case: str | None = None
    t_end: Float = 100.0
    stats_start: Float = 30.0
    snapshot_interval: Float = 1.0
    checkpoint_interval: Float = 10.0
    parameters: dict[str, dict[str, Scalar]] = {}
    overrides: list[str] = []

    @model_validator(mode="after")
    def check(self) -> LESStageConfig:
        """Known, distinct models, a statistics window inside the run."""
        from ..solver.sgs import SGS_MODELS

        unknown = [name for name in self.models if name != "none" and name not in SGS_MODELS]
        require(not unknown, f"models {unknown} are not subgrid models; expected any of {['none', *SGS_MODELS]}")
        require(len(set(self.models)) == len(self.models), f"models must be distinct, got {self.models}")
        for name in ("t_end", "snapshot_interval", "checkpoint_interval"):
            value = getattr(self, name)
            require(math.isfinite(value) and value > 0, f"{name} must be positive (h/u_tau), got {value}")
        require(0 <= self.stats_start < self.t_end, f"stats_start must be in [0, t_end), got {self.stats_start}")
        unknown = [name for name in self.parameters if name not in self.models]
        require(not unknown, f"parameters given for model(s) {unknown} that are not in models {self.models}")
        return self


class SurrogateConfig(ConfigModel):
    """One surrogate to train and roll out: a ``label`` (its folder name) and the sections of a training case."""

    label: str
    model: ModelConfig
    data: DataConfig = Field(default_factory=DataConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)

    @model_validator(mode="after")
    def check(self) -> SurrogateConfig:
        """A usable folder name; a step with gradient after the pushforward ones."""
        check_folder_name(self.label, "label")
        check_unrolled_steps(self.data, self.training)
        return self


class ValidationConfig(ConfigModel):
    """What the runs are compared with.

    ``references``: ``dataset`` (the dataset's filtered-DNS test split), a published profile set
    (``mkm180``, ``lm180``, ...) or a run path; one report each, the first one also gives the
    summary table. ``speed_baseline``: the LES model whose cost per h/u_tau the surrogates'
    speed-up is measured against.
    """

    references: list[str] = Field(default_factory=lambda: ["dataset"])
    speed_baseline: str = "wale"

    @model_validator(mode="after")
    def check(self) -> ValidationConfig:
        """At least one reference."""
        require(bool(self.references), "references must name at least one reference")
        return self


class StudyCase(NamedCase):
    """A whole study: data, LES baselines, surrogates, rollouts and the validation report."""

    dataset: StudyDatasetConfig
    surrogates: list[SurrogateConfig] = []
    les: LESStageConfig | None = None
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    device: str = "cpu"

    @model_validator(mode="after")
    def check(self) -> StudyCase:
        """Distinct surrogate labels, something to compare, a known speed baseline."""
        labels = [item.label for item in self.surrogates]
        require(len(set(labels)) == len(labels), f"surrogate labels must be distinct, got {labels}")
        require(bool(labels) or self.les is not None, "a study needs at least one surrogate or an 'les' section")
        if self.les is not None and labels:
            require(
                self.validation.speed_baseline in self.les.models,
                f"validation.speed_baseline {self.validation.speed_baseline!r} is not one of the LES models {self.les.models}",
            )
        return self


def load_study_case(path: str | PathLike[str] | Mapping[str, Any], overrides: Iterable[str] = ()) -> StudyCase:
    """Load a study case file and resolve its relative paths against the file's folder.

    Raises
    ------
    ConfigError
        For unknown keys or bad values, naming the key and what was expected.
    """
    case = load_config(StudyCase, path, overrides)
    base = source_folder(path)
    for section, key in ((case.dataset, "case"), (case.dataset, "path"), (case.les, "case")):
        if section is not None and getattr(section, key) is not None:
            setattr(section, key, str(resolve_path(getattr(section, key), base)))
    for parameters in (case.les.parameters.values() if case.les is not None else ()):
        resolve_sgs_weights(parameters, base)
    return case
