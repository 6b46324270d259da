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
from CardiacMTLLib.report.bullseye import draw_strain_maps
from CardiacMTLLib.report.figures import (
    agg_figure,
    draw_strain_curves,
    draw_volume_curves,
    mid_ventricular_slice,
    show_slice,
    slice_landmarks,
)
from CardiacMTLLib.report.text import (
    diagnosis_text,
    format_value,
    probability_texts,
    qc_lines,
    strain_line,
)

A4_INCHES = (8.27, 11.69)
REPORT_INDICES = (
    "LVEDV (mL)", "LVESV (mL)", "LVSV (mL)", "LVEF (%)", "LVM (g)", "RVEDV (mL)", "RVESV (mL)", "RVSV (mL)",
    "RVEF (%)", "BSA (m2)", "LVEDVi (mL/m2)", "LVESVi (mL/m2)", "LVMi (g/m2)", "RVEDVi (mL/m2)",
    "Max wall thickness ED (mm)", "ED frame", "ES frame",
)  # fmt: skip


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def volume_curve_png(result, size_in: tuple[float, float] = (4.2, 2.6)) -> bytes:
    """The volume curves as a PNG (the browser app's plot)."""
    fig = agg_figure(figsize=size_in)
    ax = fig.subplots()
    draw_volume_curves(ax, result, fontsize=7)
    fig.tight_layout()
    return _png(fig)


def strain_curves_png(strain, size_in: tuple[float, float] = (4.2, 2.6)) -> bytes:
    """The global strain curves as a PNG (the browser app's plot), against the time or the frames from ED
    (:func:`~.figures.strain_time_axis`)."""
    fig = agg_figure(figsize=size_in)
    ax = fig.subplots()
    draw_strain_curves(ax, strain, fontsize=7)
    fig.tight_layout()
    return _png(fig)


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
    return buffer.getvalue()


def _report_figure(result):
    fig = agg_figure(figsize=A4_INCHES)
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
        title = f"{phase} (frame {result.cine.frame_numbers[t]}), slice {k}"
        cine = result.cine
        show_slice(
            ax, cine.data[t, k], result.labels[t, k], cine.spacing_mm, title, slice_landmarks(result, t, k)
        )
    if result.cine.num_frames > 2:
        draw_volume_curves(fig.add_subplot(grid[2, :2]), result, fontsize=7)
    strain = result.strain
    if strain is not None:
        draw_strain_curves(fig.add_subplot(grid[2, 2]), strain, fontsize=7)
        draw_strain_maps(fig, [fig.add_subplot(grid[3, column]) for column in range(3)], strain)
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


def is_pdf_report(path: Path) -> bool:
    """``path`` is a report :func:`pdf_report` made (a PDF whose creator is CardiacMTL)."""
    if path.stat().st_size > 50 << 20:
        return False
    data = path.read_bytes()
    return data.startswith(b"%PDF-") and b"/Creator (CardiacMTL" in data


def write_pdf_report(result, path: str | Path, overwrite: bool = False) -> Path:
    """Write :func:`pdf_report` to ``path`` (a file the project wrote before is replaced only with
    ``overwrite``; anything else is never overwritten), renamed into place once complete."""
    path = check_output_file(
        path,
        inputs=(result.cine.source,) if result.cine.source else (),
        overwrite=overwrite,
        written_by_project=is_pdf_report,
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
