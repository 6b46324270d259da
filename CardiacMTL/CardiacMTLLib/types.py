"""The types that cross module boundaries: the label values, the cine, the diagnosis classes and the
result of ``analyze``."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from CardiacMTLLib.errors import CardiacInputError


class Label(IntEnum):
    """The one definition of the label values of every segmentation the project reads or writes."""

    BACKGROUND = 0
    RV_CAVITY = 1
    LV_MYOCARDIUM = 2
    LV_CAVITY = 3

    @property
    def display_name(self) -> str:
        """The name in files and the scene: "RV cavity", "LV myocardium", "LV cavity"."""
        return _DISPLAY_NAMES[self]

    @property
    def short_name(self) -> str:
        """The short name of tables, curves and model manifests: "RV", "Myo", "LV"."""
        return _SHORT_NAMES[self]

    @property
    def colour(self) -> str:
        """The colour of the structure in every view and figure (hex, matplotlib's tab10)."""
        return _COLOURS[self]

    @property
    def colour_rgb(self) -> tuple[float, float, float]:
        """:attr:`colour` as 0-1 RGB (Slicer segments and plots)."""
        h = self.colour.lstrip("#")
        return tuple(int(h[i : i + 2], 16) / 255 for i in (0, 2, 4))


_DISPLAY_NAMES = {0: "background", 1: "RV cavity", 2: "LV myocardium", 3: "LV cavity"}
_SHORT_NAMES = {0: "background", 1: "RV", 2: "Myo", 3: "LV"}
_COLOURS = {0: "#000000", 1: "#1f77b4", 2: "#2ca02c", 3: "#d62728"}
# the three structures, in label order
STRUCTURES = (Label.RV_CAVITY, Label.LV_MYOCARDIUM, Label.LV_CAVITY)


def label_names_document(short: bool = False) -> dict[str, str]:
    """``{"0": "background", "1": "RV cavity", ...}`` as ``indices.json`` and the manifests write it."""
    return {str(int(v)): (v.short_name if short else v.display_name) for v in Label}


def metric_affine(affine: np.ndarray, spacing_mm) -> np.ndarray:
    """The 4 x 4 map from voxel index (i, j, k) to RAS millimetres: the affine's directions scaled by the
    true voxel spacing, its origin kept. The same as the affine for a file whose affine holds the spacing;
    ACDC's files store a unit affine beside their pixdim, which Slicer and ITK place in millimetres so."""
    affine = np.asarray(affine, dtype=float)
    if affine.shape != (4, 4):
        raise CardiacInputError(f"the affine must be 4 x 4, got shape {affine.shape}")
    norms = np.linalg.norm(affine[:3, :3], axis=0)
    if np.any(norms < 1e-9):
        raise CardiacInputError(f"the affine has a zero column, so no orientation: {affine.tolist()}")
    matrix = np.eye(4)
    matrix[:3, :3] = affine[:3, :3] / norms * np.asarray(spacing_mm, dtype=float)
    matrix[:3, 3] = affine[:3, 3]
    return matrix


@dataclass
class Cine:
    """A short-axis cine: ``data[frame, slice, row, col]`` plus geometry and what is known of the patient.

    ``sex`` is ``"M"``, ``"F"`` or ``None`` (not recorded): the criteria with limits for men and women
    judge a value between the two only when it is known. ``frame_numbers`` name the frames as the user knows them (ACDC's 1-based file numbers, otherwise the
    0-based index on the time axis). ``end_diastole``/``end_systole`` are frame numbers when the input
    names them, else ``None`` (the pipeline then picks them from the LV volume curve).
    """

    data: np.ndarray
    spacing_mm: tuple[float, float, float]
    affine: np.ndarray
    frame_numbers: list[int]
    source: str = ""
    trigger_times_ms: list[float] | None = None
    height_cm: float | None = None
    weight_kg: float | None = None
    sex: str | None = None  # "M" or "F" when recorded (DICOM PatientSex, the user); sex-specific criteria
    end_diastole: int | None = None
    end_systole: int | None = None
    image_stems: list[str] | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data)
        if self.data.ndim != 4:
            raise CardiacInputError(
                f"{self.source or 'cine'}: expected a 4D array (frames, slices, rows, cols), "
                f"got shape {self.data.shape}"
            )
        if self.data.size == 0 or min(self.data.shape) == 0:
            raise CardiacInputError(f"{self.source or 'cine'}: the image is empty (shape {self.data.shape})")
        # NaN propagates through min and max, and an infinity is one of them: two reductions instead of
        # a mask of the whole cine
        if not (np.isfinite(self.data.min()) and np.isfinite(self.data.max())):
            raise CardiacInputError(f"{self.source or 'cine'}: the image contains NaN or infinite values")
        spacing = tuple(float(s) for s in self.spacing_mm)
        if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
            raise CardiacInputError(
                f"{self.source or 'cine'}: voxel spacing must be three positive numbers, got {self.spacing_mm}"
            )
        self.spacing_mm = spacing
        self.affine = np.asarray(self.affine, dtype=float)
        if len(self.frame_numbers) != self.data.shape[0]:
            raise CardiacInputError(
                f"{self.source or 'cine'}: {len(self.frame_numbers)} frame numbers for "
                f"{self.data.shape[0]} frames"
            )

    @property
    def ras_affine(self) -> np.ndarray:
        """Voxel index (i, j, k) to RAS mm (:func:`metric_affine`): where landmarks' ``ras`` and the scene's
        nodes are."""
        return metric_affine(self.affine, self.spacing_mm)

    @property
    def num_frames(self) -> int:
        return int(self.data.shape[0])

    @property
    def num_slices(self) -> int:
        return int(self.data.shape[1])

    @property
    def voxel_volume_ml(self) -> float:
        return float(np.prod(self.spacing_mm)) / 1000.0

    @property
    def inplane_spacing_rc_mm(self) -> tuple[float, float]:
        """(row, col) spacing in mm, the order the in-plane arrays use."""
        return (self.spacing_mm[1], self.spacing_mm[0])

    def frame(self, index: int) -> np.ndarray:
        """The image at position ``index`` on the time axis as ``(slices, rows, cols)`` (not a frame number)."""
        return self.data[index]

    def frame_index(self, frame_number: int) -> int:
        """Position on the time axis of the frame the user calls ``frame_number``."""
        try:
            return self.frame_numbers.index(int(frame_number))
        except ValueError as e:
            raise CardiacInputError(
                f"{self.source}: frame {frame_number} is not in this cine (frames {self.frame_numbers})"
            ) from e


