"""Fast prediction of turbulent channel flow.

The notebook API: the channel grid, the field Dataset currency, case files, the solver,
validation against reference data and the ``channel`` accessor of field Datasets
(:mod:`surrogate.accessor`, registered on import).

>>> import surrogate as sg
>>> grid = sg.ChannelGrid(32, 33, 32, stretching=2.0)
>>> solver = sg.ChannelSolver(grid, re_tau=180.0, forcing="constant_flow_rate")
>>> state = solver.run(solver.initial_condition("turbulent", seed=0), t_end=1.0)  # doctest: +SKIP
>>> ds = solver.to_dataset(state)  # doctest: +SKIP
>>> ds = sg.open_fields("runs/dns_re180/fields.nc")  # doctest: +SKIP
>>> ds.channel.wall_units(t_start=15.0)  # doctest: +SKIP
>>> ds.channel.plot_profiles(ref="mkm180", t_start=15.0)  # doctest: +SKIP
"""

__version__ = "0.1.0"

from . import accessor  # noqa: F401  (registers the xarray Dataset accessor ``channel``)
from .config import CaseConfig, ConfigError, load_case
from .fields import FieldError, FieldWriter, check_fields, make_fields, open_fields, write_fields
from .grid import ChannelGrid
from .pretrained import load_pretrained, pretrained, pretrained_models, rollout_pretrained
from .solver.channel import ChannelSolver, ChannelState, SolverDivergedError
from .simulation import run_case
from .evaluation import validate

__all__ = [
    "__version__",
    "load_pretrained",
    "pretrained",
    "pretrained_models",
    "rollout_pretrained",
    "CaseConfig",
    "ChannelGrid",
    "ChannelSolver",
    "ChannelState",
    "ConfigError",
    "FieldError",
    "FieldWriter",
    "SolverDivergedError",
    "check_fields",
    "load_case",
    "make_fields",
    "open_fields",
    "run_case",
    "validate",
    "write_fields",
]
