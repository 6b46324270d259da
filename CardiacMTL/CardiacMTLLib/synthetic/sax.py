"""A synthetic short-axis cine whose ground truth is known exactly: labels, volumes, EF, RV insertions.

The LV is a truncated prolate ellipsoid (base at the first slice, apex near the last) whose cavity
contracts over a smooth periodic cycle (end-diastole at frame 0, end-systole at ~37 % of the cycle) while
the wall thickens so that the myocardial volume stays nearly constant; the RV is a crescent on the septum
with a thin unlabelled free wall, over the basal ~3/4 of the slices. Around the heart sit the tissues of
a bright-blood SSFP image laid out as in ACDC arrays (rows down, columns right: RV left of and slightly
below the LV, lung above and lateral, liver below): epicardial fat and pericardium, lungs with vessels,
chest wall muscle under bright subcutaneous fat, liver and bowel, aorta and spine, then a coil bias field,
partial-volume blur and Rician noise. Optional per-slice in-plane shifts mimic breath-hold
misregistration. Volumes are voxel counts of the label maps, so the ground truth is exact by
construction; this is the demo's case and the source of test cases with known answers.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from CardiacMTLLib.analysis.indices import volume_curve_ml
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.nifti import write_cine_nifti, write_label_map
from CardiacMTLLib.types import Cine, label_names_document

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


@dataclass
class SyntheticCase:
    """A generated cine with its exact ground truth.

    ``labels`` is ``(frames, slices, rows, cols)`` uint8 (0 background, 1 RV cavity, 2 LV myocardium,
    3 LV cavity); ``*_volume_ml`` are per-frame voxel-count volumes of those labels; ``ed_index`` and
    ``es_index`` are positions on the time axis. ``rv_insertion_points`` has one dict per frame, slice and
    insertion (``frame``, ``slice``, ``label`` ``RV_INSERT_ANTERIOR``/``RV_INSERT_INFERIOR``, ``ijk``
    voxel coordinates, ``ras`` world mm), where the RV cavity meets the LV epicardium.
    ``slice_shifts_mm`` is ``(slices, 2)``, the (row, col) breath-hold shift applied to each slice's heart.
    """

    cine: Cine
    labels: np.ndarray
    lv_volume_ml: np.ndarray
    rv_volume_ml: np.ndarray
    myo_volume_ml: np.ndarray
    ed_index: int
    es_index: int
    rv_insertion_points: list[dict] = field(default_factory=list)
    slice_shifts_mm: np.ndarray | None = None

    @property
    def lv_ejection_fraction(self) -> float:
        """LV ejection fraction in % from the label volumes at the true ED and ES."""
        ed, es = self.lv_volume_ml[self.ed_index], self.lv_volume_ml[self.es_index]
        return float(100.0 * (ed - es) / ed)

    @property
    def rv_ejection_fraction(self) -> float:
        """RV ejection fraction in % from the label volumes at the true ED and ES."""
        ed, es = self.rv_volume_ml[self.ed_index], self.rv_volume_ml[self.es_index]
        return float(100.0 * (ed - es) / ed)


def contraction(phase: np.ndarray | float, es_phase: float = 0.375) -> np.ndarray:
    """0 at end-diastole, 1 at end-systole (``es_phase``), smooth and periodic for ``phase`` in [0, 1)."""
    phase = np.asarray(phase, dtype=float) % 1.0
    systole = 0.5 * (1 - np.cos(np.pi * phase / es_phase))
    diastole = 0.5 * (1 + np.cos(np.pi * (phase - es_phase) / (1 - es_phase)))
    return np.where(phase <= es_phase, systole, diastole)


@dataclass(frozen=True)
class _Heart:
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


def _harmonics(rng: np.random.Generator, amplitude: float) -> tuple:
    return tuple((amplitude * rng.uniform(0.5, 1.0), order, rng.uniform(0, 2 * np.pi)) for order in (2, 3))


def _modulation(angle: np.ndarray, harmonics: tuple) -> np.ndarray:
    """A smooth radius factor around 1: the LV is round but not a perfect circle."""
    out = np.ones_like(angle)
    for amplitude, order, phase in harmonics:
        out += amplitude * np.cos(order * angle - phase)
    return out


def _smooth_noise(rng: np.random.Generator, shape: tuple, sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-variance smooth random field (tissue texture, flow and coil inhomogeneity)."""
    field_ = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_px, mode="wrap")
    return field_ / (field_.std() + 1e-12)


