"""Import the published Cardiac Atlas Project MESA LV atlas (PCATool's ``PCA_ED.mat``, ``PCA_ES.mat``,
``SurfaceFaces.mat``) into this project's atlas format, so its modes can be displayed and new patients
projected onto it.

What the files hold (checked on the CAP release in ``../shared/data/cap_lv_atlas_mesa``): for each phase a
MATLAB ``pca`` result of 1,991 MESA LV models, ``COEFF`` (5046 × 10, orthonormal columns), ``SCORE``
(1991 × 10, mm, zero mean), ``LATENT`` (the score variances, mm²), ``VAR_EXPL`` (percent of the total
variance, so the total is ``LATENT / VAR_EXPL * 100``: 34,392 mm² at ED, 36,450 mm² at ES) and ``MEAN``
(1 × 5046 = 1682 points × xyz, mm); ``SurfaceFaces.mat`` holds ``Face.Endo`` and ``Face.Epi`` (1624 × 3,
1-based; Endo uses points 1–841, Epi 842–1682).

Coordinate layout, decided by a measurable criterion: read as *interleaved* (x1 y1 z1 x2 y2 z2 …) the
mean mesh's triangle edges average 4.5 mm (endocardium) and 5.6 mm (epicardium); read as blocked
(x1 x2 … y1 y2 … z1 z2 …) they average 45.5 mm and 48.0 mm with a maximum over 100 mm, i.e. a crumpled
surface. Interleaved is right: it gives a smooth truncated ellipsoid, long axis along +x (base ring near
x = -27 mm, apex at x = +59 mm endo / +66 mm epi, where 29 coincident points close the apex), endocardium
inside the epicardium, cavity volume 120.4 mL at ED and 43.4 mL at ES for the mean shapes (base and apex
capped; epicardial volume 239 mL and 165 mL). The importer
measures the criterion again on every import and refuses files where the two layouts are not clearly
distinguished.

ED and ES are separate PCAs in the CAP files. ``--phase ED`` or ``--phase ES`` imports one of them as it is
(a one-phase atlas: the published modes, variances and scores, only the mode signs normalised to this
project's convention). ``--phase ED+ES`` (the default) builds the concatenated ED+ES atlas that ``build``
makes: the rows of the two ``SCORE`` tables are the same cases in the same order (the first ED and ES
scores correlate at r = 0.94), so each case's ED and ES shapes are reconstructed from their 10 published
modes and a joint PCA of those reconstructions gives 20 joint modes, exactly, from the 20 × 20 covariance
of the scores. Limits of the joint atlas: variance outside each phase's 10 published modes is not
available. The published shapes were aligned per case on the ED model with the same transform applied to
ES (so the motion is kept): re-aligning a reconstructed case on its ED shape and applying that transform to
its ES shape reproduces its 20 joint scores to 0.04 mm (SDs 8.5–173 mm), whereas a transform fitted to
ED and ES together misses by up to 30 mm. The atlas therefore records ``alignment_phase = "ED"`` and
:meth:`Atlas.project` aligns a new patient the same way. The explained fractions
are relative to the full published variance (ED + ES totals).
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import numpy as np

from CardiacAtlasLib.atlas import Atlas
from CardiacAtlasLib.lv_template import MESH_COLUMNS, MESH_ROWS
from CardiacAtlasLib.mesh import boundary_loops, grid_faces
from CardiacMTLLib.errors import CardiacInputError

N_POINTS = 1682
N_ENDO = 841
PHASE_CHOICES = ("ED+ES", "ED", "ES")
# a right layout gives edges of a few mm, a wrong one tens of mm; demand a clear factor between them
LAYOUT_MARGIN = 3.0


def _load_struct(path: Path, name: str):
    from scipy.io import loadmat

    if not path.is_file():
        raise CardiacInputError(f"{path}: file not found")
    try:
        contents = loadmat(str(path), squeeze_me=True, struct_as_record=False)
    except Exception as e:  # scipy raises several types for a non-MAT file
        raise CardiacInputError(f"{path}: not a readable MATLAB file ({e})") from e
    if name not in contents:
        found = [k for k in contents if not k.startswith("__")]
        raise CardiacInputError(f"{path}: expected a MATLAB struct '{name}', found {found}")
    return contents[name]


def _field(struct, name: str, path: Path) -> np.ndarray:
    if not hasattr(struct, name):
        raise CardiacInputError(f"{path}: field '{name}' is missing")
    return np.asarray(getattr(struct, name), dtype=np.float64)


def read_cap_phase(path: str | Path, phase: str) -> dict:
    """One CAP PCA file as a dict of arrays: mean (5046,), coeff (5046, k), score, latent, total_mm2."""
    path = Path(path)
    struct = _load_struct(path, f"PCA_{phase}")
    mean = _field(struct, "MEAN", path).ravel()
    coeff = _field(struct, "COEFF", path)
    score = _field(struct, "SCORE", path)
    latent = _field(struct, "LATENT", path).ravel()
    var_expl = _field(struct, "VAR_EXPL", path).ravel()
    k = coeff.shape[1] if coeff.ndim == 2 else 0
    if (
        mean.shape != (3 * N_POINTS,)
        or coeff.shape[0] != 3 * N_POINTS
        or score.ndim != 2
        or score.shape[1] != k
    ):
        raise CardiacInputError(
            f"{path}: expected MEAN of {3 * N_POINTS} values, COEFF {3 * N_POINTS} × k and SCORE n × k; got "
            f"MEAN {mean.shape}, COEFF {coeff.shape}, SCORE {score.shape}"
        )
    if latent.shape != (k,) or var_expl.shape != (k,) or var_expl[0] <= 0:
        raise CardiacInputError(f"{path}: LATENT and VAR_EXPL must hold {k} positive values")
    return {
        "mean": mean,
        "coeff": coeff,
        "score": score,
        "latent": latent,
        "total_mm2": float(latent[0] / var_expl[0] * 100.0),
    }


def read_cap_faces(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``Face.Endo`` and ``Face.Epi`` as 0-based (n, 3) arrays; checks they use points 1–841 and 842–1682."""
    path = Path(path)
    struct = _load_struct(path, "Face")
    endo = _field(struct, "Endo", path).astype(np.int64) - 1
    epi = _field(struct, "Epi", path).astype(np.int64) - 1
    for name, faces, low, high in (("Endo", endo, 0, N_ENDO), ("Epi", epi, N_ENDO, N_POINTS)):
        if faces.ndim != 2 or faces.shape[1] != 3 or faces.min() < low or faces.max() >= high:
            raise CardiacInputError(
                f"{path}: Face.{name} must be n × 3 with 1-based indices {low + 1}–{high}; got shape "
                f"{faces.shape}, range {faces.min() + 1}–{faces.max() + 1}"
            )
    return endo, epi


