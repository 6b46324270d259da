"""The LV shape atlas: generalised Procrustes alignment and PCA, as a scikit-learn style fit/transform object.

A *shape* is one case's LV model at every phase of the atlas, concatenated: an array
``(n_phases, n_points, 3)`` in mm (phases in the order of ``Atlas.phases``, usually ED then ES; within a
phase the endocardial points first, then the epicardial points), flattened in C order to a vector of
length ``D = n_phases * n_points * 3`` (phase-major, then point, then x, y, z interleaved). ED and ES of
one case are aligned together with one rigid transform, so the atlas keeps the motion between them, as in
the MESA atlas (Suinesiaputra et al.).

Sign convention of a mode: ``+`` is the direction that enlarges the mean shape (``mode · mean >= 0`` with
the mean centred), so ``+3 SD`` of a size mode is the bigger heart. The atlas folder is ``atlas_io.py``,
its mode figure ``plot.py``, the import of the CAP MESA atlas ``cap.py``.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh

from CardiacAtlasLib.mesh import LVMesh
from CardiacMTLLib.errors import CardiacInputError

DEFAULT_PHASES = ("ED", "ES")


class Atlas:
    """A Procrustes + PCA shape atlas of LV models (see the module docstring for the vector layout).

    Parameters (set before fitting): ``n_modes`` the most modes kept (at most ``n_cases - 1`` are);
    ``scaling`` whether the alignment removes size too (default: position and orientation only, so size
    stays part of the shape); ``phases`` the phases of a shape, in order; ``alignment_phase`` None when a
    case's transform is fitted to all its phases together (what :meth:`fit` does), or the phase it was
    fitted to and then applied to every phase (``"ED"`` for the imported CAP ED+ES atlas).

    Learned state (set by :meth:`fit`, or by :meth:`from_learned_state` for an atlas read from files):

    - ``mean_``: (D,) mm, the mean aligned shape.
    - ``components_``: (n_modes_, D), orthonormal rows, the modes.
    - ``explained_variance_``: (n_modes_,) mm², the variance of the scores along each mode.
    - ``total_variance_``: mm², the variance of all aligned shapes (every mode, also those not kept).
    - ``scores_``: (n_cases, n_modes_) mm, the cases' scores, rows in the order of ``case_ids_``.
    - ``case_ids_``: list of n_cases str.
    - ``faces_endo_``, ``faces_epi_``: (n, 3) int, 0-based triangles on the points of one phase;
      ``n_endo_`` endocardial points come first of ``n_points_`` per phase.
    - ``source_``: dict, how the atlas was made (provenance written to ``atlas.json``).
    """

    def __init__(
        self,
        n_modes: int = 50,
        scaling: bool = False,
        phases: tuple[str, ...] = DEFAULT_PHASES,
        alignment_phase: str | None = None,
    ):
        self.n_modes = n_modes
        self.scaling = scaling
        self.phases = tuple(phases)
        self.alignment_phase = alignment_phase

    @classmethod
    def from_learned_state(
        cls,
        *,
        mean: np.ndarray,
        components: np.ndarray,
        explained_variance: np.ndarray,
        total_variance: float,
        faces_endo: np.ndarray,
        faces_epi: np.ndarray,
        n_endo: int,
        n_points: int,
        phases: tuple[str, ...] = DEFAULT_PHASES,
        scaling: bool = False,
        alignment_phase: str | None = None,
        case_ids: list[str] | None = None,
        scores: np.ndarray | None = None,
        source: dict | None = None,
    ) -> Atlas:
        """An atlas fitted elsewhere (an atlas folder, the CAP release): shapes as in the class docstring."""
        atlas = cls(len(explained_variance), scaling, phases, alignment_phase)
        atlas._set_state(
            mean, components, explained_variance, total_variance, faces_endo, faces_epi, n_endo, n_points,
            list(case_ids or []), np.zeros((0, 0)) if scores is None else scores, dict(source or {}),
        )  # fmt: skip
        return atlas

    def _set_state(
        self,
        mean,
        components,
        variance,
        total,
        faces_endo,
        faces_epi,
        n_endo,
        n_points,
        case_ids,
        scores,
        source,
    ) -> None:
        self.mean_ = np.asarray(mean, dtype=np.float64)
        self.components_ = np.asarray(components, dtype=np.float64)
        self.explained_variance_ = np.asarray(variance, dtype=np.float64)
        self.total_variance_ = float(total)
        self.faces_endo_ = np.asarray(faces_endo, dtype=np.int64)
        self.faces_epi_ = np.asarray(faces_epi, dtype=np.int64)
        self.n_endo_ = int(n_endo)
        self.n_points_ = int(n_points)
        self.case_ids_ = case_ids
        self.scores_ = np.asarray(scores, dtype=np.float64)
        self.source_ = source

    def fit(
        self,
        shapes: np.ndarray,
        case_ids: list[str],
        faces_endo: np.ndarray,
        faces_epi: np.ndarray,
        n_endo: int,
    ) -> Atlas:
        """Align ``shapes`` (n_cases, n_phases, n_points, 3) mm with Procrustes, then PCA; returns ``self``.

        The phases of one case are aligned together (one transform per case). ``case_ids`` name the
        cases (distinct); ``faces_endo``/``faces_epi`` (n, 3) and ``n_endo`` give the meshes' topology.
        """
        if self.alignment_phase is not None:
            raise CardiacInputError(
                f"fit aligns all phases of a case together; alignment_phase must be None, got "
                f"{self.alignment_phase!r}"
            )
        shapes = np.asarray(shapes, dtype=np.float64)
        phases = self.phases
        if shapes.ndim != 4 or shapes.shape[1] != len(phases) or shapes.shape[3] != 3:
            raise CardiacInputError(
                f"shapes must be (n_cases, {len(phases)} phases, n_points, 3), got {shapes.shape}"
            )
        if len(case_ids) != len(shapes) or len(set(case_ids)) != len(case_ids):
            raise CardiacInputError(f"need {len(shapes)} distinct case ids, got {len(set(case_ids))}")
        if len(shapes) < 2:
            raise CardiacInputError(f"an atlas needs at least 2 cases, got {len(shapes)}")
        aligned, _ = procrustes_align(shapes.reshape(len(shapes), -1, 3), scaling=self.scaling)
        mean, modes, variance, total, scores = fit_pca(aligned, self.n_modes)
        source = {"method": "generalised Procrustes + PCA (SVD)", "n_cases": len(shapes)}
        self._set_state(
            mean, modes, variance, total, faces_endo, faces_epi, n_endo, shapes.shape[2], list(case_ids),
            scores, source,
        )  # fmt: skip
        return self

    @property
    def n_modes_(self) -> int:
        """The number of modes kept."""
        return len(self.explained_variance_)

    @property
    def sd_mm_(self) -> np.ndarray:
        """(n_modes_,) mm, the standard deviation of the scores along each mode."""
        return np.sqrt(self.explained_variance_)

    @property
    def explained_variance_ratio_(self) -> np.ndarray:
        """(n_modes_,), the fraction of the total variance each mode explains."""
        return self.explained_variance_ / self.total_variance_

    def shape(self, scores: np.ndarray | None = None) -> np.ndarray:
        """The shape ``mean_ + scores @ components_`` (n_phases, n_points, 3) mm; ``scores`` may be shorter."""
        vector = self.mean_.copy()
        if scores is not None:
            scores = np.asarray(scores, dtype=float)
            vector += scores @ self.components_[: len(scores)]
        return vector.reshape(len(self.phases), self.n_points_, 3)

    def mode_shape(self, mode: int, sd: float) -> np.ndarray:
        """The mean moved ``sd`` standard deviations along ``mode`` (0-based), (n_phases, n_points, 3) mm."""
        scores = np.zeros(mode + 1)
        scores[mode] = sd * self.sd_mm_[mode]
        return self.shape(scores)

    def mesh(self, shape: np.ndarray, phase: str) -> LVMesh:
        """One phase of ``shape`` (n_phases, n_points, 3) as an :class:`LVMesh`."""
        points = np.asarray(shape)[self.phases.index(phase)]
        return LVMesh(points, self.faces_endo_, self.faces_epi_, self.n_endo_)

    def transform(self, shapes: np.ndarray) -> np.ndarray:
        """Scores (n_cases, n_modes_) mm of new cases' shapes (n_cases, n_phases, n_points, 3) on this atlas.

        Each shape is first aligned to the atlas mean as the atlas' cases were (rotation and translation,
        and scale when the atlas was built with ``scaling``; fitted to ``alignment_phase`` alone when set),
        then projected onto the modes.
        """
        n_total = self.n_points_ * len(self.phases)
        shapes = _as_shapes(np.asarray(shapes), n_total, "shape")
        target = self.mean_.reshape(-1, 3)
        fitted = slice(None)
        if self.alignment_phase is not None:
            first = self.phases.index(self.alignment_phase) * self.n_points_
            fitted = slice(first, first + self.n_points_)
        scores = []
        for shape in shapes:
            rotation, scale, source_centre, target_centre = rigid_transform(
                shape[fitted], target[fitted], self.scaling
            )
            aligned = scale * (shape - source_centre) @ rotation + target_centre
            scores.append(self.components_ @ (aligned.ravel() - self.mean_))
        return np.asarray(scores).reshape(len(shapes), self.n_modes_)

    def project(self, shape: np.ndarray) -> np.ndarray:
        """Scores (n_modes_,) mm of one case's shape (n_phases, n_points, 3): :meth:`transform` of one."""
        return self.transform(np.asarray(shape)[None])[0]

    def inverse_transform(self, scores: np.ndarray) -> np.ndarray:
        """Shapes (n_cases, n_phases, n_points, 3) mm in the atlas frame of scores (n_cases, k <= n_modes_)."""
        scores = np.atleast_2d(np.asarray(scores, dtype=float))
        return np.stack([self.shape(row) for row in scores])


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
        from threadpoolctl import threadpool_limits  # comes with scikit-learn, which Slicer may lack

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
    """``Atlas(n_modes, scaling, phases).fit(shapes, case_ids, faces_endo, faces_epi, n_endo)``."""
    return Atlas(n_modes=n_modes, scaling=scaling, phases=phases).fit(
        shapes, case_ids, faces_endo, faces_epi, n_endo
    )
