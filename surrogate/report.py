r"""Figures and written reports of comparisons with references.

* :func:`plot_profiles_vs_reference` (one PNG) and :func:`profiles_figure` (the same as a
  matplotlib Figure, for notebooks): mean and rms profiles of runs against a reference in wall
  units;
* :func:`write_report`: compare runs with a reference (:func:`surrogate.evaluation.evaluate`)
  and write ``report.md``, ``report.html`` and the figures; :func:`write_evaluation` writes
  them for an evaluation already made (what ``surrogate validate --out`` does).

Figures use the Agg canvas directly, so the global matplotlib backend is not touched.
"""

from __future__ import annotations

import html
import re
from os import PathLike
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from .evaluation import Evaluation, evaluate
from .evaluation.metrics import SPECTRUM_Y_PLUS, TABLE_METRICS, nearest_plane, profile_array, y_plus_of

__all__ = [
    "KAPPA",
    "B_LOG_LAW",
    "REPORT_DPI",
    "PROFILES_DPI",
    "profiles_figure",
    "plot_profiles_vs_reference",
    "save_figure",
    "write_report",
    "write_evaluation",
]

#: Log law ``U+ = ln(y+) / KAPPA + B`` drawn for orientation.
KAPPA = 0.41
B_LOG_LAW = 5.2
#: Resolution of the report's figures.
REPORT_DPI = 100
#: Resolution of :func:`plot_profiles_vs_reference`.
PROFILES_DPI = 120


