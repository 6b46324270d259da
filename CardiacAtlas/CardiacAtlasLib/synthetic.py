"""Synthetic LV shapes with known modes, and fit folders made of them, for tests and benchmarks.

``build`` reads fit folders holding ``lv_model_ED.vtk`` and ``lv_model_ES.vtk`` (what ``fit`` writes; see
``mesh.py``). This module makes such folders from a known shape model: a
truncated prolate spheroid LV (the CAP mesh's topology: 29 × 29 points per surface, the first row the
apex, 1624 triangles per surface, apex along +x) deformed along known orthonormal modes (size, systolic
contraction, length, ellipticity) by known coefficients, then moved by a random rotation and translation,
so a test can check that ``build`` recovers the modes, their variance order and the coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from CardiacAtlasLib.atlas import DEFAULT_PHASES, build_atlas
from CardiacAtlasLib.atlas_io import fit_file
from CardiacAtlasLib.mesh import LVMesh, grid_faces, write_lv_mesh

MODE_NAMES = ("size", "systolic contraction", "length", "ellipticity")
# prolate spheroidal parameters of the template: focal length (mm) and lambda of endo / epi per phase
TEMPLATE = {
    "ED": {"focal_mm": 42.0, "endo": 0.62, "epi": 0.78},
    "ES": {"focal_mm": 38.0, "endo": 0.42, "epi": 0.72},
}
BASE_MU_RAD = np.deg2rad(115.0)


@dataclass
class ShapeModel:
    """A known linear shape model: ``mean`` (n_phases, n_points, 3) mm, ``modes`` (k, D) orthonormal."""

    mean: np.ndarray
    modes: np.ndarray
    faces_endo: np.ndarray
    faces_epi: np.ndarray
    n_endo: int
    phases: tuple[str, ...] = DEFAULT_PHASES


def _surface(focal_mm: float, lam: float, n_long: int, n_circ: int, ellipticity: float = 0.0) -> np.ndarray:
    mu = np.linspace(0.0, BASE_MU_RAD, n_long)[:, None]
    theta = np.linspace(0.0, 2 * np.pi, n_circ, endpoint=False)[None, :]
    radius = focal_mm * np.sinh(lam) * np.sin(mu) * (1.0 + ellipticity * np.cos(2 * theta))
    x = focal_mm * np.cosh(lam) * np.cos(mu) * np.ones_like(theta)
    return np.stack([x, radius * np.cos(theta), radius * np.sin(theta)], axis=-1).reshape(-1, 3)


def _template(params: dict, n_long: int, n_circ: int) -> np.ndarray:
    phases = []
    for phase in DEFAULT_PHASES:
        p = params[phase]
        phases.append(
            np.concatenate(
                [
                    _surface(p["focal_mm"], p["endo"], n_long, n_circ, params.get("ellipticity", 0.0)),
                    _surface(p["focal_mm"], p["epi"], n_long, n_circ, params.get("ellipticity", 0.0)),
                ]
            )
        )
    return np.stack(phases)


def synthetic_shape_model(n_long: int = 29, n_circ: int = 29) -> ShapeModel:
    """The template LV and its four known modes (``MODE_NAMES``), orthonormal and free of translation."""
    base = {phase: dict(values) for phase, values in TEMPLATE.items()}
    mean = _template(base, n_long, n_circ)

    def changed(edit) -> np.ndarray:
        params = {phase: dict(values) for phase, values in TEMPLATE.items()}
        edit(params)
        return _template(params, n_long, n_circ) - mean

    def size(p):
        for phase in DEFAULT_PHASES:
            p[phase]["focal_mm"] *= 1.05

    def contraction(p):
        p["ES"]["endo"] -= 0.03
        p["ES"]["epi"] -= 0.01

    def length(p):
        for phase in DEFAULT_PHASES:
            p[phase]["focal_mm"] *= 1.05
            p[phase]["endo"] -= 0.04
            p[phase]["epi"] -= 0.04

    def ellipticity(p):
        p["ellipticity"] = 0.05

    raw = []
    for edit in (size, contraction, length, ellipticity):
        displacement = changed(edit).reshape(-1, 3)
        raw.append((displacement - displacement.mean(axis=0)).ravel())
    # QR keeps the order: mode 1 is pure size, later modes are what is new in each deformation
    q, r = np.linalg.qr(np.array(raw).T)
    modes = (q * np.sign(np.diag(r))).T
    n_endo = n_long * n_circ
    return ShapeModel(
        mean=mean,
        modes=modes,
        faces_endo=grid_faces(n_long, n_circ),
        faces_epi=grid_faces(n_long, n_circ, offset=n_endo),
        n_endo=n_endo,
    )


def sample_shapes(
    model: ShapeModel,
    n_cases: int,
    sd_mm: tuple[float, ...] = (40.0, 20.0, 10.0, 5.0),
    noise_mm: float = 0.1,
    move: bool = True,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Random shapes ``mean + sum_k c_k sd_k mode_k`` (+ noise, + a random rigid motion when ``move``).

    Returns (shapes (n_cases, n_phases, n_points, 3) mm, coefficients c (n_cases, k) in SD units, drawn
    from a standard normal). ``sd_mm`` are the SDs of the scores along each mode (norm of the vector
    displacement in mm); one rotation and translation per case move all its phases together.
    """
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    sd = np.asarray(sd_mm, dtype=float)
    k = len(sd)
    coefficients = rng.standard_normal((n_cases, k))
    flat = model.mean.ravel() + (coefficients * sd) @ model.modes[:k]
    flat = flat + noise_mm * rng.standard_normal(flat.shape)
    shapes = flat.reshape((n_cases, *model.mean.shape))
    if move:
        rotations = Rotation.random(n_cases, random_state=rng).as_matrix()
        shifts = rng.uniform(-50.0, 50.0, (n_cases, 1, 1, 3))
        shapes = np.einsum("nfpi,nji->nfpj", shapes, rotations) + shifts
    return shapes, coefficients


def synthetic_atlas(n_cases: int = 40, n_modes: int = 50, seed: int = 0):
    """An atlas of ``n_cases`` shapes of :func:`synthetic_shape_model` (known modes; no data needed), the
    demo atlas of the Slicer module and the browser app."""
    model = synthetic_shape_model()
    shapes, _ = sample_shapes(model, n_cases, seed=seed)
    names = [f"synthetic_{i:02d}" for i in range(n_cases)]
    return build_atlas(shapes, names, model.faces_endo, model.faces_epi, model.n_endo, n_modes=n_modes)


def write_fit_folders(
    model: ShapeModel, shapes: np.ndarray, out_dir: str | Path, prefix: str = "case"
) -> list[Path]:
    """Write each shape as a fit folder ``<out_dir>/<prefix>_NNNN/lv_model_<phase>.vtk``; returns them."""
    out_dir = Path(out_dir)
    folders = []
    for i, shape in enumerate(shapes):
        folder = out_dir / f"{prefix}_{i + 1:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        for phase, points in zip(model.phases, shape, strict=True):
            write_lv_mesh(
                LVMesh(points, model.faces_endo, model.faces_epi, model.n_endo), fit_file(folder, phase)
            )
        folders.append(folder)
    return folders
