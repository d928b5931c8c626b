"""Case files and their schemas: YAML documents loaded into nested, validated pydantic models.

* :mod:`~surrogate.config.base` — loading, ``section.key=value`` overrides, errors, dump and hash;
* :mod:`~surrogate.config.simulation` — channel cases (``surrogate dns`` / ``surrogate les``);
* :mod:`~surrogate.config.dataset` — dataset cases (``surrogate dataset``);
* :mod:`~surrogate.config.training` — training cases (``surrogate train`` / ``surrogate rollout``);
* :mod:`~surrogate.config.closure` — closure training cases (``surrogate closure``);
* :mod:`~surrogate.config.study` — study cases (``surrogate run``).
"""

from .base import (
    ConfigError, ConfigModel, apply_overrides, config_hash, device_problem, dump_config, load_config, read_yaml, resolve_path,
)
from .closure import CLOSURE_PARTS, ClosureCase, ClosureNetworkConfig, ClosureTrainingConfig, load_closure_case
from .dataset import CoarseGridConfig, DatasetCase, FilterConfig, SourceConfig, SplitConfig, load_dataset_case
from .simulation import (
    CaseConfig, GridConfig, InitialConfig, PhysicsConfig, RunConfig, SGSConfig, SolverConfig, load_case, resolve_sgs_weights,
)
from .study import LESStageConfig, StudyCase, StudyDatasetConfig, SurrogateConfig, ValidationConfig, load_study_case
from .training import DataConfig, ModelConfig, RolloutConfig, TrainCase, TrainingConfig, load_train_case

__all__ = [
    "CLOSURE_PARTS", "CaseConfig", "ClosureCase", "ClosureNetworkConfig", "ClosureTrainingConfig",
    "CoarseGridConfig", "ConfigError", "ConfigModel", "DataConfig", "DatasetCase", "FilterConfig",
    "GridConfig", "InitialConfig", "LESStageConfig", "ModelConfig", "PhysicsConfig",
    "RolloutConfig", "RunConfig", "SGSConfig", "SolverConfig", "SourceConfig", "SplitConfig",
    "StudyCase", "StudyDatasetConfig", "SurrogateConfig", "TrainCase", "TrainingConfig",
    "ValidationConfig", "apply_overrides", "config_hash", "device_problem", "dump_config",
    "load_case", "load_closure_case", "load_config", "load_dataset_case", "load_study_case",
    "load_train_case", "read_yaml", "resolve_path", "resolve_sgs_weights",
]
