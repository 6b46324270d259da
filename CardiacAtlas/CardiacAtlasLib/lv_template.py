"""The LV finite-element template: two surfaces in prolate spheroidal coordinates, bicubic Hermite in λ.

The Cardiac Atlas Project's LV model (Young et al.; the MESA atlas) describes the endocardium and the
epicardium in a prolate spheroidal coordinate system attached to the heart: a point is
``(λ, μ, θ)`` with Cartesian model coordinates ``x = d cosh λ cos μ`` (along the long axis, apex at
``μ = 0``), ``y = d sinh λ sin μ cos θ``, ``z = d sinh λ sin μ sin θ`` (``θ = 0`` towards the septum),
``d`` the focal length. Each surface is the radial coordinate ``λ`` as a field over ``(μ, θ)``,
interpolated by bicubic Hermite elements on a grid of ``n_long`` × ``n_circ`` elements (nodes carry
``λ``, ``∂λ/∂ξ1``, ``∂λ/∂ξ2`` and ``∂²λ/∂ξ1∂ξ2`` in element coordinates). Since a data point keeps its
own ``(μ, θ)`` and only ``λ`` is fitted, the surface is *linear in its parameters*: fitting is one small
regularised linear least-squares solve, with no general-purpose optimiser.

The apex (``μ = 0``) is a single point for every ``θ``: the apex nodes share one ``λ``, have no
``θ``-derivative, and their ``μ``-derivatives follow ``a cos θ + b sin θ`` (a tilted but smooth apical
cap), so a surface has ``3 + 4 n_long n_circ`` parameters. Output meshes sample every surface on the
same grid (``MESH_ROWS`` rows from the apex to the base plane × ``MESH_COLUMNS`` columns from the
septum), the topology of the CAP MESA atlas (841 points and 1,624 triangles per surface), so vertex
``i`` is the same anatomical place in every patient and frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MESH_ROWS = 29
MESH_COLUMNS = 29
# the focal length is chosen so that a surface with λ = 1 reaches the apex (CAP's usual scaling)
REFERENCE_LAMBDA = 1.0
# the origin sits one third of the base-to-apex length below the base, so a λ = 1 surface meets the
# base plane at μ = 120 degrees, as in the CAP model
ORIGIN_FRACTION = 1.0 / 3.0
MIN_LAMBDA = 0.02
# the largest μ a surface can reach below the base plane (at λ = 0): arccos(-cosh(1) / 2) = 140.5 degrees
MU_MAX = float(np.arccos(-np.cosh(REFERENCE_LAMBDA) * ORIGIN_FRACTION / (1.0 - ORIGIN_FRACTION)))


def _hermite(xi: np.ndarray, order: int) -> np.ndarray:
    """Cubic Hermite basis (4, n) on [0, 1]: value at 0, slope at 0, value at 1, slope at 1; or its
    ``order``-th derivative."""
    x = np.asarray(xi, dtype=float)
    if order == 0:
        return np.stack([1 - 3 * x**2 + 2 * x**3, x - 2 * x**2 + x**3, 3 * x**2 - 2 * x**3, x**3 - x**2])
    if order == 1:
        return np.stack([-6 * x + 6 * x**2, 1 - 4 * x + 3 * x**2, 6 * x - 6 * x**2, 3 * x**2 - 2 * x])
    if order == 2:
        return np.stack([-6 + 12 * x, -4 + 6 * x, 6 - 12 * x, 6 * x - 2])
    raise ValueError(f"derivative order must be 0, 1 or 2, got {order}")


@dataclass(frozen=True)
class Pose:
    """Where the model sits in the patient: ``origin_mm`` and orthonormal ``axes`` (rows: long axis
    base → apex, septal direction, their cross product), focal length ``focal_mm``, and the base plane
    at model ``x = base_x_mm`` (negative; the apex of a λ = 1 surface is at ``x = apex_x_mm``)."""

    origin_mm: np.ndarray
    axes: np.ndarray
    focal_mm: float
    base_x_mm: float
    apex_x_mm: float
    source: dict = field(default_factory=dict)

    @classmethod
    def from_landmarks(cls, base_centre_mm, apex_mm, septum_direction, source: dict | None = None) -> Pose:
        """The pose from the base centre, the (epicardial) apex and a direction towards the septum."""
        base = np.asarray(base_centre_mm, dtype=float)
        apex = np.asarray(apex_mm, dtype=float)
        length = float(np.linalg.norm(apex - base))
        if not np.isfinite(length) or length < 10.0:
            raise ValueError(f"base and apex must be at least 10 mm apart, got {length:.1f} mm")
        e1 = (apex - base) / length
        septum = np.asarray(septum_direction, dtype=float)
        septum = septum - (septum @ e1) * e1
        if np.linalg.norm(septum) < 1e-6:
            # any direction across the axis will do; the caller records that the septum was unknown
            helper = np.eye(3)[int(np.argmin(np.abs(e1)))]
            septum = helper - (helper @ e1) * e1
        e2 = septum / np.linalg.norm(septum)
        e3 = np.cross(e1, e2)
        origin = base + ORIGIN_FRACTION * length * e1
        apex_x = (1.0 - ORIGIN_FRACTION) * length
        return cls(
            origin_mm=origin,
            axes=np.stack([e1, e2, e3]),
            focal_mm=apex_x / np.cosh(REFERENCE_LAMBDA),
            base_x_mm=-ORIGIN_FRACTION * length,
            apex_x_mm=apex_x,
            source=dict(source or {}),
        )

    def to_model(self, points_mm: np.ndarray) -> np.ndarray:
        return (np.asarray(points_mm, dtype=float) - self.origin_mm) @ self.axes.T

    def to_patient(self, model_mm: np.ndarray) -> np.ndarray:
        return np.asarray(model_mm, dtype=float) @ self.axes + self.origin_mm

    def to_prolate(self, points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(λ, μ, θ) of patient points (n, 3)."""
        x, y, z = self.to_model(points_mm).T
        d = self.focal_mm
        r = np.hypot(y, z)
        to_apex_focus = np.hypot(x - d, r)
        to_base_focus = np.hypot(x + d, r)
        lam = np.arccosh(np.clip((to_apex_focus + to_base_focus) / (2 * d), 1.0, None))
        mu = np.arccos(np.clip((to_base_focus - to_apex_focus) / (2 * d), -1.0, 1.0))
        theta = np.mod(np.arctan2(z, y), 2 * np.pi)
        return lam, mu, theta

    def to_cartesian(self, lam, mu, theta) -> np.ndarray:
        """Patient points (n, 3) of prolate coordinates."""
        d = self.focal_mm
        lam, mu, theta = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (lam, mu, theta)))
        model = np.stack(
            [
                d * np.cosh(lam) * np.cos(mu),
                d * np.sinh(lam) * np.sin(mu) * np.cos(theta),
                d * np.sinh(lam) * np.sin(mu) * np.sin(theta),
            ],
            axis=-1,
        )
        return self.to_patient(model)

    def metric_mm(self, lam, mu) -> np.ndarray:
        """Millimetres per unit λ at (λ, μ): the length of ``∂x/∂λ``, to weigh λ residuals in mm."""
        return self.focal_mm * np.sqrt(np.sinh(lam) ** 2 + np.sin(mu) ** 2)

    @property
    def mu_max(self) -> float:
        """The largest μ any surface (λ >= 0) can have below the base plane."""
        return float(np.arccos(np.clip(self.base_x_mm / self.focal_mm, -1.0, 1.0)))

    def as_dict(self) -> dict:
        return {
            "origin_mm": [round(float(v), 3) for v in self.origin_mm],
            "long_axis_base_to_apex": [round(float(v), 5) for v in self.axes[0]],
            "septal_axis": [round(float(v), 5) for v in self.axes[1]],
            "focal_length_mm": round(float(self.focal_mm), 3),
            "base_to_apex_mm": round(float(self.apex_x_mm - self.base_x_mm), 3),
            "base_centre_mm": [round(float(v), 3) for v in self.to_patient(np.array([self.base_x_mm, 0, 0]))],
            "apex_mm": [round(float(v), 3) for v in self.to_patient(np.array([self.apex_x_mm, 0, 0]))],
            **self.source,
        }


