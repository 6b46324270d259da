"""``cardiac-train``: train the networks that inference ships, with the same model and pre-processing code.

The segmentation trainer follows Baumgartner et al. (2017): 2D slices resampled in plane to a common
spacing, per-stack intensity normalisation, a batch-normalised U-Net, cross-entropy plus soft Dice, Adam.
Augmentation (rotation, scale, shift, contrast, noise) runs on batches in torch so that two CPU cores
suffice. Training is resumable: ``RUN_DIR/checkpoint.pt`` is written every epoch and picked up again by
the same command. The result is a self-describing model folder ``RUN_DIR/model`` (``weights.pt`` and
``manifest.json``: network class and arguments, pre-processing, labels, split, command, scores).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from . import __version__
from .cine import acdc_frame_files, read_acdc_info, read_nifti_volume
from .errors import CardiacInputError, run_reporting_errors
from .preprocess import center_crop_or_pad, normalise_intensity, resample_inplane, resample_labels_inplane

ACDC_GROUPS = ("DCM", "HCM", "MINF", "NOR", "RV")
LABEL_NAMES = {0: "background", 1: "RV", 2: "Myo", 3: "LV"}


@dataclass
class TrainingVolume:
    patient: str
    group: str
    frame: int
    image: np.ndarray  # (slices, rows, cols) normalised, at the target spacing, padded
    labels: np.ndarray  # same shape, uint8


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


def prepare_volume(image_path: Path, label_path: Path, target_spacing_mm: float, pad_size: int):
    """Normalise, resample and pad one annotated frame the way inference will see it."""
    image, spacing, _ = read_nifti_volume(image_path)
    labels, _, _ = read_nifti_volume(label_path)
    rc = (spacing[1], spacing[0])
    image = resample_inplane(normalise_intensity(image), rc, target_spacing_mm)
    labels = resample_labels_inplane(labels.astype(np.uint8), rc, target_spacing_mm, 4)
    fill = float(image.min())
    image, _ = center_crop_or_pad(image - fill, pad_size)
    labels, _ = center_crop_or_pad(labels, pad_size)
    return (image + fill).astype(np.float32), labels


def build_cache(data_dir, patients, groups, target_spacing_mm, pad_size, cache_path: Path):
    if cache_path.exists():
        cached = np.load(cache_path, allow_pickle=False)
        return cached
    from tqdm import tqdm

    images, labels, meta = [], [], []
    for patient in tqdm(patients, desc="pre-processing ACDC", unit="patient"):
        for frame, image_path, label_path in load_annotated_frames(data_dir, patient):
            image, label = prepare_volume(image_path, label_path, target_spacing_mm, pad_size)
            for k in range(image.shape[0]):
                images.append(image[k])
                labels.append(label[k])
                meta.append((int(patient[-3:]), frame, k, image.shape[0]))
    np.savez(cache_path, images=np.stack(images), labels=np.stack(labels), meta=np.array(meta))
    return np.load(cache_path, allow_pickle=False)


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


def soft_dice_loss(logits, target, num_classes: int):
    import torch

    probs = torch.softmax(logits.float(), dim=1)
    onehot = torch.nn.functional.one_hot(target, num_classes).permute(0, 3, 1, 2).float()
    dims = (0, 2, 3)
    intersection = (probs * onehot).sum(dims)[1:]
    denominator = (probs + onehot).sum(dims)[1:]
    return 1 - ((2 * intersection + 1e-5) / (denominator + 1e-5)).mean()


def dice_per_class(pred: np.ndarray, truth: np.ndarray, classes=(1, 2, 3)) -> dict[int, float]:
    out = {}
    for k in classes:
        a, b = pred == k, truth == k
        denom = a.sum() + b.sum()
        out[k] = 1.0 if denom == 0 else float(2 * np.logical_and(a, b).sum() / denom)
    return out


def train_segmentation(args: argparse.Namespace) -> Path:
    import torch

    from .nets import NETWORKS
    from .nets.mtl_unet import area_targets, uncertainty_weighted_loss

    data_dir = Path(args.data)
    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = resolve_device(args.device)
    patients = list_acdc_patients(data_dir)
    group_of = dict(patients)
    train_ids, val_ids = stratified_split(patients, args.val_per_group, args.seed)
    print(f"{len(train_ids)} training and {len(val_ids)} validation patients; device {device}", flush=True)

    cache = build_cache(
        data_dir, [p for p, _ in patients], group_of, args.spacing, args.pad_size, run_dir / "cache.npz"
    )
    images, labels, meta = cache["images"], cache["labels"], cache["meta"]
    train_numbers = {int(p[-3:]) for p in train_ids}
    train_mask = np.array([m[0] in train_numbers for m in meta])
    train_idx = np.flatnonzero(train_mask)
    val_idx = np.flatnonzero(~train_mask)
    # crop centres: the centroid of the heart in the slice's own volume (so basal/apical slices are
    # centred like their neighbours), the image centre where a volume has no labels at all
    centers = np.zeros((len(meta), 2), dtype=np.float32)
    volume_key = [(m[0], m[1]) for m in meta]
    for key in set(volume_key):
        idx = [i for i, k in enumerate(volume_key) if k == key]
        rr, cc = np.nonzero(labels[idx].max(axis=0) > 0)
        centers[idx] = (rr.mean(), cc.mean()) if rr.size else (args.pad_size / 2, args.pad_size / 2)
    images_t = torch.from_numpy(images)
    labels_t = torch.from_numpy(labels.astype(np.int64))

    net_kwargs = {"in_channels": 1, "num_classes": 4, "base_channels": args.base_channels, "depth": 4}
    # channels-last memory layout: about 20 % faster convolutions on CPU (oneDNN) and on recent GPUs
    network = getattr(args, "network", "UNet2D")
    multi_task = network == "MTLUNet2D"
    net = NETWORKS[network](**net_kwargs)
    if getattr(args, "init", None):
        init_weights(net, Path(args.init))
    net = net.to(device, memory_format=torch.channels_last)
    weights = [p for n, p in net.named_parameters() if n != "log_sigma"]
    groups = [{"params": weights, "weight_decay": 1e-5}]
    if multi_task:
        # the learned task uncertainties: no weight decay, and a faster learning rate so that the task
        # weighting settles within a fine-tuning run instead of lagging the weights it balances
        groups.append({"params": [net.log_sigma], "weight_decay": 0.0, "lr_scale": args.sigma_lr_scale})
    optimizer = torch.optim.Adam(groups, lr=args.lr)
    iters_per_epoch = math.ceil(len(train_idx) / args.batch_size)
    total_iters = iters_per_epoch * args.epochs
    rng = np.random.default_rng(args.seed)
    start_epoch = 0
    history: list[dict] = []
    checkpoint_path = run_dir / "checkpoint.pt"
    if checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = state["epoch"]
        rng = state["rng"]
        history = state["history"]
        torch.set_rng_state(state["torch_rng"])
        print(f"resuming from epoch {start_epoch}", flush=True)

    from .segment import cpu_supports_bf16

    use_bf16 = args.amp == "bf16" or (args.amp == "auto" and (device.type == "cuda" or cpu_supports_bf16()))
    amp_dtype = torch.bfloat16
    print(f"mixed precision: {'bf16' if use_bf16 else 'off'}", flush=True)

    def lr_at(it: int) -> float:
        warm = getattr(args, "warmup", 200)
        if it < warm:
            return args.lr * (it + 1) / warm
        return 1e-5 + 0.5 * (args.lr - 1e-5) * (1 + math.cos(math.pi * (it - warm) / (total_iters - warm)))

    for epoch in range(start_epoch, args.epochs):
        net.train()
        t0 = time.time()
        losses = []
        for step in range(iters_per_epoch):
            it = epoch * iters_per_epoch + step
            for group in optimizer.param_groups:
                group["lr"] = lr_at(it) * group.get("lr_scale", 1.0)
            batch = rng.choice(train_idx, args.batch_size, replace=False)
            x, y = augment_batch(images_t[batch], labels_t[batch], centers[batch], args.crop, rng, torch)
            x, y = x.to(device, memory_format=torch.channels_last), y.to(device)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_bf16):
                out = net(x, return_areas=True) if multi_task else net(x)
            logits = out[0] if multi_task else out
            loss = torch.nn.functional.cross_entropy(logits.float(), y) + soft_dice_loss(logits, y, 4)
            if multi_task:  # eq. (5) of the uncertainty-weighting paper
                reg_l1 = (out[1].float() - area_targets(y)).abs().mean()
                loss = uncertainty_weighted_loss(loss, reg_l1, net.log_sigma)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "seconds": time.time() - t0}
        if multi_task:
            record["log_sigma_seg"], record["log_sigma_reg"] = (float(v) for v in net.log_sigma.detach())
        if (epoch + 1) % args.val_every == 0 or epoch + 1 == args.epochs:
            record.update(quick_validation(net, images, labels, meta, val_idx, args.infer_size, device))
        history.append(record)
        print(json.dumps(record), flush=True)
        torch.save(
            {
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch + 1,
                "rng": rng,
                "history": history,
                "torch_rng": torch.get_rng_state(),
            },
            checkpoint_path.with_suffix(".tmp"),
        )
        checkpoint_path.with_suffix(".tmp").replace(checkpoint_path)

    model_dir = run_dir / "model"
    model_dir.mkdir(exist_ok=True)
    state_dict = {k: (v.half() if v.is_floating_point() else v) for k, v in net.cpu().state_dict().items()}
    torch.save(state_dict, model_dir / "weights.pt")
    manifest = {
        "model_id": args.model_id,
        "version": __version__,
        "task": "segmentation+area-regression" if multi_task else "segmentation",
        "network": network,
        "network_kwargs": net_kwargs,
        "labels": {str(k): v for k, v in LABEL_NAMES.items()},
        "preprocessing": {
            "target_spacing_mm": args.spacing,
            "input_size": args.infer_size,
            "normalisation": "stack z-score after clipping to the 0.5-99.5 percentiles",
            "pad_value": "stack minimum after normalisation",
        },
        "training": {
            "command": "cardiac-train " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "data": str(data_dir),
            "epochs": args.epochs,
            "iterations": total_iters,
            "batch_size": args.batch_size,
            "crop": args.crop,
            "seed": args.seed,
            "mixed_precision": "bf16" if use_bf16 else "off",
            "initialised_from": str(args.init) if getattr(args, "init", None) else None,
            "train_patients": train_ids,
            "validation_patients": val_ids,
            "history": history,
        },
    }
    (model_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(f"model written to {model_dir}", flush=True)
    return model_dir


def init_weights(net, source: Path) -> None:
    """Start training from trained weights: a run's ``checkpoint.pt`` or a model folder's ``weights.pt``.

    A multi-task network takes a plain U-Net's weights for its shared layers and both last stages.
    """
    import torch

    path = source / "weights.pt" if source.is_dir() else source
    if not path.exists():
        raise CardiacInputError(f"{path}: no weights to initialise from")
    state = torch.load(path, map_location="cpu", weights_only=False)
    state = state.get("model", state)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    if hasattr(net, "init_from_unet") and "reg_density.weight" not in state:
        net.init_from_unet(state)
    else:
        net.load_state_dict(state)
    print(f"initialised from {path}", flush=True)


def quick_validation(net, images, labels, meta, val_idx, size: int, device) -> dict:
    """Dice per structure over validation volumes in the network's resampled space (for progress only;
    the reported scores come from ``cardiac-train evaluate`` on the native grid)."""
    import torch

    net.eval()
    preds = np.zeros((len(val_idx),) + (size, size), dtype=np.uint8)
    truths = np.zeros_like(preds)
    with torch.no_grad():
        for start in range(0, len(val_idx), 32):
            idx = val_idx[start : start + 32]
            x, _ = center_crop_or_pad(images[idx], size)
            y, _ = center_crop_or_pad(labels[idx], size)
            logits = net(torch.from_numpy(x)[:, None].to(device))
            preds[start : start + len(idx)] = logits.argmax(1).cpu().numpy()
            truths[start : start + len(idx)] = y
    scores = {1: [], 2: [], 3: []}
    keys = [(meta[i][0], meta[i][1]) for i in val_idx]
    for key in sorted(set(keys)):
        sel = [i for i, k in enumerate(keys) if k == key]
        for k, v in dice_per_class(preds[sel], truths[sel]).items():
            scores[k].append(v)
    net.train()
    return {f"val_dice_{LABEL_NAMES[k]}": float(np.mean(v)) for k, v in scores.items()}


def resolve_device(name: str):
    from .segment import resolve_device as _resolve

    return _resolve(name)


def hausdorff_mm(pred: np.ndarray, truth: np.ndarray, spacing_zyx: tuple[float, float, float]) -> float:
    """Symmetric Hausdorff distance (mm) between two binary 3D masks' surfaces; nan if either is empty."""
    if not pred.any() or not truth.any():
        return float("nan")

    def surface(mask):
        return mask & ~ndimage.binary_erosion(mask)

    sp, st = surface(pred), surface(truth)
    dt_truth = ndimage.distance_transform_edt(~st, sampling=spacing_zyx)
    dt_pred = ndimage.distance_transform_edt(~sp, sampling=spacing_zyx)
    return float(max(dt_truth[sp].max(), dt_pred[st].max()))


def evaluate_segmentation(args: argparse.Namespace) -> dict:
    """Dice and Hausdorff on the native grid, through the exact inference code, for the held-out patients."""
    from tqdm import tqdm

    from .cine import read_volume
    from .segment import largest_component_per_structure, load_model, predict_with_areas

    model_dir = Path(args.model)
    model = load_model(model_dir, device=args.device, precision=getattr(args, "precision", "auto"))
    patients = args.patients or model.manifest["training"]["validation_patients"]
    rows, slice_rows = [], []
    for patient in tqdm(patients, desc="evaluating", unit="patient"):
        for frame, image_path, label_path in load_annotated_frames(Path(args.data), patient):
            image, spacing, _ = read_volume(image_path)
            truth, _, _ = read_nifti_volume(label_path)
            probs, areas = predict_with_areas(model, image, spacing)
            pred = largest_component_per_structure(np.argmax(probs, axis=0).astype(np.uint8))
            row = {"patient": patient, "frame": frame}
            for k, name in ((3, "LV"), (1, "RV"), (2, "Myo")):
                row[f"dice_{name}"] = dice_per_class(pred, truth, (k,))[k]
                row[f"hd_{name}_mm"] = hausdorff_mm(pred == k, truth == k, spacing[::-1])
            rows.append(row)
            slice_rows += per_slice_rows(patient, frame, probs, pred, truth, areas, spacing)
    summary = {"patients": len(patients), "volumes": len(rows)}
    for name in ("LV", "RV", "Myo"):
        summary[f"dice_{name}"] = round(float(np.mean([r[f"dice_{name}"] for r in rows])), 4)
        summary[f"hd_{name}_mm"] = round(float(np.nanmean([r[f"hd_{name}_mm"] for r in rows])), 2)
    summary.update(slice_summary(slice_rows))
    print(json.dumps(summary, indent=2))
    if args.write_manifest:
        manifest_path = model_dir / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["scores"] = {"validation_native_grid": summary, "evaluated_with": "cardiac-train evaluate"}
        manifest_path.write_text(json.dumps(manifest, indent=2))
    if args.csv:
        import csv

        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    if getattr(args, "slices_csv", None):
        import csv

        with open(args.slices_csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(slice_rows[0]))
            writer.writeheader()
            writer.writerows(slice_rows)
    return summary


