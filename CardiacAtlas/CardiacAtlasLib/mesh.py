"""LV surface meshes on disk and their measurements: legacy VTK polydata in, out, and cavity volume.

An LV mesh is one VTK polydata holding both surfaces: the endocardial points first, then the epicardial
points, triangles of both, and a point-data array ``surface`` (0 = endocardium, 1 = epicardium). The same
convention is used for the fitted models that ``build`` reads (``lv_model_ED.vtk``, ``lv_model_ES.vtk``)
and for the mean and mode meshes an atlas writes. Coordinates are in millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from CardiacMTLLib.errors import CardiacInputError

SURFACE_ARRAY = "surface"
ENDO, EPI = 0, 1


@dataclass
class LVMesh:
    """Endocardial and epicardial triangle surfaces sharing one point array.

    ``points_mm``: (n_points, 3) in mm, endocardial points ``[0, n_endo)`` then epicardial points.
    ``faces_endo`` / ``faces_epi``: (n_triangles, 3) 0-based indices into ``points_mm``.
    """

    points_mm: np.ndarray
    faces_endo: np.ndarray
    faces_epi: np.ndarray
    n_endo: int

    @property
    def endo_cavity_volume_ml(self) -> float:
        """LV cavity volume in mL: the endocardial surface closed across its open boundaries (base)."""
        return closed_volume_ml(self.points_mm, self.faces_endo)

    @property
    def epi_volume_ml(self) -> float:
        """Volume inside the epicardium in mL (cavity + myocardium), closed across its open boundaries."""
        return closed_volume_ml(self.points_mm, self.faces_epi)


def grid_faces(n_long: int, n_circ: int, offset: int = 0) -> np.ndarray:
    """Triangles (2 (n_long-1) n_circ, 3) of a grid of rows (apex first) closed around the circumference."""
    i, j = np.meshgrid(np.arange(n_long - 1), np.arange(n_circ), indexing="ij")
    a = i * n_circ + j
    b = i * n_circ + (j + 1) % n_circ
    c = (i + 1) * n_circ + (j + 1) % n_circ
    d = (i + 1) * n_circ + j
    faces = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([a, d, c], -1).reshape(-1, 3)])
    return faces + offset


def boundary_loops(faces: np.ndarray, n_points: int) -> list[np.ndarray]:
    """The holes of a triangle surface: for each boundary loop its edges ``(k, 2)``, each as wound in its
    triangle (an edge used by one triangle only is on a boundary)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    faces = np.asarray(faces, dtype=np.int64)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    _, inverse, counts = np.unique(np.sort(edges, axis=1), axis=0, return_inverse=True, return_counts=True)
    boundary = edges[counts[inverse.ravel()] == 1]
    if not len(boundary):
        return []
    graph = coo_matrix((np.ones(len(boundary)), (boundary[:, 0], boundary[:, 1])), shape=(n_points, n_points))
    _, loop_of_point = connected_components(graph, directed=False)
    loop = loop_of_point[boundary[:, 0]]
    return [boundary[loop == label] for label in np.unique(loop)]