# ---------------------------------------------------------------------------------- figure helpers
def _new_figure(nrows: int, ncols: int, width: float, height: float) -> tuple[Any, np.ndarray]:
    """A Figure on its own Agg canvas (the global matplotlib backend is not touched) and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _colour(index: int) -> str:
    return f"C{index % 10}"


def _draw_wall_laws(ax: Any, y_max: float) -> None:
    """The log law ``ln(y+)/0.41 + 5.2`` (dashed grey) and the viscous sublayer ``U+ = y+`` (dotted grey)."""
    y_log = np.geomspace(5.0, max(y_max, 10.0), 100)
    ax.plot(y_log, np.log(y_log) / KAPPA + B_LOG_LAW, color="0.6", ls="--", lw=1.0,
            label=rf"$\ln(y^+)/{KAPPA} + {B_LOG_LAW}$")
    y_lin = np.geomspace(0.1, 12.0, 50)
    ax.plot(y_lin, y_lin, color="0.6", ls=":", lw=1.0, label=r"$U^+ = y^+$")


# ---------------------------------------------------------------------------------- profiles
_STRESS_LINES = (
    ("u_rms", "-", r"$u'^+$"),
    ("v_rms", "--", r"$v'^+$"),
    ("w_rms", ":", r"$w'^+$"),
    ("uv", "-.", r"$-\overline{uv}^+$"),
)


def profiles_figure(
    profiles_plus: Mapping[str, xr.Dataset],
    reference: xr.Dataset,
    *,
    title: str | None = None,
    ax: Any = None,
) -> Any:
    r"""Runs' mean and rms profiles against a reference, all in wall units, as a matplotlib Figure.

    Left: ``U+`` against ``y+`` (log axis) with the log law ``U+ = ln(y+) / 0.41 + 5.2`` (dashed
    grey) and ``U+ = y+`` (dotted grey). Right: ``u_rms+``, ``v_rms+``, ``w_rms+`` and ``-uv+``
    against ``y+`` (linear axis). The reference is drawn in black; each run gets one colour, and
    line styles tell the four quantities of the right panel apart.

    Parameters
    ----------
    profiles_plus
        Run label -> profiles with a ``y_plus`` coordinate (missing variables are skipped).
    reference
        Reference profiles in wall units (e.g. :func:`surrogate.references.load_mkm`).
    title
        Figure title; default names the reference's ``re_tau``. Drawn as the figure's title on a
        new figure, as the title of the ``U+`` axes on given ones.
    ax
        Axes to draw into: one (``U+`` only) or two (``U+`` and the rms panel); default a new
        Figure on its own Agg canvas (the global matplotlib backend is not touched).

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into.
    """
    from matplotlib.lines import Line2D

    if ax is None:
        fig, axes = _new_figure(1, 2, 11.0, 4.5)
        ax_mean, ax_rms = axes[0, 0], axes[0, 1]
    else:
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
        if len(axes) not in (1, 2):
            raise ValueError(f"ax must be one Axes (U+) or two (U+, rms), got {len(axes)}")
        ax_mean, ax_rms = axes[0], axes[1] if len(axes) == 2 else None
        fig = ax_mean.figure

    def draw(ds: xr.Dataset, colour: str, label: str, width: float) -> None:
        y_plus = y_plus_of(ds, label)
        positive = y_plus > 0
        if "U" in ds.variables:
            ax_mean.plot(y_plus[positive], profile_array(ds, "U")[positive], color=colour, lw=width, label=label)
        if ax_rms is None:
            return
        for name, style, _ in _STRESS_LINES:
            if name in ds.variables:
                values = profile_array(ds, name)
                ax_rms.plot(y_plus, -values if name == "uv" else values, color=colour, ls=style, lw=width)

    y_ref = y_plus_of(reference, "reference")
    _draw_wall_laws(ax_mean, float(np.max(y_ref)))
    draw(reference, "black", f"reference (Re_tau = {reference.attrs.get('re_tau_measured', '?')})", 1.8)
    for i, (label, ds) in enumerate(profiles_plus.items()):
        draw(ds, _colour(i), str(label), 1.3)

    ax_mean.set_xscale("log")
    ax_mean.set_xlabel(r"$y^+$")
    ax_mean.set_ylabel(r"$U^+$")
    ax_mean.legend(fontsize="small", loc="upper left")
    ax_mean.grid(True, which="both", alpha=0.3)
    if ax_rms is not None:
        ax_rms.set_xlabel(r"$y^+$")
        ax_rms.set_ylabel("rms and shear stress (wall units)")
        ax_rms.set_xlim(0.0, float(np.max(y_ref)))
        handles = [Line2D([], [], color="black", ls=style, label=text) for _, style, text in _STRESS_LINES]
        ax_rms.legend(handles=handles, fontsize="small", loc="upper right")
        ax_rms.grid(True, alpha=0.3)
    if ax is None:
        if title is None:
            title = f"Mean and rms profiles against the reference (Re_tau = {reference.attrs.get('re_tau_measured', '?')})"
        fig.suptitle(title)
    elif title is not None:
        ax_mean.set_title(title)
    return fig


def plot_profiles_vs_reference(
    profiles_plus: Mapping[str, xr.Dataset],
    reference: xr.Dataset,
    path: str | PathLike[str],
    *,
    title: str | None = None,
) -> Path:
    r"""The two-panel figure of :func:`profiles_figure` written as a PNG (120 dpi).

    Parameters
    ----------
    profiles_plus
        Run label -> profiles with a ``y_plus`` coordinate (missing variables are skipped).
    reference
        Reference profiles in wall units (e.g. :func:`surrogate.references.load_mkm`).
    path
        Output PNG file; parent folders are created.
    title
        Figure title; default names the reference's ``re_tau``.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    return save_figure(profiles_figure(profiles_plus, reference, title=title), path)


