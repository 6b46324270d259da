"""The synthetic heart and its surroundings: shapes of the LV, RV and the tissue around them, their contraction over the cycle, and the per-slice drawing grid the short-axis generator fills."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# Relative SSFP signal (LV blood = 1), roughly as in ACDC: myocardium about a third of the LV blood, RV
# blood a little darker, fat nearly as bright as blood, lungs and air dark.
INTENSITY = {
    "air": 0.0,
    "tissue": 0.33,
    "fat": 0.88,
    "muscle": 0.22,
    "lung": 0.05,
    "lung_vessel": 0.45,
    "lv_blood": 1.0,
    "rv_blood": 0.86,
    "myocardium": 0.27,
    "papillary": 0.33,
    "pericardium": 0.15,
    "liver": 0.26,
    "liver_vessel": 0.8,
    "aorta": 0.92,
    "marrow": 0.5,
    "cortex": 0.1,
}
SIGNAL_SCALE = 850.0  # blood near 850, bright fat at the coil up to ~1000: an int-like range like ACDC's
RV_FREE_WALL_MM = 3.0
PERICARDIUM_MM = 1.2
# Direction from the LV to the RV, as the angle of a (col, row) vector (rows run down): in ACDC arrays
# the RV lies left of the LV and typically 0-50 degrees below the horizontal (so the anterior wall faces
# up-left). The seed varies it by +-10 degrees.
RV_DIRECTION_DEG = 155.0


def contraction(phase: np.ndarray | float, es_phase: float = 0.375) -> np.ndarray:
    """0 at end-diastole, 1 at end-systole (``es_phase``), smooth and periodic for ``phase`` in [0, 1)."""
    phase = np.asarray(phase, dtype=float) % 1.0
    systole = 0.5 * (1 - np.cos(np.pi * phase / es_phase))
    diastole = 0.5 * (1 + np.cos(np.pi * (phase - es_phase) / (1 - es_phase)))
    return np.where(phase <= es_phase, systole, diastole)


@dataclass(frozen=True)
class Heart:
    """The heart's shape in mm, as functions of depth below the base ``z`` and contraction ``c`` (0..1)."""

    cavity_radius_ed: float
    cavity_length_ed: float
    cavity_radius_es: float
    cavity_length_es: float
    apex_wall_ed: float
    myocardial_constant: float  # a_epi^2 l_epi - a_cav^2 l_cav, proportional to the myocardial volume
    rv_angle: float  # direction from the LV centre to the RV (radians, of a (col, row) vector)
    rv_reach: float  # how far the RV free wall lies beyond the LV epicardium at the base (mm)
    rv_wrap: float  # half the angle of the septum the RV covers at the base (radians)
    rv_length: float  # depth at which the RV ends (mm)
    endo_harmonics: tuple
    epi_harmonics: tuple

    def lv_radii(self, z: float, c: float) -> tuple[float, float]:
        """Mean cavity and epicardial radius (mm) of the slice at depth ``z``."""
        a_cav = self.cavity_radius_ed + c * (self.cavity_radius_es - self.cavity_radius_ed)
        l_cav = self.cavity_length_ed + c * (self.cavity_length_es - self.cavity_length_ed)
        l_epi = l_cav + self.apex_wall_ed * (1 + 0.4 * c)
        a_epi = np.sqrt((self.myocardial_constant + a_cav**2 * l_cav) / l_epi)
        r_cav = a_cav * np.sqrt(max(0.0, 1 - (z / l_cav) ** 2))
        r_epi = a_epi * np.sqrt(max(0.0, 1 - (z / l_epi) ** 2))
        return float(r_cav), float(r_epi)

    def rv_ellipse(self, z: float, c: float) -> tuple[float, float, float] | None:
        """The RV cavity ellipse ``(offset along the RV direction, radial semi-axis, tangential semi-axis)``
        in mm, or ``None`` below the RV. The ellipse meets the epicardial circle at ``rv_angle +- wrap``."""
        taper = 1 - (z / self.rv_length) ** 2
        _, r_epi = self.lv_radii(z, c)
        if taper <= 0 or r_epi <= 0:
            return None
        taper = np.sqrt(taper)
        reach = self.rv_reach * (1 - 0.35 * c) * taper**0.6
        if reach < 2.0:
            return None
        wrap = self.rv_wrap * (0.65 + 0.35 * taper) * (1 - 0.15 * c)
        offset = 0.75 * r_epi  # the free wall meets the septum at ~40 degrees, as in real hearts
        radial = r_epi + reach - offset
        along = (r_epi * np.cos(wrap) - offset) / radial
        tangential = r_epi * np.sin(wrap) / np.sqrt(1 - along**2)
        return float(offset), float(radial), float(tangential)


