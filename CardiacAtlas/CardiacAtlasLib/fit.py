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

Inputs are :class:`~CardiacAtlasLib.contours.ContourData` (points labelled endocardium/epicardium, per
image plane) made from a label map (:func:`fit_labels`, :func:`fit_analysis`), CAP/biv-me guide points
(``guidepoints.py``) or an ``analyze`` output folder (``fit_io.py``, which also writes the fit folder).
Results are :class:`FitResult` (``.mesh``, an :class:`LVMesh` with the CAP topology, and ``.summary``,
the ``fit.json`` entry of that phase). This module reads and writes no files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.spatial import cKDTree

from CardiacAtlasLib.contours import (
    ENDO,
    EPI,
    ContourData,
    contours_from_labels,
    metric_affine,
    plane_centroid,
    sax_planes_base_to_apex,
)
from CardiacAtlasLib.lv_template import MESH_COLUMNS, MESH_ROWS, HermiteGrid, Pose, Surface
from CardiacAtlasLib.mesh import LVMesh, grid_faces
from CardiacMTLLib.analysis.indices import MYOCARDIAL_DENSITY_G_PER_ML, label_volumes_ml
from CardiacMTLLib.errors import CardiacCancelled, CardiacInputError

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


def estimate_pose(data: ContourData) -> Pose:
    """The model's pose (module doc, step 1), with ``pose.source`` saying where each landmark came from."""
    sax, to_apex, spacing = sax_planes_base_to_apex(data)
    epi_centres = [c for c in (plane_centroid(data, i, EPI) for i in sax) if c is not None]
    if not epi_centres:
        epi_centres = [c for c in (plane_centroid(data, i, ENDO) for i in sax) if c is not None]
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
        sax, to_apex, spacing = sax_planes_base_to_apex(data)
        endo_slices = [i for i in sax if plane_centroid(data, i, ENDO) is not None]
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


def segmentation_volumes(labels: np.ndarray, affine: np.ndarray, spacing_mm=None) -> tuple[float, float]:
    """(LV cavity volume mL, myocardial mass g) of a ``(slices, rows, cols)`` label map by voxel counting."""
    spacing = np.linalg.norm(metric_affine(affine, spacing_mm)[:3, :3], axis=0)
    volumes = label_volumes_ml(labels, spacing)
    return volumes["LV"], volumes["Myo"] * MYOCARDIAL_DENSITY_G_PER_ML


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


def fit_frames(
    keys: list[tuple[str, int]],
    fit_frame: Callable[[int], FitResult],
    source: str,
    progress: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, FitResult]:
    """``{key: fit_frame(frame)}`` for ``(key, frame)`` pairs, each frame fitted once and shared.

    ``should_stop`` is asked before each frame; when it answers true the fit stops with
    :class:`~CardiacMTLLib.errors.CardiacCancelled` (a GUI whose case changed meanwhile).
    """
    iterator = keys
    if progress:
        from tqdm import tqdm

        iterator = tqdm(keys, desc="fitting LV model", unit="frame")
    done: dict[int, FitResult] = {}
    results = {}
    for key, frame in iterator:
        if should_stop is not None and should_stop():
            raise CardiacCancelled(f"{source}: LV model fit stopped on request")
        if frame not in done:
            done[frame] = fit_frame(frame)
        results[key] = done[frame]
    return results


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
    ``should_stop`` as in :func:`fit_frames`.
    """
    labels = np.asarray(labels)
    if labels.ndim != 4:
        raise CardiacInputError(f"{source}: expected (frames, slices, rows, cols) labels, got {labels.shape}")
    keys = [("ED", ed_index), ("ES", es_index)]
    if all_frames:
        keys += [(f"frame{frame_numbers[t]:03d}", t) for t in range(len(frame_numbers))]

    def fit_frame(t: int) -> FitResult:
        return fit_labels(labels[t], affine, landmarks, int(frame_numbers[t]), options, source, spacing_mm)

    return fit_frames(keys, fit_frame, source, progress, should_stop)


def fit_analysis(
    result,
    all_frames: bool = False,
    options: FitOptions | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, FitResult]:
    """Fit the LV model to a :class:`CardiacMTLLib.types.AnalysisResult` (no files): ED, ES (and every
    frame with ``all_frames``); uses ``result.landmarks`` (a list of landmark dicts) when it has them.
    ``should_stop`` as in :func:`fit_frames`."""
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
