"""MRML and VTK helpers every scene module shares: volume nodes, matrices, tables, plots.

Every function takes the ``vtkMRMLScene`` (or a node) explicitly, so the same code serves the desktop
module (``slicer.mrmlScene``), the browser app (the scene of trame-slicer's ``SlicerApp``) and pytest on
the ``slicer-core`` wheel. ``slicer`` and ``vtk`` are imported inside functions, so the rest of the
library and the command line work without them.

Geometry: a :class:`~CardiacMTLLib.types.Cine` voxel ``data[t, k, j, i]`` is the node's voxel ``(i, j, k)``
(VTK image order); the node's IJK-to-RAS matrix has the cine's voxel spacing and the directions of the
cine's affine (:func:`ijk_to_ras`; ACDC files carry a unit affine and the spacing in ``pixdim``, the node
gets the real spacing either way).
"""

from __future__ import annotations

import numpy as np

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.types import metric_affine

ATTRIBUTE_PREFIX = "CardiacMTL."


def slicer_module():
    """The ``slicer`` package (3D Slicer's, or the slicer-core wheel's); ``ImportError`` says how to get it."""
    try:
        import slicer
    except ImportError as e:  # pragma: no cover - exercised only without slicer-core
        raise ImportError(
            "the scene logic needs 3D Slicer or the slicer-core wheel (pip install 'trame-slicer[standalone]')"
        ) from e
    return slicer


# ------------------------------------------------------------------------------------------ geometry


def ijk_to_ras(affine: np.ndarray, spacing_mm) -> np.ndarray:
    """The node's 4 x 4 IJK-to-RAS matrix: the affine's directions scaled by the true voxel spacing
    (:func:`~CardiacMTLLib.types.metric_affine`)."""
    return metric_affine(affine, spacing_mm)


def vtk_matrix(array: np.ndarray):
    """A ``vtkMatrix4x4`` holding the 4 x 4 numpy ``array``."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r, c]))
    return matrix


def numpy_matrix(matrix) -> np.ndarray:
    """A ``vtkMatrix4x4`` as a numpy 4 x 4 array."""
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def node_ijk_to_ras(volume_node) -> np.ndarray:
    """A volume node's IJK-to-RAS matrix as a numpy 4 x 4 array."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    return numpy_matrix(matrix)


def image_data_from_array(array: np.ndarray):
    """A ``vtkImageData`` holding ``array`` (slices, rows, cols) as voxels (i, j, k); unit spacing, origin 0."""
    import vtk
    from vtk.util import numpy_support

    array = np.ascontiguousarray(array)
    if array.ndim != 3:
        raise CardiacInputError(f"an image must be (slices, rows, cols), got shape {array.shape}")
    image = vtk.vtkImageData()
    image.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    scalars = numpy_support.numpy_to_vtk(
        array.ravel(), deep=True, array_type=numpy_support.get_vtk_array_type(array.dtype)
    )
    image.GetPointData().SetScalars(scalars)
    return image


def array_from_image_data(image) -> np.ndarray:
    """The voxels of a ``vtkImageData`` as (slices, rows, cols)."""
    from vtk.util import numpy_support

    cols, rows, slices = image.GetDimensions()
    return numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(slices, rows, cols).copy()


def make_volume_node(
    array: np.ndarray, matrix: np.ndarray, name: str, class_name: str = "vtkMRMLScalarVolumeNode"
):
    """A volume node (not added to any scene) with voxels ``array`` (slices, rows, cols) and IJK-to-RAS ``matrix``."""
    node = getattr(slicer_module(), class_name)()
    node.SetName(name)
    node.SetIJKToRASMatrix(vtk_matrix(matrix))
    node.SetAndObserveImageData(image_data_from_array(array))
    return node


def array_from_volume_node(volume_node) -> np.ndarray:
    """A volume node's voxels as (slices, rows, cols)."""
    return array_from_image_data(volume_node.GetImageData())


# -------------------------------------------------------------------------------------------- tables


def table_node(scene, name: str, table=None):
    """A new table node ``name`` in ``scene``, or ``table`` emptied of its columns for a refill; locked
    against typing in Slicer's table view (a result is changed by editing what it is measured on: the
    segmentation, the landmarks; a value typed into a cell would be shown but never exported)."""
    if table is None:
        table = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
        table.SetLocked(True)
    else:
        table.RemoveAllColumns()
    return table


def string_column(table, name: str, values) -> None:
    """Append a string column; ``None`` becomes an empty string."""
    import vtk

    column = vtk.vtkStringArray()
    column.SetName(name)
    for value in values:
        column.InsertNextValue("" if value is None else str(value))
    table.AddColumn(column)


def double_column(table, name: str, values) -> None:
    """Append a numeric column; ``None`` becomes NaN."""
    import vtk

    column = vtk.vtkDoubleArray()
    column.SetName(name)
    for value in values:
        column.InsertNextValue(np.nan if value is None else float(value))
    table.AddColumn(column)


def table_rows(table) -> list[dict]:
    """A table node's rows as dicts keyed by column name (the values as the table holds them)."""
    vtk_table = table.GetTable()
    names = [vtk_table.GetColumnName(c) for c in range(vtk_table.GetNumberOfColumns())]
    rows = []
    for r in range(vtk_table.GetNumberOfRows()):
        row = {}
        for c, name in enumerate(names):
            value = vtk_table.GetValue(r, c)
            row[name] = value.ToDouble() if value.IsNumeric() else value.ToString()
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------- plots


def line_plot(
    scene,
    table,
    x_column: str,
    y_columns: list[str],
    title: str,
    x_title: str,
    y_title: str,
    colors: dict | None = None,
    chart=None,
):
    """A plot chart of ``y_columns`` against ``x_column`` of ``table`` (one series each); returns the chart."""
    slicer = slicer_module()
    if chart is None:
        chart = scene.AddNewNodeByClass("vtkMRMLPlotChartNode", scene.GenerateUniqueName(title))
    chart.RemoveAllPlotSeriesNodeIDs()
    chart.SetTitle(title)
    chart.SetXAxisTitle(x_title)
    chart.SetYAxisTitle(y_title)
    for name in y_columns:
        series = scene.AddNewNodeByClass(
            "vtkMRMLPlotSeriesNode", scene.GenerateUniqueName(f"{title}: {name}")
        )
        series.SetAndObserveTableNodeID(table.GetID())
        series.SetXColumnName(x_column)
        series.SetYColumnName(name)
        series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
        series.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleCircle)
        if colors and name in colors:
            series.SetColor(*colors[name])
        chart.AddAndObservePlotSeriesNodeID(series.GetID())
    return chart
