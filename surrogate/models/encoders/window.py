r"""Swin-style windowed attention on the 3-D token grid.

Tokens attend only within non-overlapping windows of ``window = (wx, wy, wz)`` tokens; every
second block shifts the windows by half a window so that information crosses window faces. The
channel's geometry sets how:

* **x and z** are periodic, so the shift is a cyclic roll of the token grid. Unlike Swin on images
  no mask is needed: tokens that the roll brings together across the domain's edge are physical
  neighbours, and the periodic rotary embeddings (:mod:`~surrogate.models.encoders.layers`) give
  them their true relative position.
* **y** is bounded by walls and is not rolled (that would make the two walls neighbours). Shifted
  blocks instead offset the y partition by ``wy // 2`` tokens: the grid gets ``wy // 2`` padding
  tokens below the bottom wall, so the first window holds only the rows nearest the wall.
  Padding tokens are masked as keys and dropped afterwards.

A window larger than the token grid is clipped to it (a window of the whole axis, never shifted
along it); a grid that is not a multiple of the window is padded at the end with masked tokens.
So any token grid works, and the encoder is equivariant to periodic shifts of the field in x
and z by whole windows (``wx * px`` cells in x), shifted blocks included.

Single resolution (no patch merging): the token grid of the patch embedding is kept throughout.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import FieldEncoder, Tokens
from .layers import TransformerBlock, rotary_tables
from .patch import PatchEmbed3d, as_patch

__all__ = ["WindowBlock", "WindowEncoder", "window_partition", "window_merge"]


def window_partition(x: torch.Tensor, window: Sequence[int]) -> torch.Tensor:
    """``(batch, Tx, Ty, Tz, c)`` with ``T`` multiples of ``window`` -> ``(batch * n_windows, wx * wy * wz, c)``."""
    batch, tx, ty, tz, c = x.shape
    wx, wy, wz = window
    x = x.view(batch, tx // wx, wx, ty // wy, wy, tz // wz, wz, c).permute(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(-1, wx * wy * wz, c)


def window_merge(windows: torch.Tensor, window: Sequence[int], shape: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`: -> ``(batch, Tx, Ty, Tz, c)`` for ``shape = (batch, Tx, Ty, Tz)``."""
    batch, tx, ty, tz = shape
    wx, wy, wz = window
    x = windows.view(batch, tx // wx, ty // wy, tz // wz, wx, wy, wz, -1).permute(0, 1, 4, 2, 5, 3, 6, 7)
    return x.reshape(batch, tx, ty, tz, -1)


class WindowBlock(nn.Module):
    """A transformer block with attention inside (optionally shifted) windows of the token grid.

    ``forward(x, positions, periods)``: ``x`` ``(batch, tx, ty, tz, dim)``, ``positions``
    ``(tx, ty, tz, 3)`` token centres in h, ``periods`` ``(L_x, L_z)``; returns ``x``'s shape.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, window: Sequence[int], shift: bool) -> None:
        super().__init__()
        self.block = TransformerBlock(dim, heads, mlp_ratio)
        self.window, self.shift = as_patch(window, "window"), bool(shift)
        self.head_dim = dim // heads

    def _layout(self, grid: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, int], tuple[tuple[int, int], ...]]:
        """Window clipped to the grid, the x/z roll, and the (before, after) padding per axis."""
        window = tuple(min(w, t) for w, t in zip(self.window, grid))
        roll = tuple(w // 2 if self.shift and w < t else 0 for w, t in ((window[0], grid[0]), (window[2], grid[2])))
        y_offset = window[1] // 2 if self.shift and window[1] < grid[1] else 0
        padding = ((0, -grid[0] % window[0]), (y_offset, -(grid[1] + y_offset) % window[1]), (0, -grid[2] % window[2]))
        return window, roll, padding  # type: ignore[return-value]

    def forward(self, x: torch.Tensor, positions: torch.Tensor, periods: tuple[float, float]) -> torch.Tensor:
        batch, tx, ty, tz, dim = x.shape
        window, roll, padding = self._layout((tx, ty, tz))
        if any(roll):
            x = torch.roll(x, shifts=(-roll[0], -roll[1]), dims=(1, 3))
            positions = torch.roll(positions, shifts=(-roll[0], -roll[1]), dims=(0, 2))
        valid = torch.ones(tx, ty, tz, dtype=torch.bool, device=x.device)
        pad = [p for axis in reversed(padding) for p in axis]  # F.pad order: last axis first
        padded = any(pad)
        if padded:
            x = F.pad(x, [0, 0] + pad)
            positions = F.pad(positions, [0, 0] + pad)
            valid = F.pad(valid, pad, value=False)
        shape = x.shape[:4]
        windows = window_partition(x, window)  # (batch * n_windows, length, dim)
        n_windows = windows.shape[0] // batch
        rotary = rotary_tables(window_partition(positions[None], window), periods, self.head_dim)
        if rotary is not None:  # (n_windows, length, r) -> (batch * n_windows, 1, length, r)
            cos, sin = (t.expand(batch, *t.shape).reshape(batch * n_windows, 1, *t.shape[1:]) for t in rotary)
            rotary = (cos, sin)
        mask = None
        if padded:
            keys = window_partition(valid[None, ..., None], window)[..., 0]  # (n_windows, length)
            mask = keys.expand(batch, *keys.shape).reshape(batch * n_windows, 1, 1, -1)
        windows = self.block(windows, rotary, mask)
        x = window_merge(windows, window, shape)[:, padding[0][0]:padding[0][0] + tx,
                                                  padding[1][0]:padding[1][0] + ty, padding[2][0]:padding[2][0] + tz]
        if any(roll):
            x = torch.roll(x, shifts=roll, dims=(1, 3))
        return x


class WindowEncoder(FieldEncoder, name="window"):
    """Patch embedding, then ``depth`` :class:`WindowBlock` s (every second one shifted), then LayerNorm.

    Parameters
    ----------
    in_channels, dim, patch
        As :class:`~surrogate.models.encoders.patch.PatchEmbed3d`.
    depth
        Window blocks; blocks 1, 3, ... are shifted.
    heads, mlp_ratio
        As :class:`~surrogate.models.encoders.vit.ViTEncoder`.
    window
        Window in tokens ``(wx, wy, wz)``, clipped to the token grid.
    """

    def __init__(self, in_channels: int, dim: int, patch: Sequence[int], depth: int, heads: int, mlp_ratio: float,
                 window: Sequence[int] = (2, 4, 2)) -> None:
        super().__init__()
        self.embed = PatchEmbed3d(in_channels, dim, patch)
        self.in_channels, self.dim, self.patch = self.embed.in_channels, self.embed.dim, self.embed.patch
        self.window = as_patch(window, "window")
        self.blocks = nn.ModuleList(WindowBlock(dim, heads, mlp_ratio, self.window, shift=i % 2 == 1) for i in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, field: torch.Tensor, coords: Mapping[str, torch.Tensor]) -> Tokens:
        self.check_field(field)
        tokens = self.embed(field, coords)
        x, positions = tokens.grid(), tokens.position_grid()
        for block in self.blocks:
            x = block(x, positions, tokens.periods)
        return tokens.replace(self.norm(x.flatten(1, 3)))