def _superellipse(x, y, centre_xy, semi_xy, power=2.0) -> np.ndarray:
    """Normalised radius: < 1 inside a superellipse."""
    return (
        np.abs((x - centre_xy[0]) / semi_xy[0]) ** power + np.abs((y - centre_xy[1]) / semi_xy[1]) ** power
    ) ** (1.0 / power)


def _ellipse_distance_mm(tu, tv, semi_u, semi_v) -> np.ndarray:
    """Signed distance (mm, negative inside) to an ellipse, first order: accurate within a few mm of it."""
    q = (tu / semi_u) ** 2 + (tv / semi_v) ** 2
    gradient = 2 * np.sqrt((tu / semi_u**2) ** 2 + (tv / semi_v**2) ** 2)
    return (q - 1) / np.maximum(gradient, 1e-6)


@dataclass(frozen=True)
class _Surroundings:
    """What stays the same from slice to slice around the heart: body outline and abdominal organs."""

    body_harmonics: tuple
    fat_phase: float
    organ_seeds_xy: np.ndarray  # (n, 2) mm from the LV centre, at the base
    organ_drift_xy: np.ndarray  # (n, 2) mm per slice: organs change position from slice to slice
    organ_intensity: np.ndarray  # (n,)

    @classmethod
    def draw(cls, rng: np.random.Generator, num_organs: int = 22) -> _Surroundings:
        seeds = np.stack([rng.uniform(-40, 150, num_organs), rng.uniform(40, 150, num_organs)], axis=1)
        # mostly dark-grey solid organs and bowel, a few bright with fluid
        intensity = np.where(rng.uniform(size=num_organs) < 0.2, 0.7, rng.uniform(0.14, 0.38, num_organs))
        return cls(
            body_harmonics=_harmonics(rng, 0.03),
            fat_phase=float(rng.uniform(0, 2 * np.pi)),
            organ_seeds_xy=seeds,
            organ_drift_xy=rng.uniform(-3, 3, (num_organs, 2)),
            organ_intensity=intensity,
        )


def _background(x, y, k, num_slices, lv_xy, envelope, around: _Surroundings, rng) -> np.ndarray:
    """The static anatomy of slice ``k`` (relative intensities); ``envelope`` is the space the heart moves
    in, kept free of the abdominal organs. ``x``/``y`` are column/row coordinates in mm from the FOV centre.
    """
    depth_fraction = k / max(num_slices - 1, 1)  # 0 at the base, 1 at the apex (more inferior)
    image = np.full(x.shape, INTENSITY["air"])
    # the oblique short-axis plane cuts the trunk wider than the field of view, as in most ACDC images
    body_centre = (-4.0, 22.0)
    angle = np.arctan2(y - body_centre[1], x - body_centre[0])
    body_r = _superellipse(x, y, body_centre, (175.0, 132.0), 2.2) / _modulation(angle, around.body_harmonics)
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
    image[muscle & (_smooth_noise(rng, x.shape, 4.0) > 1.3)] = INTENSITY["fat"]
    image[inner & (_smooth_noise(rng, x.shape, 5.0) > 1.4)] = INTENSITY["fat"]

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
    organs = around.organ_intensity[nearest] * (1 + 0.08 * _smooth_noise(rng, x.shape, 3.0))
    image[abdomen] = organs[abdomen]
    image[abdomen & (two_nearest[..., 1] - two_nearest[..., 0] < 3.5)] = INTENSITY["fat"]
    liver = abdomen & (x < lv_xy[0] + 35.0 + 0.3 * (y - lv_xy[1]))
    image[liver] = INTENSITY["liver"] * (1 + 0.06 * _smooth_noise(rng, x.shape, 2.0))[liver]
    for _ in range(12):
        cx, cy = rng.uniform(-130, lv_xy[0] + 30), rng.uniform(lv_xy[1] + 40, 130)
        vessel = _superellipse(x, y, (cx, cy), rng.uniform(1.5, 5.0, 2)) <= 1
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
        r = _superellipse(x, y, centre, semi, 2.5)
        lungs |= r / _modulation(np.arctan2(y - centre[1], x - centre[0]), _harmonics(rng, 0.05)) <= 1
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
    texture = 1 + 0.07 * _smooth_noise(rng, x.shape, 2.5)
    return image * np.where(lungs | ~body, 1.0, texture)


