"""``cardiac-train landmarks --view lax --method segmentation``: the long-axis LV segmentation the shipped
mitral hinge detector reads, fine-tuned from a short-axis segmentation model on the biv-me long-axis
series (their LV contours drawn into label maps).

Each series is held out in turn: the hinges the detector reads from the network's segmentation are
compared with the guide points, as are the hinges the same rule reads from the expert's own contours (what
a perfect segmentation would give). The model folder holds the network fine-tuned on every series.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from CardiacMTLLib.analysis.landmarks.mitral import hinges_from_lax_labels, segment_lax
from CardiacMTLLib.analysis.preprocess import normalise_intensity, resample_inplane, resample_labels_inplane
from CardiacMTLLib.datasets.bivme import LaxSeries, bivme_lax_series
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.evaluation.metrics import dice_per_class
from CardiacMTLLib.models.device import resolve_device
from CardiacMTLLib.models.registry import default_model_dir, load_model, write_model_folder
from CardiacMTLLib.training.common import augment_batch, run_record
from CardiacMTLLib.training.landmark_common import error_stats, point_errors_mm
from CardiacMTLLib.types import Label

LAX_STRUCTURES = (Label.LV_MYOCARDIUM, Label.LV_CAVITY)


@dataclass
class LaxSegmentationTrainingConfig:
    """What ``cardiac-train landmarks --view lax --method segmentation`` is asked to do."""

    data: str | Path  # biv-me study folder (dicom/, guidepoints/)
    out: str | Path  # run folder (model/, lax_segmentation_loso.json)
    init: str | Path = str(default_model_dir())  # the segmentation model fine-tuned
    iterations: int = 600  # training iterations per model
    batch_size: int = 8
    lr: float = 3e-4  # Adam
    seed: int = 0
    threads: int = 1
    device: str = "cpu"
    model_id: str = "bivme-lax-unet2d"
    command: str | None = None  # the command line, recorded in the manifest


def lax_training_arrays(series: list[LaxSeries], spacing_mm: float):
    """Normalised, resampled frames and labels of ``series`` padded to one shape, and their heart centres."""
    frames, labels = [], []
    for s in series:
        # the whole cine is normalised as one stack, as inference normalises it
        frames += list(resample_inplane(normalise_intensity(s.images), s.spacing_rc, spacing_mm))
        labels += list(resample_labels_inplane(s.labels, s.spacing_rc, spacing_mm, len(Label)))
    rows, cols = max(f.shape[0] for f in frames), max(f.shape[1] for f in frames)
    x = np.zeros((len(frames), rows, cols), dtype=np.float32)
    y = np.zeros((len(frames), rows, cols), dtype=np.int64)
    for i, (f, lab) in enumerate(zip(frames, labels, strict=True)):
        x[i] = f.min()
        x[i, : f.shape[0], : f.shape[1]] = f
        y[i, : lab.shape[0], : lab.shape[1]] = lab
    centres = np.array([np.argwhere(lab > 0).mean(axis=0) for lab in labels])
    return x, y, centres


def fit_lax_segmentation(config: LaxSegmentationTrainingConfig, series: list[LaxSeries], seed: int):
    """Fine-tune the ``init`` segmentation model on the long-axis ``series`` (returns the loaded model)."""
    import torch

    from CardiacMTLLib.training.losses import soft_dice_loss

    device = resolve_device(config.device)
    # trained in place: a copy of its own, on torch
    model = load_model(config.init, device=device, cached=False, runtime="torch")
    net = model.net.to(memory_format=torch.contiguous_format).train()
    x, y, centres = lax_training_arrays(series, model.target_spacing_mm)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.lr)
    started = time.perf_counter()
    for iteration in range(config.iterations):
        pick = rng.choice(len(x), config.batch_size)
        xb, yb = augment_batch(x[pick], y[pick], centres[pick], model.input_size, rng, torch)
        if rng.uniform() < 0.5:  # long-axis views come mirrored either way (MESA flips them too)
            xb, yb = xb.flip(-1), yb.flip(-1)
        if rng.uniform() < 0.5:
            xb, yb = xb.flip(-2), yb.flip(-2)
        xb, yb = xb.to(device), yb.to(device)
        logits = net(xb)
        loss = torch.nn.functional.cross_entropy(logits, yb) + soft_dice_loss(logits, yb, logits.shape[1])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if iteration % 100 == 0 or iteration == config.iterations - 1:
            print(
                f"  iteration {iteration}: loss {loss.item():.3f} ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    net.eval()
    return model


def label_hinge_errors(labels, truth_rc, spacing_rc) -> tuple[list[float], int]:
    """Errors (mm) of the hinges read from each long-axis label map against the truth, and how many maps
    gave none."""
    errors, missed = [], 0
    for frame, truth in zip(labels, truth_rc, strict=True):
        found = hinges_from_lax_labels(frame, spacing_rc)
        if found is None:
            missed += 1
        else:
            errors += point_errors_mm(found, truth, spacing_rc)
    return errors, missed


def lax_hinge_errors(model, s: LaxSeries) -> dict:
    """Hinge errors (mm) of the segmentation-derived detector on one series, and the labels' Dice."""
    cine = SimpleNamespace(data=s.images[:, None], spacing_mm=(s.spacing_rc[1], s.spacing_rc[0], 1.0))
    labels = segment_lax(model, cine)
    errors, missed = label_hinge_errors(labels, s.points_rc, s.spacing_rc)
    scores = dice_per_class(labels, s.labels, tuple(int(v) for v in LAX_STRUCTURES))
    dice = {
        name: round(scores[int(v)], 3)
        for v, name in zip(LAX_STRUCTURES, ("myocardium", "cavity"), strict=True)
    }
    return {**error_stats(errors), "frames_without_hinges": missed, "dice": dice, "errors_mm": errors}


