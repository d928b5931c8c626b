r"""Temporal linear stability of plane Poiseuille flow: the Orr–Sommerfeld problem.

Outer (laminar) scaling is used throughout this module, *not* the wall units of the rest of the
package: the wall-normal coordinate is ``yb`` in ``[-1, 1]`` (``yb = y - 1`` in the channel's
``y`` in ``[0, 2]``), lengths are in channel half-heights ``h``, velocities in the laminar
centreline velocity ``U_c`` and the Reynolds number is ``Re = U_c h / nu``. The base flow is

.. math:: U(y_b) = 1 - y_b^2, \qquad U'' = -2.

A two-dimensional perturbation with stream function

.. math:: \psi(x, y_b, t) = \phi(y_b)\, e^{i \alpha (x - c t)}

(streamwise wavenumber ``alpha`` real, complex phase speed ``c``) satisfies the Orr–Sommerfeld
equation

.. math::

    (U - c)(\phi'' - \alpha^2 \phi) - U'' \phi
        = \frac{1}{i \alpha Re} \left(\phi'''' - 2 \alpha^2 \phi'' + \alpha^4 \phi\right),

with clamped (no-slip, no-penetration) walls ``phi(+-1) = phi'(+-1) = 0``. The mode grows when
``c.imag > 0``; its temporal growth rate is ``alpha * c.imag`` (in ``U_c / h``).

Discretisation
--------------
Chebyshev collocation on the Gauss–Lobatto points ``yb_j = cos(pi j / n)``, ``j = 0 .. n``. Both
boundary conditions are built into the unknown by the substitution

.. math:: \phi(y_b) = (1 - y_b^2)\, f(y_b), \qquad f(\pm 1) = 0,

so the unknowns are ``f`` at the ``n - 1`` interior points, ``phi = phi' = 0`` at both walls for
every discrete solution, and no spurious "boundary" eigenvalues appear. The derivatives of
``phi`` follow from those of ``f`` by the product rule,

.. math::

    \phi''   &= (1 - y_b^2) f'' - 4 y_b f' - 2 f, \\
    \phi'''' &= (1 - y_b^2) f'''' - 8 y_b f''' - 12 f'',

and the discrete problem ``A f = c B f`` (both ``(n - 1, n - 1)`` complex matrices) is solved
with :func:`scipy.linalg.eig`. The least stable eigenvalue at ``Re = 10^4``, ``alpha = 1`` is
converged to about 9 significant digits already at ``n = 60`` and agrees with Orszag's (1971)
``c = 0.23752649 + 0.00373967 i`` in every printed digit; beyond ``n ~ 150`` rounding errors of
the fourth-derivative matrix slowly grow (``|delta c| ~ 1e-10``).

References
----------
S. A. Orszag, "Accurate solution of the Orr–Sommerfeld stability equation",
*J. Fluid Mech.* 50(4), 689–703 (1971), doi:10.1017/S0022112071002842.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.polynomial.chebyshev as cheb
import scipy.linalg

__all__ = ["OrrSommerfeldMode", "orr_sommerfeld", "chebyshev_points", "chebyshev_diff_matrix"]

#: Eigenvalues whose phase speed lies outside ``[U_min - _CR_MARGIN, U_max + _CR_MARGIN]`` are
#: discarded as spurious: every viscous Orr–Sommerfeld mode of a flow ``0 <= U <= 1`` has
#: ``0 < c.real < 1`` (Joseph 1968).
_CR_MARGIN = 0.05
#: Eigenvalues larger than this in modulus are discarded as spurious/infinite.
_C_MAX = 1.0e3
#: Points used to locate ``max |phi'|`` for the normalisation.
_N_NORM = 4001


def chebyshev_points(n: int) -> np.ndarray:
    """Chebyshev–Gauss–Lobatto points ``cos(pi j / n)``, ``j = 0 .. n``.

    Parameters
    ----------
    n
        Polynomial degree (``n + 1`` points), ``n >= 1``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n + 1,)``, decreasing from ``1`` to ``-1``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    # sin form: exactly antisymmetric about 0 in floating point
    return np.sin(np.pi * (n - 2.0 * np.arange(n + 1)) / (2.0 * n))