def save_figure(fig: Any, path: str | PathLike[str], *, dpi: int = PROFILES_DPI) -> Path:
    """Write ``fig`` to ``path`` (PNG for ``.png``), creating the parent folders; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


# ---------------------------------------------------------------------------------- report figures
def _profile_lines(evaluation: Evaluation) -> list[tuple[xr.Dataset, str, dict[str, Any]]]:
    """(profiles, label, line style) for the reference (black) and each run (one colour each)."""
    ref = evaluation.reference.stats
    lines = [(ref, str(ref.attrs.get("label", "reference")), {"color": "black", "lw": 1.8})]
    lines += [(r.stats, r.label, {"color": _colour(i), "lw": 1.3}) for i, r in enumerate(evaluation.runs)]
    return lines


def _figure_mean_velocity(evaluation: Evaluation, path: Path) -> Path:
    fig, axes = _new_figure(1, 1, 6.0, 4.5)
    ax = axes[0, 0]
    y_max = float(np.max(y_plus_of(evaluation.reference.stats, "reference")))
    _draw_wall_laws(ax, y_max)
    for ds, label, style in _profile_lines(evaluation):
        y_plus = y_plus_of(ds, label)
        positive = y_plus > 0
        ax.plot(y_plus[positive], profile_array(ds, "U")[positive], label=label, **style)
    ax.set_xscale("log")
    ax.set_xlabel(r"$y^+$")
    ax.set_ylabel(r"$U^+$")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left")
    ax.set_title("Mean velocity")
    fig.savefig(path, dpi=REPORT_DPI)
    return path


def _figure_stresses(evaluation: Evaluation, path: Path) -> Path:
    fig, axes = _new_figure(2, 2, 9.0, 6.5)
    panels = (("u_rms", r"$u'^+_{rms}$", 1), ("v_rms", r"$v'^+_{rms}$", 1),
              ("w_rms", r"$w'^+_{rms}$", 1), ("uv", r"$-\overline{u'v'}^+$", -1))
    for ax, (name, text, sign) in zip(axes.flat, panels):
        for ds, label, style in _profile_lines(evaluation):
            if name not in ds.variables:
                continue
            y_plus = y_plus_of(ds, label)
            positive = y_plus > 0
            ax.plot(y_plus[positive], sign * profile_array(ds, name)[positive], label=label, **style)
        ax.set_xscale("log")
        ax.set_xlabel(r"$y^+$")
        ax.set_ylabel(text)
        ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize="small", loc="upper left")
    fig.suptitle("Rms velocity fluctuations and Reynolds shear stress")
    fig.savefig(path, dpi=REPORT_DPI)
    return path


def _field_lines(evaluation: Evaluation, attr: str, ref_attr: str) -> list[tuple[xr.Dataset, str, dict[str, Any]]]:
    """(data, label, style) of the reference (if it has ``ref_attr``) and the runs that have ``attr``."""
    lines = []
    reference = getattr(evaluation, ref_attr)
    if reference is not None:
        label = str(evaluation.reference.stats.attrs.get("label", "reference"))
        lines.append((reference, label, {"color": "black", "lw": 1.6}))
    lines += [(getattr(r, attr), r.label, {"color": _colour(i), "lw": 1.2})
              for i, r in enumerate(evaluation.runs) if getattr(r, attr) is not None]
    return lines


def _planes_shown(lines: list[tuple[xr.Dataset, str, dict[str, Any]]]) -> list[float]:
    planes: list[float] = []
    for ds, _, _ in lines:
        planes += [p for p in ds.attrs.get("planes_y_plus", SPECTRUM_Y_PLUS) if p not in planes]
    limit = min(float(np.max(ds["y_plus"])) for ds, _, _ in lines) * 1.05
    return sorted(p for p in planes if p <= limit)


def _figure_spectra(evaluation: Evaluation, path: Path) -> Path | None:
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter

    lines = _field_lines(evaluation, "spectra", "reference_spectra")
    if not lines:
        return None
    planes = _planes_shown(lines)
    fig, axes = _new_figure(len(planes), 2, 9.0, 2.8 * len(planes) + 0.6)
    components = (("uu", "-"), ("vv", "--"), ("ww", ":"))
    for row, target in enumerate(planes):
        for col, k_dim in enumerate(("k_x", "k_z")):
            ax = axes[row, col]
            for ds, label, style in lines:
                j = nearest_plane(ds, target)
                k = np.asarray(ds[k_dim].values, dtype=float)
                for component, dash in components:
                    values = np.asarray(ds[f"E_{component}_{k_dim.replace('_', '')}"].isel(y=j).values, dtype=float)
                    keep = (k > 0) & (values > 0)
                    ax.loglog(k[keep], values[keep], ls=dash, **style)
            ax.xaxis.set_minor_formatter(NullFormatter())  # labels on a narrow k range would overlap
            ax.set_xlabel(rf"${k_dim[0]}_{k_dim[-1]}^+$")
            ax.set_ylabel(rf"$E^+({k_dim[0]}_{k_dim[-1]}^+)$")
            ax.set_title(rf"$y^+ \approx {target:g}$", fontsize="medium")
            ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(handles=[Line2D([], [], label=label, **style) for _, label, style in lines], fontsize="small")
    axes[0, 1].legend(handles=[Line2D([], [], color="0.3", ls=dash, label=f"$E_{{{c}}}$") for c, dash in components],
                      fontsize="small")
    fig.suptitle("One-dimensional energy spectra (wall units)")
    fig.savefig(path, dpi=REPORT_DPI)
    return path


def _figure_pdfs(evaluation: Evaluation, path: Path) -> Path | None:
    lines = _field_lines(evaluation, "pdfs", "reference_pdfs")
    if not lines:
        return None
    planes = sorted({float(p) for ds, _, _ in lines for p in np.asarray(ds["y_plus"].values)})
    targets = [p for p in SPECTRUM_Y_PLUS if p <= max(planes) * 1.05] or planes[:1]
    fig, axes = _new_figure(len(targets), 3, 10.0, 2.8 * len(targets) + 0.6)
    gauss = np.linspace(-6.0, 6.0, 200)
    for row, target in enumerate(targets):
        for col, name in enumerate(("u", "v", "w")):
            ax = axes[row, col]
            ax.plot(gauss, np.exp(-0.5 * gauss**2) / np.sqrt(2 * np.pi), color="0.6", ls=":", lw=1.0, label="Gaussian")
            for ds, label, style in lines:
                j = nearest_plane(ds, target)
                values = np.asarray(ds[f"pdf_{name}"].isel(y=j).values, dtype=float)
                keep = values > 0
                ax.plot(np.asarray(ds["value"].values)[keep], values[keep], label=label, **style)
            ax.set_yscale("log")
            ax.set_ylim(1e-5, 1.0)
            ax.set_xlabel(rf"${name}'/{name}_{{rms}}$")
            ax.set_title(rf"$y^+ \approx {target:g}$", fontsize="medium")
            ax.grid(True, alpha=0.3)
    axes[0, 0].legend(fontsize="small")
    fig.suptitle("PDFs of the velocity fluctuations")
    fig.savefig(path, dpi=REPORT_DPI)
    return path


def _figure_moments(evaluation: Evaluation, path: Path) -> Path | None:
    lines = _field_lines(evaluation, "moments", "reference_moments")
    if not lines:
        return None
    fig, axes = _new_figure(2, 3, 10.0, 5.8)
    for row, (prefix, title, gaussian) in enumerate((("S", "skewness", 0.0), ("F", "flatness", 3.0))):
        for col, name in enumerate(("u", "v", "w")):
            ax = axes[row, col]
            ax.axhline(gaussian, color="0.6", ls=":", lw=1.0)
            for ds, label, style in lines:
                y_plus = np.asarray(ds["y_plus"].values, dtype=float)
                positive = y_plus > 0
                ax.plot(y_plus[positive], np.asarray(ds[f"{prefix}_{name}"].values, dtype=float)[positive],
                        label=label, **style)
            ax.set_xscale("log")
            ax.set_xlabel(r"$y^+$")
            ax.set_ylabel(f"${prefix}({name}')$")
            ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize="small")
    fig.suptitle("Skewness and flatness of the velocity fluctuations")
    fig.savefig(path, dpi=REPORT_DPI)
    return path


def _figure_rollout(evaluation: Evaluation, path: Path) -> Path | None:
    runs = [(i, r) for i, r in enumerate(evaluation.runs) if r.rollout is not None]
    if not runs:
        return None
    fig, axes = _new_figure(1, 2, 10.0, 4.0)
    for i, r in runs:
        time = np.asarray(r.rollout["time"].values, dtype=float)
        axes[0, 0].plot(time, r.rollout["relative_l2"].values, color=_colour(i), lw=1.3, label=r.label)
        axes[0, 1].plot(time, r.rollout["correlation"].values, color=_colour(i), lw=1.3, label=r.label)
    axes[0, 0].set_ylabel("relative L2 error of (u, v, w)")
    axes[0, 0].set_ylim(bottom=0.0)
    axes[0, 1].set_ylabel("correlation of the fluctuations")
    axes[0, 1].set_ylim(top=1.02)
    for ax in axes.flat:
        ax.set_xlabel(r"$t\ (h/u_\tau)$")
        ax.grid(True, alpha=0.3)
    axes[0, 0].legend(fontsize="small")
    fig.suptitle("Rollouts against the truth")
    fig.savefig(path, dpi=REPORT_DPI)
    return path



# ---------------------------------------------------------------------------------- report
_NAN_TEXT = "n/a"
_NUMERIC = re.compile(r"^([-+]?[0-9.]|n/a$)")


def _format_metric(name: str, value: float) -> str:
    if not np.isfinite(value):
        return _NAN_TEXT
    if name == "re_tau":
        return f"{value:.1f}"
    if name == "re_tau_error":
        return f"{100 * value:+.1f} %"
    if name.endswith("_l2"):
        return f"{100 * value:.1f} %"
    if name == "U_max_abs":
        return f"{value:.2f}"
    return f"{value:.3f}"


_COLUMN_HEADERS = {
    "re_tau": "Re_tau",
    "re_tau_error": "Re_tau error",
    "U_max_abs": "max abs(dU+)",
    "U_l2": "L2 U+",
    "u_rms_l2": "L2 u_rms+",
    "v_rms_l2": "L2 v_rms+",
    "w_rms_l2": "L2 w_rms+",
    "uv_l2": "L2 uv+",
    "spectrum_log_error": "spectrum log10 error",
    "rollout_error_last": "rollout error (last)",
    "rollout_correlation_last": "rollout correlation (last)",
}


def _report_blocks(evaluation: Evaluation, figures: list[tuple[str, str]], command: str | None) -> list[tuple]:
    """The report as blocks: ``("h1" | "h2" | "p" | "code", text)``, ``("table", header, rows)``,
    ``("list", items)``, ``("img", file, caption)``."""
    ref = evaluation.reference.stats
    ref_label = str(ref.attrs.get("label", "reference"))
    blocks: list[tuple] = [("h1", f"Validation against {ref_label}")]
    if command:
        blocks += [("p", "Made with:"), ("code", command)]
    if evaluation.reference.fields is None:
        source, files = ref.attrs.get("source", ""), ref.attrs.get("files", "?")
        blocks.append(("p", f"Reference: {ref_label}: {source}; files {files}."))
    else:
        blocks.append(("p", (
            f"Reference: the run `{ref.attrs.get('source', ref_label)}`, {int(ref.attrs['n_snapshots'])} snapshots "
            f"over t = {float(ref.attrs['t_start']):g} .. {float(ref.attrs['t_end']):g} h/u_tau, "
            f"Re_tau = {float(ref.attrs['re_tau_measured']):.1f} measured."
        )))
    blocks.append(("h2", "Runs"))
    rows = []
    for r in evaluation.runs:
        attrs = r.stats.attrs
        grid = f"{attrs.get('grid_nx', '?')} x {attrs.get('grid_ny', '?')} x {attrs.get('grid_nz', '?')}"
        rows.append([r.label, f"`{r.source}`" if r.source else "", grid, str(int(attrs["n_snapshots"])),
                     f"{float(attrs['t_start']):g} .. {float(attrs['t_end']):g}", f"{float(attrs['re_tau']):g}"])
    blocks.append(("table", ["run", "source", "grid", "snapshots", "t (h/u_tau)", "nominal Re_tau"], rows))

    blocks.append(("h2", "Metrics"))
    table = evaluation.table
    shown = [name for name in TABLE_METRICS if np.any(np.isfinite(table[name].values))]
    rows = [[str(label)] + [_format_metric(name, float(table[name].values[i])) for name in shown]
            for i, label in enumerate(table["run"].values)]
    blocks.append(("table", ["run"] + [_COLUMN_HEADERS[name] for name in shown], rows))
    definitions = [
        "Statistics: averages over x, z, time (t >= t_start) and the two channel halves; wall units with each "
        "run's own friction velocity from the mean wall shear (second-order one-sided gradient).",
        "Re_tau error: (Re_tau - Re_tau,ref) / Re_tau,ref, with the reference's "
        f"Re_tau = {float(ref.attrs['re_tau_measured']):g}.",
        "max abs(dU+): largest |U+ - U+_ref| on the run's points inside the reference's y+ range (reference "
        "interpolated linearly in y+).",
        "L2 q: relative L2 deviation sqrt(sum w (q - q_ref)^2 / sum w q_ref^2) on the same points, weights w the "
        "cell heights.",
    ]
    if "spectrum_log_error" in shown:
        definitions.append(
            "spectrum log10 error: mean |log10 E+ - log10 E+_ref| over the wavenumbers of E_uu, E_vv, E_ww in k_x "
            f"and k_z at the planes nearest y+ = {', '.join(f'{p:g}' for p in SPECTRUM_Y_PLUS)} (0.1 = a factor 1.26)."
        )
    if "rollout_error_last" in shown:
        definitions.append(
            "rollout error / correlation: relative L2 error of (u, v, w) and correlation coefficient of the "
            "fluctuations about the plane means, against the truth at the last common time."
        )
    blocks.append(("list", definitions))
    if figures:
        blocks.append(("h2", "Figures"))
        for name, caption in figures:
            blocks.append(("img", name, caption))
    if evaluation.notes:
        blocks.append(("h2", "Notes"))
        blocks.append(("list", list(evaluation.notes)))
    return blocks


def _markdown(blocks: list[tuple]) -> str:
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h1":
            out.append(f"# {block[1]}")
        elif kind == "h2":
            out.append(f"## {block[1]}")
        elif kind == "p":
            out.append(block[1])
        elif kind == "code":
            out.append(f"```bash\n{block[1]}\n```")
        elif kind == "list":
            out.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "table":
            header, rows = block[1], block[2]
            numeric = [all(_NUMERIC.match(row[i]) for row in rows) for i in range(len(header))]
            rule = ["---:" if right and i > 0 else "---" for i, right in enumerate(numeric)]
            lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
            lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
            out.append("\n".join(lines))
        elif kind == "img":
            out.append(f"![{block[2]}]({block[1]})\n\n{block[2]}")
    return "\n\n".join(out) + "\n"


def _inline_html(text: str) -> str:
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text, quote=False))


def _html(blocks: list[tuple], title: str) -> str:
    body: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{_inline_html(block[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline_html(block[1])}</p>")
        elif kind == "code":
            body.append(f"<pre><code>{html.escape(block[1], quote=False)}</code></pre>")
        elif kind == "list":
            body.append("<ul>\n" + "\n".join(f"  <li>{_inline_html(item)}</li>" for item in block[1]) + "\n</ul>")
        elif kind == "table":
            header, rows = block[1], block[2]
            lines = ["<table>", "  <tr>" + "".join(f"<th>{_inline_html(h)}</th>" for h in header) + "</tr>"]
            lines += ["  <tr>" + "".join(f"<td>{_inline_html(cell)}</td>" for cell in row) + "</tr>" for row in rows]
            body.append("\n".join(lines + ["</table>"]))
        elif kind == "img":
            caption = _inline_html(block[2])
            body.append(f'<figure><img src="{html.escape(block[1])}" alt="{html.escape(block[2])}">'
                        f"<figcaption>{caption}</figcaption></figure>")
    style = (
        "body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.25em .6em;text-align:right}"
        "td:first-child,th:first-child{text-align:left}pre{background:#f4f4f4;padding:.6em;overflow-x:auto}"
        "img{max-width:100%}figure{margin:1.5em 0}"
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{style}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def write_report(
    runs: Mapping[str, xr.Dataset] | Sequence[xr.Dataset] | xr.Dataset,
    reference: str | PathLike[str] | xr.Dataset,
    out_dir: str | PathLike[str],
    *,
    t_start: float | None = None,
    truth: xr.Dataset | Mapping[str, xr.Dataset] | None = None,
    command: str | None = None,
) -> xr.Dataset:
    """Compare runs with a reference and write ``report.md``, ``report.html`` and PNG figures.

    Figures (100 dpi; the reference in black, one colour per run): ``mean_velocity.png``
    (``U+`` against ``y+`` on a log axis with the log law ``ln(y+)/0.41 + 5.2`` and the viscous
    sublayer ``U+ = y+``), ``stresses.png`` (``u_rms+, v_rms+, w_rms+, -uv+``), ``spectra.png``
    (``E_uu, E_vv, E_ww`` in ``k_x`` and ``k_z`` at ``y+ ~ 5, 30, 100``), ``pdfs.png`` (PDFs of
    ``u'/u_rms`` etc. at those planes) and ``moments.png`` (skewness, flatness); the reference
    enters those three only when it is a run. ``rollout.png`` (error and correlation against
    time) when a run has a truth.

    Parameters
    ----------
    runs
        Field Datasets: label -> Dataset, or a sequence (labels from ``attrs["label"]`` or
        ``attrs["case"]``).
    reference
        See :func:`surrogate.evaluation.load_reference`.
    out_dir
        Folder for the report (created).
    t_start
        First time (h/u_tau) of the statistics of every run (and of a reference run).
    truth
        True trajectory for :func:`surrogate.evaluation.rollout_errors`: one Dataset for every
        run, or label -> Dataset.
    command
        Command line shown at the top of the report.

    Returns
    -------
    xarray.Dataset
        The table of :func:`surrogate.evaluation.validate`.
    """
    evaluation = evaluate(runs, reference, t_start=t_start, truth=truth, figures=True)
    return write_evaluation(evaluation, out_dir, command=command)


def write_evaluation(evaluation: Evaluation, out_dir: str | PathLike[str], *, command: str | None = None) -> xr.Dataset:
    """Write the report of :func:`write_report` for an :class:`~surrogate.evaluation.Evaluation`.

    The evaluation should be made with ``figures=True`` (else the spectra, PDFs and moments
    figures are left out). Returns its table.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures: list[tuple[str, str]] = []
    makers = (
        ("mean_velocity.png", _figure_mean_velocity,
         "Mean velocity U+ against y+ (log axis), with the log law ln(y+)/0.41 + 5.2 (dashed) and U+ = y+ (dotted)."),
        ("stresses.png", _figure_stresses, "Rms velocity fluctuations and Reynolds shear stress -uv+ against y+."),
        ("spectra.png", _figure_spectra,
         "One-dimensional spectra in wall units at the planes nearest y+ = 5, 30, 100: E_uu solid, E_vv dashed, "
         "E_ww dotted."),
        ("pdfs.png", _figure_pdfs,
         "PDFs of the standardised velocity fluctuations at the planes nearest y+ = 5, 30, 100."),
        ("moments.png", _figure_moments, "Skewness (Gaussian 0) and flatness (Gaussian 3) of the velocity fluctuations."),
        ("rollout.png", _figure_rollout,
         "Rollouts against the truth: relative L2 error of (u, v, w) and correlation of the fluctuations."),
    )
    for name, maker, caption in makers:
        (out_dir / name).unlink(missing_ok=True)
        if maker(evaluation, out_dir / name) is not None:
            figures.append((name, caption))
    if not any(r.rollout is not None for r in evaluation.runs):
        evaluation.notes.append("No rollout figure: no run is a rollout with its truth.")
    if evaluation.reference.fields is None and any(r.pdfs is not None for r in evaluation.runs):
        evaluation.notes.append("PDFs and moments are shown for the runs only: the published reference has none shipped.")
    blocks = _report_blocks(evaluation, figures, command)
    title = blocks[0][1]
    (out_dir / "report.md").write_text(_markdown(blocks))
    (out_dir / "report.html").write_text(_html(blocks, title))
    return evaluation.table

