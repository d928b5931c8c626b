"""The incompressible Navier–Stokes channel solver (staggered finite differences, RK3/CN, FFT Poisson)."""

from .channel import ChannelSolver, ChannelState, SolverDivergedError, dean_bulk_velocity
from .checkpoint import load_checkpoint, save_checkpoint
from .neural_sgs import NeuralEddyViscosity

__all__ = [
    "ChannelSolver",
    "ChannelState",
    "NeuralEddyViscosity",
    "SolverDivergedError",
    "dean_bulk_velocity",
    "load_checkpoint",
    "save_checkpoint",
]