CLASSES = ("NOR", "MINF", "DCM", "HCM", "ARV")
# ACDC's Info.cfg writes the abnormal right ventricle group as "RV"
ACDC_GROUP_TO_CLASS = {"NOR": "NOR", "MINF": "MINF", "DCM": "DCM", "HCM": "HCM", "RV": "ARV"}
CLASS_NAMES = {
    "NOR": "normal",
    "MINF": "previous myocardial infarction (systolic heart failure)",
    "DCM": "dilated cardiomyopathy",
    "HCM": "hypertrophic cardiomyopathy",
    "ARV": "abnormal right ventricle",
}


@dataclass
class AnalysisResult:
    """Everything ``analyze`` found for one cine; ``labels`` is ``(frames, slices, rows, cols)``."""

    cine: Cine
    labels: np.ndarray
    indices: dict
    volume_curve_ml: dict
    ed_index: int
    es_index: int
    provenance: dict = field(default_factory=dict)
    diagnosis: dict | None = None
    qc: list[dict] = field(default_factory=list)
    landmarks: list[dict] = field(default_factory=list)
    # the fitted LV model (CardiacAtlasLib.fit results by "ED"/"ES"), when analyze was asked to fit it
    lv_fit: dict | None = None
    # radial and circumferential strain (an analysis.strain.StrainResult), when the cine has ED and ES
    strain: object | None = None
