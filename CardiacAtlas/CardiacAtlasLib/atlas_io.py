"""Atlas files: fit folders in (``lv_model_<phase>.vtk`` per case), the atlas folder out and back.

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
- ``modes.png``: long-axis cross-sections of the first modes at -3 SD, mean and +3 SD (``plot.py``).

The folder is written into a temporary sibling and renamed into place only when complete. The vector
layout and the sign of the modes are described in ``atlas.py``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from CardiacAtlasLib import __version__
from CardiacAtlasLib.atlas import DEFAULT_PHASES, Atlas
from CardiacAtlasLib.mesh import LVMesh, read_lv_mesh, write_lv_mesh
from CardiacAtlasLib.plot import plot_modes
from CardiacMTLLib.atomic import staged_folder, starts_with
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.documents import read_json_document

FORMAT = "cardiac-atlas"
FORMAT_VERSION = 1
SD_STEPS = (1, 2, 3)
FIT_SUBFOLDER = "lv_model"


# ---------------------------------------------------------------------------------------------- fit folders


def fit_file(fit_dir: str | Path, phase: str) -> Path:
    """The LV model file of one phase in a fit folder: ``lv_model_<phase>.vtk``."""
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
    atlas = Atlas(n_modes=n_modes, scaling=scaling).fit(
        shapes, case_ids, template.faces_endo, template.faces_epi, template.n_endo
    )
    atlas.source_["fit_folders"] = [str(Path(d).resolve()) for d in fit_dirs]
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
            plot_modes(atlas, staging / "modes.png")
    return Path(out_dir).resolve()


def _write_atlas_files(atlas: Atlas, folder: Path, mesh_modes: int) -> None:
    np.savez(
        folder / "atlas.npz",
        mean=atlas.mean_,
        modes=atlas.components_,
        variance_mm2=atlas.explained_variance_,
        faces_endo=atlas.faces_endo_.astype(np.int32),
        faces_epi=atlas.faces_epi_.astype(np.int32),
    )
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "units": "mm",
        "phases": list(atlas.phases),
        "n_points_per_phase": atlas.n_points_,
        "surfaces": {
            "endo": {"first_point": 0, "n_points": atlas.n_endo_, "n_triangles": len(atlas.faces_endo_)},
            "epi": {
                "first_point": atlas.n_endo_,
                "n_points": atlas.n_points_ - atlas.n_endo_,
                "n_triangles": len(atlas.faces_epi_),
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
        "n_cases": len(atlas.case_ids_),
        "n_modes": atlas.n_modes_,
        "total_variance_mm2": atlas.total_variance_,
        "source": atlas.source_,
        "written_by": f"CardiacAtlasLib {__version__}",
    }
    (folder / "atlas.json").write_text(json.dumps(document, indent=2))
    cumulative = np.cumsum(atlas.explained_variance_ratio_)
    with open(folder / "variance.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["mode", "variance_mm2", "sd_mm", "explained_fraction", "cumulative_fraction"])
        for k in range(atlas.n_modes_):
            writer.writerow(
                [k + 1, f"{atlas.explained_variance_[k]:.6g}", f"{atlas.sd_mm_[k]:.6g}",
                 f"{atlas.explained_variance_ratio_[k]:.6g}", f"{cumulative[k]:.6g}"]
            )  # fmt: skip
    with open(folder / "scores.csv", "w", newline="") as f:
        f.write(scores_csv(atlas.case_ids_, atlas.scores_, atlas.n_modes_))
    meshes = folder / "meshes"
    meshes.mkdir()
    for phase in atlas.phases:
        write_lv_mesh(atlas.mesh(atlas.shape(), phase), meshes / f"mean_{phase}.vtk")
        for mode in range(min(mesh_modes, atlas.n_modes_)):
            for step in SD_STEPS:
                for sign, word in ((-1, "minus"), (1, "plus")):
                    shape = atlas.mode_shape(mode, sign * step)
                    name = f"mode{mode + 1:02d}_{word}{step}sd_{phase}.vtk"
                    write_lv_mesh(atlas.mesh(shape, phase), meshes / name)


def read_atlas(atlas_dir: str | Path) -> Atlas:
    """Read an atlas folder written by :func:`write_atlas`; ``CardiacInputError`` names what is wrong."""
    atlas_dir = Path(atlas_dir)
    manifest = atlas_dir / "atlas.json"
    document = read_json_document(manifest, "an atlas folder (from build)")
    if document.get("format") != FORMAT:
        raise CardiacInputError(f"{manifest}: format is {document.get('format')!r}, expected {FORMAT!r}")
    try:
        with np.load(atlas_dir / "atlas.npz") as arrays:
            arrays = {k: arrays[k] for k in arrays.files}
    except (OSError, ValueError) as e:
        raise CardiacInputError(f"{atlas_dir / 'atlas.npz'}: unreadable ({e})") from e
    case_ids, scores = read_scores(atlas_dir / "scores.csv")
    return Atlas.from_learned_state(
        mean=arrays["mean"],
        components=arrays["modes"],
        explained_variance=arrays["variance_mm2"],
        total_variance=float(document["total_variance_mm2"]),
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


def is_scores_csv(path: Path) -> bool:
    """``path`` is a scores table :func:`scores_csv` wrote (its header), the only file ``project`` replaces."""
    return starts_with("case_id,mode_1")(path)


def scores_csv(case_ids: list[str], scores: np.ndarray, n_modes: int) -> str:
    """The text of a scores table: ``case_id``, ``mode_1 ... mode_<n_modes>`` (mm, 6 significant digits)."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["case_id"] + [f"mode_{k + 1}" for k in range(n_modes)])
    for case_id, row in zip(case_ids, scores, strict=True):
        writer.writerow([case_id] + [f"{v:.6g}" for v in row])
    return text.getvalue()


def project_fit_folders(atlas: Atlas, fit_dirs: list[str | Path]) -> tuple[list[str], np.ndarray]:
    """The ``project`` action: (case ids, scores (n_cases, n_modes_) mm) of new cases' fit folders.

    The cases' models must have the atlas' points (``CardiacInputError`` names the first folder).
    """
    shapes, case_ids, template = read_fit_folders(fit_dirs, phases=atlas.phases)
    if template.points_mm.shape[0] != atlas.n_points_ or template.n_endo != atlas.n_endo_:
        raise CardiacInputError(
            f"{fit_dirs[0]}: {template.points_mm.shape[0]} points ({template.n_endo} endocardial) do not "
            f"match the atlas ({atlas.n_points_} points, {atlas.n_endo_} endocardial)"
        )
    return case_ids, atlas.transform(shapes)


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
