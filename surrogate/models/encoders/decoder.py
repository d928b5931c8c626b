r"""Tokens back to a field on the cell grid: linear un-patching and a small local refinement.

:class:`PatchDecoder` is the transpose of a patch embedding: each token ``(dim,)`` maps linearly
to ``hidden`` channels on each of its ``px * py * pz`` cells; the cells are put back in place
(a 3-D pixel shuffle) and the padding the encoder added is cropped. Linear un-patching alone
leaves seams at patch faces, so a refinement on the cell grid follows:

.. math::
    h \leftarrow h + S\,q, \qquad h \leftarrow h + D\,\sigma(h), \qquad
    \mathrm{out} = W_2\,\sigma(W_1 h),

with ``S`` a pointwise map of an optional skip field ``q`` on the cell grid (the model passes its
input history, so fine-scale detail need not squeeze through the tokens), ``D`` a depthwise
3 x 3 x 3 convolution (circular in x and z, wall cells repeated in y) and ``W_1, W_2`` pointwise.
``W_2`` starts at a tenth of its default scale, so a residual model starts close to persistence.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import FieldDecoder, Tokens
from .geometry import pad_field
from .patch import as_patch

__all__ = ["PatchDecoder"]

_OUT_INIT_SCALE = 0.1


class PatchDecoder(FieldDecoder):
    """:class:`Tokens` with patch ``patch`` -> ``(batch, out_channels, nx, ny, nz)``.

    Parameters
    ----------
    dim
        Token channels.
    out_channels
        Channels of the output field.
    patch
        Cells per token ``(px, py, pz)``; must equal the encoder's (checked at call time).
    hidden
        Channels on the cell grid.
    skip_channels
        Channels of the skip field passed to :meth:`forward` (0: no skip).
    """

    def __init__(self, dim: int, out_channels: int, patch: Sequence[int], hidden: int, skip_channels: int = 0) -> None:
        super().__init__()
        self.dim, self.out_channels, self.patch, self.hidden = int(dim), int(out_channels), as_patch(patch), int(hidden)
        self.skip_channels = int(skip_channels)
        self.unpatch = nn.Linear(self.dim, self.hidden * self.patch[0] * self.patch[1] * self.patch[2])
        self.skip = nn.Conv3d(self.skip_channels, self.hidden, 1) if self.skip_channels else None
        self.local = nn.Conv3d(self.hidden, self.hidden, 3, groups=self.hidden)
        self.mix = nn.Conv3d(self.hidden, self.hidden, 1)
        self.out = nn.Conv3d(self.hidden, self.out_channels, 1)
        with torch.no_grad():
            self.out.weight.mul_(_OUT_INIT_SCALE)
            self.out.bias.mul_(_OUT_INIT_SCALE)

    def unpatchify(self, tokens: Tokens) -> torch.Tensor:
        """The linear un-patching alone: ``(batch, hidden, nx, ny, nz)``, padding cropped."""
        batch = tokens.tokens.shape[0]
        (tx, ty, tz), (px, py, pz) = tokens.grid_shape, self.patch
        h = self.unpatch(tokens.tokens).view(batch, tx, ty, tz, self.hidden, px, py, pz)
        h = h.permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(batch, self.hidden, tx * px, ty * py, tz * pz)
        (xl, _), (yl, _), (zl, _) = tokens.padding
        nx, ny, nz = tokens.field_shape
        return h[:, :, xl:xl + nx, yl:yl + ny, zl:zl + nz]

    def forward(self, tokens: Tokens, skip: torch.Tensor | None = None) -> torch.Tensor:
        if tokens.patch != self.patch:
            raise ValueError(f"tokens of patch {tokens.patch} given to a decoder of patch {self.patch}")
        if (skip is None) != (self.skip is None) or (skip is not None and skip.shape[1] != self.skip_channels):
            got = "none" if skip is None else f"{skip.shape[1]} channels"
            raise ValueError(f"decoder expects a skip field of {self.skip_channels} channels (0: none), got {got}")
        h = self.unpatchify(tokens)
        if self.skip is not None:
            h = h + self.skip(skip)
        h = h + self.local(pad_field(F.gelu(h), ((1, 1), (1, 1), (1, 1))))
        return self.out(F.gelu(self.mix(h)))