def capped_triangles(points_mm: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Triangles (m, 3, 3) mm of a surface with each hole (the base, a degenerate apex) closed by a fan.

    Each boundary loop is closed by triangles from its edges to the loop's centroid, wound consistently
    with the surface, so the result is a closed surface (for volumes and inside/outside tests).
    """
    points = np.asarray(points_mm, dtype=float)
    faces = np.asarray(faces, dtype=np.int64)
    triangles = [points[faces]]
    for loop_edges in boundary_loops(faces, len(points)):
        centroid = np.broadcast_to(points[np.unique(loop_edges)].mean(axis=0), (len(loop_edges), 3))
        # the reversed boundary edge keeps the cap's winding consistent with the surface's
        triangles.append(np.stack([points[loop_edges[:, 1]], points[loop_edges[:, 0]], centroid], axis=1))
    return np.concatenate(triangles)


def closed_volume_ml(points_mm: np.ndarray, faces: np.ndarray) -> float:
    """Volume in mL enclosed by a triangle surface whose holes are capped (see :func:`capped_triangles`).

    The signed tetrahedra to the origin are summed (divergence theorem); the sign of the winding is
    ignored, so the result is always >= 0.
    """
    tri = capped_triangles(points_mm, faces)
    signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    return abs(float(signed)) / 1000.0


def polydata_from_mesh(mesh: LVMesh):
    """The mesh as ``vtkPolyData`` (triangles of both surfaces, ``surface`` array 0 endo / 1 epi)."""
    import vtk
    from vtk.util.numpy_support import numpy_to_vtk, numpy_to_vtkIdTypeArray

    points = vtk.vtkPoints()
    points.SetData(numpy_to_vtk(np.ascontiguousarray(mesh.points_mm, dtype=np.float64), deep=True))
    faces = np.concatenate([mesh.faces_endo, mesh.faces_epi]).astype(np.int64)
    cells = vtk.vtkCellArray()
    offsets = np.arange(0, 3 * len(faces) + 1, 3, dtype=np.int64)
    cells.SetData(
        numpy_to_vtkIdTypeArray(offsets, deep=True), numpy_to_vtkIdTypeArray(faces.ravel().copy(), deep=True)
    )
    labels = np.full(len(mesh.points_mm), EPI, dtype=np.int32)
    labels[: mesh.n_endo] = ENDO
    label_array = numpy_to_vtk(labels, deep=True)
    label_array.SetName(SURFACE_ARRAY)
    polydata = vtk.vtkPolyData()
    polydata.SetPoints(points)
    polydata.SetPolys(cells)
    polydata.GetPointData().AddArray(label_array)
    return polydata


def write_lv_mesh(mesh: LVMesh, path: str | Path) -> None:
    """Write ``mesh`` as legacy binary VTK polydata with the ``surface`` point-data array (0 endo, 1 epi)."""
    import vtk

    polydata = polydata_from_mesh(mesh)
    writer = vtk.vtkPolyDataWriter()
    writer.SetFileName(str(path))
    writer.SetInputData(polydata)
    writer.SetFileTypeToBinary()
    if not writer.Write():
        raise OSError(f"could not write VTK polydata to {path}")


def read_lv_mesh(path: str | Path) -> LVMesh:
    """Read an LV mesh written by :func:`write_lv_mesh` (or any polydata following its convention).

    Raises ``CardiacInputError`` naming the file when it is missing, not polydata, has no ``surface``
    array, does not list the endocardial points first, or has non-triangle cells.
    """
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    path = Path(path)
    if not path.is_file():
        raise CardiacInputError(f"{path}: LV model file not found")
    reader = vtk.vtkPolyDataReader()
    reader.SetFileName(str(path))
    reader.ReadAllScalarsOn()
    reader.Update()
    polydata = reader.GetOutput()
    if not reader.IsFilePolyData() or polydata is None or polydata.GetNumberOfPoints() == 0:
        raise CardiacInputError(f"{path}: expected legacy VTK polydata with points, found none")
    points = vtk_to_numpy(polydata.GetPoints().GetData()).astype(np.float64)
    array = polydata.GetPointData().GetArray(SURFACE_ARRAY)
    if array is None:
        raise CardiacInputError(
            f"{path}: point-data array '{SURFACE_ARRAY}' (0 = endocardium, 1 = epicardium) is missing"
        )
    labels = vtk_to_numpy(array).astype(int).ravel()
    n_endo = int(np.sum(labels == ENDO))
    if (
        n_endo == 0
        or n_endo == len(labels)
        or np.any(labels[:n_endo] != ENDO)
        or np.any(labels[n_endo:] != EPI)
    ):
        raise CardiacInputError(
            f"{path}: '{SURFACE_ARRAY}' must list the endocardial points (0) first, then the epicardial "
            f"points (1); found {n_endo} endocardial of {len(labels)} points in another order"
        )
    polys = polydata.GetPolys()
    offsets = vtk_to_numpy(polys.GetOffsetsArray())
    if polydata.GetNumberOfCells() != polys.GetNumberOfCells() or np.any(np.diff(offsets) != 3):
        raise CardiacInputError(f"{path}: expected triangles only (no lines, strips or polygons)")
    faces = vtk_to_numpy(polys.GetConnectivityArray()).astype(np.int64).reshape(-1, 3)
    on_endo = np.all(faces < n_endo, axis=1)
    on_epi = np.all(faces >= n_endo, axis=1)
    if not np.all(on_endo | on_epi):
        raise CardiacInputError(f"{path}: a triangle joins endocardial and epicardial points")
    return LVMesh(points, faces[on_endo], faces[on_epi], n_endo)
