"""The browser panel's state: what trame shows for a case and a result, as plain values.

Every string comes from :mod:`CardiacMTLLib.report.text` (the wording the Slicer panel and ``indices.csv``
share) or from the scene's table conventions; these functions only arrange it for the page's widgets.
"""

from __future__ import annotations

import base64

from CardiacMTLLib.report.bullseye import write_bullseye
from CardiacMTLLib.report.pdf import strain_curves_png, volume_curve_png
from CardiacMTLLib.report.text import diagnosis_text, format_value, landmark_line, probability_texts, qc_lines
from CardiacMTLLib.scene.cardiac import split_metric
from CardiacMTLLib.types import STRUCTURES

N_MODE_SLIDERS = 3


def initial_state(cases: list[str], case_name: str, device_text: str, atlas_name: str, atlas) -> dict:
    """Everything the page binds to, before a case is loaded."""
    state = {
        "trame__title": "CardiacMTL",
        "cases": cases,
        "case_name": case_name,
        "upload": None,
        "running": False,
        "status": "Choose a case and press Load.",
        "error": "",
        "device": device_text,
        "case_loaded": False,
        "frame": 0,
        "n_frames": 1,
        "frame_label": "",
        "case_name_shown": "",
        "height_cm": None,
        "weight_kg": None,
        "sex": None,
        "sex_items": [
            {"title": "unknown", "value": None},
            {"title": "male", "value": "M"},
            {"title": "female", "value": "F"},
        ],
        "slice_orientation": [],
        "legend": legend_rows(),
        "analyses_started": 0,
        "playing": False,
        "show_surfaces": True,
        "window_range": [0.0, 1.0],
        "intensity_range": [0.0, 1.0],
        "intensity_step": 1.0,
        "brush_mode": "off",
        "brush_label": 3,
        "brush_diameter_mm": 5,
        "brush_labels": [{"title": label.display_name, "value": int(label)} for label in STRUCTURES],
        "atlas_name": atlas_name,
        "mode_explained": [f"{100 * f:.1f} %" for f in atlas.explained_variance_ratio_[:N_MODE_SLIDERS]],
        **{f"mode_{k}": 0.0 for k in range(N_MODE_SLIDERS)},
    }
    return {**state, **cleared_result_state()}


def cleared_result_state() -> dict:
    """The result's part of the panel, empty (a new case, or before the first analysis)."""
    return {
        "has_result": False,
        "confirm_replace": "",  # the question a second click of Segment & diagnose answers (edits at stake)
        "diagnosis_text": "",
        "probabilities": [],
        "criteria": [],
        "indices_rows": [],
        "qc_rows": [],
        "landmark_rows": [],
        "landmark_screen": [],
        "analysis_seconds": None,
        "analysis_cpu_seconds": None,
        "fit_text": "",
        "progress": 0,
        "downloads": [],
        "figures": {},
    }


def result_state(result, device_text: str) -> dict:
    """The diagnosis, its probabilities and criteria, the indices, QC findings and landmarks of ``result``."""
    diagnosis = result.diagnosis or {}
    criteria = [
        {
            "cls": c.get("class"),
            "index": c.get("index"),
            "rule": c.get("rule"),
            "value": format_value(c.get("value")),
            "status": c.get("status"),
        }
        for c in (diagnosis.get("criteria") or [] if diagnosis.get("class") else [])
    ]
    indices = [
        {"metric": split_metric(key)[0], "value": format_value(value), "unit": split_metric(key)[1]}
        for key, value in result.indices.items()
    ]
    landmarks = [
        {"index": i, "text": landmark_line(lm), "edited": bool(lm.get("edited"))}
        for i, lm in enumerate(result.landmarks or [])
    ]
    return {
        "diagnosis_text": diagnosis_text(result.diagnosis),
        "probabilities": probability_texts(result.diagnosis),
        "criteria": criteria,
        "indices_rows": indices,
        "qc_rows": qc_lines(result.qc),
        "landmark_rows": landmarks,
        "device": result.provenance.get("device", device_text),
    }


def frame_label(cine, result, index: int) -> str:
    """``"frame 1 (1/30) ED"``: the file's frame number, the position, and the phase when it is one."""
    if cine is None:
        return ""
    label = f"frame {cine.frame_numbers[index]} ({index + 1}/{cine.num_frames})"
    if result is not None:
        label += " ED" if index == result.ed_index else " ES" if index == result.es_index else ""
    return label