def _insertion_angles(heart: _Heart, z, c, rv) -> tuple[float, float] | None:
    """Angles (radians) on the epicardium where the RV cavity ellipse starts and ends."""
    offset, radial, tangential = rv
    _, r_epi = heart.lv_radii(z, c)
    relative = np.linspace(-np.pi, np.pi, 7201)
    radius = r_epi * _modulation(heart.rv_angle + relative, heart.epi_harmonics)
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
class _SliceGrid:
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
    def make(cls, heart, centre_xy, x_full, y_full, spacing_xy, depth_fraction, rng) -> _SliceGrid:
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
            _modulation(phi, _harmonics(rng, 1.0)) - 1
        )
        return cls(
            box=box,
            centre_xy=np.asarray(centre_xy, dtype=float),
            dx=dx,
            dy=dy,
            rho=np.hypot(dx, dy),
            tu=dx * u[0] + dy * u[1],
            tv=-dx * u[1] + dy * u[0],
            endo_factor=_modulation(phi, heart.endo_harmonics),
            epi_factor=_modulation(phi, heart.epi_harmonics),
            fat_mm=np.clip(fat_mm, 0.6, None),
            texture=_smooth_noise(rng, dx.shape, 2.0),
            papillary_angles=[
                heart.rv_angle + np.deg2rad(135.0 + rng.uniform(-15, 15)),  # anterolateral (up, right)
                heart.rv_angle + np.deg2rad(-45.0 + rng.uniform(-15, 15)),  # posteromedial (down, left)
            ],
            trabeculae=[(rng.uniform(-np.pi, np.pi), rng.uniform(0.82, 0.95)) for _ in range(7)],
        )

    def distance_to_heart_mm(self, heart: _Heart, z: float, c: float):
        """Approximate distance (mm) to the outside of the LV and the RV free wall, with the RV ellipse."""
        _, r_epi = heart.lv_radii(z, c)
        d_lv = self.rho - r_epi * self.epi_factor
        rv = heart.rv_ellipse(z, c)
        if rv is None:
            return d_lv, None
        offset, radial, tangential = rv
        d_wall = _ellipse_distance_mm(
            self.tu - offset, self.tv, radial + RV_FREE_WALL_MM, tangential + RV_FREE_WALL_MM
        )
        return np.minimum(d_lv, d_wall), rv

    def render(self, heart: _Heart, z: float, c: float, background: np.ndarray):
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


