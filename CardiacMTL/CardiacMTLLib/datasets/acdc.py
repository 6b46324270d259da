"""The ACDC training data: the patients, their groups and the one stratified split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.cine import acdc_frame_files, read_acdc_info

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


def stratified_split(
    patients: list[tuple[str, str]], val_per_group: int, seed: int
) -> tuple[list[str], list[str]]:
    """Hold out ``val_per_group`` patients of every group, chosen with a seeded permutation."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for group in sorted({g for _, g in patients}):
        members = sorted(p for p, g in patients if g == group)
        order = rng.permutation(len(members))
        val += [members[i] for i in order[:val_per_group]]
        train += [members[i] for i in order[val_per_group:]]
    return sorted(train), sorted(val)


def load_annotated_frames(data_dir: Path, patient: str) -> list[tuple[int, Path, Path]]:
    """Frames of a patient that have ground truth: ``(frame number, image path, label path)``."""
    out = []
    for frame, path in acdc_frame_files(Path(data_dir) / patient):
        gt = path.with_name(path.name.replace(".nii", "_gt.nii"))
        if gt.exists():
            out.append((frame, path, gt))
    return out
