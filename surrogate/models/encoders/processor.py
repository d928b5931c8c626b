r"""The latent processor: global attention over the encoder's tokens.

Three kinds (``kind``):

``"transformer"``
    ``depth`` pre-norm transformer blocks with their own weights.
``"implicit"``
    One block applied ``depth`` times with the same weights, ``z <- z + update(z) / depth``
    (the implicit, weight-shared loop of IFactFormer and IFNO): the cost of ``depth`` blocks for
    the parameters of one, and a step size ``1 / depth`` that keeps the map close to the identity.
``"none"``
    The tokens pass through unchanged.

All attention uses the periodic x/z rotary embeddings of the token positions
(:mod:`~surrogate.models.encoders.layers`), so the processor is equivariant to whole-token
periodic shifts. A final LayerNorm follows the blocks (not for ``"none"``).
"""

from __future__ import annotations

from torch import nn

from .base import Tokens
from .layers import TransformerBlock, rotary_tables

__all__ = ["PROCESSORS", "LatentProcessor"]

PROCESSORS = ("transformer", "implicit", "none")


class LatentProcessor(nn.Module):
    """:class:`Tokens` -> :class:`Tokens` of the same shape.

    Parameters
    ----------
    dim
        Token channels.
    heads, mlp_ratio
        Attention heads and MLP width (in units of ``dim``) of the blocks.
    kind
        ``"transformer"``, ``"implicit"`` or ``"none"`` (see the module notes).
    depth
        Blocks (``"transformer"``) or loop iterations (``"implicit"``); ignored for ``"none"``.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, kind: str = "implicit", depth: int = 4) -> None:
        super().__init__()
        if kind not in PROCESSORS:
            raise ValueError(f"unknown processor {kind!r}; choose one of {', '.join(PROCESSORS)}")
        if kind != "none" and (int(depth) != depth or depth < 1):
            raise ValueError(f"processor depth must be a positive integer, got {depth!r}")
        self.kind, self.depth, self.head_dim = kind, int(depth), dim // heads
        n_blocks = {"transformer": self.depth, "implicit": 1, "none": 0}[kind]
        self.blocks = nn.ModuleList(TransformerBlock(dim, heads, mlp_ratio) for _ in range(n_blocks))
        self.norm = nn.LayerNorm(dim) if n_blocks else nn.Identity()

    def forward(self, tokens: Tokens) -> Tokens:
        if self.kind == "none":
            return tokens
        rotary = rotary_tables(tokens.positions, tokens.periods, self.head_dim)
        z = tokens.tokens
        if self.kind == "implicit":
            for _ in range(self.depth):
                z = z + self.blocks[0].update(z, rotary) / self.depth
        else:
            for block in self.blocks:
                z = block(z, rotary)
        return tokens.replace(self.norm(z))