BAD_SLICE_DICE = 0.8
STRUCTURES = ((1, "RV"), (2, "Myo"), (3, "LV"))


def per_slice_rows(patient, frame, probs, pred, truth, areas, spacing) -> list[dict]:
    """One row per slice with heart in the truth or the prediction: Dice, areas and the QC scores."""
    from .qc import slice_network_scores

    scores = slice_network_scores(probs, pred, areas, spacing)
    pixel_mm2 = float(spacing[0]) * float(spacing[1])
    rows = []
    for z in range(truth.shape[0]):
        if not (truth[z].any() or pred[z].any()):
            continue
        row = {"patient": patient, "frame": frame, "slice": z}
        dices = []
        for i, (k, name) in enumerate(STRUCTURES):
            a, b = pred[z] == k, truth[z] == k
            row[f"area_true_{name}_mm2"] = float(b.sum() * pixel_mm2)
            row[f"area_seg_{name}_mm2"] = float(scores["segmented_area_mm2"][z, i])
            if areas is not None:
                row[f"area_reg_{name}_mm2"] = float(areas[z, i])
            if a.any() or b.any():
                dices.append(2 * np.logical_and(a, b).sum() / (a.sum() + b.sum()))
        row["dice_mean"] = float(np.mean(dices))
        row["entropy"] = float(scores["entropy"][z])
        if areas is not None:
            row["area_disagreement"] = float(scores["area_disagreement"][z])
        rows.append(row)
    return rows


