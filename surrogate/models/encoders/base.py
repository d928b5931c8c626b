"""The field-encoder interface: fields to tokens (:class:`FieldEncoder`) and back (:class:`FieldDecoder`).

An encoder turns a field on the channel grid, ``(batch, c_in, nx, ny, nz)``, into a set of
tokens that lie on a regular *token grid* ``(tx, ty, tz)``: each token stands for a block of
``patch = (px, py, pz)`` cells of the field padded up to a multiple of the patch (circularly in
the periodic x and z, by repeating the wall cells in y). :class:`Tokens` carries the tokens with
everything needed to place them in space and to undo the patching: the token centres in h, the
token grid, the patch, the padding and the field's own shape.

Tokens are ordered row-major over the token grid (x slowest, z fastest), so
``tokens.tokens.view(batch, tx, ty, tz, dim)`` is the token grid with channels last.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

__all__ = ["ENCODERS", "FieldDecoder", "FieldEncoder", "Tokens"]


@dataclass(frozen=True)
class Tokens:
    """Tokens on a regular token grid, with their positions and the patching they came from.

    Attributes
    ----------
    tokens
        ``(batch, n_tokens, dim)``, ``n_tokens = tx * ty * tz``, row-major over the token grid.
    positions
        ``(n_tokens, 3)``: token centres ``(x, y, z)`` in h (the mean of the cell centres of the
        token's patch; padding cells beyond the grid extend it uniformly).
    periods
        ``(L_x, L_z)`` in h, the periods of the x and z axes (``inf`` on a one-cell axis).
    grid_shape
        ``(tx, ty, tz)``.
    patch
        ``(px, py, pz)``: cells per token along each axis.
    padding
        ``((x_low, x_high), (y_low, y_high), (z_low, z_high))``: cells added before patching.
    field_shape
        ``(nx, ny, nz)`` of the field before padding.
    """

    tokens: torch.Tensor
    positions: torch.Tensor
    periods: tuple[float, float]
    grid_shape: tuple[int, int, int]
    patch: tuple[int, int, int]
    padding: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
    field_shape: tuple[int, int, int]

    def replace(self, tokens: torch.Tensor) -> "Tokens":
        """The same token grid with new token values ``(batch, n_tokens, dim')``."""
        return dataclasses.replace(self, tokens=tokens)

    def grid(self) -> torch.Tensor:
        """The tokens as a grid with channels last, ``(batch, tx, ty, tz, dim)``."""
        return self.tokens.view(self.tokens.shape[0], *self.grid_shape, self.tokens.shape[-1])

    def position_grid(self) -> torch.Tensor:
        """The token centres as a grid, ``(tx, ty, tz, 3)``."""
        return self.positions.view(*self.grid_shape, 3)


#: Every field encoder by its name (the ``encoder`` of an encoder-processor-decoder), filled as the classes are defined.
ENCODERS: dict[str, type["FieldEncoder"]] = {}


class FieldEncoder(nn.Module):
    """Field ``(batch, in_channels, nx, ny, nz)`` and its coordinates -> :class:`Tokens` of width ``dim``.

    Subclasses name themselves in the class statement (``class ViTEncoder(FieldEncoder,
    name="vit")``, joining :data:`ENCODERS`), set ``in_channels``, ``dim`` and ``patch`` (cells per
    token along x, y, z) and implement :meth:`forward`; they accept any grid size at call time.
    """

    in_channels: int
    dim: int
    patch: tuple[int, int, int]
    name: str = ""

    def __init_subclass__(cls, name: str = "", **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if name:
            cls.name = name
            ENCODERS[name] = cls

    def check_field(self, field: torch.Tensor) -> None:
        """Raise a ``ValueError`` naming the expected shape unless ``field`` is ``(batch, in_channels, nx, ny, nz)``."""
        if field.ndim != 5 or field.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects a field of shape (batch, {self.in_channels}, nx, ny, nz) "
                             f"(in_channels={self.in_channels}), got {tuple(field.shape)}")

    def forward(self, field: torch.Tensor, coords: Mapping[str, torch.Tensor]) -> Tokens:  # pragma: no cover
        """Encode ``field`` with cell-centre coordinates ``coords = {"x": (nx,), "y": (ny,), "z": (nz,)}`` in h."""
        raise NotImplementedError


class FieldDecoder(nn.Module):
    """:class:`Tokens` (and optionally a skip field on the cell grid) -> field ``(batch, out_channels, nx, ny, nz)``."""

    out_channels: int

    def forward(self, tokens: Tokens, skip: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError
