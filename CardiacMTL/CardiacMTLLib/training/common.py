"""What every trainer shares: the batch augmentation of the segmentation trainers and the record of how a
model was made."""

from __future__ import annotations

import numpy as np

from CardiacMTLLib import __version__


def run_record(command: str | None) -> dict:
    """How a model was made, for its manifest: the command line (as the front end gives it) and the
    software version."""
    return {"command": command, "software": f"CardiacMTL {__version__}"}


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
