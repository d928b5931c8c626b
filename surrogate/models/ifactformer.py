r"""IFactFormer-m and IFactFormer-o: implicit factorized transformers on a 3-D channel grid.

Yang, Wang & Wang, "Implicit factorized transformer approach to fast prediction of turbulent
channel flows", arXiv 2412.18840 (Sci. China Phys. Mech. Astron. 69, 214606, 2026). Our own
implementation, written from the paper and the facts of its public code.

What the models compute, on fields ``u`` with channels last, ``(batch, nx, ny, nz, dim)``:

1. **Lifting.** Each velocity component of each history snapshot goes through its own pointwise
   affine map to ``dim / (2 n_var)`` channels and a GELU (``dim / 2`` channels per snapshot);
   a bias-free linear layer mixes the ``n_history`` snapshots into ``dim`` channels.
2. **Positional encoding**, added once: random Gaussian Fourier features
   ``[sin(2 pi p B), cos(2 pi p B)]`` of the cell-centre position ``p = (x, y, z)`` (in h), with a
   fixed ``(3, dim/2)`` projection ``B ~ N(0, pos_scale^2)`` drawn from a generator seeded by
   ``seed`` (stored as a buffer), through a linear layer ``dim -> dim``.
3. **Implicit loop.** One factorized-attention block, applied ``n_layer`` times with the same
   weights: ``u <- u + block(u) / n_layer``.
4. **Projection out**, pointwise: ``dim -> dim/2 -> GELU -> n_var``.

The block (:class:`FactorizedAttentionBlock`): ``h = LayerNorm(u)``; values
``v = W_v h`` with ``heads * dim_head`` channels; for each axis ``a`` in ``x, y, z`` a pooling
reducer turns ``h`` into a 1-D latent function ``w_a`` (``(batch, n_a, dim)``: linear maps, mean
over the two other axes, pre-norm gated-GELU MLP), and a low-rank kernel per head

.. math::
    K_a[i, j] = \sum_d R(a_i)\,q_a(w_a)_i \cdot R(a_j)\,k_a(w_a)_j, \qquad
    q_a, k_a: \ \mathrm{dim} \to \mathrm{heads} \times \mathrm{dim\_head} \times
    \mathrm{kernel\_multiplier}

of size ``n_a x n_a`` (no softmax; ``R`` is the rotary embedding of the axis coordinate ``a_i``,
so the grid's own coordinates enter, e.g. the stretched ``y`` cell centres; ``q_a``, ``k_a``
start with Xavier gain 0.02, so the kernels start small). Then

* **IFactFormer-m** (``mode="parallel"``): each kernel acts on ``v`` along its own axis, the three
  results are concatenated (``3 * heads * dim_head`` channels);
* **IFactFormer-o** (``mode="chained"``): ``K_z (K_y (K_x v))`` on the same tensor
  (``heads * dim_head`` channels);

followed by an instance norm (per sample and channel over the grid, no affine) and
Linear -> GELU -> Linear (bias-free) back to ``dim``. The kernels are built from the input's grid,
so any grid size works, odd ones included.

Parameter counts (``count_parameters``) of the ``"paper"`` preset (dim 96, heads 5, dim_head 96,
kernel_multiplier 3, n_layer 10, n_var 3, n_history 1): IFactFormer-m 1,163,187 and
IFactFormer-o 1,071,027, independent of ``n_layer``. The published code reports 1,163,331 for
IFactFormer-m: the same 1,163,187 trainable weights plus its 144-entry Fourier projection, which
it keeps as a frozen parameter and we keep as a buffer. IFactFormer-m's paper weights: lifting
4,704; positional encoding 9,312; the block 1,144,416 (LayerNorm 192, values 46,080, latent map
9,216, three pooling reducers 3 x 37,344, three kernels 3 x 276,480, output 147,456);
projection out 4,755.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .registry import SurrogateModel

__all__ = ["FactorizedAttentionBlock", "IFactFormerM", "IFactFormerO"]

Mode = Literal["parallel", "chained"]
_AXES = ("x", "y", "z")
_KERNEL_INIT_GAIN = 0.02  # Xavier gain of the q and k maps: kernels start near zero
_ROTARY_BASE = 10000.0
_ROTARY_COORD_SCALE = 64.0  # rotary angle of frequency band k: 64 * coordinate * base**(-2k/d)
_INSTANCE_NORM_EPS = 1e-5
_STATISTICS_BLOCK = 2**19  # values per block of the instance-norm variance (2 MiB in float32)


class _PoolingReducer(nn.Module):
    """A 1-D latent function along one axis: linear map, mean over the other axes, pre-norm MLP.

    The MLP is ``LayerNorm -> Linear(dim, 2 latent) -> gated GELU -> Linear(latent, latent)``
    (the gate multiplies ``GELU`` of the first half by the second half).
    """

    def __init__(self, dim: int, latent: int) -> None:
        super().__init__()
        self.to_in = nn.Linear(dim, dim, bias=False)
        self.norm = nn.LayerNorm(dim)
        self.hidden = nn.Linear(dim, 2 * latent)
        self.out = nn.Linear(latent, latent)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """``(batch, n_axis, dim)`` means over the other axes -> ``(batch, n_axis, latent)``.

        The bias-free ``to_in`` map commutes with the mean, so the caller pools first: the same
        result as mapping every grid point and then pooling, at a fraction of the cost.
        """
        gate, value = self.hidden(self.norm(self.to_in(pooled))).chunk(2, dim=-1)
        return self.out(F.gelu(gate) * value)


class _AxisKernel(nn.Module):
    """Low-rank kernel along one axis: ``K = (R q)(R k)^T`` per head, ``(batch, heads, n, n)``."""

    def __init__(self, latent: int, heads: int, rank: int, scaling: float) -> None:
        super().__init__()
        self.heads = heads
        self.rank = rank
        self.scaling = scaling
        self.to_q = nn.Linear(latent, heads * rank, bias=False)
        self.to_k = nn.Linear(latent, heads * rank, bias=False)
        nn.init.xavier_uniform_(self.to_q.weight, gain=_KERNEL_INIT_GAIN)
        nn.init.xavier_uniform_(self.to_k.weight, gain=_KERNEL_INIT_GAIN)

    def forward(self, latent: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        batch, n, _ = latent.shape
        q = self.to_q(latent).view(batch, n, self.heads, self.rank)
        k = self.to_k(latent).view(batch, n, self.heads, self.rank)
        q, k = _rotate(q, *rotary), _rotate(k, *rotary)
        return torch.einsum("bihd,bjhd->bhij", q, k) * self.scaling


def _rotary_angles(coordinate: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos`` and ``sin`` of the rotary angles of a 1-D coordinate, each ``(n, 1, rank/2)``, float32."""
    bands = torch.arange(0, rank, 2, device=coordinate.device, dtype=torch.float32) / rank
    frequencies = _ROTARY_COORD_SCALE * _ROTARY_BASE ** (-bands)
    angles = coordinate.float()[:, None, None] * frequencies
    return angles.cos(), angles.sin()