def mean_edge_length_mm(points: np.ndarray, faces: np.ndarray) -> float:
    """Mean length in mm of the triangle edges of ``faces`` on ``points`` (n, 3)."""
    edges = points[faces] - points[np.roll(faces, 1, axis=1)]
    return float(np.linalg.norm(edges, axis=2).mean())


def layout_edge_lengths(flat: np.ndarray, faces: np.ndarray) -> dict[str, float]:
    """Mean triangle edge length (mm) of a 1 × 5046 CAP vector read interleaved and read blocked."""
    return {
        "interleaved": mean_edge_length_mm(flat.reshape(-1, 3), faces),
        "blocked": mean_edge_length_mm(flat.reshape(3, -1).T, faces),
    }


def _to_points_layout(columns: np.ndarray, layout: str) -> np.ndarray:
    """Rows of CAP vectors (m, 5046) to this project's interleaved point layout."""
    if layout == "interleaved":
        return columns
    return columns.reshape(len(columns), 3, -1).transpose(0, 2, 1).reshape(len(columns), -1)


def cap_grid_order(faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """CAP vertex indices of one surface in this project's grid order: ``(29 * 29,)``, row-major, rows from
    the apex to the base, columns from θ = 0 (towards the septum) with θ increasing.

    The CAP files number each surface's 841 vertices element by element; this project's meshes
    (``lv_template``, ``fit``) sample the same 29 × 29 grid row by row, so that vertex ``i`` is the same
    anatomical place in every mesh. The grid is recovered from the triangles alone: the base and apex rows
    are the two boundary loops (the apex row's 29 vertices coincide), each row is one step of graph
    distance further from the base, a row's order follows its own edges, and each row starts at the
    vertex nearest θ = 0 in CAP's model frame (long axis +x, ``θ = atan2(z, y)``), as the template's
    columns do.
    """
    faces = np.asarray(faces, dtype=np.int64)
    points = np.asarray(points, dtype=float)
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    neighbours: list[set] = [set() for _ in range(len(points))]
    for a, b in np.unique(edges, axis=0):
        neighbours[a].add(b)
        neighbours[b].add(a)
    loops = [np.unique(loop_edges).tolist() for loop_edges in boundary_loops(faces, len(points))]
    if len(loops) != 2:
        raise CardiacInputError(f"CAP surface: expected a base and an apex boundary loop, found {len(loops)}")
    base = max(loops, key=lambda loop: float(np.ptp(points[loop], axis=0).max()))
    distance = {v: 0 for v in base}
    queue = deque(base)
    while queue:
        v = queue.popleft()
        for w in neighbours[v]:
            if w not in distance:
                distance[w] = distance[v] + 1
                queue.append(w)
    rows = [[v for v, d in distance.items() if d == level] for level in range(MESH_ROWS)]
    if len(distance) != len(points) or any(len(row) != MESH_COLUMNS for row in rows):
        raise CardiacInputError("CAP surface: the triangles do not form the 29 x 29 grid of the CAP LV model")
    centre = points.mean(axis=0)

    def theta(v: int) -> float:
        return float(np.arctan2(points[v, 2] - centre[2], points[v, 1] - centre[1]))

    grid = np.zeros((MESH_ROWS, MESH_COLUMNS), dtype=np.int64)
    for level, row in enumerate(rows):  # level 0 is the base
        members = set(row)
        apex = level == MESH_ROWS - 1  # its vertices coincide: any start and direction will do
        start = row[0] if apex else row[int(np.argmin([abs(theta(v)) for v in row]))]
        cycle = [start]
        while len(cycle) < MESH_COLUMNS:
            options = [w for w in neighbours[cycle[-1]] if w in members and w not in cycle]
            if not options:
                raise CardiacInputError("CAP surface: a row of the grid is not a closed loop")
            if len(cycle) == 1 and not apex:  # the neighbour towards increasing θ
                options = [max(options, key=lambda w: np.angle(np.exp(1j * (theta(w) - theta(start)))))]
            cycle.append(options[0])
        grid[MESH_ROWS - 1 - level] = cycle
    return grid.ravel()


def cap_release_files(folder: str | Path) -> list[Path] | None:
    """``[PCA_ED.mat, PCA_ES.mat, SurfaceFaces.mat]`` of a CAP release folder, or ``None`` when one is missing."""
    files = [Path(folder) / name for name in ("PCA_ED.mat", "PCA_ES.mat", "SurfaceFaces.mat")]
    return files if all(p.is_file() for p in files) else None


def read_cap_atlas(
    pca_ed: str | Path, pca_es: str | Path, surface_faces: str | Path, phase: str = "ED+ES"
) -> Atlas:
    """The ``import-cap`` action: the CAP MESA atlas as an :class:`Atlas` (``phase``: ED+ES, ED or ES)."""
    if phase not in PHASE_CHOICES:
        raise CardiacInputError(f"phase must be one of {PHASE_CHOICES}, got {phase!r}")
    faces_endo, faces_epi = read_cap_faces(surface_faces)
    faces_all = np.concatenate([faces_endo, faces_epi])
    data = {p: read_cap_phase(path, p) for p, path in (("ED", pca_ed), ("ES", pca_es))}
    counts = {p: len(d["score"]) for p, d in data.items()}
    if phase == "ED+ES" and counts["ED"] != counts["ES"]:
        raise CardiacInputError(
            f"{pca_ed} and {pca_es}: an ED+ES atlas needs the same cases in both, got {counts['ED']} and "
            f"{counts['ES']} rows of SCORE (use --phase ED or --phase ES)"
        )
    lengths = layout_edge_lengths(data["ED"]["mean"], faces_all)
    layout = min(lengths, key=lengths.get)
    other = max(lengths, key=lengths.get)
    if lengths[other] < LAYOUT_MARGIN * lengths[layout]:
        raise CardiacInputError(
            f"{pca_ed}: cannot tell the coordinate layout of MEAN from the faces of {surface_faces} "
            f"(mean edge {lengths['interleaved']:.1f} mm interleaved, {lengths['blocked']:.1f} mm blocked)"
        )
    phases = ("ED", "ES") if phase == "ED+ES" else (phase,)
    means = [_to_points_layout(data[p]["mean"][None], layout)[0] for p in phases]
    coeffs = [_to_points_layout(data[p]["coeff"].T, layout) for p in phases]  # (k, 5046) per phase
    # CAP numbers vertices element by element; put them in this project's grid order (the fitted meshes')
    ed_mean = means[phases.index("ED") if "ED" in phases else 0].reshape(-1, 3)
    order = np.concatenate(
        [
            cap_grid_order(faces_endo, ed_mean[:N_ENDO]),
            N_ENDO + cap_grid_order(faces_epi - N_ENDO, ed_mean[N_ENDO:]),
        ]
    )
    coordinate = (3 * order[:, None] + np.arange(3)[None, :]).ravel()
    means = [m[coordinate] for m in means]
    coeffs = [c[:, coordinate] for c in coeffs]
    faces_endo = grid_faces(MESH_ROWS, MESH_COLUMNS)
    faces_epi = grid_faces(MESH_ROWS, MESH_COLUMNS, offset=N_ENDO)
    if len(phases) == 1:
        modes, scores, variance = coeffs[0], data[phase]["score"], data[phase]["latent"]
    else:
        # joint PCA of the reconstructions mean + score @ coeff: the block-diagonal basis is orthonormal,
        # so the eigenvectors of the score covariance give the joint modes exactly
        joint_scores = np.hstack([data["ED"]["score"], data["ES"]["score"]])
        joint_scores = joint_scores - joint_scores.mean(axis=0)
        k_ed, k_es = coeffs[0].shape[0], coeffs[1].shape[0]
        basis = np.zeros((k_ed + k_es, 2 * 3 * N_POINTS))
        basis[:k_ed, : 3 * N_POINTS] = coeffs[0]
        basis[k_ed:, 3 * N_POINTS :] = coeffs[1]
        covariance = joint_scores.T @ joint_scores / (len(joint_scores) - 1)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1]
        variance, eigenvectors = eigenvalues[order], eigenvectors[:, order]
        modes = eigenvectors.T @ basis
        scores = joint_scores @ eigenvectors
    mean = np.concatenate(means)
    centred_mean = (mean.reshape(-1, 3) - mean.reshape(-1, 3).mean(axis=0)).ravel()
    signs = np.where(modes @ centred_mean < 0, -1.0, 1.0)
    total = float(sum(data[p]["total_mm2"] for p in phases))
    n_cases = len(scores)
    return Atlas.from_learned_state(
        mean=mean,
        components=modes * signs[:, None],
        explained_variance=np.asarray(variance, dtype=float),
        total_variance=total,
        faces_endo=faces_endo,
        faces_epi=faces_epi,
        n_endo=N_ENDO,
        n_points=N_POINTS,
        phases=phases,
        scaling=False,
        alignment_phase="ED" if len(phases) > 1 else None,
        case_ids=[f"MESA_{i + 1:04d}" for i in range(n_cases)],
        scores=scores * signs[None, :],
        source={
            "method": "Cardiac Atlas Project MESA atlas (PCATool), imported",
            "files": [str(Path(p).resolve()) for p in (pca_ed, pca_es, surface_faces)],
            "phase": phase,
            "coordinate_layout": layout,
            "mean_edge_length_mm": lengths,
            "modes_sign_flipped": [int(i + 1) for i in np.flatnonzero(signs < 0)],
            "case_ids": "MESA_<row of SCORE>, no identifiers are published",
            "alignment_note": "alignment as published by CAP (position and orientation); scale not removed",
        },
    )