def train_lax_segmentation(config: LaxSegmentationTrainingConfig) -> dict:
    """Leave-one-series-out on the biv-me long-axis series, then the shipped model trained on all of them."""
    import torch

    torch.set_num_threads(config.threads)
    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    real = [s for s in bivme_lax_series(Path(config.data)) if s.labels is not None]
    if len(real) < 2:
        raise CardiacInputError(f"{config.data}: fewer than two long-axis series with LV contours")
    print("series:", [(s.name, s.view, len(s.images)) for s in real], flush=True)
    folds = []
    for k, held in enumerate(real):
        print(f"held out: {held.name}", flush=True)
        model = fit_lax_segmentation(config, [s for s in real if s is not held], seed=config.seed + k)
        row = {"held_out": held.name, "view": held.view, "frames": len(held.images)}
        row["network"] = lax_hinge_errors(model, held)
        # the same hinge rule on the expert's own contours: what a perfect segmentation would give
        reference, _ = label_hinge_errors(held.labels, held.points_rc, held.spacing_rc)
        row["expert_contours"] = error_stats(reference)
        print(json.dumps({k: v for k, v in row["network"].items() if k != "errors_mm"}), flush=True)
        folds.append(row)
    pooled = [e for row in folds for e in row["network"]["errors_mm"]]
    summary = {
        "pooled": error_stats(pooled),
        "per_series": {
            r["held_out"]: {k: v for k, v in r["network"].items() if k != "errors_mm"} for r in folds
        },
    }
    print(json.dumps(summary, indent=2), flush=True)
    model = fit_lax_segmentation(config, real, seed=config.seed)
    init = model.manifest
    manifest = {
        "model_id": config.model_id,
        "version": "0.1.0",
        "task": "lax_segmentation",
        "view": "long axis (2ch, 3ch, 4ch)",
        "network": init["network"],
        "network_kwargs": init["network_kwargs"],
        "labels": {str(int(v)): v.display_name for v in (Label.BACKGROUND, *LAX_STRUCTURES)},
        "preprocessing": init["preprocessing"],
        "training": {
            **run_record(config.command),
            "init": str(config.init),
            "real_series": [(s.name, s.view, len(s.images)) for s in real],
            "iterations": config.iterations,
            "batch_size": config.batch_size,
            "lr": config.lr,
        },
        "leave_one_series_out": summary,
    }
    write_model_folder(run_dir / "model", model.net.state_dict(), manifest)
    (run_dir / "lax_segmentation_loso.json").write_text(json.dumps(folds, indent=2))
    return {"folds": folds, "summary": summary}