def analyze_click(cancel_shown: bool, analysis_running: bool) -> str:
    """What a click of the Segment & diagnose / Cancel button does: ``"start"``, ``"cancel"`` or ``"none"``.

    The page sends what the button showed when it was clicked (``cancel_shown``); the server knows whether
    an analysis still runs. They differ when the click crossed the analysis's end on the wire: a Cancel that
    arrives after the analysis ended starts nothing (the user asked for no analysis), and a second click
    of Segment & diagnose that arrives after the first one started it cancels nothing.
    """
    if cancel_shown != analysis_running:
        return "none"
    return "cancel" if analysis_running else "start"


BUSY_TEXT = "An analysis is running: Cancel it before loading another case."


def loaded_text(name: str, cine) -> str:
    rows, cols = cine.data.shape[2], cine.data.shape[3]
    sx, sy, sz = cine.spacing_mm
    return (
        f"Loaded {name}: {cine.num_frames} frame(s) × {cine.num_slices} slices, "
        f"{rows} × {cols} pixels of {sx:.2f} × {sy:.2f} × {sz:.1f} mm."
    )


def atlas_text(atlas_scene) -> str:
    """The shape the sliders make: its mode scores in SD and its cavity and myocardium volumes."""
    cavity, epi = atlas_scene.shape_volumes_ml()
    sd = ", ".join(f"{v:+.1f}" for v in atlas_scene.sd)
    return f"Shape at ({sd}) SD: cavity {cavity:.1f} mL, myocardium {epi - cavity:.1f} mL"


def fit_text(fits: dict, mode_sd=None, mode_error: str | None = None) -> str:
    """The fitted LV model per phase (cavity volume) and the case's scores on the atlas modes, in SD."""
    parts = [f"{phase}: cavity {fit.mesh.endo_cavity_volume_ml:.0f} mL" for phase, fit in fits.items()]
    if mode_sd is not None:
        parts.append("mode scores " + ", ".join(f"{v:+.1f} SD" for v in mode_sd))
    elif mode_error:
        parts.append(f"no mode scores ({mode_error})")
    return "LV model " + "; ".join(parts)


def legend_rows() -> list[dict]:
    """The structures' names and colours, as every view and figure draws them."""
    return [{"name": label.display_name, "colour": label.colour} for label in STRUCTURES]


def positive_or_none(value) -> float | None:
    """A height or weight typed in the panel: a positive number, or ``None`` (empty or not a number)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def window_state(volume_node) -> dict:
    """The window/level control of a volume node: its intensity range and the window shown now."""
    low, high = volume_node.GetImageData().GetScalarRange()
    display = volume_node.GetDisplayNode()
    shown = [display.GetWindowLevelMin(), display.GetWindowLevelMax()] if display is not None else [low, high]
    step = (high - low) / 200 if high > low else 1.0
    return {"intensity_range": [low, high], "window_range": shown, "intensity_step": step}


def figures_state(result) -> dict:
    """The panel's figures of ``result`` as PNG data URLs: volume curves, global strain, AHA bull's-eye."""

    def url(png: bytes) -> str:
        return "data:image/png;base64," + base64.b64encode(png).decode("ascii")

    figures = {}
    if result.cine.num_frames > 2:
        figures["volume"] = url(volume_curve_png(result))
    if result.strain is not None:
        figures["strain"] = url(strain_curves_png(result.strain))
        figures["bullseye"] = url(write_bullseye(result.strain))
    return figures


DOWNLOAD_TYPES = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".png": "image/png",
    ".dcm": "application/dicom",
    ".pdf": "application/pdf",
    ".gz": "application/gzip",
}


def download_rows(files: dict) -> list[dict]:
    """One download button per result file: its kind (the server's key), file name and MIME type."""
    rows = []
    for kind, path in files.items():
        suffix = "".join(path.suffixes[-1:])
        rows.append(
            {"kind": kind, "name": path.name, "type": DOWNLOAD_TYPES.get(suffix, "application/octet-stream")}
        )
    return rows


def slice_orientation(slice_node) -> list[list[float]]:
    """The slice view's in-plane axes and normal in RAS (columns of its SliceToRAS), for the browser tests."""
    matrix = slice_node.GetSliceToRAS()
    return [[round(matrix.GetElement(r, c), 6) for r in range(3)] for c in range(3)]