def chebyshev_diff_matrix(n: int) -> tuple[np.ndarray, np.ndarray]:
    r"""First-derivative collocation matrix on the Gauss–Lobatto points.

    For the interpolating polynomial ``p`` of degree ``n`` through values ``v_j`` at
    ``x_j = cos(pi j / n)``, ``(D v)_i = p'(x_i)``. Off-diagonal entries are

    .. math:: D_{ij} = \frac{c_i}{c_j} \frac{(-1)^{i+j}}{x_i - x_j}, \quad
              c_0 = c_n = 2, \; c_j = 1 \text{ otherwise},

    and each diagonal entry is minus the sum of the off-diagonal entries of its row (exact
    differentiation of constants, which reduces rounding errors).

    Parameters
    ----------
    n
        Polynomial degree, ``n >= 1``.

    Returns
    -------
    D : numpy.ndarray
        Shape ``(n + 1, n + 1)``.
    x : numpy.ndarray
        The points, shape ``(n + 1,)``.
    """
    x = chebyshev_points(n)
    weights = np.ones(n + 1)
    weights[0] = weights[-1] = 2.0
    weights *= (-1.0) ** np.arange(n + 1)
    dx = x[:, None] - x[None, :]
    np.fill_diagonal(dx, 1.0)
    d = np.outer(weights, 1.0 / weights) / dx
    np.fill_diagonal(d, 0.0)
    d[np.diag_indices(n + 1)] = -d.sum(axis=1)
    return d, x


def _values_to_chebyshev(values: np.ndarray) -> np.ndarray:
    r"""Chebyshev coefficients of the degree-``n`` interpolant through Gauss–Lobatto values.

    .. math:: a_k = \frac{2}{n\, \gamma_k} \sum_{j=0}^{n}{}'' v_j \cos(\pi j k / n),

    where ``''`` halves the first and last terms and ``gamma_0 = gamma_n = 2``, else 1.
    """
    n = values.shape[0] - 1
    j = np.arange(n + 1)
    weights = np.ones(n + 1)
    weights[0] = weights[-1] = 0.5
    cosines = np.cos(np.pi * np.outer(j, j) / n)
    coeffs = (2.0 / n) * cosines @ (weights * values)
    coeffs[0] *= 0.5
    coeffs[-1] *= 0.5
    return coeffs


