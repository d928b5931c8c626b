r"""Transformer building blocks shared by the encoders and the latent processor.

Attention sees x and z positions only through **periodic rotary embeddings**: in each head,
``head_dim // 4`` channel pairs of the queries and keys are rotated by ``2 pi k x / L_x`` and as
many by ``2 pi k z / L_z`` (``k = 1, 2, ...``; ``L`` the period of the axis), the remaining
channels are left as they are. A query-key product then depends on positions only through
``x_i - x_j`` and ``z_i - z_j``, and, the wavenumbers being integers, only modulo the periods:
attention is equivariant to periodic shifts of the token grid, and tokens on either side of the
periodic seam are neighbours as they physically are. The wall-normal position enters the tokens
as absolute features (:func:`~surrogate.models.encoders.geometry.wall_features`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Mlp", "Rotary", "SelfAttention", "TransformerBlock", "apply_rotary", "rotary_tables"]

Rotary = tuple[torch.Tensor, torch.Tensor]


class Mlp(nn.Sequential):
    """Channel MLP, ``Linear(dim, hidden) -> GELU -> Linear(hidden, dim)``, on the last axis."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


def rotary_tables(positions: torch.Tensor, periods: tuple[float, float], head_dim: int) -> Rotary | None:
    """``cos`` and ``sin`` of the rotary angles of token positions ``(..., 3)``: each ``(..., 2 * (head_dim // 4))``.

    The first half of the last axis holds the x angles ``2 pi k x / L_x``, the second the z angles
    (``k = 1 .. head_dim // 4``), in float32; ``None`` when ``head_dim < 4``. An infinite period
    (a one-cell axis) gives zero angles.
    """
    pairs = head_dim // 4
    if pairs == 0:
        return None
    k = torch.arange(1, pairs + 1, device=positions.device, dtype=torch.float32)
    angles = []
    for axis, period in ((0, periods[0]), (2, periods[1])):
        frequency = 0.0 if math.isinf(period) else 2.0 * math.pi / period
        angles.append(positions[..., axis, None].float() * (frequency * k))
    angles = torch.cat(angles, dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(t: torch.Tensor, rotary: Rotary | None) -> torch.Tensor:
    """Rotate the channel pairs ``(i, i + r)``, ``i < r``, of ``t`` ``(..., n, head_dim)`` by the angles of ``rotary``.

    ``rotary``: ``(cos, sin)`` of shape ``(..., n, r)`` broadcastable against ``t``'s leading axes.
    """
    if rotary is None:
        return t
    cos, sin = rotary
    r = cos.shape[-1]
    first, second, rest = t[..., :r], t[..., r:2 * r], t[..., 2 * r:]
    cos, sin = cos.to(t.dtype), sin.to(t.dtype)
    return torch.cat((first * cos - second * sin, second * cos + first * sin, rest), dim=-1)


class SelfAttention(nn.Module):
    """Multi-head self-attention with periodic x/z rotary embeddings (``scaled_dot_product_attention``).

    ``forward(x, rotary, mask)``: ``x`` ``(batch, n, dim)``; ``rotary`` from :func:`rotary_tables`
    (``(n, r)`` or broadcastable ``(batch, 1, n, r)``) or ``None``; ``mask`` a boolean
    ``(batch or 1, 1, 1 or n, n)`` that is ``True`` where a query may attend to a key, or ``None``.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rotary: Rotary | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        batch, n, dim = x.shape
        q, k, v = self.qkv(x).view(batch, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, rotary), apply_rotary(k, rotary)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(batch, n, dim))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + a``, ``a = attn(norm(x))``, then ``+ mlp(norm(x + a))``.

    :meth:`update` returns the total increment, so a caller can scale it (the implicit loop of
    :class:`~surrogate.models.encoders.processor.LatentProcessor`).
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, max(1, round(mlp_ratio * dim)))

    def update(self, x: torch.Tensor, rotary: Rotary | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The block's increment ``block(x) - x``, shape of ``x``."""
        a = self.attn(self.norm1(x), rotary, mask)
        return a + self.mlp(self.norm2(x + a))

    def forward(self, x: torch.Tensor, rotary: Rotary | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        return x + self.update(x, rotary, mask)
