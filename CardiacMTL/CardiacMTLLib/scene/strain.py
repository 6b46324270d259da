"""LV strain in the scene: a table of the AHA segments, the global strain curves as a plot, the bull's-eye.

:func:`strain_table` has one row for the global values and one per AHA segment (peak radial and
circumferential strain, wall thickening, wall motion), as ``strain.json`` lists them; :func:`strain_curve_table`
and :func:`strain_curve_chart` plot the global radial (GRS) and circumferential (GCS) strain over the tracked
frames; :func:`bullseye_volume` shows the bull's-eye drawing of :func:`CardiacMTLLib.report.bullseye.write_bullseye`
(the same PNG as the report's and the web app's) as an RGB image volume, the node a PNG dropped on Slicer
becomes, so it can be shown in a slice view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from CardiacMTLLib.scene.nodes import ATTRIBUTE_PREFIX, double_column, line_plot, string_column, table_node

STRAIN_COLUMNS = (
    "Region", "Name", "Peak radial (%)", "Peak circumferential (%)", "Thickening (%)", "Wall motion",
)  # fmt: skip
CURVE_COLUMNS = ("GRS (%)", "GCS (%)")
CURVE_COLORS = {"GRS (%)": (0.85, 0.37, 0.01), "GCS (%)": (0.11, 0.47, 0.7)}
BULLSEYE_NAME = "Strain bull's-eye"


# The wall motion of a segment whose wall could not be followed to ES (StrainResult.unmeasured_segments:
# its slices have no cavity, or a cavity mostly without wall, there).
UNMEASURED = "not measured: not followed to ES"


def strain_table(scene, strain, table=None):
    """The strain of ``strain`` (a :class:`~CardiacMTLLib.analysis.strain.StrainResult`) as a table node:
    ``Region`` (``global``, then ``1``-``16``), ``Name``, peak radial and circumferential strain, thickening
    (``None`` -> NaN) and ``Wall motion`` (:data:`UNMEASURED` for a segment not followed to ES); the rule of
    the wall motion is its ``wallMotionRule`` attribute."""
    table = table_node(scene, "Strain", table)
    rows = [
        (
            "global",
            "global (myocardium-weighted)",
            strain.global_radial_pct,
            strain.global_circumferential_pct,
            None,
            "",
        )
    ]
    rows += [
        (
            str(s.segment),
            s.name,
            s.peak_radial_pct,
            s.peak_circumferential_pct,
            s.thickening_pct,
            UNMEASURED if s.segment in strain.unmeasured_segments else s.wall_motion,
        )
        for s in strain.segments
    ]
    region, name, radial, circumferential, thickening, motion = STRAIN_COLUMNS
    string_column(table, region, [r[0] for r in rows])
    string_column(table, name, [r[1] for r in rows])
    for column, index in ((radial, 2), (circumferential, 3), (thickening, 4)):
        double_column(table, column, [r[index] for r in rows])
    string_column(table, motion, [r[5] for r in rows])
    table.SetAttribute(ATTRIBUTE_PREFIX + "wallMotionRule", strain.rule)
    table.Modified()
    return table


# the curve table's time axes: trigger times when the cine has them, else frame steps from ED
TIME_COLUMNS = {"Time (ms)": "time from ED (ms)", "Frames from ED": "frames from ED"}


def strain_curve_table(scene, strain, table=None):
    """The global strain curves over the tracked frames: ``Frame``, ``Time (ms)`` (empty without trigger
    times), ``Frames from ED``, ``GRS (%)``, ``GCS (%)``; the table's ``timeColumn`` attribute names the
    time column the chart plots against."""
    table = table_node(scene, "Strain curves", table)
    double_column(table, "Frame", strain.frame_numbers)
    double_column(table, "Time (ms)", strain.times_ms)
    double_column(table, "Frames from ED", strain.frames_from_ed)
    double_column(table, CURVE_COLUMNS[0], strain.global_radial_curve_pct)
    double_column(table, CURVE_COLUMNS[1], strain.global_circumferential_curve_pct)
    timed = bool(strain.times_ms) and all(t is not None for t in strain.times_ms)
    table.SetAttribute(ATTRIBUTE_PREFIX + "timeColumn", "Time (ms)" if timed else "Frames from ED")
    table.Modified()
    return table


def strain_curve_chart(scene, table, chart=None):
    """The plot chart of :func:`strain_curve_table`: GRS and GCS against the time from end-diastole (the
    frames from it when the cine has no trigger times)."""
    x = table.GetAttribute(ATTRIBUTE_PREFIX + "timeColumn") or "Time (ms)"
    return line_plot(
        scene, table, x, list(CURVE_COLUMNS), "Global strain", TIME_COLUMNS[x], "strain (%)",
        colors=CURVE_COLORS, chart=chart,
    )  # fmt: skip


def chart_time_column(chart) -> str | None:
    """The time column a strain chart plots against (``None`` without series)."""
    return chart.GetNthPlotSeriesNode(0).GetXColumnName() if chart.GetNumberOfPlotSeriesNodes() else None


def png_to_rgb(png: bytes) -> np.ndarray:
    """The pixels of a PNG as (rows, cols, 3) uint8, the first row at the top of the picture."""
    import tempfile

    import vtk
    from vtk.util import numpy_support

    # through a temporary file: VTK's memory-buffer reading changed API (9.6 deprecates SetMemoryBuffer)
    with tempfile.TemporaryDirectory(prefix="cardiacmtl-png-") as folder:
        path = Path(folder) / "picture.png"
        path.write_bytes(png)
        reader = vtk.vtkPNGReader()
        reader.SetFileName(str(path))
        reader.Update()
        image = reader.GetOutput()
    cols, rows, _ = image.GetDimensions()
    pixels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    pixels = pixels.reshape(rows, cols, -1)[::-1]  # VTK's first row is the bottom one
    return np.ascontiguousarray(pixels[..., :3].astype(np.uint8))


def bullseye_volume(scene, png: bytes, node=None):
    """The bull's-eye PNG as a vector (RGB) volume node named :data:`BULLSEYE_NAME`, one slice of 1 mm
    pixels oriented as Slicer orients a loaded picture (upright in the axial view); ``node`` is refilled."""
    import vtk
    from vtk.util import numpy_support

    rgb = png_to_rgb(png)
    rows, cols, _ = rgb.shape
    image = vtk.vtkImageData()
    image.SetDimensions(cols, rows, 1)
    scalars = numpy_support.numpy_to_vtk(rgb.reshape(-1, 3), deep=True, array_type=vtk.VTK_UNSIGNED_CHAR)
    scalars.SetNumberOfComponents(3)
    image.GetPointData().SetScalars(scalars)
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLVectorVolumeNode", scene.GenerateUniqueName(BULLSEYE_NAME))
        node.CreateDefaultDisplayNodes()
    # voxel (i, j) -> RAS (-i, -j): columns run to the patient's left and rows down the axial view
    node.SetIJKToRASDirections(-1, 0, 0, 0, -1, 0, 0, 0, 1)
    node.SetSpacing(1.0, 1.0, 1.0)
    node.SetOrigin(0.0, 0.0, 0.0)
    node.SetAndObserveImageData(image)
    return node
