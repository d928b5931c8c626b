"""Turbulent channel flow: a DNS/LES solver and neural-operator surrogates with validation."""

__version__ = "0.1.0"

from .grid import ChannelGrid

__all__ = ["ChannelGrid", "__version__"]
