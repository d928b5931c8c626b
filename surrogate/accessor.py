"""The ``channel`` accessor of field Datasets: statistics, spectra and figures from a notebook.

``import surrogate`` registers it on every :class:`xarray.Dataset`:

>>> import surrogate as sg
>>> ds = sg.open_fields("runs/dns_re180/fields.nc")  # doctest: +SKIP
>>> ds.channel.re_tau(t_start=15.0)  # doctest: +SKIP
>>> profiles = ds.channel.wall_units(t_start=15.0)  # doctest: +SKIP
>>> spectra = ds.channel.spectra(y_plus=[5, 30, 100], t_start=15.0)  # doctest: +SKIP
>>> ds.channel.plot_profiles(ref="mkm180", t_start=15.0)  # doctest: +SKIP

Each method is a thin wrapper: it checks that the Dataset is a field Dataset
(:func:`surrogate.fields.check_fields`, :class:`~surrogate.fields.FieldError` otherwise), keeps
the snapshots at ``time >= t_start`` where it takes ``t_start``
(:func:`surrogate.evaluation.time_window`) and returns what the wrapped function of
:mod:`surrogate.stats`, :mod:`surrogate.evaluation` or :mod:`surrogate.report` returns.
"""

from __future__ import annotations

from os import PathLike
from typing import Any, Sequence

import xarray as xr

from . import stats
from .fields import check_fields
from .grid import ChannelGrid
from .report import profiles_figure, save_figure
from .evaluation import load_reference, require_finite_profiles, run_statistics, time_window

__all__ = ["ChannelAccessor"]


@xr.register_dataset_accessor("channel")
class ChannelAccessor:
    """``ds.channel``: statistics and figures of a field Dataset (see :mod:`surrogate.accessor`)."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._ds = ds

    def _window(self, t_start: float | None) -> xr.Dataset:
        """The checked field Dataset's snapshots at ``time >= t_start`` (all without ``t_start``)."""
        check_fields(self._ds)
        return time_window(self._ds, t_start, str(self._ds.attrs.get("case") or "the field Dataset"))

    @property
    def grid(self) -> ChannelGrid:
        """The channel grid of the Dataset: :func:`surrogate.fields.check_fields`."""
        return check_fields(self._ds)

    def stats(self, t_start: float | None = None, fold: bool = True) -> xr.Dataset:
        """Mean and rms profiles (in the nominal ``u_tau``): :func:`surrogate.stats.mean_profiles`."""
        window = self._window(t_start)
        return require_finite_profiles(stats.mean_profiles(window, fold=fold).compute(), window, "the Dataset")

    def wall_units(self, t_start: float | None = None, u_tau: float | None = None) -> xr.Dataset:
        """Profiles in wall units, measured ``u_tau`` by default: :func:`surrogate.evaluation.run_statistics`."""
        check_fields(self._ds)
        return run_statistics(self._ds, t_start=t_start, u_tau=u_tau)

    def re_tau(self, t_start: float | None = None) -> float:
        """Re_tau reached, from the mean wall shear: :func:`surrogate.stats.re_tau_measured`."""
        return stats.re_tau_measured(self._window(t_start))

    def spectra(
        self,
        y_plus: float | Sequence[float] | None = None,
        y: float | Sequence[float] | None = None,
        premultiplied: bool = False,
        t_start: float | None = None,
        u_tau: float | None = None,
    ) -> xr.Dataset:
        """Energy spectra (``y_plus`` in ``u_tau``, default the nominal): :func:`surrogate.stats.energy_spectra`."""
        return stats.energy_spectra(
            self._window(t_start), y=y, y_plus=y_plus, u_tau=u_tau, premultiplied=premultiplied
        )

    def pdfs(
        self,
        y_plus: float | Sequence[float] | None = None,
        y: float | Sequence[float] | None = None,
        bins: int = 101,
        range_sigma: float = 6.0,
        variables: Sequence[str] = ("u", "v", "w", "omega_x", "omega_y", "omega_z"),
        u_tau: float | None = None,
        t_start: float | None = None,
    ) -> xr.Dataset:
        """PDFs of the standardised fluctuations at planes: :func:`surrogate.stats.velocity_pdfs`."""
        return stats.velocity_pdfs(
            self._window(t_start), y_plus=y_plus, y=y, bins=bins, range_sigma=range_sigma,
            variables=variables, u_tau=u_tau,
        )

    def moments(self, t_start: float | None = None) -> xr.Dataset:
        """Skewness and flatness profiles of the velocity fluctuations: :func:`surrogate.stats.higher_moments`."""
        return stats.higher_moments(self._window(t_start))

    def total_stress(
        self,
        t_start: float | None = None,
        u_tau: float | None = None,
        nu: float | None = None,
        tau_sgs: xr.DataArray | None = None,
    ) -> xr.Dataset:
        """Mean shear-stress budget against ``u_tau^2 (1 - y)``: :func:`surrogate.stats.total_stress`."""
        return stats.total_stress(self._window(t_start), u_tau=u_tau, nu=nu, tau_sgs=tau_sgs)

    def vorticity(self) -> xr.Dataset:
        """Vorticity ``omega_x, omega_y, omega_z`` of every snapshot: :func:`surrogate.stats.vorticity`."""
        check_fields(self._ds)
        return stats.vorticity(self._ds)

    def plot_profiles(
        self,
        ref: str | PathLike[str] | xr.Dataset = "mkm180",
        t_start: float | None = None,
        ax: Any = None,
        *,
        path: str | PathLike[str] | None = None,
        label: str | None = None,
        title: str | None = None,
    ) -> Any:
        """Profiles against a reference, a Figure (a PNG at ``path``): :func:`surrogate.report.profiles_figure`.

        ``ref`` is anything :func:`surrogate.evaluation.load_reference` takes (a published name
        such as ``"mkm180"``, a run path, a Dataset); the run's profiles are
        :meth:`wall_units` (labelled ``label``, default ``attrs["case"]``); ``ax`` is one Axes
        (``U+`` only) or two (``U+`` and the rms panel), default a new Figure.
        """
        check_fields(self._ds)
        profiles = run_statistics(self._ds, t_start=t_start, label=label)
        reference = load_reference(ref, t_start=t_start)
        fig = profiles_figure({profiles.attrs["label"]: profiles}, reference, title=title, ax=ax)
        if path is not None:
            save_figure(fig, path)
        return fig
