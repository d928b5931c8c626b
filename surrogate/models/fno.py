r"""The Fourier neural operator (FNO) and its implicit, weight-shared variant (IFNO).

Both map the last ``n_history`` normalised states of the coarse channel flow,
``x: (batch, n_history, n_var, nx, ny, nz)``, to the next one, ``(batch, n_var, nx, ny, nz)``:

.. math::

    v_0 = P\,[x;\ c(\mathbf{x})], \qquad
    v_{l+1} = \sigma\big(\mathcal{K}_l v_l + W_l v_l + b_l\big) \ (\text{FNO}), \qquad
    y = Q\,v_L,

with ``P`` a pointwise (1x1x1) lifting of the stacked history and the coordinate features
``c(x)`` to ``width`` channels, ``Q`` a pointwise projection ``width -> projection_width -> n_var``
with a GELU between, ``W_l`` a pointwise linear map and ``K_l`` the spectral convolution of
:class:`SpectralConv3d`,

.. math::

    (\mathcal{K} v)(\mathbf{x}) = \mathcal{F}^{-1}\big[R(\mathbf{k})\,(\mathcal{F} v)(\mathbf{k})\big],
    \qquad R(\mathbf{k}) \in \mathbb{C}^{\mathrm{width}\times\mathrm{width}}
    \ \text{for the retained modes, } 0 \text{ otherwise}.

Sources: Li et al. (2021), "Fourier neural operator for parametric partial differential
equations", ICLR (the layer, the corner-mode truncation, padding of non-periodic directions);
You, Yu, D'Elia, Gao & Silling (2022), "Learning deep implicit Fourier neural operators (IFNOs)
with applications to heterogeneous material modeling", CMAME 398, 115296 (the implicit loop
:math:`v \leftarrow v + \tfrac{1}{L}\,\sigma(\mathcal{K} v + W v + b)` with one shared layer).
Both are the baselines of the IFactFormer-m study (Yang, Wang & Wang, arXiv 2412.18840).

The channel geometry
--------------------
* ``x`` and ``z`` are periodic and statistically homogeneous: the FFT is applied directly
  (``fft`` in x, ``rfft`` in z). With the default ``coordinate_features=("y",)`` no x/z position
  enters the model, so it is exactly equivariant to periodic shifts in x and z — a symmetry of
  the channel flow, not an approximation. ``"x"``/``"z"`` add ``sin, cos(2 pi x / L_x)`` features
  (``L`` from the coordinates: ``n * (max - min) / (n - 1)``), which breaks that equivariance.
* ``y`` (wall-normal, stretched, two no-slip walls) is not periodic. A plain FFT in y would treat
  the top wall as the neighbour of the bottom wall. Each spectral convolution therefore appends
  ``ceil(y_padding * ny)`` zero rows above the top wall, transforms the padded field, and crops
  the result back to the ``ny`` physical rows (the padding is redone at every layer, so the
  padded rows are zero at every FFT and carry no latent state). The kernel is then periodic over
  ``ny + pad`` rows: the wall-to-wall coupling goes through the kernel at lag ``pad + 1`` instead
  of lag 1, i.e. it is decoupled from the short-range part of the kernel that acts within the
  flow (``pad >= ny - 1`` would make the y convolution fully aperiodic). ``y_padding=0``
  recovers the periodic-in-y FNO. The FFT works in index space, i.e. on the computational
  coordinate of the stretched grid; the physical ``y`` (in h, from ``coords``) enters as a
  feature.

Modes
-----
``modes = (mx, my, mz)`` follows Li et al.: in the full-FFT axes x and (padded) y the wavenumbers
``k = 0 .. m-1`` and ``k = -m .. -1`` are kept (``2m`` modes, each with its own complex weight),
in the rfft axis z ``k = 0 .. mz-1``. The grid must support them: on a grid of ``n`` points at most
``ceil(n/2)`` non-negative and ``floor(n/2)`` negative wavenumbers exist (``n//2 + 1`` in z); the
retained set is clipped to that, always with the same weight for the same wavenumber, so any grid
(odd, small, larger than trained on) works; weights of modes a grid lacks get no gradient from it.
For the study's 32 x 33 x 16 grid (y padded to 42): ``mx <= 16``, ``my <= 21``, ``mz <= 9``.

Precision: FFTs run in float32 (or the input's precision when that is float64), with autocast
disabled around them; the pointwise layers follow autocast, so the models run under
``torch.autocast("cpu", dtype=torch.bfloat16)`` and CUDA autocast.

Parameter counts (``count_parameters``; n_var=3, n_history=1, y coordinate feature):

=========  ================================================================  ==========
model      preset                                                            parameters
=========  ================================================================  ==========
``fno``    ``paper``: width 12, modes (8, 8, 4), 4 layers                     1,182,383
``fno``    ``cpu``: width 8, modes (4, 4, 3), 4 layers, projection 32            99,019
``ifno``   ``paper``: width 24, modes (8, 8, 4), 1 layer looped 10 times      1,183,955
``ifno``   ``cpu``: width 12, modes (4, 4, 3), 1 layer looped 4 times,           56,027
           projection 32
=========  ================================================================  ==========

The ``paper`` presets match IFactFormer-m's 1,163,331 parameters within 2 % with the same modes
for both models: the facts we hold from the study give no sizes for its baselines, and equal
budgets are the fair comparison (``FNO(width=20)`` with the same modes, closer to Li et al.'s
3-D setting, has 3,281,655). The spectral weights dominate: ``2 * width**2 * (2 mx)(2 my) mz`` real numbers per
layer.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .registry import SurrogateModel

__all__ = ["FNO", "IFNO", "SpectralConv3d", "coordinate_channels"]

_AXES = ("x", "y", "z")


def _as_modes(modes: Sequence[int]) -> tuple[int, int, int]:
    modes = tuple(int(m) for m in modes)
    if len(modes) != 3 or any(m < 1 for m in modes):
        raise ValueError(f"modes must be three positive integers (mx, my, mz), got {modes}")
    return modes  # type: ignore[return-value]


def _mode_indices(n: int, m: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Spectrum indices of the retained wavenumbers of an ``n``-point FFT axis, and their weight indices.

    Wavenumbers ``0 .. kp-1`` and ``-kn .. -1`` with ``kp = min(m, ceil(n/2))``,
    ``kn = min(m, floor(n/2))``; weight index ``k`` for ``k >= 0`` and ``2m + k`` for ``k < 0``.
    """
    kp, kn = min(m, (n + 1) // 2), min(m, n // 2)
    spectrum = torch.cat([torch.arange(kp, device=device), torch.arange(n - kn, n, device=device)])
    weight = torch.cat([torch.arange(kp, device=device), torch.arange(2 * m - kn, 2 * m, device=device)])
    return spectrum, weight


def _complex_channel_mix(spectrum: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``out[b, o, k] = sum_i spectrum[b, i, k] R[k, i, o]`` with ``R = weight[..., 0, :] + 1j weight[..., 1, :]``.

    ``spectrum``: complex ``(batch, in, kx, ky, kz)``; ``weight``: real ``(kx, ky, kz, in, 2, out)``.
    Computed as one real batched matrix product over the modes,
    ``[[Xr], [Xi]] @ [Wr | Wi]``, whose four blocks combine into ``Xr Wr - Xi Wi`` and
    ``Xr Wi + Xi Wr``; the operands are mode-first and contiguous (a complex ``einsum`` over
    many small modes is about ten times slower on the CPU).
    """
    batch, channels_in, *modes = spectrum.shape
    channels_out = weight.shape[-1]
    n_modes = math.prod(modes)
    stacked = torch.view_as_real(spectrum).permute(2, 3, 4, 5, 0, 1).reshape(n_modes, 2 * batch, channels_in)
    products = torch.bmm(stacked, weight.reshape(n_modes, channels_in, 2 * channels_out))
    products = products.view(n_modes, 2, batch, 2, channels_out)
    real = products[:, 0, :, 0] - products[:, 1, :, 1]
    imag = products[:, 0, :, 1] + products[:, 1, :, 0]
    return torch.complex(real, imag).permute(1, 2, 0).reshape(batch, channels_out, *modes)


class SpectralConv3d(nn.Module):
    r"""Truncated Fourier-space convolution, periodic in x and z, zero-padded in y.

    ``(K v)(x) = crop_y( irfftn( R(k) * rfftn( pad_y(v) ) ) )`` with a complex matrix
    ``R(k): (in_channels, out_channels)`` for each retained mode (see the module notes). ``R`` is
    stored as the real parameter ``weight: (2 mx, 2 my, mz, in_channels, 2, out_channels)``
    (axis 4: real, imaginary part; x/y index ``k`` for ``k >= 0``, ``2m + k`` for ``k < 0``), so
    optimisers, DDP and ``state_dict`` see an ordinary float tensor.

    Parameters
    ----------
    in_channels, out_channels
        Channels of the input ``(batch, in_channels, nx, ny, nz)`` and of the output.
    modes
        ``(mx, my, mz)``: wavenumbers ``|k| < m`` (and ``-m``) in x and y, ``0 <= k < mz`` in z.
    y_padding
        Fraction of ``ny``: ``ceil(y_padding * ny)`` zero rows are appended above the top wall
        before the FFT and the result is cropped back (0: periodic in y).

    Notes
    -----
    Initialisation: real and imaginary parts ``N(0, 1 / (2 in_channels))``, so a retained mode's
    amplitude keeps its variance on average.
    """

    def __init__(self, in_channels: int, out_channels: int, modes: Sequence[int], y_padding: float = 0.25) -> None:
        super().__init__()
        if y_padding < 0:
            raise ValueError(f"y_padding must be >= 0 (a fraction of ny), got {y_padding}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.modes = _as_modes(modes)
        self.y_padding = float(y_padding)
        mx, my, mz = self.modes
        std = math.sqrt(1.0 / (2 * self.in_channels))
        self.weight = nn.Parameter(std * torch.randn(2 * mx, 2 * my, mz, self.in_channels, 2, self.out_channels))

    def padding(self, ny: int) -> int:
        """Zero rows appended in y for a grid of ``ny`` rows."""
        return math.ceil(self.y_padding * ny)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """``v: (batch, in_channels, nx, ny, nz)`` -> ``(batch, out_channels, nx, ny, nz)`` (float32 or float64)."""
        batch, _, nx, ny, nz = v.shape
        pad = self.padding(ny)
        nyp = ny + pad
        mx, my, mz = self.modes
        with torch.autocast(device_type=v.device.type, enabled=False):
            if v.dtype not in (torch.float32, torch.float64):
                v = v.float()
            ix, wx = _mode_indices(nx, mx, v.device)
            iy, wy = _mode_indices(nyp, my, v.device)
            kz = min(mz, nz // 2 + 1)
            # Separable truncated transform: rfft in z, zero-padded fft in y, fft in x, each
            # keeping only the retained modes (identical to rfftn followed by the selection).
            spectrum = torch.fft.rfft(v, dim=-1)[..., :kz]
            spectrum = torch.fft.fft(spectrum, n=nyp, dim=-2).index_select(-2, iy)
            spectrum = torch.fft.fft(spectrum, dim=-3).index_select(-3, ix)
            weight = self.weight.to(v.dtype)
            if len(wx) < 2 * mx:
                weight = weight.index_select(0, wx)
            if len(wy) < 2 * my:
                weight = weight.index_select(1, wy)
            mixed = _complex_channel_mix(spectrum, weight[:, :, :kz])
            out = mixed.new_zeros(batch, self.out_channels, nx, len(iy), kz).index_copy(2, ix, mixed)
            out = torch.fft.ifft(out, dim=-3)
            out = out.new_zeros(batch, self.out_channels, nx, nyp, kz).index_copy(3, iy, out)
            out = torch.fft.ifft(out, dim=-2)[:, :, :, :ny]
            return torch.fft.irfft(out, n=nz, dim=-1)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, modes={self.modes}, y_padding={self.y_padding}"


def coordinate_channels(
    coords: Mapping[str, torch.Tensor],
    features: Sequence[str],
    shape: tuple[int, int, int],
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Coordinate feature channels ``(n_features, nx, ny, nz)`` from 1-D cell-centre coordinates.

    ``"x"`` and ``"z"`` (periodic) give ``sin`` and ``cos`` of ``2 pi x / L`` with the period
    ``L = n (max - min) / (n - 1)`` of a uniform grid (invariant under rolling the coordinates);
    ``"y"`` gives the wall-normal coordinate in h as it is (0 and 2 are the walls).
    """
    channels = []
    for axis in features:
        index = _AXES.index(axis)
        c = coords[axis].to(device=device, dtype=torch.float64 if dtype == torch.float64 else torch.float32)
        view = [1, 1, 1]
        view[index] = shape[index]
        if axis == "y":
            values = [c]
        else:
            n = c.numel()
            period = n * (c.max() - c.min()) / (n - 1) if n > 1 else torch.ones((), dtype=c.dtype, device=device)
            phase = 2 * math.pi * c / period
            values = [torch.sin(phase), torch.cos(phase)]
        channels += [value.reshape(view).expand(shape) for value in values]
    if not channels:
        return torch.zeros((0, *shape), dtype=dtype, device=device)
    return torch.stack(channels).to(dtype)


class _FourierBase(SurrogateModel):
    """Lifting, coordinate features and projection shared by :class:`FNO` and :class:`IFNO`."""

    def _setup(
        self,
        n_var: int,
        n_history: int,
        width: int,
        modes: Sequence[int],
        n_layers: int,
        y_padding: float,
        coordinate_features: Sequence[str],
        projection_width: int,
    ) -> None:
        if min(n_var, n_history, width, n_layers, projection_width) < 1:
            raise ValueError(
                "n_var, n_history, width, n_layers and projection_width must be positive, got "
                f"{n_var}, {n_history}, {width}, {n_layers}, {projection_width}"
            )
        features = tuple(coordinate_features)
        if any(f not in _AXES for f in features) or len(set(features)) != len(features):
            raise ValueError(f"coordinate_features must be distinct axes among 'x', 'y', 'z', got {coordinate_features!r}")
        if y_padding < 0:
            raise ValueError(f"y_padding must be >= 0 (a fraction of ny), got {y_padding}")
        self.n_var, self.n_history, self.width, self.n_layers = n_var, n_history, width, n_layers
        self.modes = _as_modes(modes)
        self.coordinate_features = features
        n_coord = sum(1 if f == "y" else 2 for f in features)
        self.lift = nn.Conv3d(n_history * n_var + n_coord, width, kernel_size=1)
        self.project = nn.Sequential(
            nn.Conv3d(width, projection_width, kernel_size=1),
            nn.GELU(),
            nn.Conv3d(projection_width, n_var, kernel_size=1),
        )

    def _lift(self, x: torch.Tensor, coords: Mapping[str, torch.Tensor]) -> torch.Tensor:
        self.check_input(x, coords, self.n_history, self.n_var)
        batch, _, _, nx, ny, nz = x.shape
        features = coordinate_channels(coords, self.coordinate_features, (nx, ny, nz), x.dtype, x.device)
        stacked = torch.cat([x.reshape(batch, -1, nx, ny, nz), features.expand(batch, -1, -1, -1, -1)], dim=1)
        return self.lift(stacked)


_FNO_PRESETS = {
    "paper": {"width": 12, "modes": (8, 8, 4), "n_layers": 4},
    "cpu": {"width": 8, "modes": (4, 4, 3), "n_layers": 4, "projection_width": 32},
}


class FNO(_FourierBase, name="fno", presets=_FNO_PRESETS):
    r"""3-D Fourier neural operator (Li et al. 2021) for the channel: periodic x, z; zero-padded y.

    ``v_0 = P [x; c]``, ``v_{l+1} = GELU(K_l v_l + W_l v_l + b_l)`` for ``l < L-1`` and without
    the GELU for the last layer, ``y = Q v_L`` (see the module notes for K, the padding and the
    modes).

    Parameters
    ----------
    n_var
        Variables per state (3: u, v, w).
    n_history
        States in the input window.
    width
        Channels of the Fourier layers.
    modes
        ``(mx, my, mz)`` retained wavenumbers per axis (clipped to the grid).
    n_layers
        Fourier layers ``L``, each with its own weights.
    y_padding
        Zero rows appended in y at each spectral convolution, as a fraction of ``ny``
        (``ceil(y_padding * ny)``; 0.25 gives 42 rows for ny = 33; 0: periodic in y).
    coordinate_features
        Coordinates given to the lifting: ``"y"`` (1 channel, in h) and/or ``"x"``, ``"z"``
        (``sin``/``cos``, 2 channels each; they break the x/z shift equivariance).
    projection_width
        Hidden channels of the projection ``width -> projection_width -> n_var``.

    Parameter count: ``paper`` preset 1,182,383; ``cpu`` preset 99,019 (n_var 3, n_history 1).

    Shapes: ``forward(x, coords)`` with ``x: (batch, n_history, n_var, nx, ny, nz)`` and
    ``coords = {"x": (nx,), "y": (ny,), "z": (nz,)}`` (in h) returns ``(batch, n_var, nx, ny, nz)``.
    """

    def __init__(
        self,
        n_var: int = 3,
        n_history: int = 1,
        width: int = 12,
        modes: Sequence[int] = (8, 8, 4),
        n_layers: int = 4,
        y_padding: float = 0.25,
        coordinate_features: Sequence[str] = ("y",),
        projection_width: int = 128,
    ) -> None:
        super().__init__()
        self._setup(n_var, n_history, width, modes, n_layers, y_padding, coordinate_features, projection_width)
        self.spectral = nn.ModuleList(SpectralConv3d(width, width, self.modes, y_padding) for _ in range(n_layers))
        self.pointwise = nn.ModuleList(nn.Conv3d(width, width, kernel_size=1) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, coords: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Next normalised state ``(batch, n_var, nx, ny, nz)``; see the class docstring."""
        v = self._lift(x, coords)
        for index, (spectral, pointwise) in enumerate(zip(self.spectral, self.pointwise)):
            v = spectral(v) + pointwise(v)
            if index < self.n_layers - 1:
                v = F.gelu(v)
        return self.project(v)


_IFNO_PRESETS = {
    "paper": {"width": 24, "modes": (8, 8, 4), "n_layers": 10},
    "cpu": {"width": 12, "modes": (4, 4, 3), "n_layers": 4, "projection_width": 32},
}


class IFNO(_FourierBase, name="ifno", presets=_IFNO_PRESETS):
    r"""Implicit Fourier neural operator (You et al. 2022): one Fourier layer iterated with shared weights.

    ``v_0 = P [x; c]``, then ``n_layers`` times ``v <- v + GELU(K v + W v + b) / n_layers`` with
    the same ``K, W, b`` (an explicit-Euler discretisation of ``dv/dt = GELU(K v + W v + b)`` on
    ``t in [0, 1]``, as in the implicit loops of the study), then ``y = Q v``. The parameter count
    does not depend on ``n_layers``.

    Parameters
    ----------
    n_var, n_history, width, modes, y_padding, coordinate_features, projection_width
        As for :class:`FNO`.
    n_layers
        Iterations ``L`` of the shared layer (step ``1 / L``).

    Parameter count: ``paper`` preset 1,183,955; ``cpu`` preset 56,027 (n_var 3, n_history 1).

    Shapes: as for :class:`FNO`.
    """

    def __init__(
        self,
        n_var: int = 3,
        n_history: int = 1,
        width: int = 24,
        modes: Sequence[int] = (8, 8, 4),
        n_layers: int = 10,
        y_padding: float = 0.25,
        coordinate_features: Sequence[str] = ("y",),
        projection_width: int = 128,
    ) -> None:
        super().__init__()
        self._setup(n_var, n_history, width, modes, n_layers, y_padding, coordinate_features, projection_width)
        self.spectral = SpectralConv3d(width, width, self.modes, y_padding)
        self.pointwise = nn.Conv3d(width, width, kernel_size=1)

    def forward(self, x: torch.Tensor, coords: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Next normalised state ``(batch, n_var, nx, ny, nz)``; see the class docstring."""
        v = self._lift(x, coords)
        for _ in range(self.n_layers):
            v = v + F.gelu(self.spectral(v) + self.pointwise(v)) / self.n_layers
        return self.project(v)