@dataclass(frozen=True)
class HermiteGrid:
    """Bicubic Hermite elements over ``μ ∈ [0, mu_max]`` (``n_long``) × ``θ ∈ [0, 2π)`` (``n_circ``)."""

    n_long: int = 4
    n_circ: int = 8
    mu_max: float = MU_MAX

    @property
    def h_mu(self) -> float:
        return self.mu_max / self.n_long

    @property
    def h_theta(self) -> float:
        return 2 * np.pi / self.n_circ

    @property
    def n_full(self) -> int:
        return (self.n_long + 1) * self.n_circ * 4

    @property
    def n_params(self) -> int:
        return 3 + self.n_long * self.n_circ * 4

    def constraint(self) -> np.ndarray:
        """T (n_full, n_params): full nodal values = T @ parameters (the apex conditions built in)."""
        t = np.zeros((self.n_full, self.n_params))
        thetas = np.arange(self.n_circ) * self.h_theta
        for j, th in enumerate(thetas):
            base = 4 * j
            t[base + 0, 0] = 1.0  # one λ at the apex
            t[base + 1, 1], t[base + 1, 2] = self.h_mu * np.cos(th), self.h_mu * np.sin(th)
            # ∂λ/∂θ = 0 at the apex; the cross derivative is the θ-derivative of the μ-slope
            scale = self.h_mu * self.h_theta
            t[base + 3, 1], t[base + 3, 2] = -scale * np.sin(th), scale * np.cos(th)
        n_apex = 4 * self.n_circ
        t[n_apex:, 3:] = np.eye(self.n_full - n_apex)
        return t

    def basis(self, mu, theta, d_mu: int = 0, d_theta: int = 0) -> np.ndarray:
        """Rows (n, n_full) of the field (or its derivative, per radian) at the points (μ, θ)."""
        mu = np.clip(np.asarray(mu, dtype=float).ravel(), 0.0, self.mu_max)
        theta = np.mod(np.asarray(theta, dtype=float).ravel(), 2 * np.pi)
        n = len(mu)
        e_mu = np.minimum((mu / self.h_mu).astype(int), self.n_long - 1)
        e_th = np.minimum((theta / self.h_theta).astype(int), self.n_circ - 1)
        xi1 = mu / self.h_mu - e_mu
        xi2 = theta / self.h_theta - e_th
        h1 = _hermite(xi1, d_mu) / self.h_mu**d_mu
        h2 = _hermite(xi2, d_theta) / self.h_theta**d_theta
        rows = np.zeros((n, self.n_full))
        index = np.arange(n)
        for m in (0, 1):  # μ end of the element
            ring = e_mu + m
            for c in (0, 1):  # θ end
                column = (e_th + c) % self.n_circ
                node = (ring * self.n_circ + column) * 4
                for k, (a, b) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
                    rows[index, node + k] += h1[2 * m + a] * h2[2 * c + b]
        return rows

    def smoothing(self, weight_first: float, weight_second: float, n_gauss: int = 4) -> np.ndarray:
        """Sobolev penalty (n_full, n_full): ∫∫ w1 (λ_μ² + λ_θ²) + w2 (λ_μμ² + 2 λ_μθ² + λ_θθ²) dμ dθ."""
        g, gw = np.polynomial.legendre.leggauss(n_gauss)
        g, gw = (g + 1) / 2, gw / 2
        i, j = np.meshgrid(np.arange(self.n_long), np.arange(self.n_circ), indexing="ij")
        a, b = np.meshgrid(g, g, indexing="ij")
        mu = ((i.ravel()[:, None] + a.ravel()[None]) * self.h_mu).ravel()
        theta = ((j.ravel()[:, None] + b.ravel()[None]) * self.h_theta).ravel()
        weights = np.tile(np.outer(gw, gw).ravel(), self.n_long * self.n_circ) * self.h_mu * self.h_theta
        penalty = np.zeros((self.n_full, self.n_full))
        for (dm, dt), w in (
            ((1, 0), weight_first),
            ((0, 1), weight_first),
            ((2, 0), weight_second),
            ((1, 1), 2 * weight_second),
            ((0, 2), weight_second),
        ):
            rows = self.basis(mu, theta, dm, dt)
            penalty += w * (rows.T * weights) @ rows
        return penalty


