r"""Channel geometry for the encoders: padding, token centres and wall features.

The channel is periodic in x and z and bounded by no-slip walls at ``y = 0`` and ``y = 2`` (in h).
Every helper here follows from that:

* fields are padded **circularly** in x and z (the cell after the last is the first one) and by
  **repeating the wall cells** in y (nothing lies beyond a wall);
* coordinates of padding cells continue the grid: periodically shifted copies in x and z, a
  uniform continuation of the end spacing in y;
* the position a model may use in y is absolute (the walls break the y translation symmetry):
  :func:`wall_features` of the token centres; in x and z only relative positions matter
  (statistical homogeneity), which the attention layers take from periodic rotary embeddings
  (:mod:`~surrogate.models.encoders.layers`) with the periods of :func:`axis_period`.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch

__all__ = [
    "WALL_FEATURES",
    "axis_period",
    "grid_positions",
    "pad_coordinate",
    "pad_field",
    "padding_to_multiple",
    "token_centres",
    "wall_features",
]

_WALL_SCALES = (0.02, 0.1, 0.3)  # decay lengths (in h) of the near-wall features exp(-d / delta)
_WALL_BANDS = 3  # sin and cos of pi k (y - 1), k = 1..3
WALL_FEATURES = 2 + len(_WALL_SCALES) + 2 * _WALL_BANDS
"""Number of features :func:`wall_features` gives per wall-normal position."""


def axis_period(c: torch.Tensor) -> float:
    """Period ``L = n (c[-1] - c[0]) / (n - 1)`` of a uniform periodic axis of cell centres ``c`` (``inf`` if ``n = 1``)."""
    n = c.numel()
    if n < 2:
        return math.inf
    return float(n * (c[-1] - c[0]) / (n - 1))


def padding_to_multiple(n: int, multiple: int, centred: bool) -> tuple[int, int]:
    """Cells to add before and after an axis of ``n`` cells to reach a multiple of ``multiple``.

    ``centred``: split the padding between both ends (the larger part after); otherwise all after.
    """
    pad = -n % multiple
    low = pad // 2 if centred else 0
    return low, pad - low


def _wrap_index(n: int, low: int, high: int, device: torch.device) -> torch.Tensor:
    return torch.arange(-low, n + high, device=device) % n


def pad_field(field: torch.Tensor, padding: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Pad ``(batch, c, nx, ny, nz)`` by ``((x_lo, x_hi), (y_lo, y_hi), (z_lo, z_hi))`` cells.

    Circular in x and z (any amount, also more than the axis holds), wall cells repeated in y.
    """
    (xl, xh), (yl, yh), (zl, zh) = padding
    _, _, nx, ny, nz = field.shape
    if xl or xh:
        field = field.index_select(2, _wrap_index(nx, xl, xh, field.device))
    if zl or zh:
        field = field.index_select(4, _wrap_index(nz, zl, zh, field.device))
    if yl or yh:
        index = torch.arange(-yl, ny + yh, device=field.device).clamp(0, ny - 1)
        field = field.index_select(3, index)
    return field


def pad_coordinate(c: torch.Tensor, low: int, high: int, periodic: bool) -> torch.Tensor:
    """Cell centres ``c`` (n,) continued by ``low`` cells before and ``high`` after.

    Periodic axes: copies shifted by the period; the wall-normal axis: the end spacing continued
    (positions beyond a wall, which only padding cells hold).
    """
    n = c.numel()
    if not (low or high):
        return c
    if periodic:
        index = torch.arange(-low, n + high, device=c.device)
        period = axis_period(c) if n > 1 else 0.0
        return c[index % n] + torch.div(index, n, rounding_mode="floor").to(c.dtype) * period
    first = c[1] - c[0] if n > 1 else c.new_ones(())
    last = c[-1] - c[-2] if n > 1 else c.new_ones(())
    before = c[0] - first * torch.arange(low, 0, -1, device=c.device, dtype=c.dtype)
    after = c[-1] + last * torch.arange(1, high + 1, device=c.device, dtype=c.dtype)
    return torch.cat([before, c, after])


def token_centres(
    coords: Mapping[str, torch.Tensor],
    patch: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, ...]:
    """Per-axis token centres ``(cx (tx,), cy (ty,), cz (tz,))`` in h: means over each patch of the padded coordinates."""
    centres = []
    for axis, p, (low, high) in zip("xyz", patch, padding):
        c = pad_coordinate(coords[axis].to(dtype), low, high, periodic=axis != "y")
        centres.append(c.view(-1, p).mean(dim=1))
    return tuple(centres)


def grid_positions(cx: torch.Tensor, cy: torch.Tensor, cz: torch.Tensor) -> torch.Tensor:
    """Positions of a token grid, ``(tx * ty * tz, 3)``, row-major (x slowest)."""
    return torch.stack(torch.meshgrid(cx, cy, cz, indexing="ij"), dim=-1).reshape(-1, 3)


def wall_features(y: torch.Tensor) -> torch.Tensor:
    r"""Features of wall-normal positions ``y`` (in h, walls at 0 and 2): ``(n, WALL_FEATURES)``.

    With ``s = y - 1`` (signed distance from the centre plane) and the wall distance
    ``d = max(1 - |s|, 0)``: ``s``, ``d``, ``exp(-d / delta)`` for ``delta`` in 0.02, 0.1, 0.3 h
    (the viscous, buffer and log regions at Re_tau ~ 180-590 in outer units) and
    ``sin, cos(pi k s)`` for ``k = 1, 2, 3``. Float32 (or float64 for float64 input).
    """
    y = y.to(torch.promote_types(y.dtype, torch.float32))
    s = y - 1.0
    d = (1.0 - s.abs()).clamp_min(0.0)
    features = [s, d] + [torch.exp(-d / delta) for delta in _WALL_SCALES]
    for k in range(1, _WALL_BANDS + 1):
        features += [torch.sin(math.pi * k * s), torch.cos(math.pi * k * s)]
    return torch.stack(features, dim=-1)
