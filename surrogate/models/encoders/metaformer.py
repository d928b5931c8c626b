r"""MetaFormer encoders: a transformer block whose attention is replaced by a cheaper token mixer.

Block (pre-norm, channels last): ``x <- x + mixer(norm(x))``, ``x <- x + mlp(norm(x))``, with
LayerNorm over the channels. Two mixers on the token grid ``(batch, tx, ty, tz, dim)``:

``"pooling"`` (:class:`PoolingMixer`, after PoolFormer)
    ``avgpool(x) - x`` with a ``k x k x k`` window, stride 1: periodic in x and z (the window
    wraps around), and in y the average over the cells the window holds inside the walls (zero
    padding with ``count_include_pad=False``), so a token next to a wall averages fewer
    neighbours rather than phantom ones. The ``- x`` makes the mixer a discrete Laplacian-like
    smoother; the residual adds ``x`` back.

``"spectral"`` (:class:`SpectralMixer`, a global filter after GFNet)
    ``irfft2(W * rfft2(x)) + D_y x``: a 2-D FFT over the periodic x and z token axes, a learned
    complex gain per channel and retained wavenumber (``|k_x| < m_x``, ``0 <= k_z < m_z``, shared
    by all y levels; the others get gain 0, like the truncation of an FNO), and an inverse FFT.
    There is **no FFT across y**: the walls make y non-periodic and a Fourier basis would couple
    the two walls. y is mixed instead by ``D_y``, a depthwise convolution along y of ``y_kernel``
    tokens with zero padding at the walls (local, any ``ty``), and the dependence on the distance
    to the wall comes from the wall features in the tokens. FFTs run in float32 with autocast off.

Both mixers treat every token the same way and see no absolute x/z position, so the encoders are
equivariant to periodic shifts of the field by whole patches in x and z (when the grid is a
multiple of the patch there).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import FieldEncoder, Tokens
from .geometry import pad_field
from .layers import Mlp
from .patch import PatchEmbed3d

__all__ = ["MetaFormerBlock", "MetaFormerEncoder", "PoolingMetaFormer", "PoolingMixer", "SpectralMetaFormer", "SpectralMixer"]

MIXERS = ("pooling", "spectral")


class PoolingMixer(nn.Module):
    """``avgpool(x) - x`` on ``(batch, tx, ty, tz, dim)``: circular in x and z, inside the walls in y.

    Parameters
    ----------
    pool_size
        Odd window size ``k`` (cells of the token grid along each axis).
    """

    def __init__(self, pool_size: int = 3) -> None:
        super().__init__()
        if pool_size < 1 or pool_size % 2 == 0:
            raise ValueError(f"pool_size must be a positive odd integer, got {pool_size}")
        self.pool_size = int(pool_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool_size // 2
        v = pad_field(x.permute(0, 4, 1, 2, 3), ((h, h), (0, 0), (h, h)))  # circular in x and z
        pooled = F.avg_pool3d(v, self.pool_size, stride=1, padding=(0, h, 0), count_include_pad=False)
        return pooled.permute(0, 2, 3, 4, 1) - x


class SpectralMixer(nn.Module):
    """Global filter in x and z plus a depthwise convolution in y on ``(batch, tx, ty, tz, dim)``.

    Parameters
    ----------
    dim
        Channels.
    modes
        ``(m_x, m_z)``: wavenumbers ``|k_x| < m_x`` and ``0 <= k_z < m_z`` of the token grid get a
        learned gain (clipped to what the grid holds); the others are filtered out.
    y_kernel
        Odd kernel size of the depthwise convolution along y.

    The filter is stored as the real parameter ``weight`` ``(2 m_x - 1, m_z, dim, 2)`` (real and
    imaginary parts; x index ``k`` for ``k >= 0``, ``2 m_x - 1 + k`` for ``k < 0``), initialised
    ``N(0, 0.02^2)`` like GFNet's.
    """

    def __init__(self, dim: int, modes: Sequence[int] = (4, 3), y_kernel: int = 3) -> None:
        super().__init__()
        modes = tuple(int(m) for m in modes)
        if len(modes) != 2 or any(m < 1 for m in modes):
            raise ValueError(f"modes must be two positive integers (m_x, m_z), got {modes}")
        if y_kernel < 1 or y_kernel % 2 == 0:
            raise ValueError(f"y_kernel must be a positive odd integer, got {y_kernel}")
        self.modes, self.y_kernel = modes, int(y_kernel)
        self.weight = nn.Parameter(0.02 * torch.randn(2 * modes[0] - 1, modes[1], dim, 2))
        self.y_mix = nn.Conv3d(dim, dim, (1, self.y_kernel, 1), padding=(0, self.y_kernel // 2, 0), groups=dim)

    def _filter(self, tx: int, tz: int, device: torch.device) -> torch.Tensor:
        """Complex gains ``(tx, tz // 2 + 1, dim)`` of an ``rfft2`` over a ``tx x tz`` grid."""
        mx, mz = self.modes
        kx = torch.fft.fftfreq(tx, 1.0 / tx, device=device).long()
        keep_x = torch.nonzero(kx.abs() < mx).flatten()
        keep_z = torch.arange(min(mz, tz // 2 + 1), device=device)
        gains = self.weight.float().index_select(0, kx[keep_x] % (2 * mx - 1)).index_select(1, keep_z)
        full = torch.zeros(tx, tz // 2 + 1, self.weight.shape[2], dtype=torch.complex64, device=device)
        full[keep_x[:, None], keep_z[None, :]] = torch.view_as_complex(gains.contiguous())
        return full

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, tx, _, tz, _ = x.shape
        with torch.autocast(device_type=x.device.type, enabled=False):
            v = x.float()
            spectrum = torch.fft.rfft2(v, dim=(1, 3), norm="ortho")
            spectrum = spectrum * self._filter(tx, tz, x.device)[:, None]
            mixed = torch.fft.irfft2(spectrum, s=(tx, tz), dim=(1, 3), norm="ortho")
        return mixed.to(x.dtype) + self.y_mix(x.permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1)


class MetaFormerBlock(nn.Module):
    """``x + mixer(norm(x))``, then ``+ mlp(norm(x))`` on ``(batch, tx, ty, tz, dim)``."""

    def __init__(self, dim: int, mixer: nn.Module, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1, self.mixer = nn.LayerNorm(dim), mixer
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, max(1, round(mlp_ratio * dim)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MetaFormerEncoder(FieldEncoder):
    """Patch embedding, then ``depth`` :class:`MetaFormerBlock` s with the chosen token mixer, then LayerNorm.

    Parameters
    ----------
    in_channels, dim, patch
        As :class:`~surrogate.models.encoders.patch.PatchEmbed3d`.
    depth
        MetaFormer blocks.
    mlp_ratio
        Hidden width of the channel MLP in units of ``dim``.
    mixer
        ``"pooling"`` or ``"spectral"`` (see the module notes).
    pool_size
        Window of the pooling mixer.
    modes, y_kernel
        Retained x/z wavenumbers and the y kernel of the spectral mixer.
    """

    def __init__(self, in_channels: int, dim: int, patch: Sequence[int], depth: int, mlp_ratio: float,
                 mixer: str = "pooling", pool_size: int = 3, modes: Sequence[int] = (4, 3), y_kernel: int = 3) -> None:
        super().__init__()
        if mixer not in MIXERS:
            raise ValueError(f"unknown MetaFormer mixer {mixer!r}; choose one of {', '.join(MIXERS)}")
        self.embed = PatchEmbed3d(in_channels, dim, patch)
        self.in_channels, self.dim, self.patch = self.embed.in_channels, self.embed.dim, self.embed.patch
        self.mixer = mixer

        def make_mixer() -> nn.Module:
            return PoolingMixer(pool_size) if mixer == "pooling" else SpectralMixer(dim, modes, y_kernel)

        self.blocks = nn.ModuleList(MetaFormerBlock(dim, make_mixer(), mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, field: torch.Tensor, coords: Mapping[str, torch.Tensor]) -> Tokens:
        self.check_field(field)
        tokens = self.embed(field, coords)
        x = tokens.grid()
        for block in self.blocks:
            x = block(x)
        return tokens.replace(self.norm(x.flatten(1, 3)))


class PoolingMetaFormer(MetaFormerEncoder, name="metaformer_pooling"):
    """:class:`MetaFormerEncoder` with the pooling mixer (option ``pool_size``)."""

    def __init__(self, in_channels: int, dim: int, patch: Sequence[int], depth: int, mlp_ratio: float,
                 pool_size: int = 3) -> None:
        super().__init__(in_channels, dim, patch, depth, mlp_ratio, mixer="pooling", pool_size=pool_size)


class SpectralMetaFormer(MetaFormerEncoder, name="metaformer_spectral"):
    """:class:`MetaFormerEncoder` with the spectral mixer (options ``modes``, ``y_kernel``)."""

    def __init__(self, in_channels: int, dim: int, patch: Sequence[int], depth: int, mlp_ratio: float,
                 modes: Sequence[int] = (4, 3), y_kernel: int = 3) -> None:
        super().__init__(in_channels, dim, patch, depth, mlp_ratio, mixer="spectral", modes=modes, y_kernel=y_kernel)
