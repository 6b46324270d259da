"""ACDC patient folders: frame files or the 4D file, and the Info.cfg entries inference may use (never Group)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.nifti import is_nifti, nifti_stem, read_checked_nifti, read_nifti_cine
from CardiacMTLLib.io.patient import checked_body_size
from CardiacMTLLib.types import Cine

ACDC_FRAME_RE = re.compile(r"^(?P<patient>.+)_frame(?P<frame>\d+)\.nii(\.gz)?$")
# Info.cfg keys inference may use; ``Group`` is the diagnosis label and must never reach inference.
ACDC_INFERENCE_KEYS = ("ED", "ES", "Height", "Weight", "NbFrame")


def read_acdc_info(path: str | Path) -> dict[str, str]:
    """Parse an ACDC ``Info.cfg`` (``Key: value`` lines) into a dict of strings."""
    info: dict[str, str] = {}
    for line in Path(path).read_text(encoding="utf-8-sig").splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            info[key.strip()] = value.strip()
    return info


def acdc_frame_files(folder: str | Path) -> list[tuple[int, Path]]:
    """The image frames of an ACDC patient folder as ``(frame number, path)``, ground truth excluded."""
    frames = []
    for path in sorted(Path(folder).iterdir()):
        match = ACDC_FRAME_RE.match(path.name)
        if match and not path.name.endswith(("_gt.nii.gz", "_gt.nii")):
            frames.append((int(match.group("frame")), path))
    return frames


# --------------------------------------------------------------------------------------------------
# ACDC patient folders


def _acdc_4d_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and nifti_stem(p).endswith("_4d") and is_nifti(p)
    )


def is_acdc_folder(folder: Path) -> bool:
    return (folder / "Info.cfg").is_file() or bool(acdc_frame_files(folder)) or bool(_acdc_4d_files(folder))


def _read_acdc_inference_info(path: Path) -> dict[str, str]:
    """The ``Info.cfg`` entries inference may use; every other line, ``Group`` above all, is skipped unparsed."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # an editor's byte-order mark would hide the first key
    except (OSError, UnicodeDecodeError) as e:
        raise CardiacInputError(f"{path}: cannot read the ACDC patient information ({e})") from e
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ACDC_INFERENCE_KEYS:
            info[key.strip()] = value.strip()
    return info


def _info_number(info: dict[str, str], key: str, path: Path) -> float | None:
    if not info.get(key):
        return None
    try:
        value = float(info[key])
    except ValueError as e:
        raise CardiacInputError(f"{path}: {key} must be a number, got {info[key]!r}") from e
    return value if np.isfinite(value) and value > 0 else None


def has_4d_cine(folder: Path) -> bool:
    """Whether an ACDC patient folder holds its whole cine (one ``patientNNN_4d.nii.gz``)."""
    return Path(folder).is_dir() and len(_acdc_4d_files(Path(folder))) == 1


def read_acdc_folder(
    folder: Path, all_frames: bool = False, size_given: tuple[bool, bool] = (False, False)
) -> Cine:
    """An ACDC patient folder: its ED and ES frame files (``patientNNN_frameMM.nii.gz``), or with
    ``all_frames`` (or without frame files) every frame of its ``patientNNN_4d.nii.gz``, with the ED and ES
    frames, height and weight of ``Info.cfg``. ``size_given``: whether the user gives the height and the
    weight, which then replace the file's (a value in the file no person has is refused only when used)."""
    info_path = folder / "Info.cfg"
    info = _read_acdc_inference_info(info_path) if info_path.is_file() else {}
    frame_files = acdc_frame_files(folder)
    if all_frames and not has_4d_cine(folder):
        raise CardiacInputError(
            f"{folder}: all frames asked for, but the folder has no patientNNN_4d.nii.gz cine"
        )
    if frame_files and not all_frames:
        numbers = [n for n, _ in frame_files]
        if len(set(numbers)) != len(numbers):
            raise CardiacInputError(
                f"{folder}: several files for one frame number: {[p.name for _, p in frame_files]}"
            )
        volumes = []
        for _, path in frame_files:
            data, zooms, affine, _ = read_checked_nifti(path)
            if data.ndim != 3:
                raise CardiacInputError(
                    f"{path}: an ACDC frame file must be a 3D image, found {data.ndim}D with shape {data.shape}"
                )
            volumes.append((path, data, zooms[:3], affine))
        first_path, first_data, first_zooms, first_affine = volumes[0]
        for path, data, zooms, affine in volumes[1:]:
            if data.shape != first_data.shape:
                raise CardiacInputError(
                    f"{path}: shape {data.shape} differs from {first_path.name} {first_data.shape}; "
                    "all frames of a cine must share one grid"
                )
            if not np.allclose(zooms, first_zooms, rtol=1e-5) or not np.allclose(
                affine, first_affine, atol=1e-4
            ):
                raise CardiacInputError(
                    f"{path}: spacing {zooms} / affine {affine.tolist()} differ from {first_path.name} "
                    f"({first_zooms} / {first_affine.tolist()}); all frames of a cine must share one grid"
                )
        cine = Cine(
            data=np.stack([np.transpose(data, (2, 1, 0)) for _, data, _, _ in volumes]),
            spacing_mm=tuple(first_zooms),
            affine=first_affine,
            frame_numbers=numbers,
            source=str(folder),
            image_stems=[nifti_stem(p) for p, *_ in volumes],
            extra={"image_files": [str(p) for p, *_ in volumes]},
        )
    else:
        four_d = _acdc_4d_files(folder)
        if len(four_d) != 1:
            raise CardiacInputError(
                f"{folder}: expected an ACDC patient folder with patientNNN_frameMM.nii.gz frame files or "
                f"one patientNNN_4d.nii.gz cine, found "
                + (f"{len(four_d)} 4D files: {[p.name for p in four_d]}" if four_d else "neither")
            )
        cine = read_nifti_cine(four_d[0])
        cine.source = str(folder)
        # ACDC numbers frames from 1 (frame01 is the first time point of the 4D file), as ED/ES do
        cine.frame_numbers = list(range(1, cine.num_frames + 1))
    warnings = cine.extra.setdefault("warnings", [])
    for key, attribute in (("ED", "end_diastole"), ("ES", "end_systole")):
        value = _info_number(info, key, info_path)
        # a frame Info.cfg names but the folder lacks is left for the pipeline to find from the volume curve
        if value is not None and int(value) in cine.frame_numbers:
            setattr(cine, attribute, int(value))
        elif value is not None:
            warnings.append(
                f"{info_path}: {key} frame {int(value)} is not in the folder (frames {cine.frame_numbers}); "
                "the LV volume curve chooses it"
            )
    if cine.end_diastole is not None and cine.end_diastole == cine.end_systole:
        # the volumes can still be measured (the curve chooses), but a diagnosis on unconfirmed frames is not
        cine.extra["metadata_conflicts"] = [
            f"{info_path} names frame {cine.end_diastole} as both ED and ES; the LV volume curve chose them"
        ]
        cine.end_diastole = cine.end_systole = None
    # 0 (or less) says "not measured", as in DICOM; a number no person has is a mistake in the file
    height, weight = _info_number(info, "Height", info_path), _info_number(info, "Weight", info_path)
    given_height, given_weight = size_given
    cine.height_cm = None if given_height else checked_body_size("height", height, f"{info_path}: Height")
    cine.weight_kg = None if given_weight else checked_body_size("weight", weight, f"{info_path}: Weight")
    cine.extra["acdc_info"] = info
    return cine
