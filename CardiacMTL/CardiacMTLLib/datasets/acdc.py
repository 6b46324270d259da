"""The ACDC training data: the patients, their groups, their annotated frames and the one training/validation
split every trainer, evaluation and benchmark uses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.acdc import acdc_frame_files, read_acdc_info

ACDC_GROUPS = ("DCM", "HCM", "MINF", "NOR", "RV")


def list_acdc_patients(data_dir: Path) -> list[tuple[str, str]]:
    """``(patient id, group)`` for every patient folder with an ``Info.cfg`` (training/evaluation only)."""
    patients = []
    for folder in sorted(Path(data_dir).glob("patient*")):
        info_path = folder / "Info.cfg"
        if info_path.exists():
            patients.append((folder.name, read_acdc_info(info_path).get("Group", "unknown")))
    if not patients:
        raise CardiacInputError(f"{data_dir}: no ACDC patient folders (patientNNN/Info.cfg) found")
    return patients


@dataclass(frozen=True)
class AcdcSplit:
    """Patient ids (sorted) a model trains on and those held out to validate it."""

    train: list[str]
    validation: list[str]


def acdc_split(
    data_dir: str | Path,
    val_per_group: int = 4,
    seed: int = 0,
    from_manifest: str | Path | None = None,
) -> AcdcSplit:
    """The training/validation split of the ACDC patients in ``data_dir``.

    By default ``val_per_group`` patients of every group are held out, chosen with a permutation seeded by
    ``seed`` (the split the segmentation models record in their manifests). With ``from_manifest`` (a
    model's ``manifest.json``), its recorded ``validation_patients`` are held out and every other patient
    trains: a model trained after the segmentation network is then validated on patients neither saw.
    """
    patients = list_acdc_patients(Path(data_dir))
    if from_manifest is not None:
        path = Path(from_manifest)
        try:
            validation = sorted(json.loads(path.read_text())["training"]["validation_patients"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CardiacInputError(
                f"{path}: expected a model manifest with training.validation_patients ({e})"
            ) from e
        held_out = set(validation)
        return AcdcSplit(sorted(p for p, _ in patients if p not in held_out), validation)
    rng = np.random.default_rng(seed)
    train, validation = [], []
    for group in sorted({g for _, g in patients}):
        members = sorted(p for p, g in patients if g == group)
        order = rng.permutation(len(members))
        validation += [members[i] for i in order[:val_per_group]]
        train += [members[i] for i in order[val_per_group:]]
    return AcdcSplit(sorted(train), sorted(validation))


def load_annotated_frames(data_dir: Path, patient: str) -> list[tuple[int, Path, Path]]:
    """Frames of a patient that have ground truth: ``(frame number, image path, label path)``."""
    out = []
    for frame, path in acdc_frame_files(Path(data_dir) / patient):
        gt = path.with_name(path.name.replace(".nii", "_gt.nii"))
        if gt.exists():
            out.append((frame, path, gt))
    return out


def ed_es_frames(data_dir: Path, patient: str) -> list[tuple[int, Path, Path]]:
    """``(frame number, image path, expert label path)`` of a patient's ED and ES frames (``Info.cfg``)."""
    folder = Path(data_dir) / patient
    info = read_acdc_info(folder / "Info.cfg")
    out = []
    for key in ("ED", "ES"):
        frame = int(info[key])
        image = folder / f"{patient}_frame{frame:02d}.nii.gz"
        out.append((frame, image, image.with_name(image.name.replace(".nii", "_gt.nii"))))
    return out
