"""What every trainer shares: the batch augmentation of the segmentation trainers and the record of how a
model was made."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from CardiacMTLLib import __version__
from CardiacMTLLib.atomic import claim_folder, files_written_by_project, record_written
from CardiacMTLLib.errors import CardiacOutputError


def run_record(command: str | None) -> dict:
    """How a model was made, for its manifest: the command line (as the front end gives it) and the
    software version."""
    return {"command": command, "software": f"CardiacMTL {__version__}"}


def claim_run_folder(
    out: str | Path, run_files: Sequence[str], inputs: Sequence[str | Path] = ()
) -> tuple[Path, Path | None]:
    """The run folder ``out`` of a resumable trainer, under the output policy: a new or empty folder, or
    the folder of an earlier run of the same trainer (its manifest lists only ``run_files`` and what is
    inside them), which the trainer resumes. A folder with anyone else's files is refused before any work.

    A run folder from before run folders had a manifest (only ``run_files`` in it, a ``checkpoint.pt``
    among them) is taken as one. Returns the folder and the topmost folder this call created (None when
    ``out`` was there already), which :func:`remove_unstarted_run` removes when the run fails before it
    has a checkpoint to resume from."""
    folder = Path(out).expanduser()
    created = None
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        created = candidate
    if folder.is_dir() and any(folder.iterdir()):
        entries = sorted(e.name for e in folder.iterdir())
        listed = files_written_by_project(folder)
        from_before_manifests = set(entries) <= {*run_files, "checkpoint.tmp"} and "checkpoint.pt" in entries
        if listed is None and from_before_manifests:
            record_written(folder, *(folder / name for name in entries))
        elif listed is None:
            raise CardiacOutputError(
                f"{out}: already holds files that are not a run of this command ({', '.join(entries[:5])}); "
                "give a new or empty folder, or the folder of the run to resume"
            )
        elif not all(Path(f).parts[0] in run_files for f in listed):
            raise CardiacOutputError(
                f"{out}: holds the results of another command; give a new folder for this run, or the "
                "folder of the run to resume"
            )
        listed = files_written_by_project(folder) or []
        for name in run_files:  # a file of the trainer's name that the manifest does not list is not its
            if (folder / name).exists() and not any(Path(f).parts[0] == name for f in listed):
                raise CardiacOutputError(
                    f"{out}: its {name} was not written by this command; give a new folder for the run"
                )
    return claim_folder(folder, inputs=inputs, overwrite=True), created


def remove_unstarted_run(run_dir: Path, created: Path | None) -> None:
    """After a failure: the folders :func:`claim_run_folder` created, unless the run wrote a checkpoint
    to resume from (a folder that was there before is left as it was, the trainer's files in it complete)."""
    if created is not None and not (run_dir / "checkpoint.pt").exists():
        shutil.rmtree(created, ignore_errors=True)


def augment_batch(images, labels, centers, crop: int, rng: np.random.Generator, torch):
    """Random rotation/scale/shift around the heart, contrast and noise; labels by nearest neighbour."""
    import torch.nn.functional as F

    b, h, w = images.shape
    angle = np.deg2rad(rng.uniform(-40, 40, b))
    scale = rng.uniform(0.8, 1.2, b)
    shift = rng.uniform(-36, 36, (b, 2))  # pixels: the heart is not always in the middle at inference
    cr = centers[:, 0] + shift[:, 0]
    cc = centers[:, 1] + shift[:, 1]
    # affine_grid works in normalised (x=col, y=row) coordinates of the source image
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    theta = np.zeros((b, 2, 3), dtype=np.float32)
    theta[:, 0, 0] = cos * crop / w
    theta[:, 0, 1] = -sin * crop / w
    theta[:, 1, 0] = sin * crop / h
    theta[:, 1, 1] = cos * crop / h
    theta[:, 0, 2] = (cc + 0.5) / w * 2 - 1
    theta[:, 1, 2] = (cr + 0.5) / h * 2 - 1
    grid = F.affine_grid(torch.from_numpy(theta), (b, 1, crop, crop), align_corners=False)
    fill = images.amin(dim=(1, 2), keepdim=True)
    x = F.grid_sample((images - fill)[:, None], grid, mode="bilinear", align_corners=False)[:, 0] + fill
    y = F.grid_sample(labels[:, None].float(), grid, mode="nearest", align_corners=False)[:, 0].long()
    contrast = torch.from_numpy(rng.uniform(0.75, 1.3, (b, 1, 1)).astype(np.float32))
    offset = torch.from_numpy(rng.uniform(-0.25, 0.25, (b, 1, 1)).astype(np.float32))
    gamma_mix = torch.from_numpy(rng.uniform(0.0, 0.08, (b, 1, 1)).astype(np.float32))
    x = x * contrast + offset + gamma_mix * torch.randn_like(x)
    return x[:, None], y
