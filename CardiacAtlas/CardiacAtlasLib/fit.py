"""Fit the LV finite-element model to contours and landmarks, with breath-hold correction (MESA §2.5).

The steps follow the Cardiac Atlas Project's customisation as the MESA paper describes it:

1. **Pose from landmarks**: the mitral valve points give the base (their centre; the base plane is
   perpendicular to the long axis through it), the contours give the apex (on the line through the
   slices' epicardial centres, half a slice beyond the most apical short-axis slice; or the ``APEX_POINT``
   guide point), and the RV insertion points the septal direction (``θ = 0``). Missing landmarks are
   derived from the segmentation (base: the top of the most basal slice with LV cavity, axis along the
   slice normal; septum: the direction from the LV to the RV cavity centre) and ``fit.json`` says which.
   Data above the base plane (more than ``above_base_tolerance_mm``) are left out, as the model ends there.
2. **Projection**: each data point gets prolate spheroidal coordinates ``(λ, μ, θ)`` in that pose; its
   ``(μ, θ)`` stay fixed and the surface's ``λ`` there is compared with the point's.
3. **Regularised linear least squares** of each surface's ``λ`` field (``lv_template``): residuals weighted
   by the metric so they count in mm², plus a Sobolev smoothing penalty; one small dense solve.
4. **Breath-hold correction**: an initial highly regularised fit (close to a prolate spheroid about the
   axis), then each short-axis slice's contours are shifted in plane by the mean offset of its points to
   that fit's cross-section in the slice (one translation step of an in-plane ICP); fit and shifts are
   repeated a few times, then the final fit uses the shifted contours. Long-axis data, when present,
   are not shifted and anchor the position; otherwise the mean shift is removed (moving every slice at once
   is a move of the heart, not a breath-hold difference).

Inputs are :class:`ContourData` (points labelled endocardium/epicardium, per image plane) made from a label
map (:func:`contours_from_labels`), an ``analyze`` output folder (:func:`fit_analysis_folder`) or CAP/biv-me
guide points (``guidepoints.py``). Results are :class:`FitResult` (``.mesh``, an :class:`LVMesh` with the
CAP topology, and ``.summary``, the ``fit.json`` entry of that phase).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from CardiacAtlasLib import __version__
from CardiacAtlasLib.lv_template import MESH_COLUMNS, MESH_ROWS, HermiteGrid, Pose, Surface
from CardiacAtlasLib.mesh import LVMesh, grid_faces, write_lv_mesh
from CardiacMTLLib.atomic import check_output_folder, json_safe, staged_folder
from CardiacMTLLib.errors import CardiacCancelled, CardiacInputError

ENDO, EPI = 0, 1
RV_CAVITY, LV_MYOCARDIUM, LV_CAVITY = 1, 2, 3
MYOCARDIAL_DENSITY_G_PER_ML = 1.05
FIT_JSON = "fit.json"
LANDMARK_FILES = ("landmarks.json", "landmarks.mrk.json")
MIN_CONTOUR_PIXELS = 4
# the model sampling whose cross-sections the slices are shifted to (rows, columns)
SHIFT_GRID = (41, 72)
# the sampling residuals are measured on: about 1 mm apart on an adult LV
DISTANCE_GRID = (121, 192)


@dataclass(frozen=True)
class FitOptions:
    """Element grid and regularisation (weights are per mm² of mean squared residual; see module doc).

    ``smoothing``: (first, second) derivative weights of the final fit; ``initial_factor`` multiplies them
    for the highly regularised fit the slices are shifted to; ``shift_iterations`` rounds of shifting
    (0 turns the breath-hold correction off). ``apex_weight`` is the weight of an apex point relative to
    one contour point.
    """

    n_long: int = 4
    n_circ: int = 8
    smoothing: tuple[float, float] = (2e-5, 2e-5)
    initial_factor: float = 300.0
    shift_iterations: int = 5
    apex_weight: float = 10.0
    above_base_tolerance_mm: float = 2.0


@dataclass
class ImagePlane:
    """One image plane of the data: ``origin_mm``, unit ``normal``, ``i_dir`` (the direction in which the
    column index grows) and ``j_dir`` (the row index grows); ``short_axis`` planes get breath-hold shifts."""

    name: str
    origin_mm: np.ndarray
    normal: np.ndarray
    i_dir: np.ndarray
    j_dir: np.ndarray
    short_axis: bool = True
    index: int | None = None


@dataclass
class ContourData:
    """Contour points of one frame: ``points_mm`` (n, 3), ``surface`` (n,) 0 endo / 1 epi, ``plane`` (n,)
    index into ``planes``, ``weight`` (n,). ``landmarks`` maps ``MITRAL_VALVE``, ``APEX``, ``RV_INSERT`` to
    (k, 3) points in the same coordinates; ``landmark_source`` says where each came from."""

    points_mm: np.ndarray
    surface: np.ndarray
    plane: np.ndarray
    planes: list[ImagePlane]
    weight: np.ndarray | None = None
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)
    landmark_source: dict[str, str] = field(default_factory=dict)
    coordinates: str = "RAS mm"
    source: str = ""

    def __post_init__(self) -> None:
        self.points_mm = np.asarray(self.points_mm, dtype=float).reshape(-1, 3)
        self.surface = np.asarray(self.surface, dtype=int).ravel()
        self.plane = np.asarray(self.plane, dtype=int).ravel()
        if self.weight is None:
            self.weight = np.ones(len(self.points_mm))
        self.weight = np.asarray(self.weight, dtype=float).ravel()
        if not (len(self.surface) == len(self.plane) == len(self.weight) == len(self.points_mm)):
            raise CardiacInputError(f"{self.source}: contour arrays of different lengths")
        if not np.all(np.isfinite(self.points_mm)):
            raise CardiacInputError(f"{self.source}: contour points contain NaN or infinity")
        for surface, name in ((ENDO, "endocardial"), (EPI, "epicardial")):
            if np.count_nonzero(self.surface == surface) < 10:
                raise CardiacInputError(
                    f"{self.source}: too few {name} contour points to fit an LV model "
                    f"({np.count_nonzero(self.surface == surface)}, need at least 10)"
                )


@dataclass
class FitResult:
    """One fitted frame: ``mesh`` (both surfaces, CAP topology), ``summary`` (its ``fit.json`` entry),
    and the fitted ``endo``/``epi`` surfaces, ``pose`` and per-plane ``shifts_mm`` (n_planes, 3)."""

    mesh: LVMesh
    summary: dict
    endo: Surface
    epi: Surface
    pose: Pose
    shifts_mm: np.ndarray


# ------------------------------------------------------------------------------------------------- pose


def _sax_slices(data: ContourData) -> list[int]:
    return [i for i, p in enumerate(data.planes) if p.short_axis and np.any(data.plane == i)]


def _ordered_sax(data: ContourData) -> tuple[list[int], np.ndarray, float]:
    """SAX planes with LV data ordered base → apex, the unit normal pointing to the apex, the spacing."""
    sax = _sax_slices(data)
    if len(sax) < 2:
        raise CardiacInputError(
            f"{data.source}: need contours on at least 2 short-axis slices to fit an LV model, found {len(sax)}"
        )
    normal = data.planes[sax[0]].normal
    position = np.array([data.planes[i].origin_mm @ normal for i in sax])
    order = np.argsort(position)
    sax = [sax[i] for i in order]
    position = position[order]
    spacing = float(np.median(np.diff(position))) if len(sax) > 1 else 8.0

    def radius(i: int) -> float:
        pts = data.points_mm[(data.plane == i) & (data.surface == EPI)]
        if len(pts) < 3:
            pts = data.points_mm[data.plane == i]
        return float(np.linalg.norm(pts - pts.mean(axis=0), axis=1).mean())

    # the base is the wide end of the stack, the apex narrows
    if "MITRAL_VALVE" in data.landmarks:
        mv = data.landmarks["MITRAL_VALVE"].mean(axis=0) @ normal
        base_first = abs(mv - position[0]) < abs(mv - position[-1])
    else:
        base_first = radius(sax[0]) >= radius(sax[-1])
    if not base_first:
        sax, normal = sax[::-1], -normal
    return sax, normal, abs(spacing)


def _centroid(data: ContourData, plane: int, surface: int) -> np.ndarray | None:
    pts = data.points_mm[(data.plane == plane) & (data.surface == surface)]
    return pts.mean(axis=0) if len(pts) >= 3 else None


def estimate_pose(data: ContourData) -> Pose:
    """The model's pose (module doc, step 1), with ``pose.source`` saying where each landmark came from."""
    sax, to_apex, spacing = _ordered_sax(data)
    epi_centres = [c for c in (_centroid(data, i, EPI) for i in sax) if c is not None]
    if not epi_centres:
        epi_centres = [c for c in (_centroid(data, i, ENDO) for i in sax) if c is not None]
    axis_point = np.mean(epi_centres, axis=0)
    source = dict(data.landmark_source)
    if "APEX" in data.landmarks:
        apex = data.landmarks["APEX"].mean(axis=0)
    else:
        # half a slice beyond the most apical slice with LV data (the slab a voxel count includes)
        last = data.planes[sax[-1]].origin_mm
        depth = (last - axis_point) @ to_apex + spacing / 2
        apex = axis_point + depth * to_apex
        source["apex"] = "contours: most apical short-axis slice + half a slice"
    if "MITRAL_VALVE" in data.landmarks:
        base = data.landmarks["MITRAL_VALVE"].mean(axis=0)
    else:
        basal_endo = [i for i in sax if np.any((data.plane == i) & (data.surface == ENDO))]
        first = data.planes[basal_endo[0]].origin_mm
        depth = (first - axis_point) @ to_apex - spacing / 2
        base = axis_point + depth * to_apex
        if "APEX" in data.landmarks:
            base = apex - ((apex - base) @ to_apex) * to_apex
        source["base"] = (
            "contours: top of the most basal short-axis slice with LV cavity (no mitral valve points)"
        )
    if "RV_INSERT" in data.landmarks:
        septum = data.landmarks["RV_INSERT"].mean(axis=0) - axis_point
    else:
        septum = np.zeros(3)
        source["septum"] = "unknown (no RV insertion points or RV cavity): image axes"
    try:
        return Pose.from_landmarks(base, apex, septum, source)
    except ValueError as e:
        raise CardiacInputError(f"{data.source}: cannot place the LV model ({e})") from e


