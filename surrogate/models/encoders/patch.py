r"""3-D patch embedding with anisotropic patches and wall-aware positions.

:class:`PatchEmbed3d` pads the field to a multiple of the patch ``(px, py, pz)`` (circularly in
x and z, all padding after the last cell; by repeating the wall cells in y, split between both
walls), cuts it into ``tx * ty * tz`` non-overlapping patches and maps each patch linearly to a
token of ``dim`` channels (a ``Conv3d`` with kernel and stride ``patch``). A linear map of the
:func:`~surrogate.models.encoders.geometry.wall_features` of the token centres is added: the
stretched y grid and the walls enter through the actual cell-centre coordinates, not through
the token index. No absolute x or z position is added (the flow is homogeneous in x and z).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from .base import FieldEncoder, Tokens
from .geometry import (
    WALL_FEATURES,
    axis_period,
    grid_positions,
    pad_field,
    padding_to_multiple,
    token_centres,
    wall_features,
)

__all__ = ["PatchEmbed3d", "as_patch"]


def as_patch(patch: Sequence[int], name: str = "patch") -> tuple[int, int, int]:
    """Three positive integers ``(px, py, pz)``, or a ``ValueError`` naming ``name``."""
    values = tuple(int(p) for p in patch)
    if len(values) != 3 or any(p < 1 for p in values) or any(int(p) != p for p in patch):
        raise ValueError(f"{name} must be three positive integers (x, y, z), got {tuple(patch)}")
    return values  # type: ignore[return-value]


class PatchEmbed3d(FieldEncoder):
    """Field ``(batch, in_channels, nx, ny, nz)`` -> :class:`Tokens` ``(batch, tx * ty * tz, dim)``.

    Parameters
    ----------
    in_channels
        Channels of the field (``n_history * n_var`` for the stacked history).
    dim
        Token channels.
    patch
        Cells per token ``(px, py, pz)``; the grid need not be a multiple of it (see the module
        notes): ``tx = ceil(nx / px)`` etc.
    """

    def __init__(self, in_channels: int, dim: int, patch: Sequence[int]) -> None:
        super().__init__()
        self.in_channels, self.dim, self.patch = int(in_channels), int(dim), as_patch(patch)
        self.proj = nn.Conv3d(self.in_channels, self.dim, kernel_size=self.patch, stride=self.patch)
        self.position = nn.Linear(WALL_FEATURES, self.dim)

    def padding(self, shape: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """Cells added before and after each axis of a ``(nx, ny, nz)`` grid."""
        return tuple(padding_to_multiple(n, p, centred=axis == 1) for axis, (n, p) in enumerate(zip(shape, self.patch)))

    def forward(self, field: torch.Tensor, coords: Mapping[str, torch.Tensor]) -> Tokens:
        self.check_field(field)
        shape = tuple(field.shape[2:])
        padding = self.padding(shape)
        coords = {axis: coords[axis].to(field.device) for axis in "xyz"}
        x = self.proj(pad_field(field, padding))  # (batch, dim, tx, ty, tz)
        grid_shape = tuple(x.shape[2:])
        cx, cy, cz = token_centres(coords, self.patch, padding)
        tokens = x.flatten(2).transpose(1, 2)
        position = self.position(wall_features(cy).to(self.position.weight.dtype))  # (ty, dim)
        tokens = (tokens.view(x.shape[0], *grid_shape, self.dim) + position[:, None]).flatten(1, 3)
        return Tokens(
            tokens=tokens,
            positions=grid_positions(cx, cy, cz),
            periods=(axis_period(coords["x"]), axis_period(coords["z"])),
            grid_shape=grid_shape,  # type: ignore[arg-type]
            patch=self.patch,
            padding=padding,  # type: ignore[arg-type]
            field_shape=shape,  # type: ignore[arg-type]
        )
