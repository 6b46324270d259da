"""The one-page PDF report of an analysis, and the panel figures it shares with the browser app.

One A4 page with matplotlib's PDF backend: the study, the diagnosis with its probabilities, the indices,
the QC findings, ED and ES mid-ventricular slices with contours, the cavity volume curves, the AHA
bull's-eye of peak circumferential strain and thickening, and the global strain curves. The texts come from
:mod:`.text`, the drawings from :mod:`.figures` and :mod:`.bullseye`, so the page says what the other
outputs say. The volume-curve and strain-curve figures are also drawn as PNG for the browser app's panel.
"""

from __future__ import annotations

import io
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from CardiacMTLLib import __version__
from CardiacMTLLib.atomic import check_output_file
from CardiacMTLLib.report.bullseye import draw_bullseye, strain_maps, wall_motion_marks
from CardiacMTLLib.report.figures import STRUCTURE_COLOURS, mid_ventricular_slice
from CardiacMTLLib.report.text import (
    diagnosis_text,
    format_value,
    probability_texts,
    qc_lines,
    strain_line,
)
from CardiacMTLLib.types import Label

A4_INCHES = (8.27, 11.69)
REPORT_INDICES = (
    "LVEDV (mL)", "LVESV (mL)", "LVSV (mL)", "LVEF (%)", "LVM (g)", "RVEDV (mL)", "RVESV (mL)", "RVSV (mL)",
    "RVEF (%)", "BSA (m2)", "LVEDVi (mL/m2)", "LVESVi (mL/m2)", "LVMi (g/m2)", "RVEDVi (mL/m2)",
    "Max wall thickness ED (mm)", "ED frame", "ES frame",
)  # fmt: skip


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    _pyplot().close(fig)
    return buffer.getvalue()


