"""The LV shape atlas: generalised Procrustes alignment, mean shape, PCA modes, scores, and its folder.

A *shape* is one case's LV model at every phase of the atlas, concatenated: an array
``(n_phases, n_points, 3)`` in mm (phases in the order of ``Atlas.phases``, usually ED then ES; within a
phase the endocardial points first, then the epicardial points), flattened in C order to a vector of
length ``D = n_phases * n_points * 3`` (phase-major, then point, then x, y, z interleaved). ED and ES of
one case are aligned together with one rigid transform, so the atlas keeps the motion between them, as in
the MESA atlas (Suinesiaputra et al.).

An atlas folder (``build`` and ``import-cap`` write one) holds:

- ``atlas.json``: format, phases, point counts, which points are endocardium / epicardium, alignment
  (``scaling`` true or false), units (mm), number of cases and modes, total variance, provenance.
- ``atlas.npz``: ``mean`` (D,), ``modes`` (n_modes, D) orthonormal rows, ``variance_mm2`` (n_modes,),
  ``faces_endo`` / ``faces_epi`` (n, 3) 0-based indices into one phase's points.
- ``variance.csv``: per mode the variance (mm²), SD (mm), explained and cumulative fraction of the total.
- ``scores.csv``: ``case_id`` and each case's scores ``mode_1 ...`` in mm (the projection of the aligned
  shape minus the mean onto the unit mode vector; a score of ``k * sd_mm`` is k standard deviations).
- ``meshes/``: ``mean_<phase>.vtk`` and ``mode<NN>_<minus|plus><1|2|3>sd_<phase>.vtk``, legacy VTK
  polydata with both surfaces and the ``surface`` point-data array (see ``mesh.py``).
- ``modes.png``: long-axis cross-sections of the first modes at -3 SD, mean and +3 SD.

Sign convention of a mode: ``+`` is the direction that enlarges the mean shape (``mode · mean >= 0`` with
the mean centred), so ``plus3sd`` of a size mode is the bigger heart.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from CardiacAtlasLib import __version__
from CardiacAtlasLib.mesh import LVMesh, read_lv_mesh, write_lv_mesh
from CardiacMTLLib.atomic import staged_folder
from CardiacMTLLib.errors import CardiacInputError

FORMAT = "cardiac-atlas"
FORMAT_VERSION = 1
DEFAULT_PHASES = ("ED", "ES")
SD_STEPS = (1, 2, 3)


@dataclass
class Atlas:
    """A Procrustes + PCA shape atlas (see the module docstring for the vector layout).

    ``mean``: (D,) mm. ``modes``: (n_modes, D) orthonormal. ``variance_mm2``: (n_modes,) variance of the
    scores along each mode. ``total_variance_mm2``: the variance of all aligned shapes (sum over every
    mode, also those not kept), so ``variance_mm2 / total_variance_mm2`` is the explained fraction.
    ``scores``: (n_cases, n_modes) mm, rows in the order of ``case_ids``. ``scaling``: whether the
    alignment removed size too. ``alignment_phase``: None when the transform of a case was fitted to
    all its phases together (``build``), or the phase it was fitted to and then applied to every phase
    (``"ED"`` for the imported CAP ED+ES atlas). ``faces_endo`` / ``faces_epi`` index the points of one phase.
    """

    mean: np.ndarray
    modes: np.ndarray
    variance_mm2: np.ndarray
    total_variance_mm2: float
    faces_endo: np.ndarray
    faces_epi: np.ndarray
    n_endo: int
    n_points: int
    phases: tuple[str, ...] = DEFAULT_PHASES
    scaling: bool = False
    alignment_phase: str | None = None
    case_ids: list[str] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    source: dict = field(default_factory=dict)

    @property
    def n_modes(self) -> int:
        return len(self.variance_mm2)

    @property
    def sd_mm(self) -> np.ndarray:
        return np.sqrt(self.variance_mm2)

    @property
    def explained_fraction(self) -> np.ndarray:
        return self.variance_mm2 / self.total_variance_mm2

    def shape(self, scores: np.ndarray | None = None) -> np.ndarray:
        """The shape ``mean + scores @ modes`` as (n_phases, n_points, 3) mm; ``scores`` may be shorter."""
        vector = self.mean.copy()
        if scores is not None:
            scores = np.asarray(scores, dtype=float)
            vector += scores @ self.modes[: len(scores)]
        return vector.reshape(len(self.phases), self.n_points, 3)

    def mode_shape(self, mode: int, sd: float) -> np.ndarray:
        """The mean moved ``sd`` standard deviations along ``mode`` (0-based), (n_phases, n_points, 3) mm."""
        scores = np.zeros(mode + 1)
        scores[mode] = sd * self.sd_mm[mode]
        return self.shape(scores)

    def mesh(self, shape: np.ndarray, phase: str) -> LVMesh:
        """One phase of ``shape`` (n_phases, n_points, 3) as an :class:`LVMesh`."""
        points = np.asarray(shape)[self.phases.index(phase)]
        return LVMesh(points, self.faces_endo, self.faces_epi, self.n_endo)

    def project(self, shape: np.ndarray) -> np.ndarray:
        """Scores (n_modes,) mm of a new case's shape (n_phases, n_points, 3) on this atlas.

        The shape is first aligned to the atlas mean as the atlas' cases were (rotation and translation,
        and scale when the atlas was built with ``scaling``; fitted to ``alignment_phase`` alone when set),
        then projected onto the modes.
        """
        shape = _as_shapes(np.asarray(shape)[None], self.n_points * len(self.phases), "shape")[0]
        target = self.mean.reshape(-1, 3)
        fitted = slice(None)
        if self.alignment_phase is not None:
            first = self.phases.index(self.alignment_phase) * self.n_points
            fitted = slice(first, first + self.n_points)
        rotation, scale, source_centre, target_centre = rigid_transform(
            shape[fitted], target[fitted], self.scaling
        )
        aligned = scale * (shape - source_centre) @ rotation + target_centre
        return self.modes @ (aligned.ravel() - self.mean)


def _as_shapes(shapes: np.ndarray, n_total_points: int | None, what: str) -> np.ndarray:
    shapes = np.asarray(shapes, dtype=np.float64)
    shapes = shapes.reshape(shapes.shape[0], -1, 3)
    if n_total_points is not None and shapes.shape[1] != n_total_points:
        raise CardiacInputError(f"{what}: expected {n_total_points} points, got {shapes.shape[1]}")
    if not np.all(np.isfinite(shapes)):
        raise CardiacInputError(f"{what}: coordinates contain NaN or infinity")
    return shapes


def _align_to(centred: np.ndarray, reference: np.ndarray, scaling: bool) -> np.ndarray:
    """Rotate (and scale) centred shapes (n, p, 3) onto a centred reference (p, 3): batched Kabsch."""
    cross = centred.transpose(0, 2, 1) @ reference  # (n, 3, 3); matmul is far faster than einsum here
    u, s, vt = np.linalg.svd(cross)
    # no reflections: flip the last axis where the best orthogonal map would be improper
    d = np.sign(np.linalg.det(u @ vt))
    d[d == 0] = 1.0
    u[:, :, 2] *= d[:, None]
    s[:, 2] *= d
    rotation = u @ vt
    aligned = centred @ rotation
    if scaling:
        factor = s.sum(axis=1) / np.einsum("npi,npi->n", centred, centred)
        aligned *= factor[:, None, None]
    return aligned


def rigid_transform(
    source: np.ndarray, target: np.ndarray, scaling: bool = False
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Best rotation (and scale) of points ``source`` (p, 3) onto ``target`` (p, 3), in the least-squares
    sense; returns (rotation (3, 3), scale, source centre, target centre) such that
    ``scale * (source - source_centre) @ rotation + target_centre`` is the aligned source."""
    source_centre, target_centre = source.mean(axis=0), target.mean(axis=0)
    centred = (source - source_centre)[None]
    aligned = _align_to(centred, target - target_centre, scaling)[0]
    # recover the linear map from the aligned points (exact: aligned = scale * centred @ rotation)
    linear, *_ = np.linalg.lstsq(centred[0], aligned, rcond=None)
    scale = float(np.cbrt(np.linalg.det(linear))) if scaling else 1.0
    return linear / scale, scale, source_centre, target_centre


