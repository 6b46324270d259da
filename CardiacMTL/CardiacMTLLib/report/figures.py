"""``report.png``: what a clinician looks at first — contours on ED and ES, the volume curves, the numbers,
and when the strain was measured a second row: the global strain curves and the bull's-eyes of the
peak circumferential and radial strain and the wall thickening per AHA segment (akinetic and
hypokinetic segments marked).

Matplotlib's object-oriented API on an Agg canvas, so it runs on servers and inside Slicer alike and
never touches pyplot's global figure managers or backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from CardiacMTLLib.report.bullseye import draw_strain_maps
from CardiacMTLLib.report.text import diagnosis_table, qc_block
from CardiacMTLLib.types import STRUCTURES, Label

STRUCTURE_COLOURS = {int(v): (v.short_name, v.colour) for v in STRUCTURES}


def agg_figure(**kwargs):
    """A matplotlib ``Figure`` on its own Agg canvas (``kwargs`` as ``Figure`` takes them): no pyplot, so
    no figure manager to create and close, and the backend of the process (Slicer's, a notebook's) stays
    as it is."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def mid_ventricular_slice(labels: np.ndarray) -> int:
    """Middle of the slices that contain LV cavity (the stack's middle when there is none)."""
    with_lv = np.flatnonzero((labels == Label.LV_CAVITY).any(axis=(1, 2)))
    if with_lv.size == 0:
        return labels.shape[0] // 2
    return int(with_lv[len(with_lv) // 2])


def slice_landmarks(result, frame_index: int, slice_index: int) -> list[dict]:
    """The landmarks of one frame (position on the time axis) and slice of an analysis result."""
    frame = result.cine.frame_numbers[frame_index]
    return [
        p
        for p in (getattr(result, "landmarks", None) or [])
        if p.get("frame") == frame and p.get("slice") is not None and int(p["slice"]) == slice_index
    ]


def structure_outline(mask: np.ndarray, x_mm: np.ndarray, y_mm: np.ndarray):
    """The outline of a structure's ``mask`` (rows x cols) as one matplotlib ``Path``, with ``x_mm`` (one
    per column) and ``y_mm`` (one per row) as the grid: the 0.5 level line that ``Axes.contour`` draws,
    computed by contourpy directly (building a contour set per structure took longer than drawing it);
    ``None`` when the mask is empty."""
    import contourpy
    from matplotlib.path import Path as MplPath

    if not mask.any():
        return None
    generator = contourpy.contour_generator(
        x_mm, y_mm, mask.astype(float), name="mpl2014", corner_mask=True, line_type="SeparateCode"
    )
    vertices, codes = generator.create_contour(0.5)
    return MplPath(np.concatenate(vertices), np.concatenate(codes))


def outline_patch(path, colour: str):
    """``path`` drawn as a contour line is: 1.2 pt, round joins, butt caps, over the image."""
    from matplotlib.patches import PathPatch

    return PathPatch(
        path, fill=False, edgecolor=colour, linewidth=1.2, joinstyle="round", capstyle="butt", zorder=2
    )


def show_slice(ax, image, labels, spacing_mm, title, landmarks=()):
    """One slice in millimetres with the structures' contours and ``landmarks`` (RV insertion points),
    zoomed on the heart."""
    rows, cols = image.shape
    extent = (0, cols * spacing_mm[0], rows * spacing_mm[1], 0)
    low, high = np.percentile(image, [1, 99.5])
    ax.imshow(image, cmap="gray", vmin=low, vmax=high, extent=extent, interpolation="bilinear")
    x_mm, y_mm = np.linspace(0, cols * spacing_mm[0], cols), np.linspace(0, rows * spacing_mm[1], rows)
    for value, (_name, colour) in STRUCTURE_COLOURS.items():
        outline = structure_outline(labels == value, x_mm, y_mm)
        if outline is not None:
            ax.add_patch(outline_patch(outline, colour))
    for point in landmarks:  # RV insertion points: filled when automatic, open when a person moved them
        i, j = point["ijk"][0], point["ijk"][1]
        edited = bool(point.get("edited"))
        ax.plot(
            (i + 0.5) * spacing_mm[0],
            (j + 0.5) * spacing_mm[1],
            marker="o",
            ms=6,
            mfc="none" if edited else "yellow",
            mec="yellow",
            mew=1.5,
            ls="none",
        )
    ys, xs = np.nonzero(labels > 0)
    if ys.size:  # zoom on the heart with a margin, so the contours are readable
        margin = 40.0
        x0, x1 = xs.min() * spacing_mm[0] - margin, xs.max() * spacing_mm[0] + margin
        y0, y1 = ys.min() * spacing_mm[1] - margin, ys.max() * spacing_mm[1] + margin
        ax.set_xlim(max(x0, 0), min(x1, cols * spacing_mm[0]))
        ax.set_ylim(min(y1, rows * spacing_mm[1]), max(y0, 0))
    # y=1.0 is where matplotlib would put the title of an axis without ticks, but given explicitly it is
    # not searched for at every draw (that measures every tick label of the axis)
    ax.set_title(title, fontsize=10, y=1.0)
    ax.set_xticks([])
    ax.set_yticks([])


def _fmt(value, digits=1):
    return "n/a" if value is None else f"{value:.{digits}f}"


# subplot margins of the report with the strain row and of the one-row report (figure fractions)
REPORT_MARGINS = {"left": 0.045, "right": 0.955, "top": 0.965, "bottom": 0.06, "wspace": 1.16, "hspace": 0.19}
REPORT_MARGINS_ONE_ROW = {"left": 0.02, "right": 0.94, "top": 0.94, "bottom": 0.1, "wspace": 0.22}


STRAIN_TIME_LABEL = "time from ED (ms)"
STRAIN_FRAMES_LABEL = "frames from ED"


def strain_time_axis(strain) -> tuple[list[float], str]:
    """The x values of a strain's curves (a :class:`StrainResult` or its ``strain.json`` dict) and their
    label: its times in ms from ED, or its frames from ED when the cine has no trigger times."""
    get = strain.get if isinstance(strain, dict) else lambda key: getattr(strain, key, None)
    times = get("times_ms") or []
    if times and all(t is not None for t in times):
        return list(times), STRAIN_TIME_LABEL
    return list(get("frames_from_ed") or range(len(times))), STRAIN_FRAMES_LABEL


def draw_volume_curves(ax, result, fontsize: float = 8) -> None:
    """LV and RV cavity volumes over the cycle, ED (--) and ES (:) marked."""
    cine = result.cine
    x = cine.trigger_times_ms if cine.trigger_times_ms else cine.frame_numbers
    ax.plot(x, result.volume_curve_ml["LV"], "-o", color=STRUCTURE_COLOURS[3][1], ms=3, label="LV")
    ax.plot(x, result.volume_curve_ml["RV"], "-o", color=STRUCTURE_COLOURS[1][1], ms=3, label="RV")
    ax.axvline(x[result.ed_index], color="k", ls="--", lw=0.8)
    ax.axvline(x[result.es_index], color="k", ls=":", lw=0.8)
    ax.set_xlabel("trigger time (ms)" if cine.trigger_times_ms else "frame")
    ax.set_ylabel("volume (mL)")
    ax.set_title("Cavity volumes over the cycle (-- ED, : ES)", fontsize=fontsize + 2)
    ax.legend(fontsize=fontsize)
    ax.grid(alpha=0.3)


def draw_strain_curves(ax, strain, fontsize: float = 8) -> None:
    """Global radial and circumferential strain over the tracked frames (ED to ES alone for a pair), against
    the time from ED, or the frames from ED when the cine has no trigger times (:func:`strain_time_axis`)."""
    get = strain.get if isinstance(strain, dict) else lambda key: getattr(strain, key)
    x, label = strain_time_axis(strain)
    order = np.argsort(x, kind="stable")  # from ED round the cycle
    times = [x[i] for i in order]
    for key, name, colour in (
        ("global_radial_curve_pct", "GRS", "#c0392b"),
        ("global_circumferential_curve_pct", "GCS", "#2471a3"),
    ):
        values = [np.nan if get(key)[i] is None else get(key)[i] for i in order]
        ax.plot(times, values, "-o", ms=3, color=colour, label=name)
    ax.axhline(0.0, color="0.5", lw=0.8)
    if get("from_curves"):
        ax.set_xlabel(label)
    else:  # an ED/ES pair: two points, no time axis
        ax.set_xticks(times, ["ED", "ES"][: len(times)])
    ax.set_ylabel("strain (%)")
    peaks = f"GRS {_fmt(get('global_radial_pct'))} %, GCS {_fmt(get('global_circumferential_pct'))} %"
    ax.set_title(f"Global strain from ED ({peaks})", fontsize=fontsize + 2)
    ax.legend(fontsize=fontsize)
    ax.grid(alpha=0.3)


def draw_strain_row(fig, axes, strain) -> None:
    """The strain curves and the three bull's-eyes on four axes."""
    draw_strain_curves(axes[0], strain)
    draw_strain_maps(fig, axes[1:], strain)


def write_report(result, path: str | Path) -> Path:
    """Draw ED/ES mid-ventricular slices with contours, the LV/RV volume curves and the key indices, and
    the strain row when the result has strain."""
    from matplotlib.lines import Line2D

    cine, labels = result.cine, result.labels
    ed, es = result.ed_index, result.es_index
    has_curve = cine.num_frames > 2
    ncols = 4 if has_curve else 3
    strain = getattr(result, "strain", None)
    if strain is None:
        fig = agg_figure(figsize=(4.2 * ncols, 5.8))
        axes = fig.subplots(1, ncols)
    else:
        fig = agg_figure(figsize=(16.8, 10.2))
        grid = fig.add_gridspec(2, 12, height_ratios=(5.8, 4.0))
        width = 12 // ncols
        axes = [fig.add_subplot(grid[0, i * width : (i + 1) * width]) for i in range(ncols)]
        draw_strain_row(fig, [fig.add_subplot(grid[1, 3 * i : 3 * i + 3]) for i in range(4)], strain)
    k = mid_ventricular_slice(labels[ed])
    phases = (("ED", ed), ("ES", es)) if cine.num_frames > 1 else (("ED", ed),)
    for ax, (name, t) in zip(axes, phases, strict=False):
        title = f"{name} (frame {cine.frame_numbers[t]}), slice {k}"
        show_slice(ax, cine.data[t, k], labels[t, k], cine.spacing_mm, title, slice_landmarks(result, t, k))
    if cine.num_frames == 1:
        axes[1].axis("off")
        axes[1].text(0.5, 0.5, "single frame:\nno end-systole", ha="center", va="center")
    axes[0].legend(
        handles=[Line2D([], [], color=c, label=n) for n, c in STRUCTURE_COLOURS.values()]
        + [Line2D([], [], marker="o", mfc="yellow", mec="yellow", ls="none", label="RV insertion")],
        loc="lower left",
        fontsize=8,
        framealpha=0.7,
    )
    if has_curve:
        draw_volume_curves(axes[2], result)
    ax = axes[-1]
    ax.axis("off")
    ind = result.indices
    lines = [
        ("LVEDV / LVESV", f"{_fmt(ind.get('LVEDV (mL)'))} / {_fmt(ind.get('LVESV (mL)'))} mL"),
        ("LVEF", f"{_fmt(ind.get('LVEF (%)'))} %"),
        ("LV mass", f"{_fmt(ind.get('LVM (g)'))} g"),
        ("RVEDV / RVESV", f"{_fmt(ind.get('RVEDV (mL)'))} / {_fmt(ind.get('RVESV (mL)'))} mL"),
        ("RVEF", f"{_fmt(ind.get('RVEF (%)'))} %"),
        ("BSA", f"{_fmt(ind.get('BSA (m2)'), 2)} m²"),
        ("LVEDVi / LVMi", f"{_fmt(ind.get('LVEDVi (mL/m2)'))} mL/m² / {_fmt(ind.get('LVMi (g/m2)'))} g/m²"),
        (
            "Wall thickness ED",
            f"max {_fmt(ind.get('Max wall thickness ED (mm)'))}, mean {_fmt(ind.get('Mean wall thickness ED (mm)'))} mm",
        ),
    ]
    text = "\n".join(f"{name:<18}{value}" for name, value in lines)
    ax.text(0.0, 0.98, "Clinical indices", fontsize=11, weight="bold", va="top", transform=ax.transAxes)
    ax.text(0.0, 0.91, text, fontsize=8.5, family="monospace", va="top", transform=ax.transAxes)
    diagnosis = getattr(result, "diagnosis", None)
    if diagnosis:
        ax.text(0.0, 0.66, "Diagnosis", fontsize=11, weight="bold", va="top", transform=ax.transAxes)
        ax.text(
            0.0,
            0.59,
            diagnosis_table(diagnosis),
            fontsize=8.5,
            family="monospace",
            va="top",
            transform=ax.transAxes,
        )
    qc = getattr(result, "qc", None)
    if qc is not None:
        qc_text = qc_block(qc)
        ax.text(
            0.0,
            0.12,
            qc_text,
            fontsize=7.5,
            color="#b22222" if qc else "0.3",
            va="bottom",
            transform=ax.transAxes,
        )
    prov = result.provenance
    ax.text(
        0.0,
        0.02,
        f"{Path(str(cine.source)).name}\n{prov.get('model_id')} v{prov.get('model_version')} on {prov.get('device')}",
        fontsize=7,
        color="0.4",
        va="bottom",
        transform=ax.transAxes,
    )
    # fixed margins, those tight_layout chose for a typical report: measuring every text's extent first
    # took a third of the drawing time
    fig.subplots_adjust(**(REPORT_MARGINS if strain is not None else REPORT_MARGINS_ONE_ROW))
    path = Path(path)
    # PNG compression level 1: a larger file (flat colours compress well anyway), a quicker write
    fig.savefig(path, dpi=110, pil_kwargs={"compress_level": 1})
    return path