def generate_synthetic_cine(
    seed: int = 0,
    num_frames: int = 20,
    spacing_mm: tuple[float, float, float] = (1.5, 1.5, 8.0),
    shape: tuple[int, int, int] = (192, 192, 10),
    noise_std: float = 0.03,
    breath_hold_shift_mm: float = 0.0,
    height_cm: float = 175.0,
    weight_kg: float = 75.0,
    ejection_fraction: float = 0.6,
    lv_radius_mm: float = 28.0,
    wall_thickness_mm: float = 9.0,
    es_fraction: float = 0.375,
    rr_interval_ms: float = 900.0,
    subslices: int = 3,
) -> SyntheticCase:
    """Generate a synthetic short-axis SSFP cine with exact labels.

    ``shape`` is ``(rows, cols, slices)``, ``spacing_mm`` ``(col, row, slice)`` as in :class:`Cine`; the
    stack covers the LV as a planned short-axis stack does (base in the first slice, apex in the last),
    so the LV's length follows the number of slices times their spacing.
    ``noise_std`` is the Rician noise level relative to the LV blood signal, ``breath_hold_shift_mm`` the
    largest in-plane shift of a slice's heart (0: none). ``ejection_fraction`` (0..1) is the target LV EF;
    the exact one is that of the labels (``case.lv_ejection_fraction``). ``lv_radius_mm`` and
    ``wall_thickness_mm`` are the basal cavity radius and wall at ED; the seed varies them by a few %,
    and the heart's position, the RV, the surroundings, the noise and the shifts. ``es_fraction`` places
    end-systole in the cycle; ``subslices`` renders each slice at that many depths and averages the images
    (through-plane partial volume; labels are those of the slice centre).
    """
    rows, cols, num_slices = (int(n) for n in shape)
    if min(rows, cols) < 32 or num_slices < 2:
        raise CardiacInputError(f"shape must be (rows >= 32, cols >= 32, slices >= 2), got {shape}")
    if num_frames < 2:
        raise CardiacInputError(f"num_frames must be at least 2, got {num_frames}")
    spacing = tuple(float(s) for s in spacing_mm)
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise CardiacInputError(f"spacing_mm must be three positive numbers (mm), got {spacing_mm}")
    if not 0.05 <= ejection_fraction <= 0.85:
        raise CardiacInputError(f"ejection_fraction must be between 0.05 and 0.85, got {ejection_fraction}")
    if subslices < 1 or subslices % 2 == 0:
        raise CardiacInputError(
            f"subslices must be a positive odd number (one at the slice centre), got {subslices}"
        )
    if breath_hold_shift_mm < 0 or noise_std < 0:
        raise CardiacInputError(
            f"breath_hold_shift_mm and noise_std must not be negative, got {breath_hold_shift_mm}, {noise_std}"
        )
    sx, sy, sz = spacing
    rng = np.random.default_rng(seed)

    # ---- the heart, in mm; x runs along the columns, y along the rows, both from the FOV centre
    es_index = int(np.clip(round(es_fraction * num_frames), 1, num_frames - 1))
    es_phase = es_index / num_frames
    a_ed = lv_radius_mm * rng.uniform(0.94, 1.06)
    wall = wall_thickness_mm * rng.uniform(0.92, 1.08)
    l_ed = (num_slices - 1.2) * sz  # the cavity apex falls within the last slice
    l_es = 0.88 * l_ed
    apex_wall = 0.9 * wall
    # half-ellipsoid volume ~ a^2 l, so this ES radius gives the target EF
    a_es = a_ed * np.sqrt((1 - ejection_fraction) * l_ed / l_es)
    heart = _Heart(
        cavity_radius_ed=a_ed,
        cavity_length_ed=l_ed,
        cavity_radius_es=float(a_es),
        cavity_length_es=l_es,
        apex_wall_ed=apex_wall,
        myocardial_constant=(a_ed + wall) ** 2 * (l_ed + apex_wall) - a_ed**2 * l_ed,
        rv_angle=float(np.deg2rad(RV_DIRECTION_DEG + rng.uniform(-10, 10))),
        rv_reach=25.0 * rng.uniform(0.9, 1.1),
        rv_wrap=float(np.deg2rad(80.0 + rng.uniform(-6, 6))),
        rv_length=0.88 * l_ed,
        endo_harmonics=_harmonics(rng, 0.02),
        epi_harmonics=_harmonics(rng, 0.02),
    )
    lv_xy = np.array([10.0 + rng.uniform(-5, 5), -4.0 + rng.uniform(-5, 5)])
    around = _Surroundings.draw(rng)
    shifts_rc = np.zeros((num_slices, 2))
    if breath_hold_shift_mm > 0:
        angles = rng.uniform(0, 2 * np.pi, num_slices)
        magnitudes = breath_hold_shift_mm * np.sqrt(rng.uniform(0, 1, num_slices))
        shifts_rc = np.stack([magnitudes * np.sin(angles), magnitudes * np.cos(angles)], axis=1)

    y_full = ((np.arange(rows) + 0.5) * sy - rows * sy / 2)[:, np.newaxis] * np.ones((1, cols))
    x_full = ((np.arange(cols) + 0.5) * sx - cols * sx / 2)[np.newaxis, :] * np.ones((rows, 1))
    phases = np.arange(num_frames) / num_frames
    squeeze = contraction(phases, es_phase)
    bias = 0.9 + 0.25 * (np.hypot(x_full, y_full) / 150.0) ** 2 + 0.06 * _smooth_noise(rng, (rows, cols), 25)

    images = np.zeros((num_frames, num_slices, rows, cols), dtype=np.float32)
    labels = np.zeros((num_frames, num_slices, rows, cols), dtype=np.uint8)
    offsets = (np.arange(subslices) - subslices // 2) * sz / subslices
    insertions = {}
    for k in range(num_slices):
        z_mid = (k + 0.5) * sz
        grid = _SliceGrid.make(heart, lv_xy + shifts_rc[k, ::-1], x_full, y_full, (sx, sy), z_mid / l_ed, rng)
        # the space the heart moves in (its ED extent at the slice's most basal depth, with fat and a
        # margin) is kept free of the abdominal organs
        d_ed, _ = grid.distance_to_heart_mm(heart, max(z_mid + offsets[0], 0.0), 0.0)
        envelope = np.zeros((rows, cols), dtype=bool)
        envelope[grid.box] = d_ed <= grid.fat_mm + PERICARDIUM_MM + 3.0
        background = _background(x_full, y_full, k, num_slices, lv_xy, envelope, around, rng)
        for t in range(num_frames):
            c = float(squeeze[t])
            renders = [grid.render(heart, max(z_mid + dz, 0.0), c, background[grid.box]) for dz in offsets]
            slice_image = background.copy()
            slice_image[grid.box] = np.mean([image for image, *_ in renders], axis=0)
            images[t, k] = slice_image * bias
            _, label, rv, r_epi = renders[subslices // 2]  # labels are those of the slice centre
            labels[t, k][grid.box] = label
            if rv is not None and (label == 1).any() and (label == 2).any():
                ends = _insertion_angles(heart, z_mid, c, rv)
                if ends is not None:
                    insertions[(t, k)] = (grid.centre_xy, r_epi, ends)

    # in-plane partial-volume blur, then Rician noise (the magnitude of a complex Gaussian signal)
    images = ndimage.gaussian_filter(images, sigma=(0, 0, 0.9, 0.9))
    real = images + noise_std * rng.standard_normal(images.shape, dtype=np.float32)
    imaginary = noise_std * rng.standard_normal(images.shape, dtype=np.float32)
    images = np.rint(np.hypot(real, imaginary) * SIGNAL_SCALE).astype(np.float32)

    affine = np.diag([sx, sy, sz, 1.0])
    affine[:3, 3] = (-(cols - 1) * sx / 2, -(rows - 1) * sy / 2, -(num_slices - 1) * sz / 2)
    cine = Cine(
        data=images,
        spacing_mm=(sx, sy, sz),
        affine=affine,
        frame_numbers=list(range(num_frames)),
        source=f"synthetic cine (seed {seed})",
        trigger_times_ms=[round(float(p * rr_interval_ms), 3) for p in phases],
        height_cm=height_cm,
        weight_kg=weight_kg,
        image_stems=["synthetic_cine"],
    )
    points = []
    for (t, k), (centre, r_epi, ends) in sorted(insertions.items()):
        found = []
        for angle in ends:
            radius = r_epi * float(_modulation(np.array(angle), heart.epi_harmonics))
            x, y = centre + radius * np.array([np.cos(angle), np.sin(angle)])
            ijk = [(x + cols * sx / 2) / sx - 0.5, (y + rows * sy / 2) / sy - 0.5, float(k)]
            found.append(ijk)
        found.sort(key=lambda ijk: ijk[1])  # the anterior insertion is up in the image
        for name, ijk in zip(("RV_INSERT_ANTERIOR", "RV_INSERT_INFERIOR"), found, strict=True):
            ras = affine @ np.array(ijk + [1.0])
            points.append(
                {
                    "frame": t,
                    "slice": k,
                    "label": name,
                    "ijk": [round(float(v), 4) for v in ijk],
                    "ras": [round(float(v), 4) for v in ras[:3]],
                }
            )
    curve = volume_curve_ml(labels, cine.spacing_mm)
    return SyntheticCase(
        cine=cine,
        labels=labels,
        lv_volume_ml=curve["LV"],
        rv_volume_ml=curve["RV"],
        myo_volume_ml=curve["Myo"],
        ed_index=0,
        es_index=es_index,
        rv_insertion_points=points,
        slice_shifts_mm=shifts_rc,
    )


def write_synthetic_case(case: SyntheticCase, folder: str | Path) -> Path:
    """Write ``synthetic_cine.nii.gz`` (4D image), ``synthetic_cine_gt.nii.gz`` (4D labels) and
    ``ground_truth.json`` (volumes per frame, ED/ES, ejection fractions, shifts, RV insertions) into
    ``folder``; NIfTI arrays are ``(i, j, k, t)`` with the cine's affine."""

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_cine_nifti(case.cine, folder / "synthetic_cine.nii.gz")
    write_label_map(case.labels, case.cine.affine, folder / "synthetic_cine_gt.nii.gz", case.cine.spacing_mm)
    truth = {
        "image": "synthetic_cine.nii.gz",
        "labels": "synthetic_cine_gt.nii.gz",
        "label_names": label_names_document(),
        "spacing_mm": list(case.cine.spacing_mm),
        "height_cm": case.cine.height_cm,
        "weight_kg": case.cine.weight_kg,
        "ed_index": case.ed_index,
        "es_index": case.es_index,
        "lv_ejection_fraction_percent": round(case.lv_ejection_fraction, 4),
        "rv_ejection_fraction_percent": round(case.rv_ejection_fraction, 4),
        "lv_volume_ml": [round(float(v), 4) for v in case.lv_volume_ml],
        "rv_volume_ml": [round(float(v), 4) for v in case.rv_volume_ml],
        "myo_volume_ml": [round(float(v), 4) for v in case.myo_volume_ml],
        "slice_shifts_mm_row_col": None
        if case.slice_shifts_mm is None
        else np.round(case.slice_shifts_mm, 4).tolist(),
        "rv_insertion_points": case.rv_insertion_points,
    }
    # written next to its place and renamed, so a failed write leaves no half file
    handle, staging = tempfile.mkstemp(prefix=".ground_truth.", suffix=".json", dir=folder)
    with os.fdopen(handle, "w") as f:
        json.dump(truth, f, indent=1)
    os.replace(staging, folder / "ground_truth.json")
    return folder