def slice_summary(slice_rows: list[dict]) -> dict:
    """Area MAD per structure (segmented and, for a multi-task network, regressed) and the QC flags' AUC
    for detecting slices with Dice below :data:`BAD_SLICE_DICE`."""
    from sklearn.metrics import roc_auc_score

    out = {"slices": len(slice_rows)}
    for _, name in STRUCTURES:
        truth = np.array([r[f"area_true_{name}_mm2"] for r in slice_rows])
        for source in ("seg", "reg"):
            key = f"area_{source}_{name}_mm2"
            if key in slice_rows[0]:
                values = np.array([r[key] for r in slice_rows])
                out[f"area_mad_{source}_{name}_mm2"] = round(float(np.mean(np.abs(values - truth))), 1)
    bad = np.array([r["dice_mean"] < BAD_SLICE_DICE for r in slice_rows])
    out["bad_slices"] = int(bad.sum())
    if 0 < bad.sum() < len(bad):
        for score in ("area_disagreement", "entropy"):
            if score in slice_rows[0]:
                values = np.array([r[score] for r in slice_rows])
                out[f"auc_{score}"] = round(float(roc_auc_score(bad, values)), 3)
    return out


def _add_segmentation_arguments(seg: argparse.ArgumentParser) -> None:
    seg.add_argument("--data", required=True, help="ACDC training folder (patientNNN/...)")
    seg.add_argument("--out", required=True, help="run folder (checkpoint, cache, model/)")
    seg.add_argument("--epochs", type=int, default=50)
    seg.add_argument("--batch-size", type=int, default=16)
    seg.add_argument("--lr", type=float, default=1e-3)
    seg.add_argument("--base-channels", type=int, default=16, help="width of the first level (paper: 64)")
    seg.add_argument("--spacing", type=float, default=1.37, help="in-plane spacing in mm (paper: 1.37)")
    seg.add_argument("--crop", type=int, default=128, help="training crop in pixels")
    seg.add_argument("--infer-size", type=int, default=192, help="inference field in pixels")
    seg.add_argument("--pad-size", type=int, default=288)
    seg.add_argument("--val-per-group", type=int, default=4)
    seg.add_argument("--val-every", type=int, default=5)
    seg.add_argument("--seed", type=int, default=0)
    seg.add_argument("--threads", type=int, default=2)
    seg.add_argument("--amp", choices=["auto", "bf16", "off"], default="auto")
    seg.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    seg.add_argument("--model-id", help="identifier stored in the manifest")
    seg.add_argument("--init", help="start from trained weights: a run's checkpoint.pt or a model folder")
    seg.add_argument("--warmup", type=int, default=200, help="learning-rate warm-up iterations")
    seg.add_argument(
        "--sigma-lr-scale",
        type=float,
        default=30.0,
        help="multi-task only: learning rate of the log task uncertainties relative to --lr",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cardiac-train", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    seg = sub.add_parser("segmentation", help="train the 2D U-Net on ACDC")
    _add_segmentation_arguments(seg)
    seg.set_defaults(network="UNet2D", model_id="acdc-unet2d")
    mtl = sub.add_parser(
        "mtl",
        help="train the multi-task U-Net (segmentation + area regression, learned task uncertainty)",
    )
    _add_segmentation_arguments(mtl)
    mtl.set_defaults(network="MTLUNet2D", model_id="acdc-mtl-unet2d")
    ev = sub.add_parser("evaluate", help="Dice/Hausdorff of a segmentation model on held-out ACDC patients")
    ev.add_argument("--data", required=True, help="ACDC training folder")
    ev.add_argument("--model", required=True, help="model folder (manifest.json + weights.pt)")
    ev.add_argument("--patients", nargs="*", help="patient ids (default: the manifest's validation split)")
    ev.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ev.add_argument(
        "--precision", choices=["auto", "fp32", "bf16"], default="auto", help="arithmetic of the network"
    )
    ev.add_argument("--csv", help="write per-volume scores to this CSV")
    ev.add_argument("--slices-csv", help="write per-slice Dice, areas and QC scores to this CSV")
    ev.add_argument("--write-manifest", action="store_true", help="store the scores in manifest.json")
    from .train_diagnosis import add_parser as add_diagnosis_parser

    add_diagnosis_parser(sub)
    from .train_landmarks import add_parser as add_landmarks_parser

    add_landmarks_parser(sub)
    from .train_densenet import add_parser as add_densenet_parser

    add_densenet_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_reporting_errors("cardiac-train", lambda: _run(args))


def _run(args: argparse.Namespace) -> None:
    if args.command in ("segmentation", "mtl"):
        train_segmentation(args)
    elif args.command == "evaluate":
        evaluate_segmentation(args)
    elif args.command == "diagnosis":
        from .train_diagnosis import train_diagnosis

        train_diagnosis(args)
    elif args.command == "landmarks":
        from .train_landmarks import main_landmarks

        main_landmarks(args)
    elif args.command == "densenet":
        from .train_densenet import train_densenet

        train_densenet(args)


if __name__ == "__main__":
    sys.exit(main())