@dataclass(frozen=True)
class OrrSommerfeldMode:
    r"""One temporal Orr–Sommerfeld eigenmode of plane Poiseuille flow.

    Attributes
    ----------
    c
        Complex phase speed in units of the centreline velocity ``U_c``.
    alpha
        Streamwise wavenumber in ``1 / h``.
    re
        Reynolds number ``U_c h / nu``.
    coefficients
        Chebyshev coefficients of ``phi(yb)`` (complex, degree ``n + 2``), already normalised.

    Notes
    -----
    Normalisation: the streamwise velocity amplitude ``|u| = |phi'|`` has maximum 1 over
    ``[-1, 1]`` (located on a 4001-point uniform grid), and the phase is fixed so that
    ``phi''(-1)``, the perturbation wall shear at the lower wall, is real and positive. So
    ``max |u| = 1`` and the lower-wall shear of the real perturbation peaks at ``x = 0`` when
    ``t = 0``.
    """

    c: complex
    alpha: float
    re: float
    coefficients: np.ndarray = field(repr=False)

    @property
    def growth_rate(self) -> float:
        """Temporal growth rate ``alpha * c.imag`` in ``U_c / h`` (positive: unstable)."""
        return float(self.alpha * self.c.imag)

    @property
    def omega(self) -> complex:
        """Complex angular frequency ``alpha * c`` in ``U_c / h``."""
        return complex(self.alpha * self.c)

    def phi(self, yb: np.ndarray | float) -> np.ndarray:
        """Eigenfunction ``phi(yb)`` (complex), any shape, ``yb`` in ``[-1, 1]``."""
        return cheb.chebval(np.asarray(yb, dtype=float), self.coefficients)

    def dphi(self, yb: np.ndarray | float) -> np.ndarray:
        """Derivative ``phi'(yb)`` (complex), any shape, ``yb`` in ``[-1, 1]``."""
        return cheb.chebval(np.asarray(yb, dtype=float), cheb.chebder(self.coefficients))

    def d2phi(self, yb: np.ndarray | float) -> np.ndarray:
        """Second derivative ``phi''(yb)`` (complex), any shape, ``yb`` in ``[-1, 1]``."""
        return cheb.chebval(np.asarray(yb, dtype=float), cheb.chebder(self.coefficients, 2))

    def velocity(
        self,
        x: np.ndarray | float,
        yb: np.ndarray | float,
        t: np.ndarray | float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        r"""Real perturbation velocities of the mode.

        .. math::

            u = \mathrm{Re}\left[\partial_{y_b} \psi\right]
              = \mathrm{Re}\left[\phi'(y_b)\, e^{i\alpha(x - c t)}\right], \qquad
            v = \mathrm{Re}\left[-\partial_x \psi\right]
              = \mathrm{Re}\left[-i\alpha\, \phi(y_b)\, e^{i\alpha(x - c t)}\right],

        so ``du/dx + dv/dyb = 0`` exactly.

        Parameters
        ----------
        x, yb, t
            Broadcastable arrays: streamwise position in ``h``, wall-normal position in
            ``[-1, 1]`` and time in ``h / U_c``.

        Returns
        -------
        u, v : numpy.ndarray
            Real arrays of the broadcast shape, in units of ``U_c`` (for the normalised mode,
            ``max |u| = 1`` at ``t = 0``).
        """
        x = np.asarray(x, dtype=float)
        yb = np.asarray(yb, dtype=float)
        t = np.asarray(t, dtype=float)
        phase = np.exp(1j * self.alpha * (x - self.c * t))
        u = np.real(self.dphi(yb) * phase)
        v = np.real(-1j * self.alpha * self.phi(yb) * phase)
        return u, v


def _operators(re: float, alpha: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The matrices ``A``, ``B`` of ``A f = c B f`` and the interior points."""
    d1, y = chebyshev_diff_matrix(n)
    d2 = d1 @ d1
    d3 = d2 @ d1
    d4 = d2 @ d2
    inner = slice(1, n)
    yi = y[inner]
    d1, d2, d3, d4 = (m[inner, inner] for m in (d1, d2, d3, d4))  # f(+-1) = 0
    w = 1.0 - yi**2  # phi = w f
    eye = np.eye(n - 1)
    phi0 = np.diag(w)
    phi2 = w[:, None] * d2 - 4.0 * yi[:, None] * d1 - 2.0 * eye
    phi4 = w[:, None] * d4 - 8.0 * yi[:, None] * d3 - 12.0 * d2
    a2 = alpha * alpha
    lap = phi2 - a2 * phi0
    lap2 = phi4 - 2.0 * a2 * phi2 + a2 * a2 * phi0
    base = 1.0 - yi**2
    base_dd = -2.0
    a_mat = base[:, None] * lap - base_dd * phi0 - lap2 / (1j * alpha * re)
    return a_mat.astype(complex), lap.astype(complex), yi


def orr_sommerfeld(re: float, alpha: float, n: int = 120) -> OrrSommerfeldMode:
    """Least stable temporal Orr–Sommerfeld mode of plane Poiseuille flow ``U = 1 - yb^2``.

    Parameters
    ----------
    re
        Reynolds number ``U_c h / nu`` on the centreline velocity and half-height
        (laminar critical value 5772.22 at ``alpha = 1.02056``).
    alpha
        Streamwise wavenumber in ``1 / h``, ``> 0``.
    n
        Chebyshev polynomial degree of ``f`` (``n - 1`` unknowns). ``n = 60`` already gives
        about 9 significant digits of ``c`` at ``Re = 10^4``; larger ``Re`` needs larger ``n``
        (the wall layers thin like ``(alpha Re)^(-1/3)``).

    Returns
    -------
    OrrSommerfeldMode
        The eigenvalue with the largest ``c.imag`` among the physical ones (finite,
        ``|c| < 1000``, ``-0.05 < c.real < 1.05``) and its normalised eigenfunction.

    Raises
    ------
    ValueError
        For a non-positive ``re`` or ``alpha``, ``n < 4``, or when no physical eigenvalue is
        found.
    """
    if not (np.isfinite(re) and re > 0):
        raise ValueError(f"re must be a positive Reynolds number, got {re!r}")
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a positive wavenumber, got {alpha!r}")
    if int(n) != n or n < 4:
        raise ValueError(f"n must be an integer >= 4, got {n!r}")
    n = int(n)
    a_mat, b_mat, _ = _operators(float(re), float(alpha), n)
    eigvals, eigvecs = scipy.linalg.eig(a_mat, b_mat)
    ok = (
        np.isfinite(eigvals)
        & (np.abs(eigvals) < _C_MAX)
        & (eigvals.real > -_CR_MARGIN)
        & (eigvals.real < 1.0 + _CR_MARGIN)
    )
    if not np.any(ok):
        raise ValueError(f"no physical Orr-Sommerfeld eigenvalue found (re={re}, alpha={alpha}, n={n})")
    index = np.flatnonzero(ok)[np.argmax(eigvals.imag[ok])]
    c = complex(eigvals[index])

    # phi = (1 - yb^2) f, f interpolated through the Gauss-Lobatto values with f(+-1) = 0
    f_values = np.zeros(n + 1, dtype=complex)
    f_values[1:n] = eigvecs[:, index]
    f_coeffs = _values_to_chebyshev(f_values)
    phi_coeffs = cheb.chebmul(f_coeffs, [0.5, 0.0, -0.5])  # 1 - yb^2 = (T0 - T2) / 2

    # normalise: max |phi'| = 1, phi''(-1) real positive
    y_fine = np.linspace(-1.0, 1.0, _N_NORM)
    amplitude = np.max(np.abs(cheb.chebval(y_fine, cheb.chebder(phi_coeffs))))
    wall_shear = cheb.chebval(-1.0, cheb.chebder(phi_coeffs, 2))
    phase = wall_shear / abs(wall_shear) if abs(wall_shear) > 0 else 1.0
    phi_coeffs = phi_coeffs / (amplitude * phase)
    return OrrSommerfeldMode(c=c, alpha=float(alpha), re=float(re), coefficients=phi_coeffs)
