r"""Training losses of the surrogates, per sample, on velocity states in physical units (u_tau).

Every function takes ``pred`` and ``target`` of shape ``(batch, n_var, nx, ny, nz)`` (the first
three variables ``u, v, w``) and returns one value per sample, shape ``(batch,)``.

``relative_l2``
    ``||pred - target|| / ||target||`` over the whole field, the loss of the IFactFormer-m study.
    Dominated by the mean streamwise velocity (``U ~ 15`` against fluctuations ``~ 1``): the
    cross-stream components and the near-wall cells count for almost nothing.
``field_error``
    Each component weighed by the size of its own fluctuations: for ``c = u, v, w`` the relative
    L2 error of the fluctuations about the plane means, ``||f'_c - t'_c|| / ||t'_c||``, plus the
    rms error of the plane-mean profile over the rms of the fluctuations,
    ``rms_y(F_c - T_c) / rms(t'_c)``; averaged over the components.
``statistics_error``
    Relative L2 errors over y of the plane statistics (mean ``u``, rms of ``u, v, w``, ``<u'v'>``,
    see :func:`surrogate.mean_flow.plane_statistics`), averaged over the five (or weighted).
``spectral_error``
    Relative L2 error of the amplitudes of the x-z Fourier coefficients (optionally without the
    plane mean, the ``(0, 0)`` mode).
``divergence_error``
    Relative size of the part of the prediction that is not divergence-free.
"""

from __future__ import annotations

from typing import Mapping

import torch

from .mean_flow import PlaneStatistics, plane_statistics
from .projection import CentredProjection

__all__ = ["PROFILES", "divergence_error", "field_error", "profile_error", "relative_l2", "spectral_error", "statistics_error"]


def _tiny(x: torch.Tensor) -> float:
    return torch.finfo(x.dtype).tiny


def relative_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative L2 error per sample, ``||pred - target|| / ||target||``, shape ``(batch,)``.

    ``pred`` and ``target`` have shape ``(batch, ...)``.
    """
    diff = (pred - target).flatten(1).norm(dim=1)
    return diff / target.flatten(1).norm(dim=1).clamp_min(_tiny(target))


def field_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Fluctuation and mean-profile errors of ``u, v, w``, each on its component's own scale, ``(batch,)``."""
    pred, target = pred[:, :3], target[:, :3]
    pred_mean, true_mean = pred.mean(dim=(2, 4), keepdim=True), target.mean(dim=(2, 4), keepdim=True)
    pred_fluct, true_fluct = pred - pred_mean, target - true_mean
    scale = true_fluct.square().mean(dim=(2, 3, 4)).sqrt().clamp_min(_tiny(target))  # (batch, 3)
    fluct = (pred_fluct - true_fluct).square().mean(dim=(2, 3, 4)).sqrt() / scale
    mean = (pred_mean - true_mean).square().mean(dim=(2, 3, 4)).sqrt() / scale
    return (fluct + mean).mean(dim=1)


PROFILES = ("U", "u_rms", "v_rms", "w_rms", "uv")
"""The plane-statistics profiles of :func:`profile_error`, in its order."""


def profile_error(
    a: PlaneStatistics, b: PlaneStatistics, weights: Mapping[str, float] | None = None
) -> torch.Tensor:
    """Weighted mean of the relative L2 errors over y of mean u, the three rms and ``<u'v'>`` of
    ``a`` against ``b``, ``(batch,)``.

    ``a``, ``b``: plane statistics with profiles of shape ``(batch, ..., ny)``. ``weights``: a
    weight for some of :data:`PROFILES` (those not named weigh 1; unset: all 1); the mean is
    the weighted sum over the sum of the weights.
    """
    pairs = [(a.mean[:, 0], b.mean[:, 0]), *((a.rms[:, c], b.rms[:, c]) for c in range(3)), (a.uv, b.uv)]
    errors = torch.stack([relative_l2(p, t) for p, t in pairs])
    if not weights:
        return errors.mean(dim=0)
    w = torch.tensor([float(weights.get(name, 1.0)) for name in PROFILES], dtype=errors.dtype, device=errors.device)
    return (w[:, None] * errors).sum(dim=0) / w.sum()


def statistics_error(
    pred: torch.Tensor, target: torch.Tensor, weights: Mapping[str, float] | None = None
) -> torch.Tensor:
    """:func:`profile_error` of the plane statistics of ``pred`` against ``target``, shape ``(batch,)``."""
    return profile_error(plane_statistics(pred[:, :3]), plane_statistics(target[:, :3]), weights)


def spectral_error(pred: torch.Tensor, target: torch.Tensor, *, include_mean: bool = True) -> torch.Tensor:
    """Relative L2 error of the amplitudes ``|q_hat(k_x, y, k_z)|`` per sample, shape ``(batch,)``.

    ``pred``, ``target``: ``(batch, n_var, nx, ny, nz)``; transforms over x and z. Without
    ``include_mean`` the ``(0, 0)`` mode (the plane means) is left out.
    """
    a = torch.fft.rfftn(pred.float(), dim=(2, 4)).abs()
    b = torch.fft.rfftn(target.float(), dim=(2, 4)).abs()
    if not include_mean:
        keep = torch.ones_like(a[:1, :1, :, :1, :])
        keep[..., 0, :, 0] = 0
        a, b = a * keep, b * keep
    return relative_l2(a, b)


def divergence_error(pred: torch.Tensor, projection: CentredProjection) -> torch.Tensor:
    """Relative size of the part of ``pred`` that is not divergence-free, ``||q - P q|| / ||P q||``, ``(batch,)``.

    ``pred``: velocities ``(batch, 3, nx, ny, nz)``; ``P`` the projection of
    :class:`~surrogate.projection.CentredProjection`.
    """
    return relative_l2(pred, projection(pred))
