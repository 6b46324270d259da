"""Analysis results as table nodes, as SlicerHeart shows measurements: ``Metric``, ``Value``, ``Unit``.

The indices get one row each, their unit taken from :data:`CardiacMTLLib.analysis.indices.INDEX_UNITS`;
the diagnosis, its criteria trace, the QC findings and the volume curves get tables of their own. After a
correction of the segmentation the indices and curve tables say which frames were edited.
"""

from __future__ import annotations

from CardiacMTLLib.analysis.indices import INDEX_UNITS
from CardiacMTLLib.scene.nodes import ATTRIBUTE_PREFIX, double_column, line_plot, string_column, table_node
from CardiacMTLLib.types import STRUCTURES, Label

INDEX_COLUMNS = ("Metric", "Value", "Unit")
CURVE_COLORS = {v.short_name: v.colour_rgb for v in STRUCTURES}
# the volume curves in the order of the table and the plot
CURVES = tuple(v.short_name for v in (Label.LV_CAVITY, Label.RV_CAVITY, Label.LV_MYOCARDIUM))
EDITED_COLUMN = "Edited"  # of the volume curves: 1 for a frame whose labels a person corrected


def split_metric(key: str) -> tuple[str, str]:
    """``'LVEDV (mL)'`` -> ``('LVEDV', 'mL')``: the unit of an index key from ``INDEX_UNITS``.

    A key without a unit there (``'RVEDV/LVEDV'``, ``'ED frame'``, or one the table does not know) keeps
    its whole name and an empty unit.
    """
    unit = INDEX_UNITS.get(key, "")
    suffix = f" ({unit})"
    if unit and key.endswith(suffix):
        return key[: -len(suffix)], unit
    return key, ""


def indices_table(scene, indices: dict, table=None, edited_frames=()):
    """The clinical indices as a table node with ``Metric``, ``Value``, ``Unit`` columns (one row each);
    the frames whose labels a person corrected (``edited_frames``) are in its ``editedFrames`` attribute."""
    table = table_node(scene, "Cardiac indices", table)
    table.SetAttribute(ATTRIBUTE_PREFIX + "editedFrames", edited_frames_attribute(edited_frames))
    rows = [(*split_metric(key), value) for key, value in indices.items()]
    metric, value, unit = INDEX_COLUMNS
    string_column(table, metric, [r[0] for r in rows])
    double_column(table, value, [r[2] for r in rows])
    string_column(table, unit, [r[1] for r in rows])
    if hasattr(table, "SetUseColumnTitleAsColumnHeader"):
        table.SetUseColumnTitleAsColumnHeader(True)
    table.Modified()
    return table


def diagnosis_table(scene, diagnosis: dict | None, table=None):
    """Class probabilities as a table (``Class``, ``Probability``, ``Criteria``); empty without a diagnosis."""
    table = table_node(scene, "Diagnosis", table)
    probabilities = (diagnosis or {}).get("probabilities") or {}
    summary = (diagnosis or {}).get("criteria_summary") or {}
    string_column(table, "Class", list(probabilities))
    double_column(table, "Probability", list(probabilities.values()))
    string_column(table, "Criteria", [summary.get(c, "") for c in probabilities])
    if diagnosis:
        table.SetAttribute(ATTRIBUTE_PREFIX + "class", str(diagnosis.get("class")))
    table.Modified()
    return table


def criteria_table(scene, diagnosis: dict | None, table=None):
    """The ACDC criteria trace: ``Class``, ``Index``, ``Rule``, ``Value``, ``Status`` per criterion."""
    table = table_node(scene, "Diagnosis criteria", table)
    trace = (diagnosis or {}).get("criteria") or []
    for column in ("class", "index", "rule"):
        string_column(table, column.capitalize(), [c.get(column) for c in trace])
    double_column(table, "Value", [c.get("value") for c in trace])
    string_column(table, "Status", [c.get("status") for c in trace])
    table.Modified()
    return table


def qc_table(scene, qc: list[dict], table=None):
    """QC findings: ``Frame``, ``Slice``, ``Problem``."""
    table = table_node(scene, "QC findings", table)
    string_column(table, "Frame", [f.get("frame") for f in qc])
    string_column(table, "Slice", [f.get("slice") for f in qc])
    string_column(table, "Problem", [f.get("problem") for f in qc])
    table.Modified()
    return table


def volume_curve_table(scene, frame_numbers: list[int], curves: dict, table=None, edited_frames=()):
    """The volume curves (``Frame`` and ``LV (mL)``, ``RV (mL)``, ``Myo (mL)``) as a table node, with an
    ``Edited`` column: 1 for the frames (numbered as ``frame_numbers``) whose labels a person corrected."""
    table = table_node(scene, "Volume curves", table)
    double_column(table, "Frame", frame_numbers)
    for name in CURVES:
        if name in curves:
            double_column(table, f"{name} (mL)", curves[name])
    edited = {int(f) for f in edited_frames}
    double_column(table, EDITED_COLUMN, [1.0 if int(f) in edited else 0.0 for f in frame_numbers])
    table.SetAttribute(ATTRIBUTE_PREFIX + "editedFrames", edited_frames_attribute(edited_frames))
    table.Modified()
    return table


def edited_frames_attribute(edited_frames) -> str:
    """The frames a person corrected as a node attribute: ``"1,12"`` (empty when none)."""
    return ",".join(str(int(f)) for f in sorted(edited_frames))


def volume_curve_chart(scene, table):
    """The plot chart of the volume curves of :func:`volume_curve_table`, one series per structure."""
    return line_plot(
        scene,
        table,
        "Frame",
        [f"{s} (mL)" for s in CURVES],
        "Volume over the cardiac cycle",
        "frame",
        "volume (mL)",
        colors={f"{k} (mL)": v for k, v in CURVE_COLORS.items()},
    )