# ----------------------------------------------------------------------------------------------- fitting


@lru_cache(maxsize=8)
def _grid_matrices(n_long: int, n_circ: int) -> tuple[HermiteGrid, np.ndarray, np.ndarray, np.ndarray]:
    grid = HermiteGrid(n_long, n_circ)
    t = grid.constraint()
    first = t.T @ grid.smoothing(1.0, 0.0) @ t
    second = t.T @ grid.smoothing(0.0, 1.0) @ t
    return grid, t, first, second


def _solve_surface(
    pose: Pose, points: np.ndarray, weight: np.ndarray, options: FitOptions, factor: float
) -> Surface:
    grid, t, first, second = _grid_matrices(options.n_long, options.n_circ)
    lam, mu, theta = pose.to_prolate(points)
    basis = grid.basis(mu, theta) @ t
    w = weight * pose.metric_mm(lam, mu) ** 2
    w = w / weight.sum()
    scale = pose.focal_mm**2 * factor
    a1, a2 = options.smoothing
    normal = (basis.T * w) @ basis + scale * (a1 * first + a2 * second)
    rhs = (basis.T * w) @ lam
    # a vanishing pull towards the mean λ keeps directions without data or smoothing determined
    ridge = 1e-9 * np.trace(normal) / len(normal)
    prior = np.zeros(grid.n_params)
    mean_lam = float(np.average(lam, weights=weight))
    prior[0] = mean_lam
    prior[3::4] = mean_lam
    params = np.linalg.solve(normal + ridge * np.eye(len(normal)), rhs + ridge * prior)
    return Surface(grid, params, pose)


