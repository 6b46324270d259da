"""What the landmark trainers share: the VGG16-style regression network's arguments, augmentation that moves
the points with the image, batched prediction and the error statistics (mm) of found points."""

from __future__ import annotations

import numpy as np


def vgg_kwargs(config) -> dict:
    """Constructor arguments of the landmark network (both views) from a trainer's configuration."""
    return {
        "in_channels": 1,
        "num_points": 2,
        "width": config.width,
        "dense_units": config.dense_units,
        "size": config.size,
        "batch_norm": config.batch_norm,
    }


def vgg_manifest(config, view: str, landmarks, output: str, training: dict) -> dict:
    """The manifest of a landmark network model folder: what inference rebuilds it and its input from."""
    return {
        "model_id": config.model_id,
        "version": "0.1.0",
        "task": "landmarks",
        "view": view,
        "landmarks": list(landmarks),
        "network": "VGGLandmarkNet",
        "network_kwargs": vgg_kwargs(config),
        "preprocessing": {
            "target_spacing_mm": config.spacing,
            "input_size": config.size,
            "normalisation": "per-image whitening (zero mean, unit standard deviation), then zero padding",
            "output": output,
        },
        "training": training,
    }


def random_affine(batch: int, size: int, rng: np.random.Generator, scale_range, flip: str | None = None):
    """Augmentation matrices ``theta`` for ``affine_grid`` (output -> input, normalised coordinates)."""
    angle = np.deg2rad(rng.uniform(-45, 45, batch))
    shift = rng.uniform(-25, 25, (batch, 2)) * size / 256.0 * 2.0 / size  # +-25 px of a 256 image
    shear = rng.uniform(-0.2, 0.2, batch)
    scale = rng.uniform(*scale_range, batch) if scale_range else np.ones(batch)
    theta = np.zeros((batch, 2, 3), dtype=np.float32)
    for b in range(batch):
        rotation = np.array([[np.cos(angle[b]), -np.sin(angle[b])], [np.sin(angle[b]), np.cos(angle[b])]])
        matrix = rotation @ np.array([[1.0, shear[b]], [0.0, 1.0]]) / scale[b]
        kind = flip[b] if isinstance(flip, list | tuple | np.ndarray) else flip
        if kind == "horizontal" and rng.uniform() < 0.3:
            matrix = matrix @ np.diag([-1.0, 1.0])
        elif kind == "vertical" and rng.uniform() < 0.3:
            matrix = matrix @ np.diag([1.0, -1.0])
        theta[b, :, :2] = matrix
        theta[b, :, 2] = shift[b]
    return theta


def augment(images, targets, rng, scale_range=(0.8, 1.2), flip=None, sort_by_x: bool = False):
    """Warp a ``(N, size, size)`` batch and move its ``(N, 2k)`` targets with it (torch tensors).

    ``flip`` is ``None``, ``"horizontal"``/``"vertical"`` or one of those per sample; ``sort_by_x``
    re-orders each sample's points by x afterwards (landmarks named by their side in the image).
    """
    import torch
    import torch.nn.functional as F

    n, size = images.shape[0], images.shape[-1]
    theta = random_affine(n, size, rng, scale_range, flip)
    grid = F.affine_grid(torch.from_numpy(theta), (n, 1, size, size), align_corners=False)
    warped = F.grid_sample(images[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # a target at input position p (normalised -1..1) lands where A q + t = p, q = A^-1 (p - t)
    points = targets.numpy().reshape(n, -1, 2) * 2.0 - 1.0
    moved = np.einsum("nij,nkj->nki", np.linalg.inv(theta[:, :, :2]), points - theta[:, None, :, 2])
    if sort_by_x:
        moved = np.take_along_axis(moved, np.argsort(moved[..., 0], axis=1)[..., None], axis=1)
    return warped, torch.from_numpy(((moved + 1.0) / 2.0).reshape(n, -1).astype(np.float32))


def predict_points(net, images: np.ndarray, batch: int = 64) -> np.ndarray:
    """The network's normalised point coordinates ``(N, 2k)`` for ``(N, size, size)`` inputs."""
    import torch

    device = next(net.parameters()).device
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            out.append(net(torch.from_numpy(images[i : i + batch])[:, None].to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 4), dtype=np.float32)


def point_errors_mm(found, truth, spacing_rc) -> list[float]:
    """In-plane distances (mm) between paired ``(row, col)`` points."""
    return [float(np.hypot(*(np.subtract(p, q) * spacing_rc))) for p, q in zip(found, truth, strict=True)]


def error_stats(errors: list[float]) -> dict:
    """Median, 90th percentile, mean and maximum (mm, rounded to 0.01) of point errors, and their count."""
    e = np.asarray(errors, dtype=float)
    if e.size == 0:
        return {"points": 0}
    return {
        "points": int(e.size),
        "median_mm": round(float(np.median(e)), 2),
        "p90_mm": round(float(np.percentile(e, 90)), 2),
        "mean_mm": round(float(e.mean()), 2),
        "max_mm": round(float(e.max()), 2),
    }