def _rotate(t: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of ``t`` ``(batch, n, heads, rank)``: rotate the pairs (k, k + rank/2)."""
    first, second = t.chunk(2, dim=-1)
    return torch.cat((first * cos - second * sin, second * cos + first * sin), dim=-1)


class _ChannelStatistics(torch.autograd.Function):
    """Mean and ``1 / sqrt(var + eps)`` over the points of each channel: ``z`` ``(batch, heads,
    n_points, c)`` -> two ``(batch, heads, 1, c)``.

    Two-pass statistics, the squared deviations summed a block of about ``_STATISTICS_BLOCK`` values
    at a time in one reused buffer (on a CPU a field-sized temporary costs more than the arithmetic),
    and the backward written out, ``g_mean / n + g_rstd (-rstd^3 / n) (z - mean)``, in one pass:
    the instance norm is folded into the output layer's weights (:func:`_normalised_linear`) and
    the normalised field never formed.
    """

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        points = z.shape[2]
        rows = min(points, max(1, _STATISTICS_BLOCK // (z.numel() // points)))
        mean = z.sum(dim=2, keepdim=True).mul_(1.0 / points)
        variance = torch.zeros_like(mean)
        buffer = z.new_empty(z.shape[:2] + (rows, z.shape[3]))
        for start in range(0, points, rows):
            block = z[:, :, start : start + rows]
            deviation = torch.sub(block, mean, out=buffer[:, :, : block.shape[2]])
            variance.add_(deviation.square_().sum(dim=2, keepdim=True))
        rstd = torch.rsqrt(variance.mul_(1.0 / points).add_(_INSTANCE_NORM_EPS))
        ctx.save_for_backward(z, mean, rstd)
        return mean, rstd

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_mean: torch.Tensor, grad_rstd: torch.Tensor) -> torch.Tensor:
        z, mean, rstd = ctx.saved_tensors
        scale = 1.0 / z.shape[2]
        slope = grad_rstd * rstd.pow(3) * -scale
        return torch.addcmul(grad_mean * scale - slope * mean, z, slope)


def _normalised_linear(parts: Sequence[torch.Tensor], weight: torch.Tensor) -> torch.Tensor:
    """``Linear(InstanceNorm(concat(parts)))`` without the norm or the concatenation formed.

    ``parts``: ``(batch, heads, n_points, c)`` each; ``weight``: ``(out, len(parts) * heads * c)``
    (bias-free, input channels ordered part, head, c); returns ``(batch, n_points, out)``. The norm
    of each channel over the points is an affine map ``(z - mean) * rstd`` (no learned scale), so
    it moves into the weights: ``sum_h z_h (rstd_h W_h)^T - mean (rstd W)^T``, one matrix product
    per part and head. Statistics in float32 or wider.
    """
    _, heads, _, channels = parts[0].shape
    weights = weight.view(weight.shape[0], len(parts), heads, channels).permute(1, 2, 3, 0)  # (part, head, c, out)
    out, shift = None, 0.0
    for z, w in zip(parts, weights):
        mean, rstd = _ChannelStatistics.apply(z.to(torch.promote_types(z.dtype, torch.float32)))
        w = (w * rstd.transpose(-1, -2)).to(z.dtype)  # (batch, heads, c, out)
        shift = shift + torch.matmul(mean.to(z.dtype), w).sum(dim=1)  # (batch, 1, out)
        for z_head, w_head in zip(z.unbind(1), w.unbind(1)):  # unbind: one stack in backward, not a zero fill per head
            out = torch.bmm(z_head, w_head) if out is None else torch.baddbmm(out, z_head, w_head)
    return out - shift


def _apply_axis_kernels(v: torch.Tensor, kernels: Sequence[torch.Tensor], mode: Mode) -> list[torch.Tensor]:
    """Apply the x, y, z kernels ``(batch, heads, n_a, n_a)`` to ``v`` ``(batch, heads, nx, ny, nz, c)``.

    ``"parallel"``: ``[K_x v, K_y v, K_z v]``, each kernel acting along its own axis;
    ``"chained"``: ``[K_z (K_y (K_x v))]``; every entry has the shape of ``v``. Heads first, each
    is one batched matrix product on contiguous memory with a contiguous result.
    """

    def along(axis: int, kernel: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        lines = t.flatten(3 + axis) if axis < 2 else t  # (..., n_axis, what follows the axis in memory)
        kernel = kernel.view(kernel.shape[:2] + (1,) * axis + kernel.shape[2:])
        return torch.matmul(kernel, lines).view(t.shape)

    if mode == "parallel":
        return [along(axis, k, v) for axis, k in enumerate(kernels)]
    for axis, k in enumerate(kernels):
        v = along(axis, k, v)
    return [v]


class FactorizedAttentionBlock(nn.Module):
    """One factorized-attention block, parallel (IFactFormer-m) or chained (IFactFormer-o).

    Parameters
    ----------
    dim
        Channels of the hidden field.
    heads, dim_head
        Number of heads and value channels per head.
    kernel_multiplier
        Rank of each head's kernel in units of ``dim_head``: ``q`` and ``k`` have
        ``dim_head * kernel_multiplier`` channels per head (must be even for the rotary pairs).
        Kernels are scaled by ``1 / sqrt(rank)`` only when ``kernel_multiplier > 4``, as published.
    mode
        ``"parallel"``: each axis kernel acts on the values along its own axis and the three
        results are concatenated; ``"chained"``: x, then y, then z kernel on the same tensor.

    ``forward(u, rotary)`` takes ``u`` ``(batch, nx, ny, nz, dim)`` and the per-axis rotary
    ``(cos, sin)`` pairs from :func:`_rotary_angles` and returns the update, same shape as ``u``.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, kernel_multiplier: int, mode: Mode) -> None:
        super().__init__()
        if mode not in ("parallel", "chained"):
            raise ValueError(f"mode must be 'parallel' or 'chained', got {mode!r}")
        self.heads, self.dim_head, self.mode = heads, dim_head, mode
        self.rank = dim_head * kernel_multiplier
        if self.rank % 2:
            raise ValueError(f"dim_head * kernel_multiplier must be even for the rotary embedding, got {self.rank}")
        scaling = self.rank**-0.5 if kernel_multiplier > 4 else 1.0
        self.norm = nn.LayerNorm(dim)
        self.to_v = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_latent = nn.Linear(dim, dim, bias=False)
        self.reducers = nn.ModuleList(_PoolingReducer(dim, dim) for _ in _AXES)
        self.kernels = nn.ModuleList(_AxisKernel(dim, heads, self.rank, scaling) for _ in _AXES)
        mixed = (3 if mode == "parallel" else 1) * heads * dim_head
        self.out_hidden = nn.Linear(mixed, dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def forward(self, u: torch.Tensor, rotary: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        batch, nx, ny, nz, dim = u.shape
        h = self.norm(u)
        kernels = []
        for axis, (reducer, kernel) in enumerate(zip(self.reducers, self.kernels)):
            others = tuple(1 + a for a in range(3) if a != axis)
            latent = reducer(self.to_latent(h.mean(dim=others)))
            kernels.append(kernel(latent, rotary[axis]))
        # values heads first, (batch, heads, nx, ny, nz, dim_head), from one batched matrix product
        # per sample (over the heads, of the sample broadcast without a copy)
        values = self.to_v.weight.view(self.heads, self.dim_head, dim).transpose(1, 2)
        products = [torch.bmm(p.expand(self.heads, -1, -1), values) for p in h.reshape(batch, -1, dim)]
        v = (products[0][None] if batch == 1 else torch.stack(products)).view(batch, self.heads, nx, ny, nz, self.dim_head)
        parts = [p.flatten(2, 4) for p in _apply_axis_kernels(v, kernels, self.mode)]
        hidden = _normalised_linear(parts, self.out_hidden.weight)
        return self.out(F.gelu(hidden)).view(batch, nx, ny, nz, dim)


class _IFactFormer(SurrogateModel):
    """The shared body of IFactFormer-m and -o; the subclasses fix ``mode`` (see the module doc)."""

    mode: ClassVar[Mode]

    def __init__(
        self,
        n_var: int,
        n_history: int,
        dim: int,
        heads: int,
        dim_head: int,
        kernel_multiplier: int,
        n_layer: int,
        pos_scale: float,
        seed: int,
    ) -> None:
        super().__init__()
        for name, value in (("n_var", n_var), ("n_history", n_history), ("dim", dim), ("heads", heads),
                            ("dim_head", dim_head), ("kernel_multiplier", kernel_multiplier), ("n_layer", n_layer)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if dim % (2 * n_var):
            raise ValueError(f"dim must be a multiple of 2 * n_var = {2 * n_var} (dim/2 lifted channels shared "
                             f"equally by the {n_var} variables), got dim={dim}")
        self.n_var, self.n_history, self.n_layer = n_var, n_history, n_layer
        per_var = dim // (2 * n_var)
        # lifting: per-variable pointwise affine map (a grouped 1x1 convolution, fan-in 1), GELU, history mix
        self.lift_weight = nn.Parameter(torch.empty(n_var, 1, per_var).uniform_(-1.0, 1.0))
        self.lift_bias = nn.Parameter(torch.empty(n_var, 1, per_var).uniform_(-1.0, 1.0))
        self.lift_mix = nn.Linear(n_var * n_history * per_var, dim, bias=False)
        generator = torch.Generator().manual_seed(int(seed))
        self.register_buffer("fourier_projection", torch.randn(3, dim // 2, generator=generator) * pos_scale)
        self.pos_linear = nn.Linear(dim, dim)
        self.block = FactorizedAttentionBlock(dim, heads, dim_head, kernel_multiplier, self.mode)
        self.proj_hidden = nn.Linear(dim, dim // 2, bias=False)
        self.proj_out = nn.Linear(dim // 2, n_var)

    def positional_encoding(self, axes: Sequence[torch.Tensor]) -> torch.Tensor:
        """Fourier features of the cell centres through the linear layer: ``(nx, ny, nz, dim)``.

        Phases are summed per axis in float32 (no matmul, so autocast leaves them exact).
        """
        projection = self.fourier_projection.float()
        phase = [2.0 * math.pi * c.float()[:, None] * projection[a] for a, c in enumerate(axes)]
        phase = phase[0][:, None, None] + phase[1][None, :, None] + phase[2][None, None, :]
        features = torch.cat((phase.sin(), phase.cos()), dim=-1)
        return self.pos_linear(features.to(self.pos_linear.weight.dtype))

    def forward(self, x: torch.Tensor, coords: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Next normalised state from the last ``n_history`` normalised states.

        Parameters
        ----------
        x
            ``(batch, n_history, n_var, nx, ny, nz)``, oldest snapshot first.
        coords
            Cell-centre coordinates in h: ``{"x": (nx,), "y": (ny,), "z": (nz,)}``.

        Returns
        -------
        torch.Tensor
            ``(batch, n_var, nx, ny, nz)``.
        """
        self.check_input(x, coords, self.n_history, self.n_var)
        axes = [coords[a].to(device=x.device) for a in _AXES]
        # lifting, channels last: (b, nx, ny, nz, n_var, n_history, per_var) -> (b, nx, ny, nz, dim)
        h = x.permute(0, 3, 4, 5, 2, 1).unsqueeze(-1)
        u = self.lift_mix(F.gelu(h * self.lift_weight + self.lift_bias).flatten(-3))
        u = u + self.positional_encoding(axes)
        u = u.to(torch.promote_types(u.dtype, torch.float32))  # the residual stream stays float32 under autocast
        rotary = [_rotary_angles(c, self.block.rank) for c in axes]
        for _ in range(self.n_layer):
            u = torch.add(u, self.block(u, rotary), alpha=1.0 / self.n_layer)  # u + block(u) / n_layer
        y = self.proj_out(F.gelu(self.proj_hidden(u)))
        return y.permute(0, 4, 1, 2, 3)


_PAPER = dict(n_var=3, n_history=1, dim=96, heads=5, dim_head=96, kernel_multiplier=3, n_layer=10, pos_scale=8.0)
_CPU = dict(n_var=3, n_history=1, dim=36, heads=2, dim_head=16, kernel_multiplier=3, n_layer=4, pos_scale=8.0)


class IFactFormerM(_IFactFormer, name="ifactformer_m", presets={"paper": _PAPER, "cpu": _CPU}):
    """IFactFormer-m: the implicit factorized transformer with parallel axis kernels.

    See the module documentation for what it computes. Parameters: 1,163,187 for the ``"paper"``
    preset (the published 1,163,331 less its frozen 144-entry Fourier projection, a buffer here).

    Parameters
    ----------
    n_var
        Variables in and out (``u, v, w``: 3).
    n_history
        Snapshots in the input window.
    dim
        Hidden channels (a multiple of ``2 * n_var``).
    heads, dim_head
        Kernel heads and value channels per head.
    kernel_multiplier
        Kernel rank per head in units of ``dim_head``.
    n_layer
        Applications of the one weight-shared block.
    pos_scale
        Standard deviation of the Gaussian Fourier projection of the coordinates (in 1/h).
    seed
        Seed of the Fourier projection (also stored in the state dict).
    """

    mode = "parallel"

    def __init__(self, n_var: int = 3, n_history: int = 1, dim: int = 96, heads: int = 5, dim_head: int = 96,
                 kernel_multiplier: int = 3, n_layer: int = 10, pos_scale: float = 8.0, seed: int = 0) -> None:
        super().__init__(n_var, n_history, dim, heads, dim_head, kernel_multiplier, n_layer, pos_scale, seed)


class IFactFormerO(_IFactFormer, name="ifactformer_o", presets={"paper": _PAPER, "cpu": _CPU}):
    """IFactFormer-o: as :class:`IFactFormerM` with the axis kernels chained (x, then y, then z).

    Parameters: 1,071,027 for the ``"paper"`` preset (the output layer sees ``heads * dim_head``
    channels instead of three times as many). Arguments as :class:`IFactFormerM`.
    """

    mode = "chained"

    def __init__(self, n_var: int = 3, n_history: int = 1, dim: int = 96, heads: int = 5, dim_head: int = 96,
                 kernel_multiplier: int = 3, n_layer: int = 10, pos_scale: float = 8.0, seed: int = 0) -> None:
        super().__init__(n_var, n_history, dim, heads, dim_head, kernel_multiplier, n_layer, pos_scale, seed)
