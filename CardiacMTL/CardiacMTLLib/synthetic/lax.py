"""A synthetic long-axis cine with exact mitral hinge points."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from CardiacMTLLib.analysis.landmarks.mitral import VIEWS, order_hinges
from CardiacMTLLib.errors import CardiacInputError

# --------------------------------------------------------------------------------------------------
# synthetic long-axis cines


def _ellipse(x, y, centre, u, semi_u, semi_v):
    du, dv = (x - centre[0]) * u[0] + (y - centre[1]) * u[1], -(x - centre[0]) * u[1] + (y - centre[1]) * u[0]
    return (du / semi_u) ** 2 + (dv / semi_v) ** 2, du, dv


def synthetic_lax_cine(
    seed: int = 0,
    view: str = "4ch",
    num_frames: int = 25,
    shape: tuple[int, int] = (208, 256),
    spacing_mm: float = 1.40625,
    noise_std: float = 0.04,
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic long-axis cine ``(frames, rows, cols)`` and its hinge points ``(frames, 2, 2)`` (row, col).

    The LV is a half ellipse from the mitral annulus to the apex with a myocardial band around it, the
    LA an ellipse beyond the annulus; the 4-chamber view adds the RV and RA beside them. The annulus
    moves towards the apex and the cavity narrows in systole. Hinges lie on the annulus where the
    myocardium ends, ordered by column.
    """
    from CardiacMTLLib.synthetic.anatomy import contraction

    if view not in VIEWS:
        raise CardiacInputError(f"view must be one of {VIEWS}, got {view!r}")
    rng = np.random.default_rng(seed)
    rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols].astype(float) * spacing_mm
    angle = np.deg2rad(rng.uniform(30, 150) if rng.uniform() < 0.8 else rng.uniform(-180, 180))
    u = np.array([np.cos(angle), np.sin(angle)])  # annulus -> apex, (x, y)
    v = np.array([-u[1], u[0]])
    centre_fov = np.array([cols, rows]) * spacing_mm / 2
    base0 = centre_fov - u * rng.uniform(20, 45) + v * rng.uniform(-15, 15)
    length, radius, wall = rng.uniform(75, 100), rng.uniform(20, 28), rng.uniform(7, 11)
    la_len, la_w = rng.uniform(25, 40), rng.uniform(18, 28)
    side = 1 if rng.uniform() < 0.5 else -1
    texture = ndimage.gaussian_filter(rng.standard_normal((rows, cols)), 3)
    texture /= texture.std() + 1e-9
    background = 0.3 + 0.08 * texture
    for _ in range(25):  # organs, fat and lung patches
        c = rng.uniform(0, 1, 2) * np.array([cols, rows]) * spacing_mm
        q, *_ = _ellipse(x, y, c, np.array([1.0, 0.0]), rng.uniform(8, 40), rng.uniform(8, 40))
        background[q < 1] = rng.choice([0.05, 0.25, 0.4, 0.85])
    background = ndimage.gaussian_filter(background, 1.0)
    images = np.zeros((num_frames, rows, cols), dtype=np.float32)
    hinges = np.zeros((num_frames, 2, 2), dtype=np.float32)
    squeeze = contraction(np.arange(num_frames) / num_frames)
    for t in range(num_frames):
        c = float(squeeze[t])
        base = base0 + u * 12.0 * c
        cav_r, cav_l = radius * (1 - 0.3 * c), (length - 12.0 * c) * (1 - 0.05 * c)
        w = wall * (1 + 0.4 * c)
        image = background.copy()
        q_epi, du, dv = _ellipse(x, y, base, u, cav_l + w, cav_r + w)
        q_cav, *_ = _ellipse(x, y, base, u, cav_l, cav_r)
        lv_side = du >= 0
        if view == "4ch":
            rv_base = base + v * side * (cav_r + w + 14) - u * 4
            q_rv, du_rv, _ = _ellipse(x, y, rv_base, u, 0.8 * cav_l, 0.7 * cav_r)
            q_rvw, *_ = _ellipse(x, y, rv_base, u, 0.8 * cav_l + 3, 0.7 * cav_r + 3)
            image[(q_rvw < 1) & (du_rv >= 0)] = 0.27
            image[(q_rv < 1) & (du_rv >= 0)] = 0.85
            q_ra, *_ = _ellipse(x, y, rv_base - u * (la_len * 0.9), u, la_len * 0.9, la_w * 0.9)
            image[q_ra < 1] = 0.85
        image[(q_epi < 1) & lv_side] = 0.27
        q_la, *_ = _ellipse(x, y, base - u * (la_len - 2), u, la_len, la_w)
        image[q_la < 1] = 0.95
        image[(q_cav < 1) & lv_side] = 1.0
        # the annulus: a short dark hinge where the LV wall meets the LA
        hinge_xy = [base + v * s * (cav_r + 0.35 * w) for s in (-1, 1)]
        for h in hinge_xy:
            image[np.hypot(x - h[0], y - h[1]) < 0.45 * w] = 0.22
        images[t] = image
        hinges[t] = order_hinges([(h[1] / spacing_mm, h[0] / spacing_mm) for h in hinge_xy])
    images = ndimage.gaussian_filter(images, (0, 0.8, 0.8))
    bias = 0.85 + 0.3 * np.linspace(0, 1, cols)[np.newaxis, :] * rng.uniform(0.5, 1.5)
    real = images * bias + noise_std * rng.standard_normal(images.shape)
    imaginary = noise_std * rng.standard_normal(images.shape)
    return (np.hypot(real, imaginary) * 800).astype(np.float32), hinges
