r"""ViT field encoder: patch embedding, then pre-norm transformer blocks over all tokens.

Every token attends to every other (``scaled_dot_product_attention``), with the periodic x/z
rotary embeddings of :mod:`~surrogate.models.encoders.layers`; a final LayerNorm. Cost per block
grows as the square of the token count: on the 32 x 33 x 16 grid with patch (4, 3, 4) that is
8 x 11 x 4 = 352 tokens. Without absolute x/z features the encoder is equivariant to periodic
shifts of the field by whole patches in x and z (when the grid is a multiple of the patch there).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from .base import FieldEncoder, Tokens
from .layers import TransformerBlock, rotary_tables
from .patch import PatchEmbed3d

__all__ = ["ViTEncoder"]


class ViTEncoder(FieldEncoder, name="vit"):
    """Field ``(batch, in_channels, nx, ny, nz)`` -> :class:`Tokens` after ``depth`` global-attention blocks.

    Parameters
    ----------
    in_channels, dim, patch
        As :class:`~surrogate.models.encoders.patch.PatchEmbed3d`.
    depth
        Transformer blocks.
    heads
        Attention heads (``dim`` must be a multiple; ``dim / heads >= 4`` for the rotary embedding).
    mlp_ratio
        Hidden width of the channel MLP in units of ``dim``.
    """

    def __init__(self, in_channels: int, dim: int, patch: Sequence[int], depth: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.embed = PatchEmbed3d(in_channels, dim, patch)
        self.in_channels, self.dim, self.patch = self.embed.in_channels, self.embed.dim, self.embed.patch
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head_dim = dim // heads

    def forward(self, field: torch.Tensor, coords: Mapping[str, torch.Tensor]) -> Tokens:
        self.check_field(field)
        tokens = self.embed(field, coords)
        rotary = rotary_tables(tokens.positions, tokens.periods, self.head_dim)
        x = tokens.tokens
        for block in self.blocks:
            x = block(x, rotary)
        return tokens.replace(self.norm(x))