def harmonics(rng: np.random.Generator, amplitude: float) -> tuple:
    return tuple((amplitude * rng.uniform(0.5, 1.0), order, rng.uniform(0, 2 * np.pi)) for order in (2, 3))


def modulation(angle: np.ndarray, harmonics: tuple) -> np.ndarray:
    """A smooth radius factor around 1: the LV is round but not a perfect circle."""
    out = np.ones_like(angle)
    for amplitude, order, phase in harmonics:
        out += amplitude * np.cos(order * angle - phase)
    return out


def smooth_noise(rng: np.random.Generator, shape: tuple, sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-variance smooth random field (tissue texture, flow and coil inhomogeneity)."""
    field_ = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_px, mode="wrap")
    return field_ / (field_.std() + 1e-12)


def superellipse(x, y, centre_xy, semi_xy, power=2.0) -> np.ndarray:
    """Normalised radius: < 1 inside a superellipse."""
    return (
        np.abs((x - centre_xy[0]) / semi_xy[0]) ** power + np.abs((y - centre_xy[1]) / semi_xy[1]) ** power
    ) ** (1.0 / power)


def ellipse_distance_mm(tu, tv, semi_u, semi_v) -> np.ndarray:
    """Signed distance (mm, negative inside) to an ellipse, first order: accurate within a few mm of it."""
    q = (tu / semi_u) ** 2 + (tv / semi_v) ** 2
    gradient = 2 * np.sqrt((tu / semi_u**2) ** 2 + (tv / semi_v**2) ** 2)
    return (q - 1) / np.maximum(gradient, 1e-6)


@dataclass(frozen=True)
class Surroundings:
    """What stays the same from slice to slice around the heart: body outline and abdominal organs."""

    body_harmonics: tuple
    fat_phase: float
    organ_seeds_xy: np.ndarray  # (n, 2) mm from the LV centre, at the base
    organ_drift_xy: np.ndarray  # (n, 2) mm per slice: organs change position from slice to slice
    organ_intensity: np.ndarray  # (n,)

    @classmethod
    def draw(cls, rng: np.random.Generator, num_organs: int = 22) -> Surroundings:
        seeds = np.stack([rng.uniform(-40, 150, num_organs), rng.uniform(40, 150, num_organs)], axis=1)
        # mostly dark-grey solid organs and bowel, a few bright with fluid
        intensity = np.where(rng.uniform(size=num_organs) < 0.2, 0.7, rng.uniform(0.14, 0.38, num_organs))
        return cls(
            body_harmonics=harmonics(rng, 0.03),
            fat_phase=float(rng.uniform(0, 2 * np.pi)),
            organ_seeds_xy=seeds,
            organ_drift_xy=rng.uniform(-3, 3, (num_organs, 2)),
            organ_intensity=intensity,
        )


def draw_background(x, y, k, num_slices, lv_xy, envelope, around: Surroundings, rng) -> np.ndarray:
    """The static anatomy of slice ``k`` (relative intensities); ``envelope`` is the space the heart moves
    in, kept free of the abdominal organs. ``x``/``y`` are column/row coordinates in mm from the FOV centre.
    """
    depth_fraction = k / max(num_slices - 1, 1)  # 0 at the base, 1 at the apex (more inferior)
    image = np.full(x.shape, INTENSITY["air"])
    # the oblique short-axis plane cuts the trunk wider than the field of view, as in most ACDC images
    body_centre = (-4.0, 22.0)
    angle = np.arctan2(y - body_centre[1], x - body_centre[0])
    body_r = superellipse(x, y, body_centre, (175.0, 132.0), 2.2) / modulation(angle, around.body_harmonics)
    body = body_r <= 1
    # approximate depth under the skin
    depth = np.hypot(x - body_centre[0], y - body_centre[1]) * (1 / np.maximum(body_r, 1e-6) - 1)
    fat_depth = 9.0 + 8.0 * np.sin(angle + around.fat_phase) ** 2
    image[body] = INTENSITY["fat"]
    muscle = body & (depth > fat_depth)
    image[muscle] = INTENSITY["muscle"]
    inner = body & (depth > fat_depth + 12.0)
    image[inner] = INTENSITY["tissue"]
    # fat between muscle bundles and in the mediastinum: the patchy look of a real chest
    image[muscle & (smooth_noise(rng, x.shape, 4.0) > 1.3)] = INTENSITY["fat"]
    image[inner & (smooth_noise(rng, x.shape, 5.0) > 1.4)] = INTENSITY["fat"]

    # below the diaphragm (rising towards the apical slices): liver on the patient's right (image left),
    # the other organs side by side with fat planes between them
    dome = (
        lv_xy[1]
        + 50.0
        - 28.0 * depth_fraction
        + 0.004 * (x - lv_xy[0] + 30.0) ** 2
        + 5.0 * np.sin(x / 23.0 + around.fat_phase)
    )
    abdomen = inner & (y > dome) & ~envelope
    seeds = lv_xy + around.organ_seeds_xy + k * around.organ_drift_xy
    to_seeds = np.hypot(x[..., np.newaxis] - seeds[:, 0], y[..., np.newaxis] - seeds[:, 1])
    nearest = np.argmin(to_seeds, axis=-1)
    two_nearest = np.partition(to_seeds, 1, axis=-1)[..., :2]
    organs = around.organ_intensity[nearest] * (1 + 0.08 * smooth_noise(rng, x.shape, 3.0))
    image[abdomen] = organs[abdomen]
    image[abdomen & (two_nearest[..., 1] - two_nearest[..., 0] < 3.5)] = INTENSITY["fat"]
    liver = abdomen & (x < lv_xy[0] + 35.0 + 0.3 * (y - lv_xy[1]))
    image[liver] = INTENSITY["liver"] * (1 + 0.06 * smooth_noise(rng, x.shape, 2.0))[liver]
    for _ in range(12):
        cx, cy = rng.uniform(-130, lv_xy[0] + 30), rng.uniform(lv_xy[1] + 40, 130)
        vessel = superellipse(x, y, (cx, cy), rng.uniform(1.5, 5.0, 2)) <= 1
        image[vessel & liver] = INTENSITY["liver_vessel"]

    # lungs: the left one above and lateral to the LV, the right one beyond the RV; the lateral lobe
    # shrinks towards the apex as the diaphragm comes up. They reach the heart, so where it contracts
    # away from them they fill the gap.
    lungs = np.zeros(x.shape, dtype=bool)
    lobes = (
        ((lv_xy[0] + 10.0, lv_xy[1] - 64.0), (105.0, 42.0)),
        ((lv_xy[0] + 74.0, lv_xy[1] + 0.0), (44.0, 70.0 * (1 - 0.3 * depth_fraction))),
        ((lv_xy[0] - 105.0, lv_xy[1] - 50.0), (34.0, 55.0)),
    )
    for centre, semi in lobes:
        centre = (centre[0] + rng.uniform(-5, 5), centre[1] + rng.uniform(-5, 5))
        r = superellipse(x, y, centre, semi, 2.5)
        lungs |= r / modulation(np.arctan2(y - centre[1], x - centre[0]), harmonics(rng, 0.05)) <= 1
    lungs &= inner & ~abdomen
    image[lungs] = INTENSITY["lung"]
    vy, vx = np.nonzero(lungs)
    if vy.size:  # lung vessels: small bright dots
        for index in rng.choice(vy.size, size=min(70, vy.size), replace=False):
            radius = rng.uniform(0.7, 2.2)
            dot = (x - x[vy[index], vx[index]]) ** 2 + (y - y[vy[index], vx[index]]) ** 2 <= radius**2
            image[dot & lungs] = INTENSITY["lung_vessel"] * rng.uniform(0.5, 1.3)

    # descending aorta behind the LV, next to the spine
    aorta = np.hypot(x - (lv_xy[0] + 30.0), y - (lv_xy[1] + 62.0)) <= 11.0
    image[aorta & inner & ~envelope] = INTENSITY["aorta"]
    spine_r = np.hypot(x - (lv_xy[0] + 4.0), y - (lv_xy[1] + 100.0))
    image[(spine_r <= 17.0) & body] = INTENSITY["cortex"]
    image[(spine_r <= 14.5) & body] = INTENSITY["marrow"]

    image[envelope & body & ~lungs] = INTENSITY["tissue"]
    texture = 1 + 0.07 * smooth_noise(rng, x.shape, 2.5)
    return image * np.where(lungs | ~body, 1.0, texture)


def insertion_angles(heart: Heart, z, c, rv) -> tuple[float, float] | None:
    """Angles (radians) on the epicardium where the RV cavity ellipse starts and ends."""
    offset, radial, tangential = rv
    _, r_epi = heart.lv_radii(z, c)
    relative = np.linspace(-np.pi, np.pi, 7201)
    radius = r_epi * modulation(heart.rv_angle + relative, heart.epi_harmonics)
    q = ((radius * np.cos(relative) - offset) / radial) ** 2 + (radius * np.sin(relative) / tangential) ** 2
    centre = relative.size // 2
    if q[centre] > 1:
        return None
    ends = []
    for direction in (-1, 1):
        i = centre
        while 0 < i < relative.size - 1 and q[i + direction] <= 1:
            i += direction
        j = i + direction
        # linear interpolation of q between the last point inside and the first outside
        t = (1 - q[i]) / (q[j] - q[i]) if q[j] != q[i] else 0.0
        ends.append(heart.rv_angle + relative[i] + t * (relative[j] - relative[i]))
    return ends[0], ends[1]


@dataclass
class SliceGrid:
    """Where the heart of one slice is drawn: a box of the image and polar/RV coordinates (mm) in it."""

    box: tuple[slice, slice]
    centre_xy: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    rho: np.ndarray
    tu: np.ndarray  # along the RV direction
    tv: np.ndarray  # across it
    endo_factor: np.ndarray
    epi_factor: np.ndarray
    fat_mm: np.ndarray
    texture: np.ndarray
    papillary_angles: list[float]
    trabeculae: list[tuple[float, float]]

    @classmethod
    def make(cls, heart, centre_xy, x_full, y_full, spacing_xy, depth_fraction, rng) -> SliceGrid:
        # everything the heart, its fat and its motion can reach
        half = heart.lv_radii(0.0, 0.0)[1] + heart.rv_reach + 20.0
        rows, cols = x_full.shape
        sx, sy = spacing_xy
        r0 = int(np.clip(np.floor((centre_xy[1] - half + rows * sy / 2) / sy), 0, rows))
        r1 = int(np.clip(np.ceil((centre_xy[1] + half + rows * sy / 2) / sy), 0, rows))
        c0 = int(np.clip(np.floor((centre_xy[0] - half + cols * sx / 2) / sx), 0, cols))
        c1 = int(np.clip(np.ceil((centre_xy[0] + half + cols * sx / 2) / sx), 0, cols))
        box = (slice(r0, r1), slice(c0, c1))
        dx, dy = x_full[box] - centre_xy[0], y_full[box] - centre_xy[1]
        phi = np.arctan2(dy, dx)
        u = (np.cos(heart.rv_angle), np.sin(heart.rv_angle))
        # epicardial fat is thickest in the grooves at the RV insertions and towards the base
        relative = np.angle(np.exp(1j * (phi - heart.rv_angle)))
        groove = np.exp(-(((np.abs(relative) - heart.rv_wrap) / 0.35) ** 2))
        fat_mm = (1.6 + 3.5 * groove) * (1.25 - 0.5 * depth_fraction) + 0.8 * (
            modulation(phi, harmonics(rng, 1.0)) - 1
        )
        return cls(
            box=box,
            centre_xy=np.asarray(centre_xy, dtype=float),
            dx=dx,
            dy=dy,
            rho=np.hypot(dx, dy),
            tu=dx * u[0] + dy * u[1],
            tv=-dx * u[1] + dy * u[0],
            endo_factor=modulation(phi, heart.endo_harmonics),
            epi_factor=modulation(phi, heart.epi_harmonics),
            fat_mm=np.clip(fat_mm, 0.6, None),
            texture=smooth_noise(rng, dx.shape, 2.0),
            papillary_angles=[
                heart.rv_angle + np.deg2rad(135.0 + rng.uniform(-15, 15)),  # anterolateral (up, right)
                heart.rv_angle + np.deg2rad(-45.0 + rng.uniform(-15, 15)),  # posteromedial (down, left)
            ],
            trabeculae=[(rng.uniform(-np.pi, np.pi), rng.uniform(0.82, 0.95)) for _ in range(7)],
        )

    def distance_to_heart_mm(self, heart: Heart, z: float, c: float):
        """Approximate distance (mm) to the outside of the LV and the RV free wall, with the RV ellipse."""
        _, r_epi = heart.lv_radii(z, c)
        d_lv = self.rho - r_epi * self.epi_factor
        rv = heart.rv_ellipse(z, c)
        if rv is None:
            return d_lv, None
        offset, radial, tangential = rv
        d_wall = ellipse_distance_mm(
            self.tu - offset, self.tv, radial + RV_FREE_WALL_MM, tangential + RV_FREE_WALL_MM
        )
        return np.minimum(d_lv, d_wall), rv

    def render(self, heart: Heart, z: float, c: float, background: np.ndarray):
        """The box's image (relative intensities) and labels at depth ``z`` and contraction ``c``, with the
        RV ellipse (``None`` where there is no RV) and the mean epicardial radius."""
        r_cav, r_epi = heart.lv_radii(z, c)
        d_heart, rv = self.distance_to_heart_mm(heart, z, c)
        image = background.copy()
        image[(d_heart > self.fat_mm) & (d_heart <= self.fat_mm + PERICARDIUM_MM)] = INTENSITY["pericardium"]
        image[(d_heart > 0) & (d_heart <= self.fat_mm)] = INTENSITY["fat"]
        epi = self.rho <= r_epi * self.epi_factor
        cavity = self.rho <= r_cav * self.endo_factor
        rv_cavity = np.zeros_like(epi)
        if rv is not None:
            offset, radial, tangential = rv
            inside = ((self.tu - offset) / radial) ** 2 + (self.tv / tangential) ** 2 <= 1
            rv_cavity = inside & ~epi
            image[(d_heart <= 0) & ~inside & ~epi] = INTENSITY["myocardium"]  # RV free wall, unlabelled
        image[epi] = INTENSITY["myocardium"] * (1 + 0.05 * self.texture[epi])
        # blood with a little flow-related inhomogeneity; RV blood a little darker than LV blood
        image[cavity] = INTENSITY["lv_blood"] * (1 + 0.04 * self.texture[cavity])
        image[rv_cavity] = INTENSITY["rv_blood"] * (1 - 0.05 * self.texture[rv_cavity])
        if r_cav > 6.0:
            # papillary muscles and trabeculae: dark in the image, cavity in the labels (as in ACDC)
            muscles = np.zeros_like(cavity)
            blobs = [(angle, 0.62, 2.6 + 1.6 * c) for angle in self.papillary_angles]
            blobs += [(angle, fraction, 1.3) for angle, fraction in self.trabeculae]
            for angle, fraction, radius in blobs:
                px, py = fraction * r_cav * np.cos(angle), fraction * r_cav * np.sin(angle)
                muscles |= (self.dx - px) ** 2 + (self.dy - py) ** 2 <= radius**2
            image[muscles & cavity] = INTENSITY["papillary"]
        label = np.zeros(epi.shape, dtype=np.uint8)
        label[epi] = 2
        label[cavity] = 3
        label[rv_cavity] = 1
        return image, label, rv, r_epi