def _fit_pair(pose, points, surface, weight, options, factor) -> tuple[Surface, Surface]:
    fitted = []
    for s in (ENDO, EPI):
        chosen = surface == s
        fitted.append(_solve_surface(pose, points[chosen], weight[chosen], options, factor))
    return fitted[0], fitted[1]


def plane_crossings(grid_points: np.ndarray, origin: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Points (m, 3) where the edges of a surface grid (rows, columns, 3; closed around the columns) cross
    the plane (origin, normal): a dense sampling of the surface's cross-section."""
    distance = (grid_points - origin) @ normal
    found = []
    for a, b, da, db in (
        (grid_points[:-1], grid_points[1:], distance[:-1], distance[1:]),
        (grid_points, np.roll(grid_points, -1, axis=1), distance, np.roll(distance, -1, axis=1)),
    ):
        crossing = (da * db) < 0
        t = (da[crossing] / (da[crossing] - db[crossing]))[:, None]
        found.append(a[crossing] + t * (b[crossing] - a[crossing]))
    return np.concatenate(found)


def point_to_surface_mm(grid_points: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance (n,) mm from each point to a densely sampled surface grid (rows, columns, 3; closed
    around the columns, last row an open edge).

    The nearest grid point is found with a k-d tree, then the distance is measured along the surface
    normal there (the tangent plane), so the grid spacing adds only a second-order error (well under
    0.05 mm at the spacing used here); at the open edge the straight distance to the edge point is kept.
    """
    rows, columns, _ = grid_points.shape
    along_rows = np.gradient(grid_points, axis=0)
    around = np.roll(grid_points, -1, axis=1) - np.roll(grid_points, 1, axis=1)
    normals = np.cross(along_rows, around).reshape(-1, 3)
    length = np.linalg.norm(normals, axis=1)
    flat = grid_points.reshape(-1, 3)
    _, nearest = cKDTree(flat).query(points)
    offset = points - flat[nearest]
    distance = np.linalg.norm(offset, axis=1)
    usable = (length[nearest] > 1e-9) & (nearest // columns < rows - 1) & (nearest // columns > 0)
    unit = normals[nearest[usable]] / length[nearest[usable], None]
    distance[usable] = np.abs(np.einsum("ij,ij->i", offset[usable], unit))
    return distance


def _surface_distances(surface: Surface, points: np.ndarray) -> np.ndarray:
    rows, columns = DISTANCE_GRID
    return point_to_surface_mm(surface.sample(rows, columns).reshape(rows, columns, 3), points)


def _stats(values: np.ndarray) -> tuple[float | None, float | None]:
    if len(values) == 0:
        return None, None
    return round(float(values.mean()), 3), round(float(values.max()), 3)


def fit_contours(data: ContourData, options: FitOptions | None = None, pose: Pose | None = None) -> FitResult:
    """Fit the LV model to one frame's contours (module doc); returns the mesh and its summary."""
    options = options or FitOptions()
    start = time.perf_counter()
    pose = pose or estimate_pose(data)
    points = data.points_mm.copy()
    x_model = pose.to_model(points)[:, 0]
    keep = x_model >= pose.base_x_mm - options.above_base_tolerance_mm
    for s, name in ((ENDO, "endocardial"), (EPI, "epicardial")):
        if np.count_nonzero(keep & (data.surface == s)) < 10:
            raise CardiacInputError(f"{data.source}: fewer than 10 {name} points lie below the base plane")

    # apex points (not data: left out of the residuals) keep the apical caps where the slices end
    apex_points, apex_surface = [], []
    apex_epi = pose.to_patient(np.array([pose.apex_x_mm, 0.0, 0.0]))
    has_lax = any(not p.short_axis and np.any(data.plane == i) for i, p in enumerate(data.planes))
    if not has_lax:
        sax, to_apex, spacing = _ordered_sax(data)
        endo_slices = [i for i in sax if _centroid(data, i, ENDO) is not None]
        # on the axis (not at the slice's centre, which may be shifted), half a slice beyond the slice
        depth = pose.to_model(data.planes[endo_slices[-1]].origin_mm[None])[0, 0] + spacing / 2
        endo_apex = pose.to_patient(np.array([min(depth, pose.apex_x_mm - 1.0), 0.0, 0.0]))
        apex_points += [endo_apex]
        apex_surface += [ENDO]
    apex_points += [apex_epi]
    apex_surface += [EPI]
    # the fitted set: data below the base plane, then the apex points
    surface_all = np.r_[data.surface[keep], apex_surface]
    weight_all = np.r_[data.weight[keep], np.full(len(apex_surface), options.apex_weight)]
    apex_points = np.asarray(apex_points).reshape(-1, 3)

    sax_planes = [i for i, p in enumerate(data.planes) if p.short_axis]
    shifts = np.zeros((len(data.planes), 3))
    plane_of = data.plane
    shifted = points.copy()
    for _ in range(options.shift_iterations):
        fitted = np.vstack([shifted[keep], apex_points])
        endo, epi = _fit_pair(pose, fitted, surface_all, weight_all, options, options.initial_factor)
        # in-plane residuals: data point to the nearest point of the model's cross-section in its slice
        # (λ lines run nearly along the axis near the apex, so a λ-projection would barely move an
        # apical slice sideways)
        sampled = {ENDO: endo.sample(*SHIFT_GRID), EPI: epi.sample(*SHIFT_GRID)}
        moved = []
        for i in sax_planes:
            plane = data.planes[i]
            steps = []
            for s in (ENDO, EPI):
                chosen = (plane_of == i) & keep & (data.surface == s)
                if np.count_nonzero(chosen) < 3:
                    continue
                crossing = plane_crossings(sampled[s].reshape(*SHIFT_GRID, 3), plane.origin_mm, plane.normal)
                if len(crossing) < 8:
                    continue
                _, nearest = cKDTree(crossing).query(shifted[chosen])
                steps.append(crossing[nearest] - shifted[chosen])
            if not steps:
                continue
            step = np.vstack(steps).mean(axis=0)
            shifts[i] += step - (step @ plane.normal) * plane.normal
            moved.append(i)
        if not has_lax and moved:
            shifts[moved] -= shifts[moved].mean(axis=0)
        shifted = points + shifts[plane_of]
    fitted = np.vstack([shifted[keep], apex_points])
    endo, epi = _fit_pair(pose, fitted, surface_all, weight_all, options, 1.0)
    fit_seconds = time.perf_counter() - start

    corrected = shifted
    distance = np.zeros(len(points))
    before = np.zeros(len(points))
    for s, surface in ((ENDO, endo), (EPI, epi)):
        chosen = data.surface == s
        distance[chosen] = _surface_distances(surface, corrected[chosen])
        if options.shift_iterations:
            before[chosen] = _surface_distances(surface, points[chosen])
    mesh = LVMesh(
        np.vstack([endo.sample(), epi.sample()]),
        grid_faces(MESH_ROWS, MESH_COLUMNS),
        grid_faces(MESH_ROWS, MESH_COLUMNS, offset=MESH_ROWS * MESH_COLUMNS),
        MESH_ROWS * MESH_COLUMNS,
    )
    sax_point = np.array([data.planes[i].short_axis for i in plane_of])
    used = keep
    cavity = mesh.endo_cavity_volume_ml
    epi_volume = mesh.epi_volume_ml
    summary = {
        "residual_mean_mm": _stats(distance[used])[0],
        "residual_max_mm": _stats(distance[used])[1],
        "residual_sax_mean_mm": _stats(distance[used & sax_point])[0],
        "residual_sax_max_mm": _stats(distance[used & sax_point])[1],
        "residual_endo_mean_mm": _stats(distance[used & (data.surface == ENDO)])[0],
        "residual_epi_mean_mm": _stats(distance[used & (data.surface == EPI)])[0],
        "residual_without_shift_correction_mean_mm": _stats(before[used])[0]
        if options.shift_iterations
        else None,
        "n_points": int(np.count_nonzero(used)),
        "n_points_above_base_left_out": int(np.count_nonzero(~keep)),
        "slice_shifts_mm": _shift_table(data, shifts, sax_planes),
        "lv_cavity_volume_ml": round(cavity, 3),
        "lv_epicardial_volume_ml": round(epi_volume, 3),
        "myocardial_volume_ml": round(epi_volume - cavity, 3),
        "myocardial_mass_g": round((epi_volume - cavity) * MYOCARDIAL_DENSITY_G_PER_ML, 3),
        "segmentation_lv_volume_ml": None,
        "segmentation_myocardial_mass_g": None,
        "pose": pose.as_dict(),
        "coordinates": data.coordinates,
        "fit_seconds": round(fit_seconds, 4),
    }
    return FitResult(mesh=mesh, summary=summary, endo=endo, epi=epi, pose=pose, shifts_mm=shifts)


def _shift_table(data: ContourData, shifts: np.ndarray, sax_planes: list[int]) -> list[dict]:
    rows = []
    for i in sax_planes:
        if not np.any(data.plane == i):
            continue
        p = data.planes[i]
        s = shifts[i]
        rows.append(
            {
                "slice": p.index if p.index is not None else p.name,
                "shift_mm": [round(float(v), 3) for v in s],
                "in_plane_row_col_mm": [round(float(s @ p.j_dir), 3), round(float(s @ p.i_dir), 3)],
                "magnitude_mm": round(float(np.linalg.norm(s)), 3),
            }
        )
    return rows


def model_description(options: FitOptions | None = None) -> dict:
    options = options or FitOptions()
    return {
        "type": "LV finite-element model: endocardial and epicardial surfaces, prolate spheroidal λ(μ, θ) "
        "with bicubic Hermite interpolation",
        "elements_per_surface": {"longitudinal": options.n_long, "circumferential": options.n_circ},
        "parameters_per_surface": 3 + 4 * options.n_long * options.n_circ,
        "smoothing_first_second": list(options.smoothing),
        "initial_regularisation_factor": options.initial_factor,
        "breath_hold_iterations": options.shift_iterations,
        "mesh": {
            "points_per_surface": MESH_ROWS * MESH_COLUMNS,
            "rows_apex_to_base": MESH_ROWS,
            "columns_from_septum": MESH_COLUMNS,
            "triangles_per_surface": 2 * (MESH_ROWS - 1) * MESH_COLUMNS,
            "surface_array": "0 endocardium, 1 epicardium (endocardial points first)",
        },
    }


# --------------------------------------------------------------------------------------- label maps


def _plane_of_slice(affine: np.ndarray, k: int) -> ImagePlane:
    affine = np.asarray(affine, dtype=float)
    i_dir = affine[:3, 0] / np.linalg.norm(affine[:3, 0])
    j_dir = affine[:3, 1] / np.linalg.norm(affine[:3, 1])
    normal = np.cross(i_dir, j_dir)
    normal /= np.linalg.norm(normal)
    origin = affine @ np.array([0.0, 0.0, float(k), 1.0])
    return ImagePlane(f"slice {k}", origin[:3], normal, i_dir, j_dir, True, k)


def _longest_contour(mask: np.ndarray) -> np.ndarray | None:
    """(m, 2) (col, row) vertices of the longest 0.5-level contour of a binary mask (marching squares)."""
    import contourpy

    if np.count_nonzero(mask) < MIN_CONTOUR_PIXELS:
        return None
    padded = np.pad(mask.astype(np.float64), 1)
    lines = contourpy.contour_generator(z=padded).lines(0.5)
    if not lines:
        return None
    line = max(lines, key=len)
    return line[:-1] - 1.0 if np.allclose(line[0], line[-1]) else line - 1.0


def metric_affine(affine: np.ndarray, spacing_mm=None) -> np.ndarray:
    """The ``(i, j, k)`` → RAS affine with its columns scaled to ``spacing_mm`` (column, row, slice).

    ACDC's NIfTI affines carry no spacing (unit columns) while ``pixdim`` holds it; elsewhere the two
    agree and the affine comes back unchanged. Directions and the origin are kept.
    """
    affine = np.array(affine, dtype=float)
    if spacing_mm is None:
        return affine
    spacing = np.asarray(spacing_mm, dtype=float)[:3]
    norms = np.linalg.norm(affine[:3, :3], axis=0)
    if np.any(norms <= 0) or np.any(spacing <= 0):
        raise CardiacInputError(f"degenerate affine or spacing: {affine.tolist()}, {spacing.tolist()}")
    affine[:3, :3] = affine[:3, :3] / norms * spacing
    return affine


def contours_from_labels(
    labels: np.ndarray,
    affine: np.ndarray,
    landmarks: list[dict] | None = None,
    frame: int | None = None,
    source: str = "label map",
    spacing_mm=None,
) -> ContourData:
    """Endocardial (LV cavity) and epicardial (cavity + myocardium) contours of a ``(slices, rows, cols)``
    label map in RAS mm, with the landmarks of ``frame`` (dicts ``label`` and ``ijk`` or ``ras``) or, where
    missing, the RV insertion direction derived from the labels. ``spacing_mm`` (column, row, slice) scales
    an affine that lacks it (see :func:`metric_affine`)."""
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise CardiacInputError(f"{source}: expected (slices, rows, cols) labels, got shape {labels.shape}")
    affine = metric_affine(affine, spacing_mm)
    points, surface, plane, planes = [], [], [], []
    rv_points = []
    for k in range(labels.shape[0]):
        cavity = labels[k] == LV_CAVITY
        lv = ndimage.binary_fill_holes(cavity | (labels[k] == LV_MYOCARDIUM))
        found = False
        for s, mask in ((ENDO, cavity), (EPI, lv)):
            line = _longest_contour(mask)
            if line is None:
                continue
            ijk = np.column_stack([line[:, 0], line[:, 1], np.full(len(line), float(k)), np.ones(len(line))])
            points.append((ijk @ affine.T)[:, :3])
            surface.append(np.full(len(line), s))
            plane.append(np.full(len(line), len(planes)))
            found = True
        if found:
            planes.append(_plane_of_slice(affine, k))
        rv = labels[k] == RV_CAVITY
        if found and np.count_nonzero(rv) >= 10 and np.count_nonzero(lv) >= 10:
            rv_points.append((k, np.argwhere(rv).mean(axis=0), np.argwhere(lv).mean(axis=0)))
    if not points:
        raise CardiacInputError(f"{source}: no LV cavity or myocardium (labels 3 and 2) in the label map")
    data = ContourData(
        np.vstack(points), np.concatenate(surface), np.concatenate(plane), planes, source=source
    )
    _add_label_landmarks(data, labels, affine, landmarks, frame, rv_points)
    return data


def _landmark_mm(point: dict, affine: np.ndarray) -> np.ndarray:
    # the voxel index is mapped with the metric affine, so a file whose affine lacks the spacing (ACDC)
    # still gives millimetres; points without one (Slicer markups) are taken as RAS mm
    if point.get("ijk") is not None:
        return (affine @ np.r_[np.asarray(point["ijk"], dtype=float), 1.0])[:3]
    return np.asarray(point["ras"], dtype=float)


def _add_label_landmarks(data, labels, affine, landmarks, frame, rv_points) -> None:
    chosen = {}
    for point in landmarks or []:
        chosen.setdefault(str(point.get("label", "")), []).append(point)

    def of_frame(names: tuple[str, ...]) -> tuple[np.ndarray | None, str]:
        found = [p for n in names for p in chosen.get(n, [])]
        same = [p for p in found if frame is None or p.get("frame") in (None, frame)]
        use = same or found
        if not use:
            return None, ""
        origins = sorted({str(p.get("source") or "given") for p in use})
        where = ("this frame" if same else "other frames") + f"; source: {', '.join(origins)}"
        return np.array([_landmark_mm(p, affine) for p in use], dtype=float), where

    mv, where = of_frame(("MV_HINGE_1", "MV_HINGE_2"))
    if mv is not None:
        data.landmarks["MITRAL_VALVE"] = mv
        data.landmark_source["base"] = f"mitral valve hinge landmarks ({len(mv)}, {where})"
    rv, where = of_frame(("RV_INSERT_ANTERIOR", "RV_INSERT_INFERIOR"))
    if rv is not None:
        data.landmarks["RV_INSERT"] = rv
        data.landmark_source["septum"] = f"RV insertion landmarks ({len(rv)}, {where})"
        return
    # derived from the labels: the septum lies between the LV and RV cavity centres (cheaper and steadier
    # than tracing the insertion points on every slice, which only the direction is needed of here)
    if rv_points:
        centres = []
        for k, rv_rc, lv_rc in rv_points:
            for rc in (rv_rc, lv_rc):
                centres.append(affine @ np.array([rc[1], rc[0], float(k), 1.0]))
        centres = np.array(centres)[:, :3]
        rv_centre = centres[0::2].mean(axis=0)
        lv_centre = centres[1::2].mean(axis=0)
        data.landmarks["RV_INSERT"] = (rv_centre + 0.5 * (lv_centre - rv_centre))[None]
        data.landmark_source["septum"] = "segmentation: direction from the LV to the RV cavity centre"


def segmentation_volumes(labels: np.ndarray, affine: np.ndarray, spacing_mm=None) -> tuple[float, float]:
    """(LV cavity volume mL, myocardial mass g) of a label map by voxel counting."""
    affine = metric_affine(affine, spacing_mm)
    voxel_ml = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    cavity = np.count_nonzero(np.asarray(labels) == LV_CAVITY) * voxel_ml
    myocardium = np.count_nonzero(np.asarray(labels) == LV_MYOCARDIUM) * voxel_ml
    return cavity, myocardium * MYOCARDIAL_DENSITY_G_PER_ML


def fit_labels(
    labels: np.ndarray,
    affine: np.ndarray,
    landmarks: list[dict] | None = None,
    frame: int | None = None,
    options: FitOptions | None = None,
    source: str = "label map",
    spacing_mm=None,
) -> FitResult:
    """Fit the LV model to one ``(slices, rows, cols)`` label map (0 bg, 1 RV, 2 myocardium, 3 LV cavity).

    ``affine`` maps ``(i, j, k)`` to RAS; ``spacing_mm`` (column, row, slice) is needed when the affine
    does not carry the spacing (ACDC). The mesh is in RAS mm."""
    start = time.perf_counter()
    data = contours_from_labels(labels, affine, landmarks, frame, source, spacing_mm)
    result = fit_contours(data, options)
    cavity, mass = segmentation_volumes(labels, affine, spacing_mm)
    result.summary["segmentation_lv_volume_ml"] = round(float(cavity), 3)
    result.summary["segmentation_myocardial_mass_g"] = round(float(mass), 3)
    result.summary["pose"]["derived_from_segmentation"] = sorted(
        k for k, v in result.pose.source.items() if "landmark" not in v or "segmentation" in v
    )
    result.summary["fit_seconds"] = round(time.perf_counter() - start, 4)
    if frame is not None:
        result.summary = {"frame": int(frame), **result.summary}
    return result


# ----------------------------------------------------------------------------------- analyze results


def _phase_keys(frame_numbers: list[int], ed_index: int, es_index: int, all_frames: bool) -> list:
    keys = [("ED", ed_index), ("ES", es_index)]
    if all_frames:
        keys += [(f"frame{frame_numbers[t]:03d}", t) for t in range(len(frame_numbers))]
    return keys


def fit_label_frames(
    labels: np.ndarray,
    affine: np.ndarray,
    frame_numbers: list[int],
    ed_index: int,
    es_index: int,
    landmarks: list[dict] | None = None,
    all_frames: bool = False,
    options: FitOptions | None = None,
    source: str = "label map",
    progress: bool = False,
    spacing_mm=None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, FitResult]:
    """Fit ED and ES (and every frame with ``all_frames``) of ``(frames, slices, rows, cols)`` labels.

    Keys are ``ED``, ``ES`` and ``frameNNN`` (the frame number); a frame is fitted once and shared.
    ``should_stop`` is asked before each frame; when it answers true the fit stops with
    :class:`~CardiacMTLLib.errors.CardiacCancelled` (a GUI whose case changed meanwhile).
    """
    labels = np.asarray(labels)
    if labels.ndim != 4:
        raise CardiacInputError(f"{source}: expected (frames, slices, rows, cols) labels, got {labels.shape}")
    done: dict[int, FitResult] = {}
    results = {}
    keys = _phase_keys(list(frame_numbers), ed_index, es_index, all_frames)
    iterator = keys
    if progress:
        from tqdm import tqdm

        iterator = tqdm(keys, desc="fitting LV model", unit="frame")
    for key, t in iterator:
        if should_stop is not None and should_stop():
            raise CardiacCancelled(f"{source}: LV model fit stopped on request")
        if t not in done:
            done[t] = fit_labels(
                labels[t], affine, landmarks, int(frame_numbers[t]), options, source, spacing_mm
            )
        results[key] = done[t]
    return results


def fit_analysis(
    result,
    all_frames: bool = False,
    options: FitOptions | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, FitResult]:
    """Fit the LV model to a :class:`CardiacMTLLib.pipeline.AnalysisResult` (no files): ED, ES (and every
    frame with ``all_frames``); uses ``result.landmarks`` (a list of landmark dicts) when it has them.
    ``should_stop`` as in :func:`fit_label_frames`."""
    cine = result.cine
    return fit_label_frames(
        result.labels,
        cine.affine,
        list(cine.frame_numbers),
        result.ed_index,
        result.es_index,
        landmarks=getattr(result, "landmarks", None),
        all_frames=all_frames,
        options=options,
        source=cine.source or "analysis",
        spacing_mm=cine.spacing_mm,
        should_stop=should_stop,
    )


def read_landmarks_file(folder: Path) -> tuple[list[dict] | None, str | None]:
    """Landmark dicts (``label``, ``frame``, ``ras`` or ``ijk``) of an analyze folder and the file's name:
    ``landmarks.json`` or else ``landmarks.mrk.json``, read by CardiacMTL's own landmark reader."""
    from CardiacMTLLib.io.landmarks import read_landmarks_file as read_points

    for name in LANDMARK_FILES:
        path = folder / name
        if path.is_file():
            points = read_points(path)
            if not all(isinstance(p, dict) and "label" in p and ("ijk" in p or "ras" in p) for p in points):
                raise CardiacInputError(
                    f"{path}: expected a list of landmarks with 'label' and 'ijk' or 'ras'"
                )
            return points, path.name
    return None, None


def read_analysis_folder(analysis_dir: str | Path):
    """``(labels (frames, slices, rows, cols), affine, frame_numbers, ed_index, es_index, landmarks)``
    from an ``analyze`` output folder (``indices.json`` + ``segmentation/``)."""
    from CardiacMTLLib.io.cine import read_nifti

    folder = Path(analysis_dir)
    manifest = folder / "indices.json"
    if not manifest.is_file():
        raise CardiacInputError(f"{manifest}: not found; is {folder} an analyze output folder?")
    try:
        document = json.loads(manifest.read_text())
        files = [folder / f for f in document["segmentation_files"]]
        frames = [int(f) for f in document["volume_curve_ml"]["frames"]]
        ed_frame = int(document["indices"]["ED frame"])
        es_value = document["indices"].get("ES frame")
        es_frame = ed_frame if es_value is None else int(es_value)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise CardiacInputError(
            f"{manifest}: expected segmentation_files, volume_curve_ml.frames and the ED/ES frames ({e})"
        ) from e
    volumes, affine, spacing = [], None, None
    for path in files:
        array, affine_here, zooms, _ = read_nifti(path)
        spacing = zooms[:3] if spacing is None else spacing
        array = np.asarray(array)
        if array.ndim == 3:
            array = array[..., None]
        if array.ndim != 4:
            raise CardiacInputError(f"{path}: expected a 3D or 4D label map, found shape {array.shape}")
        volumes.append(np.transpose(array, (3, 2, 1, 0)))
        affine = affine_here if affine is None else affine
    labels = np.concatenate(volumes).astype(np.uint8)
    if len(labels) != len(frames):
        raise CardiacInputError(
            f"{manifest}: {len(frames)} frames listed but the segmentation files hold {len(labels)}"
        )
    for name, frame in (("ED", ed_frame), ("ES", es_frame)):
        if frame not in frames:
            raise CardiacInputError(f"{manifest}: {name} frame {frame} is not among the frames {frames}")
    landmarks, _ = read_landmarks_file(folder)
    affine = metric_affine(affine, spacing)
    return labels, affine, frames, frames.index(ed_frame), frames.index(es_frame), landmarks


def fit_analysis_folder(
    analysis_dir: str | Path,
    out_dir: str | Path | None = None,
    all_frames: bool = False,
    options: FitOptions | None = None,
    progress: bool = False,
    overwrite: bool = False,
) -> dict[str, FitResult]:
    """Fit the model to an ``analyze`` output folder; write ``out_dir`` (models + ``fit.json``) when given."""
    labels, affine, frames, ed, es, landmarks = read_analysis_folder(analysis_dir)
    results = fit_label_frames(
        labels, affine, frames, ed, es, landmarks, all_frames, options, str(analysis_dir), progress
    )
    if out_dir is not None:
        write_fit_folder(
            results,
            out_dir,
            {"path": str(Path(analysis_dir).resolve()), "kind": "analyze output (segmentation)"},
            options,
            overwrite=overwrite,
        )
    return results


# --------------------------------------------------------------------------------------------- output


def fit_document(results: dict[str, FitResult], input_info: dict, options: FitOptions | None = None) -> dict:
    """The ``fit.json`` document: ``ED``, ``ES`` (and ``frames`` with ``--all-frames``), input, model."""
    document = {key: r.summary for key, r in results.items() if key in ("ED", "ES")}
    frames = {key: r.summary for key, r in results.items() if key not in ("ED", "ES")}
    if frames:
        document["frames"] = frames
    document["input"] = input_info
    document["model"] = model_description(options)
    document["written_by"] = f"CardiacAtlasLib {__version__}"
    return document


def write_fit_folder(
    results: dict[str, FitResult],
    out_dir: str | Path,
    input_info: dict,
    options: FitOptions | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``lv_model_<key>.vtk`` per result and ``fit.json`` into ``out_dir`` atomically (``overwrite``:
    replace an earlier fit there; see :func:`CardiacMTLLib.atomic.check_output_folder`)."""
    with staged_folder(out_dir, overwrite=overwrite) as staging:
        for key, result in results.items():
            write_lv_mesh(result.mesh, staging / f"lv_model_{key}.vtk")
        document = fit_document(results, input_info, options)
        (staging / FIT_JSON).write_text(json.dumps(json_safe(document), indent=2))
    return Path(out_dir).resolve()


def fit_path(
    path: str | Path,
    out_dir: str | Path,
    all_frames: bool = False,
    options: FitOptions | None = None,
    progress: bool = False,
    overwrite: bool = False,
) -> dict[str, FitResult]:
    """The ``fit`` action: an ``analyze`` output folder or a guide-point folder → ``out_dir``."""
    from CardiacAtlasLib.guidepoints import fit_guidepoint_folder, is_guidepoint_folder

    path = Path(path)
    if not path.is_dir():
        raise CardiacInputError(f"{path}: not a folder (expected an analyze output or a guide-point folder)")
    check_output_folder(out_dir, inputs=(path,), overwrite=overwrite)
    if is_guidepoint_folder(path):
        return fit_guidepoint_folder(path, out_dir, all_frames, options, progress, overwrite)
    if (path / "indices.json").is_file():
        return fit_analysis_folder(path, out_dir, all_frames, options, progress, overwrite)
    raise CardiacInputError(
        f"{path}: neither an analyze output folder (indices.json + segmentation/) nor a guide-point folder "
        "(GPFile_NNN.txt + SliceInfoFile.txt)"
    )