def procrustes_align(
    shapes: np.ndarray, scaling: bool = False, tolerance_mm: float = 1e-6, max_iterations: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Procrustes alignment of shapes (n_cases, n_points, 3) mm; returns (aligned, mean).

    Default: translation and rotation only (``scaling=False``), so size stays part of the shape, as in
    the MESA atlas. With ``scaling=True`` every shape is also scaled, and the result is scaled back to the
    mean centroid size of the inputs so the atlas stays in mm. Reflections are never used. Each shape is
    centred, then rotated onto the current mean (starting from the first shape) until the mean moves less
    than ``tolerance_mm`` RMS per point. The result is centred at the origin, oriented like the first shape.
    """
    shapes = _as_shapes(shapes, None, "shapes")
    if len(shapes) == 0:
        raise CardiacInputError("Procrustes alignment needs at least one shape, got none")
    centred = shapes - shapes.mean(axis=1, keepdims=True)
    sizes = np.sqrt(np.einsum("npi,npi->n", centred, centred))
    target_size = sizes.mean()
    mean = centred[0]
    aligned = centred
    for _ in range(max_iterations):
        aligned = _align_to(centred, mean, scaling)
        new_mean = aligned.mean(axis=0)
        if scaling:
            new_mean *= target_size / np.linalg.norm(new_mean)
        change = np.sqrt(np.mean(np.sum((new_mean - mean) ** 2, axis=1)))
        mean = new_mean
        if change < tolerance_mm:
            break
    if scaling:
        # one last pass so the cases' sizes match the rescaled mean exactly
        aligned = _align_to(centred, mean, scaling)
        mean = aligned.mean(axis=0)
    return aligned, mean


def fit_pca(
    aligned: np.ndarray, n_modes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray]:
    """PCA via SVD of aligned shapes (n_cases, D); returns (mean, modes, variance_mm2, total, scores).

    At most ``min(n_modes, n_cases - 1)`` modes are kept; ``total`` counts every mode. Modes follow the
    sign convention of the module docstring.
    """
    data = aligned.reshape(len(aligned), -1)
    mean = data.mean(axis=0)
    centred = data - mean
    n = len(data)
    dof = max(n - 1, 1)
    n_keep = int(min(n_modes, max(n - 1, 0), centred.shape[1]))
    if n <= centred.shape[1]:
        # the n x n Gram matrix is far smaller than the D x D covariance: same modes, less work
        from scipy.linalg import eigh
        from threadpoolctl import threadpool_limits

        gram = centred @ centred.T
        # one BLAS thread for this small eigenproblem: measured on a busy 2-core machine, a 1000 x 1000
        # eigh took 8 s with OpenBLAS' threads competing for the cores and 0.1 s with one thread
        with threadpool_limits(limits=1, user_api="blas"):
            subset = [n - n_keep, n - 1] if n_keep else None
            eigenvalues, eigenvectors = eigh(gram, subset_by_index=subset)
        order = np.argsort(eigenvalues)[::-1][:n_keep]
        singular = np.sqrt(np.clip(eigenvalues[order], 0.0, None))
        modes = (eigenvectors[:, order].T @ centred) / np.where(singular > 0, singular, 1.0)[:, None]
    else:
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        singular, modes = singular[:n_keep], vt[:n_keep]
    centred_mean = (mean.reshape(-1, 3) - mean.reshape(-1, 3).mean(axis=0)).ravel()
    signs = np.where(modes @ centred_mean < 0, -1.0, 1.0)
    modes = modes * signs[:, None]
    variance = singular**2 / dof
    total = float(np.sum(centred * centred) / dof)
    scores = centred @ modes.T
    return mean, modes, variance, total, scores


def build_atlas(
    shapes: np.ndarray,
    case_ids: list[str],
    faces_endo: np.ndarray,
    faces_epi: np.ndarray,
    n_endo: int,
    phases: tuple[str, ...] = DEFAULT_PHASES,
    scaling: bool = False,
    n_modes: int = 50,
) -> Atlas:
    """Align ``shapes`` (n_cases, n_phases, n_points, 3) mm with Procrustes, then PCA; returns the Atlas.

    The phases of one case are aligned together (one transform per case). Default: position and
    orientation removed, size kept (``scaling=False``). Keeps up to ``n_modes`` modes.
    """
    shapes = np.asarray(shapes, dtype=np.float64)
    if shapes.ndim != 4 or shapes.shape[1] != len(phases) or shapes.shape[3] != 3:
        raise CardiacInputError(
            f"shapes must be (n_cases, {len(phases)} phases, n_points, 3), got {shapes.shape}"
        )
    if len(case_ids) != len(shapes) or len(set(case_ids)) != len(case_ids):
        raise CardiacInputError(f"need {len(shapes)} distinct case ids, got {len(set(case_ids))}")
    if len(shapes) < 2:
        raise CardiacInputError(f"an atlas needs at least 2 cases, got {len(shapes)}")
    n_points = shapes.shape[2]
    aligned, _ = procrustes_align(shapes.reshape(len(shapes), -1, 3), scaling=scaling)
    mean, modes, variance, total, scores = fit_pca(aligned, n_modes)
    return Atlas(
        mean=mean,
        modes=modes,
        variance_mm2=variance,
        total_variance_mm2=total,
        faces_endo=np.asarray(faces_endo, dtype=np.int64),
        faces_epi=np.asarray(faces_epi, dtype=np.int64),
        n_endo=int(n_endo),
        n_points=n_points,
        phases=tuple(phases),
        scaling=scaling,
        case_ids=list(case_ids),
        scores=scores,
        source={"method": "generalised Procrustes + PCA (SVD)", "n_cases": len(shapes)},
    )


# ---------------------------------------------------------------------------------------------- fit folders


FIT_SUBFOLDER = "lv_model"


def fit_file(fit_dir: Path, phase: str) -> Path:
    return Path(fit_dir) / f"lv_model_{phase}.vtk"


def expand_fit_folders(
    fit_dirs: list[str | Path], phases: tuple[str, ...] = DEFAULT_PHASES
) -> tuple[list[tuple[str, Path]], list[str]]:
    """``(case id, folder holding lv_model_<phase>.vtk)`` for each argument, and the skipped studies.

    An argument may be a fit folder (the models in it), a study folder with the models in its
    ``lv_model/`` subfolder (where ``cardiac-mtl analyze`` puts the fit), or a ``cardiac-mtl batch`` output
    folder: every ``studies/<study_id>/`` with a fitted model in either place, by study id; studies
    without one are skipped and listed. The case id is the fit folder's name, or the study's.
    """
    cases, skipped = [], []

    def fitted(folder: Path) -> Path | None:
        for candidate in (folder, folder / FIT_SUBFOLDER):
            if all(fit_file(candidate, phase).is_file() for phase in phases):
                return candidate
        return None

    for fit_dir in map(Path, fit_dirs):
        if not fit_dir.is_dir():
            raise CardiacInputError(f"{fit_dir}: fit folder not found")
        found = fitted(fit_dir)
        if found is not None:
            cases.append((fit_dir.resolve().name, found))
        elif (fit_dir / "studies").is_dir() and not fit_file(fit_dir, phases[0]).exists():
            studies = sorted(
                p for p in (fit_dir / "studies").iterdir() if p.is_dir() and not p.name.startswith(".")
            )
            for study in studies:
                found = fitted(study)
                if found is None:
                    skipped.append(study.name)
                else:
                    cases.append((study.name, found))
            if not any(fitted(study) for study in studies):
                raise CardiacInputError(
                    f"{fit_dir}: a batch output folder, but none of its {len(studies)} studies has a fitted "
                    f"LV model (lv_model_{phases[0]}.vtk in studies/<id>/ or studies/<id>/{FIT_SUBFOLDER}/)"
                )
        else:
            cases.append((fit_dir.resolve().name, fit_dir))  # reading names the missing file
    return cases, skipped


def read_fit_folders(
    fit_dirs: list[str | Path], phases: tuple[str, ...] = DEFAULT_PHASES
) -> tuple[np.ndarray, list[str], LVMesh]:
    """Read ``lv_model_<phase>.vtk`` of each case; returns (shapes, case_ids, first case's ED mesh).

    The arguments are expanded by :func:`expand_fit_folders` (fit folders, study folders, batch output
    folders). ``shapes`` is (n_cases, n_phases, n_points, 3) mm; the case id is the folder (or study)
    name. Every file must have the vertex count, endocardial/epicardial split and triangles of the first
    one (the vertex correspondence the fitting guarantees); otherwise ``CardiacInputError`` names the file.
    """
    if not fit_dirs:
        raise CardiacInputError("no fit folders given")
    cases, _ = expand_fit_folders(fit_dirs, phases)
    shapes, case_ids, template = [], [], None
    for case_id, fit_dir in cases:
        per_phase = []
        for phase in phases:
            path = fit_file(fit_dir, phase)
            mesh = read_lv_mesh(path)
            if template is None:
                template, template_path = mesh, path
            elif (
                mesh.points_mm.shape != template.points_mm.shape
                or mesh.n_endo != template.n_endo
                or not np.array_equal(mesh.faces_endo, template.faces_endo)
                or not np.array_equal(mesh.faces_epi, template.faces_epi)
            ):
                raise CardiacInputError(
                    f"{path}: {len(mesh.points_mm)} points ({mesh.n_endo} endocardial) and "
                    f"{len(mesh.faces_endo) + len(mesh.faces_epi)} triangles do not correspond to "
                    f"{template_path} ({len(template.points_mm)} points, {template.n_endo} endocardial, "
                    f"{len(template.faces_endo) + len(template.faces_epi)} triangles)"
                )
            per_phase.append(mesh.points_mm)
        shapes.append(per_phase)
        case_ids.append(case_id)
    if len(set(case_ids)) != len(case_ids):
        duplicates = sorted({c for c in case_ids if case_ids.count(c) > 1})
        raise CardiacInputError(
            f"fit folders must have distinct names (the case ids); repeated: {duplicates}"
        )
    return np.asarray(shapes), case_ids, template


def build_atlas_from_fit_folders(
    fit_dirs: list[str | Path], scaling: bool = False, n_modes: int = 50
) -> Atlas:
    """The ``build`` action: read the fitted ED and ES models of each folder and build the atlas."""
    shapes, case_ids, template = read_fit_folders(fit_dirs)
    atlas = build_atlas(
        shapes,
        case_ids,
        template.faces_endo,
        template.faces_epi,
        template.n_endo,
        scaling=scaling,
        n_modes=n_modes,
    )
    atlas.source["fit_folders"] = [str(Path(d).resolve()) for d in fit_dirs]
    return atlas


# ------------------------------------------------------------------------------------------ atlas folder


def write_atlas(
    atlas: Atlas, out_dir: str | Path, mesh_modes: int = 3, plot: bool = True, overwrite: bool = False
) -> Path:
    """Write the atlas folder (module docstring) atomically: a temporary sibling renamed into place.

    Meshes are written for the mean and for the first ``mesh_modes`` modes at ±1, 2, 3 SD; an existing
    ``out_dir`` of an earlier run is replaced (``overwrite``) only once the new folder is complete.
    """
    with staged_folder(out_dir, overwrite=overwrite) as staging:
        _write_atlas_files(atlas, staging, mesh_modes)
        if plot:
            from CardiacAtlasLib.plot import plot_modes

            plot_modes(atlas, staging / "modes.png")
    return Path(out_dir).resolve()


def _write_atlas_files(atlas: Atlas, folder: Path, mesh_modes: int) -> None:
    np.savez(
        folder / "atlas.npz",
        mean=atlas.mean,
        modes=atlas.modes,
        variance_mm2=atlas.variance_mm2,
        faces_endo=atlas.faces_endo.astype(np.int32),
        faces_epi=atlas.faces_epi.astype(np.int32),
    )
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "units": "mm",
        "phases": list(atlas.phases),
        "n_points_per_phase": atlas.n_points,
        "surfaces": {
            "endo": {"first_point": 0, "n_points": atlas.n_endo, "n_triangles": len(atlas.faces_endo)},
            "epi": {
                "first_point": atlas.n_endo,
                "n_points": atlas.n_points - atlas.n_endo,
                "n_triangles": len(atlas.faces_epi),
            },
        },
        "vector_layout": "phase-major, then point, then x y z interleaved; D = n_phases * n_points * 3",
        "alignment": {
            "method": "generalised Procrustes"
            + (
                f", transform fitted to {atlas.alignment_phase} and applied to every phase"
                if atlas.alignment_phase
                else ", one transform per case fitted to all its phases"
            ),
            "translation": True,
            "rotation": True,
            "scaling": atlas.scaling,
            "fitted_to_phase": atlas.alignment_phase,
        },
        "mode_sign": "+ enlarges the mean shape (mode . centred mean >= 0)",
        "n_cases": len(atlas.case_ids),
        "n_modes": atlas.n_modes,
        "total_variance_mm2": atlas.total_variance_mm2,
        "source": atlas.source,
        "written_by": f"CardiacAtlasLib {__version__}",
    }
    (folder / "atlas.json").write_text(json.dumps(document, indent=2))
    cumulative = np.cumsum(atlas.explained_fraction)
    with open(folder / "variance.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["mode", "variance_mm2", "sd_mm", "explained_fraction", "cumulative_fraction"])
        for k in range(atlas.n_modes):
            writer.writerow(
                [k + 1, f"{atlas.variance_mm2[k]:.6g}", f"{atlas.sd_mm[k]:.6g}",
                 f"{atlas.explained_fraction[k]:.6g}", f"{cumulative[k]:.6g}"]
            )  # fmt: skip
    with open(folder / "scores.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["case_id"] + [f"mode_{k + 1}" for k in range(atlas.n_modes)])
        for case_id, row in zip(atlas.case_ids, atlas.scores, strict=True):
            writer.writerow([case_id] + [f"{v:.6g}" for v in row])
    meshes = folder / "meshes"
    meshes.mkdir()
    for phase in atlas.phases:
        write_lv_mesh(atlas.mesh(atlas.shape(), phase), meshes / f"mean_{phase}.vtk")
        for mode in range(min(mesh_modes, atlas.n_modes)):
            for step in SD_STEPS:
                for sign, word in ((-1, "minus"), (1, "plus")):
                    shape = atlas.mode_shape(mode, sign * step)
                    name = f"mode{mode + 1:02d}_{word}{step}sd_{phase}.vtk"
                    write_lv_mesh(atlas.mesh(shape, phase), meshes / name)


def read_atlas(atlas_dir: str | Path) -> Atlas:
    """Read an atlas folder written by :func:`write_atlas`; ``CardiacInputError`` names what is wrong."""
    atlas_dir = Path(atlas_dir)
    manifest = atlas_dir / "atlas.json"
    if not manifest.is_file():
        raise CardiacInputError(f"{manifest}: not found; is {atlas_dir} an atlas folder (from build)?")
    try:
        document = json.loads(manifest.read_text())
    except json.JSONDecodeError as e:
        raise CardiacInputError(f"{manifest}: not valid JSON ({e})") from e
    if document.get("format") != FORMAT:
        raise CardiacInputError(f"{manifest}: format is {document.get('format')!r}, expected {FORMAT!r}")
    try:
        with np.load(atlas_dir / "atlas.npz") as arrays:
            arrays = {k: arrays[k] for k in arrays.files}
    except (OSError, ValueError) as e:
        raise CardiacInputError(f"{atlas_dir / 'atlas.npz'}: unreadable ({e})") from e
    case_ids, scores = read_scores(atlas_dir / "scores.csv")
    return Atlas(
        mean=arrays["mean"],
        modes=arrays["modes"],
        variance_mm2=arrays["variance_mm2"],
        total_variance_mm2=float(document["total_variance_mm2"]),
        faces_endo=arrays["faces_endo"].astype(np.int64),
        faces_epi=arrays["faces_epi"].astype(np.int64),
        n_endo=int(document["surfaces"]["endo"]["n_points"]),
        n_points=int(document["n_points_per_phase"]),
        phases=tuple(document["phases"]),
        scaling=bool(document["alignment"]["scaling"]),
        alignment_phase=document["alignment"].get("fitted_to_phase"),
        case_ids=case_ids,
        scores=scores,
        source=document.get("source", {}),
    )


def read_scores(path: str | Path) -> tuple[list[str], np.ndarray]:
    """``scores.csv`` as (case_ids, scores (n_cases, n_modes) mm)."""
    path = Path(path)
    if not path.is_file():
        raise CardiacInputError(f"{path}: not found")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][:1] != ["case_id"]:
        raise CardiacInputError(f"{path}: expected a header starting with 'case_id'")
    try:
        scores = np.array([[float(v) for v in row[1:]] for row in rows[1:]], dtype=float)
    except ValueError as e:
        raise CardiacInputError(f"{path}: a score is not a number ({e})") from e
    return [row[0] for row in rows[1:]], scores.reshape(len(rows) - 1, len(rows[0]) - 1)