def draw_volume_curves(ax, result) -> None:
    """LV and RV cavity volumes over the cycle, ED and ES marked."""
    cine = result.cine
    x = cine.trigger_times_ms if cine.trigger_times_ms else cine.frame_numbers
    for name, value in (("LV", int(Label.LV_CAVITY)), ("RV", int(Label.RV_CAVITY))):
        curve = result.volume_curve_ml.get(name)
        if curve:
            ax.plot(x, curve, "-o", ms=3, color=STRUCTURE_COLOURS[value][1], label=name)
    ax.axvline(x[result.ed_index], color="grey", ls="--", lw=0.8)
    ax.axvline(x[result.es_index], color="grey", ls=":", lw=0.8)
    ax.set_xlabel("trigger time (ms)" if cine.trigger_times_ms else "frame")
    ax.set_ylabel("volume (mL)")
    ax.set_title("Cavity volumes (-- ED, : ES)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def draw_strain_curves(ax, strain, time_axis: str = "time (ms)") -> None:
    """Global circumferential and radial strain over the tracked frames (``time_axis`` names the x axis:
    the strain's times are frame positions when the cine has no trigger times)."""
    x = strain.times_ms
    ax.plot(x, strain.global_circumferential_curve_pct, "-o", ms=3, label="circumferential")
    ax.plot(x, strain.global_radial_curve_pct, "-o", ms=3, label="radial")
    ax.axhline(0.0, color="grey", lw=0.6)
    ax.set_xlabel(time_axis)
    ax.set_ylabel("strain (%)")
    ax.set_title("Global strain", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def volume_curve_png(result, size_in: tuple[float, float] = (4.2, 2.6)) -> bytes:
    """The volume curves as a PNG (the browser app's plot)."""
    fig, ax = _pyplot().subplots(figsize=size_in)
    draw_volume_curves(ax, result)
    fig.tight_layout()
    return _png(fig)


def strain_curves_png(
    strain, size_in: tuple[float, float] = (4.2, 2.6), time_axis: str = "time (ms)"
) -> bytes:
    """The global strain curves as a PNG (the browser app's plot)."""
    fig, ax = _pyplot().subplots(figsize=size_in)
    draw_strain_curves(ax, strain, time_axis)
    fig.tight_layout()
    return _png(fig)


def _time_axis(result) -> str:
    return "time (ms)" if result.cine.trigger_times_ms else "frame position"


def _draw_slice(ax, result, t: int, k: int, title: str) -> None:
    import numpy as np

    image, labels = result.cine.data[t, k], result.labels[t, k]
    low, high = np.percentile(image, [1, 99.5])
    ax.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="bilinear")
    for value, (_name, colour) in STRUCTURE_COLOURS.items():
        if (labels == value).any():
            ax.contour((labels == value).astype(float), levels=[0.5], colors=[colour], linewidths=1.0)
    ys, xs = np.nonzero(labels > 0)
    if ys.size:  # zoomed on the heart
        margin = 25
        ax.set_xlim(max(xs.min() - margin, 0), min(xs.max() + margin, image.shape[1] - 1))
        ax.set_ylim(min(ys.max() + margin, image.shape[0] - 1), max(ys.min() - margin, 0))
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _header_lines(result) -> list[str]:
    cine, extra = result.cine, result.cine.extra or {}
    who = [f"{key} {extra[key]}" for key in ("PatientID", "StudyInstanceUID", "StudyDate") if extra.get(key)]
    source = Path(cine.source).name if cine.source else "cine"
    lines = [f"Study: {source}" + (f" ({', '.join(who)})" if who else "")]
    edited = result.provenance.get("edited_frames") or []
    lines.append(
        f"Analysed {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with CardiacMTL {__version__}, model "
        f"{result.provenance.get('model_id', '?')} on {result.provenance.get('device', '?')}"
        + (f"; segmentation edited on frames {edited}" if edited else "")
    )
    return lines


def pdf_report(result) -> bytes:
    """The one-page report of ``result`` (an :class:`~CardiacMTLLib.types.AnalysisResult`) as PDF bytes."""
    from matplotlib.backends.backend_pdf import PdfPages

    fig = _report_figure(result)
    buffer = io.BytesIO()
    metadata = {"Title": "CardiacMTL report", "Creator": f"CardiacMTL {__version__}"}
    with PdfPages(buffer, metadata=metadata) as pdf:
        pdf.savefig(fig)
    _pyplot().close(fig)
    return buffer.getvalue()


def _report_figure(result):
    fig = _pyplot().figure(figsize=A4_INCHES)
    grid = fig.add_gridspec(5, 3, height_ratios=[0.55, 1.5, 1.05, 1.05, 0.9], hspace=0.55, wspace=0.35)
    head = fig.add_subplot(grid[0, :])
    head.axis("off")
    head.text(0, 1.0, "CardiacMTL cine MRI report", fontsize=14, weight="bold", va="top")
    head.text(0, 0.62, "\n".join(_header_lines(result)), fontsize=7.5, va="top")
    diagnosis = diagnosis_text(result.diagnosis) or "no diagnosis"
    head.text(0, 0.22, f"Diagnosis: {diagnosis}", fontsize=10, weight="bold", va="top")
    head.text(0, -0.05, "   ".join(probability_texts(result.diagnosis)), fontsize=8, va="top")

    table = fig.add_subplot(grid[1, 0])
    table.axis("off")
    rows = [
        f"{key:<27}{format_value(result.indices.get(key))}" for key in REPORT_INDICES if key in result.indices
    ]
    table.text(0, 1.0, "Indices", fontsize=10, weight="bold", va="top")
    table.text(0, 0.93, "\n".join(rows), fontsize=6.8, family="monospace", va="top")
    k = mid_ventricular_slice(result.labels[result.ed_index])
    for column, (phase, t) in enumerate((("ED", result.ed_index), ("ES", result.es_index)), start=1):
        ax = fig.add_subplot(grid[1, column])
        _draw_slice(ax, result, t, k, f"{phase} (frame {result.cine.frame_numbers[t]}), slice {k}")
    if result.cine.num_frames > 2:
        draw_volume_curves(fig.add_subplot(grid[2, :2]), result)
    strain = result.strain
    if strain is not None:
        draw_strain_curves(fig.add_subplot(grid[2, 2]), strain, _time_axis(result))
        maps, marks = strain_maps(strain), wall_motion_marks(strain)
        specs = (
            ("circumferential", "Peak circumferential strain (%)", "RdBu", -30.0, 0.0),
            ("radial", "Peak radial strain (%)", "RdBu_r", 0.0, 60.0),
            ("thickening", "Wall thickening (%)", "RdBu_r", 0.0, 80.0),
        )
        for column, (key, title, cmap, lo, hi) in enumerate(specs):
            ax = fig.add_subplot(grid[3, column])
            mappable = draw_bullseye(ax, maps[key], title=title, cmap=cmap, vmin=lo, vmax=hi, marks=marks)
            fig.colorbar(mappable, ax=ax, fraction=0.046, pad=0.02)
    notes = fig.add_subplot(grid[4, :])
    notes.axis("off")
    findings = qc_lines(result.qc)
    lines = [strain_line(strain)] if strain is not None else ["Strain: not computed for this input."]
    lines += ["QC: none"] if not findings else [f"QC: {f}" for f in findings[:6]]
    if len(findings) > 6:
        lines.append(f"... and {len(findings) - 6} more QC findings (indices.json lists them all)")
    lines.append("For research use; a clinician reviews the contours before the numbers are used.")
    notes.text(0, 1.0, "\n".join(lines), fontsize=7, va="top", wrap=True)
    return fig


def write_pdf_report(result, path: str | Path, overwrite: bool = False) -> Path:
    """Write :func:`pdf_report` to ``path`` (a file the project wrote before is replaced only with
    ``overwrite``; anything else is never overwritten), renamed into place once complete."""
    path = check_output_file(
        path, inputs=(result.cine.source,) if result.cine.source else (), overwrite=overwrite
    )
    data = pdf_report(result)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return path
