"""Atomic solver checkpoints: the full-precision state plus what is needed to resume a run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..atomic import save_torch
from .channel import ChannelState

__all__ = ["save_checkpoint", "load_checkpoint"]

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: str | os.PathLike[str], state: ChannelState, meta: dict[str, Any] | None = None) -> Path:
    """Write ``state`` (and ``meta``) to ``path`` atomically.

    The file is written beside its final name and renamed over it only when complete, so an
    interruption leaves the previous checkpoint intact.
    """
    payload = {"format": CHECKPOINT_FORMAT, "state": state.to_dict(), "meta": dict(meta or {})}
    return save_torch(payload, path)


def load_checkpoint(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> tuple[ChannelState, dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; returns ``(state, meta)``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: nothing to resume (start the run without --resume)")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a surrogate solver checkpoint of format {CHECKPOINT_FORMAT}")
    return ChannelState.from_dict(payload["state"], device, dtype), payload["meta"]