@dataclass
class Surface:
    """One fitted surface: the grid, its parameters (``n_params``) and the pose it lives in."""

    grid: HermiteGrid
    params: np.ndarray
    pose: Pose

    def __post_init__(self) -> None:
        self._full = self.grid.constraint() @ self.params

    def lam(self, mu, theta) -> np.ndarray:
        return np.maximum(self.grid.basis(mu, theta) @ self._full, MIN_LAMBDA)

    def points(self, mu, theta) -> np.ndarray:
        return self.pose.to_cartesian(self.lam(mu, theta), mu, theta)

    def base_mu(self, theta: np.ndarray, iterations: int = 24) -> np.ndarray:
        """μ where the surface meets the base plane, per θ (bisection: x falls monotonically with μ)."""
        theta = np.asarray(theta, dtype=float)
        low = np.zeros_like(theta)
        high = np.full_like(theta, self.pose.mu_max)
        for _ in range(iterations):
            mid = (low + high) / 2
            x = self.pose.focal_mm * np.cosh(self.lam(mid, theta)) * np.cos(mid)
            above = x > self.pose.base_x_mm
            low = np.where(above, mid, low)
            high = np.where(above, high, mid)
        return (low + high) / 2

    def sample(self, n_rows: int = MESH_ROWS, n_columns: int = MESH_COLUMNS) -> np.ndarray:
        """Points (n_rows * n_columns, 3) from the apex (row 0) to the base plane (last row)."""
        theta = np.arange(n_columns) * 2 * np.pi / n_columns
        mu = np.linspace(0.0, 1.0, n_rows)[:, None] * self.base_mu(theta)[None, :]
        return self.points(mu.ravel(), np.broadcast_to(theta, mu.shape).ravel())
