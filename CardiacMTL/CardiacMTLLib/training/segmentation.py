"""Training the segmentation networks that inference ships (``cardiac-train segmentation`` and ``mtl``), with
the same model and pre-processing code.

The segmentation trainer follows Baumgartner et al. (2017): 2D slices resampled in plane to a common
spacing, per-stack intensity normalisation, a batch-normalised U-Net, cross-entropy plus soft Dice, Adam.
Augmentation (rotation, scale, shift, contrast, noise) runs on batches in torch so that two CPU cores
suffice. Training is resumable: ``RUN_DIR/checkpoint.pt`` is written every epoch and picked up again by
the same command. The result is a self-describing model folder ``RUN_DIR/model`` (``weights.pt`` and
``manifest.json``: network class and arguments, pre-processing, labels, split, command, scores).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from CardiacMTLLib import __version__
from CardiacMTLLib.analysis.preprocess import (
    center_crop_or_pad,
    normalise_intensity,
    resample_inplane,
    resample_labels_inplane,
)
from CardiacMTLLib.analysis.segment import network_field
from CardiacMTLLib.atomic import record_written
from CardiacMTLLib.datasets.acdc import AcdcSplit, acdc_split, list_acdc_patients, load_annotated_frames
from CardiacMTLLib.errors import CardiacInputError, CardiacModelError
from CardiacMTLLib.evaluation.metrics import dice_per_class
from CardiacMTLLib.io.nifti import read_nifti_volume
from CardiacMTLLib.models.convert import export_openvino, quantise_openvino
from CardiacMTLLib.models.device import cpu_supports_bf16, resolve_device
from CardiacMTLLib.models.registry import load_model, write_model_folder
from CardiacMTLLib.models.runtime import CONVERTIBLE, openvino_installed
from CardiacMTLLib.training.common import augment_batch, claim_run_folder, remove_unstarted_run
from CardiacMTLLib.types import STRUCTURES, Label, label_names_document

NUM_CLASSES = len(Label)
# what a run folder holds: the pre-processed slices, the checkpoint of the last epoch, the model folder
RUN_FILES = ("cache.npz", "checkpoint.pt", "model")
DEPTH = 4  # levels of the U-Net: its input sides are multiples of 2 ** DEPTH


@dataclass
class SegmentationTrainingConfig:
    """What ``cardiac-train segmentation`` and ``cardiac-train mtl`` are asked to do (their defaults)."""

    data: str | Path  # ACDC training folder (patientNNN/...)
    out: str | Path  # run folder (checkpoint, cache, model/)
    network: str = "UNet2D"  # or "MTLUNet2D", the multi-task U-Net
    model_id: str = "acdc-unet2d"
    epochs: int = 50
    batch_size: int = 16
    lr: float = 1e-3
    base_channels: int = 16  # width of the first level (paper: 64)
    spacing: float = 1.37  # in-plane spacing in mm (paper: 1.37)
    crop: int = 128  # training crop in pixels
    infer_size: int = 192  # inference field in pixels
    pad_size: int = 288
    val_per_group: int = 4
    val_every: int = 5
    seed: int = 0
    threads: int = 2
    amp: str = "auto"  # auto, bf16 or off
    device: str = "auto"
    init: str | None = None  # a run's checkpoint.pt or a model folder to start from
    warmup: int = 200  # learning-rate warm-up iterations
    sigma_lr_scale: float = 30.0  # multi-task only: learning rate of the log task uncertainties / lr
    command: str | None = None  # the command line, recorded in the manifest

    @property
    def multi_task(self) -> bool:
        return self.network == "MTLUNet2D"

    def check(self) -> None:
        """:class:`CardiacInputError` naming the first option out of its range (before any work)."""
        at_least_one = ("epochs", "batch_size", "base_channels", "crop", "infer_size", "pad_size")
        for name in (*at_least_one, "val_every", "threads"):
            if getattr(self, name) < 1:
                raise CardiacInputError(
                    f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}"
                )
        for name in ("lr", "spacing", "sigma_lr_scale"):
            if not getattr(self, name) > 0:
                raise CardiacInputError(
                    f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}"
                )
        for name in ("val_per_group", "warmup"):
            if getattr(self, name) < 0:
                raise CardiacInputError(
                    f"--{name.replace('_', '-')} must not be negative, got {getattr(self, name)}"
                )
        for name in ("crop", "infer_size"):
            if getattr(self, name) % 2**DEPTH:
                raise CardiacInputError(
                    f"--{name.replace('_', '-')} must be a multiple of {2**DEPTH} (the U-Net halves it "
                    f"{DEPTH} times), got {getattr(self, name)}"
                )


@dataclass
class TrainingSlices:
    """The pre-processed slices of every annotated frame and which of them train and validate."""

    images: np.ndarray  # (slices, rows, cols) normalised, at the target spacing, padded
    labels: np.ndarray  # same shape, uint8
    meta: np.ndarray  # (patient number, frame, slice, slices in the volume) per slice
    split: AcdcSplit
    train_idx: np.ndarray
    val_idx: np.ndarray
    centers: np.ndarray  # (slices, 2) crop centres (row, col)


@dataclass
class TrainingState:
    """What a checkpoint restores: the epochs done, the augmentation RNG and the history."""

    epoch: int
    rng: np.random.Generator
    history: list[dict] = field(default_factory=list)


def prepare_volume(image_path: Path, label_path: Path, target_spacing_mm: float, pad_size: int):
    """Normalise, resample and pad one annotated frame the way inference will see it."""
    image, spacing, _ = read_nifti_volume(image_path)
    labels, _, _ = read_nifti_volume(label_path)
    rc = (spacing[1], spacing[0])
    image = resample_inplane(normalise_intensity(image), rc, target_spacing_mm)
    labels = resample_labels_inplane(labels.astype(np.uint8), rc, target_spacing_mm, NUM_CLASSES)
    fill = float(image.min())
    image, _ = center_crop_or_pad(image - fill, pad_size)
    labels, _ = center_crop_or_pad(labels, pad_size)
    return (image + fill).astype(np.float32), labels


CACHE_ARRAYS = ("images", "labels", "meta")


def read_cache(cache_path: Path) -> dict[str, np.ndarray]:
    """The arrays of a cache :func:`build_cache` wrote; :class:`CardiacInputError` when it is not one."""
    try:
        with np.load(cache_path, allow_pickle=False) as cache:
            return {name: cache[name] for name in CACHE_ARRAYS}
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise CardiacInputError(
            f"{cache_path}: not a pre-processing cache this trainer can read ({e}); remove it to pre-process again"
        ) from e


def build_cache(data_dir, patients, target_spacing_mm, pad_size, cache_path: Path) -> dict[str, np.ndarray]:
    """Every annotated slice of ``patients``, pre-processed once into ``cache_path`` (``.npz``, written
    beside it and renamed into place when complete)."""
    if cache_path.exists():
        return read_cache(cache_path)
    from tqdm import tqdm

    images, labels, meta = [], [], []
    for patient in tqdm(patients, desc="pre-processing ACDC", unit="patient"):
        for frame, image_path, label_path in load_annotated_frames(data_dir, patient):
            image, label = prepare_volume(image_path, label_path, target_spacing_mm, pad_size)
            for k in range(image.shape[0]):
                images.append(image[k])
                labels.append(label[k])
                meta.append((int(patient[-3:]), frame, k, image.shape[0]))
    if not images:
        raise CardiacInputError(
            f"{data_dir}: its patients have no annotated frames (patientNNN_frameNN.nii.gz with _gt) to train on"
        )
    staging = cache_path.with_name(f".{cache_path.name}.partial")
    try:
        with open(staging, "wb") as f:
            np.savez(f, images=np.stack(images), labels=np.stack(labels), meta=np.array(meta))
        os.replace(staging, cache_path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    record_written(cache_path.parent, cache_path)
    return read_cache(cache_path)


def training_patients(config: SegmentationTrainingConfig) -> AcdcSplit:
    """The patients of ``config.data`` that train and validate (:func:`~CardiacMTLLib.datasets.acdc.acdc_split`);
    :class:`CardiacInputError` when none is left to train on."""
    if not Path(config.data).is_dir():
        raise CardiacInputError(f"{config.data}: no such folder (expected the ACDC training data)")
    split = acdc_split(Path(config.data), config.val_per_group, config.seed)
    if not split.train:
        raise CardiacInputError(
            f"{config.data}: 0 training patients ({len(split.validation)} patients, every one held out to "
            f"validate by --val-per-group {config.val_per_group}); give more patients or a smaller --val-per-group"
        )
    return split


def prepare_training_slices(config: SegmentationTrainingConfig, run_dir: Path) -> TrainingSlices:
    """Split the patients, pre-process their slices (cached in the run folder) and centre the crops."""
    data_dir = Path(config.data)
    split = training_patients(config)
    patients = [p for p, _ in list_acdc_patients(data_dir)]
    cache = build_cache(data_dir, patients, config.spacing, config.pad_size, run_dir / "cache.npz")
    images, labels, meta = cache["images"], cache["labels"], cache["meta"]
    train_numbers = {int(p[-3:]) for p in split.train}
    train_mask = np.array([m[0] in train_numbers for m in meta])
    if train_mask.sum() < config.batch_size:
        raise CardiacInputError(
            f"{data_dir}: {int(train_mask.sum())} training slices, fewer than --batch-size {config.batch_size}"
        )
    # crop centres: the centroid of the heart in the slice's own volume (so basal/apical slices are
    # centred like their neighbours), the image centre where a volume has no labels at all
    centers = np.zeros((len(meta), 2), dtype=np.float32)
    volume_key = [(m[0], m[1]) for m in meta]
    for key in set(volume_key):
        idx = [i for i, k in enumerate(volume_key) if k == key]
        rr, cc = np.nonzero(labels[idx].max(axis=0) > 0)
        centers[idx] = (rr.mean(), cc.mean()) if rr.size else (config.pad_size / 2, config.pad_size / 2)
    return TrainingSlices(
        images, labels, meta, split, np.flatnonzero(train_mask), np.flatnonzero(~train_mask), centers
    )


def network_kwargs(config: SegmentationTrainingConfig) -> dict:
    return {
        "in_channels": 1,
        "num_classes": NUM_CLASSES,
        "base_channels": config.base_channels,
        "depth": DEPTH,
    }


def new_network(config: SegmentationTrainingConfig, device):
    """The network to train (from ``config.init`` when given), in channels-last memory layout: about 20 %
    faster convolutions on CPU (oneDNN) and on recent GPUs."""
    import torch

    from CardiacMTLLib.models.nets import NETWORKS

    net = NETWORKS[config.network](**network_kwargs(config))
    if config.init:
        init_weights(net, Path(config.init))
    return net.to(device, memory_format=torch.channels_last)


def new_optimizer(net, config: SegmentationTrainingConfig):
    """Adam with weight decay on the weights; the multi-task network's learned task uncertainties get no
    weight decay and a faster learning rate, so that the task weighting settles within a fine-tuning run
    instead of lagging the weights it balances."""
    import torch

    weights = [p for n, p in net.named_parameters() if n != "log_sigma"]
    groups = [{"params": weights, "weight_decay": 1e-5}]
    if config.multi_task:
        groups.append({"params": [net.log_sigma], "weight_decay": 0.0, "lr_scale": config.sigma_lr_scale})
    return torch.optim.Adam(groups, lr=config.lr)


def resume(checkpoint_path: Path, net, optimizer, device, seed: int) -> TrainingState:
    """The state of the last finished epoch from ``checkpoint_path``, or a fresh start."""
    import torch

    if not checkpoint_path.exists():
        return TrainingState(epoch=0, rng=np.random.default_rng(seed))
    state = torch.load(checkpoint_path, map_location=device, weights_only=False)
    try:
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CardiacInputError(
            f"{checkpoint_path}: written by a run of another network or --base-channels ({first}); resume "
            "with that run's options or give a new --out"
        ) from e
    torch.set_rng_state(state["torch_rng"])
    print(f"resuming from epoch {state['epoch']}", flush=True)
    return TrainingState(epoch=state["epoch"], rng=state["rng"], history=state["history"])


def save_checkpoint(checkpoint_path: Path, net, optimizer, state: TrainingState) -> None:
    import torch

    document = {
        "model": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": state.epoch,
        "rng": state.rng,
        "history": state.history,
        "torch_rng": torch.get_rng_state(),
    }
    staging = checkpoint_path.with_name(f".{checkpoint_path.name}.partial")
    torch.save(document, staging)
    staging.replace(checkpoint_path)
    record_written(checkpoint_path.parent, checkpoint_path)


def learning_rate(config: SegmentationTrainingConfig, iteration: int, total_iters: int) -> float:
    """Linear warm-up over ``config.warmup`` iterations, then cosine decay to 1e-5."""
    warm = config.warmup
    if iteration < warm:
        return config.lr * (iteration + 1) / warm
    progress = (iteration - warm) / (total_iters - warm)
    return 1e-5 + 0.5 * (config.lr - 1e-5) * (1 + math.cos(math.pi * progress))


def use_bf16(config: SegmentationTrainingConfig, device) -> bool:
    return config.amp == "bf16" or (config.amp == "auto" and (device.type == "cuda" or cpu_supports_bf16()))


def train_epoch(net, optimizer, slices: TrainingSlices, tensors, state: TrainingState, config, device, bf16):
    """One epoch of augmented batches; returns the mean loss."""
    import torch

    from CardiacMTLLib.training.losses import area_targets, soft_dice_loss, uncertainty_weighted_loss

    images_t, labels_t = tensors
    iters_per_epoch = math.ceil(len(slices.train_idx) / config.batch_size)
    total_iters = iters_per_epoch * config.epochs
    net.train()
    losses = []
    for step in range(iters_per_epoch):
        it = state.epoch * iters_per_epoch + step
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, it, total_iters) * group.get("lr_scale", 1.0)
        batch = state.rng.choice(slices.train_idx, config.batch_size, replace=False)
        x, y = augment_batch(
            images_t[batch], labels_t[batch], slices.centers[batch], config.crop, state.rng, torch
        )
        x, y = x.to(device, memory_format=torch.channels_last), y.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = net(x, return_areas=True) if config.multi_task else net(x)
        logits = out[0] if config.multi_task else out
        loss = torch.nn.functional.cross_entropy(logits.float(), y) + soft_dice_loss(logits, y, NUM_CLASSES)
        if config.multi_task:  # eq. (5) of the uncertainty-weighting paper
            reg_l1 = (out[1].float() - area_targets(y)).abs().mean()
            loss = uncertainty_weighted_loss(loss, reg_l1, net.log_sigma)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses))


def train_segmentation(config: SegmentationTrainingConfig) -> Path:
    """Train (or resume) the network of ``config`` and write ``OUT/model``; returns the model folder.

    The options, the data and the run folder are checked before any work (:meth:`SegmentationTrainingConfig.check`,
    :func:`~CardiacMTLLib.training.common.claim_run_folder`); a run that fails before its first
    checkpoint removes the folder it created."""
    config.check()
    training_patients(config)
    inputs = (config.data, config.init) if config.init else (config.data,)
    run_dir, created = claim_run_folder(config.out, RUN_FILES, inputs=inputs)
    try:
        return _train(config, run_dir)
    except BaseException:
        remove_unstarted_run(run_dir, created)
        raise


def _train(config: SegmentationTrainingConfig, run_dir: Path) -> Path:
    import torch

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    slices = prepare_training_slices(config, run_dir)
    print(
        f"{len(slices.split.train)} training and {len(slices.split.validation)} validation patients; "
        f"device {device}",
        flush=True,
    )
    tensors = (torch.from_numpy(slices.images), torch.from_numpy(slices.labels.astype(np.int64)))
    net = new_network(config, device)
    optimizer = new_optimizer(net, config)
    checkpoint_path = run_dir / "checkpoint.pt"
    state = resume(checkpoint_path, net, optimizer, device, config.seed)
    bf16 = use_bf16(config, device)
    print(f"mixed precision: {'bf16' if bf16 else 'off'}", flush=True)
    while state.epoch < config.epochs:
        t0 = time.time()
        loss = train_epoch(net, optimizer, slices, tensors, state, config, device, bf16)
        record = {"epoch": state.epoch + 1, "loss": loss, "seconds": time.time() - t0}
        if config.multi_task:
            record["log_sigma_seg"], record["log_sigma_reg"] = (float(v) for v in net.log_sigma.detach())
        if (state.epoch + 1) % config.val_every == 0 or state.epoch + 1 == config.epochs:
            record.update(quick_validation(net, slices, config.infer_size, device))
        state.history.append(record)
        state.epoch += 1
        print(json.dumps(record), flush=True)
        save_checkpoint(checkpoint_path, net, optimizer, state)
    model_dir = write_segmentation_model(run_dir / "model", net, config, slices, state, bf16)
    record_written(run_dir, model_dir)
    print(f"model written to {model_dir}", flush=True)
    return model_dir


def write_segmentation_model(
    model_dir: Path,
    net,
    config: SegmentationTrainingConfig,
    slices: TrainingSlices,
    state: TrainingState,
    bf16,
) -> Path:
    """The model folder: half-precision weights and the manifest inference rebuilds the network from."""
    iterations = math.ceil(len(slices.train_idx) / config.batch_size) * config.epochs
    manifest = {
        "model_id": config.model_id,
        "version": __version__,
        "task": "segmentation+area-regression" if config.multi_task else "segmentation",
        "network": config.network,
        "network_kwargs": network_kwargs(config),
        "labels": label_names_document(short=True),
        "preprocessing": {
            "target_spacing_mm": config.spacing,
            "input_size": config.infer_size,
            "normalisation": "stack z-score after clipping to the 0.5-99.5 percentiles",
            "pad_value": "stack minimum after normalisation",
        },
        "training": {
            "command": config.command,
            "data": str(config.data),
            "epochs": config.epochs,
            "iterations": iterations,
            "batch_size": config.batch_size,
            "crop": config.crop,
            "seed": config.seed,
            "mixed_precision": "bf16" if bf16 else "off",
            "initialised_from": str(config.init) if config.init else None,
            "train_patients": slices.split.train,
            "validation_patients": slices.split.validation,
            "history": state.history,
        },
    }
    model_dir = write_model_folder(model_dir, net.state_dict(), manifest)
    convert_for_openvino(model_dir, Path(config.data))
    return model_dir


def convert_for_openvino(model_dir: Path, data_dir: Path | None = None) -> None:
    """The trained network converted for the CPU runtime (:func:`~CardiacMTLLib.models.convert.export_openvino`)
    where OpenVINO is installed and the network is one it converts; a conversion that fails leaves the
    folder to run on torch, with a warning. With the training data ``data_dir`` and NNCF installed, also
    quantised to int8 (:func:`quantise_for_openvino`); one that fails its check is left out, with a warning."""
    manifest = json.loads((Path(model_dir) / "manifest.json").read_text())
    if manifest.get("network") not in CONVERTIBLE or not openvino_installed():
        return
    try:
        record = export_openvino(model_dir)
    except Exception as e:  # noqa: BLE001 - the model stays usable on torch; say why it is slower
        print(f"warning: {model_dir}: not converted for OpenVINO ({e}); it runs on torch", flush=True)
        return
    difference = record["check"]["max_abs_logit_difference_fp32"]
    print(f"converted for OpenVINO (logits within {difference:.1e} of torch's)", flush=True)
    if data_dir is None or importlib.util.find_spec("nncf") is None:
        return
    try:
        check = quantise_for_openvino(model_dir, data_dir)["int8"]["check"]
    except CardiacModelError as e:  # the fp32 network stays the CPU's; say why the faster one is not there
        print(f"warning: {e}", flush=True)
        return
    print(
        f"quantised to int8 (labels as fp32's on {100 * check['label_agreement']:.2f} % of the heart)",
        flush=True,
    )


# Network fields of every CALIBRATION_EVERY-th training patient (ED and ES) calibrate the int8 network, at
# most CALIBRATION_SLICES of them; those of other training patients (every CHECK_EVERY-th from the second)
# check it. The validation patients are left to score it.
CALIBRATION_EVERY, CALIBRATION_SLICES, CHECK_EVERY = 4, 300, 8


def _fields_of(model, data_dir: Path, patients: list[str]) -> np.ndarray:
    fields = []
    for patient in patients:
        for _, image_path, _ in load_annotated_frames(data_dir, patient):
            image, spacing = read_nifti_volume(image_path)[:2]
            fields.append(network_field(model, image, spacing)[0])
    return np.concatenate(fields)[:, None]


def quantise_for_openvino(model_dir: Path, data_dir: Path) -> dict:
    """The folder's OpenVINO network quantised to int8 (:func:`~CardiacMTLLib.models.convert.quantise_openvino`),
    calibrated and checked on network fields of the training patients its manifest records (ACDC
    ``data_dir``), prepared as inference prepares them. Returns the runtime record."""
    model = load_model(model_dir, device="cpu", precision="fp32", cached=False, runtime="openvino")
    train = list(model.manifest.get("training", {}).get("train_patients") or [])
    if len(train) < CHECK_EVERY:
        raise CardiacModelError(
            f"{model_dir}: its manifest records too few training patients to calibrate on"
        )
    calibration_patients, check_patients = train[::CALIBRATION_EVERY], train[2::CHECK_EVERY]
    calibration = _fields_of(model, Path(data_dir), calibration_patients)
    keep = np.sort(np.random.default_rng(0).permutation(len(calibration))[:CALIBRATION_SLICES])
    described = {
        "calibration": {"patients": calibration_patients, "frames": "ED and ES, whole network fields"},
        "check": {"patients": check_patients, "frames": "ED and ES, whole network fields"},
    }
    return quantise_openvino(
        model_dir, calibration[keep], _fields_of(model, Path(data_dir), check_patients), described
    )


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


def quick_validation(net, slices: TrainingSlices, size: int, device) -> dict:
    """Dice per structure over validation volumes in the network's resampled space (for progress only;
    the reported scores come from ``cardiac-train evaluate`` on the native grid)."""
    import torch

    val_idx, meta = slices.val_idx, slices.meta
    net.eval()
    preds = np.zeros((len(val_idx),) + (size, size), dtype=np.uint8)
    truths = np.zeros_like(preds)
    with torch.no_grad():
        for start in range(0, len(val_idx), 32):
            idx = val_idx[start : start + 32]
            x, _ = center_crop_or_pad(slices.images[idx], size)
            y, _ = center_crop_or_pad(slices.labels[idx], size)
            logits = net(torch.from_numpy(x)[:, None].to(device))
            preds[start : start + len(idx)] = logits.argmax(1).cpu().numpy()
            truths[start : start + len(idx)] = y
    scores: dict[int, list[float]] = {int(s): [] for s in STRUCTURES}
    keys = [(meta[i][0], meta[i][1]) for i in val_idx]
    for key in sorted(set(keys)):
        sel = [i for i, k in enumerate(keys) if k == key]
        for k, v in dice_per_class(preds[sel], truths[sel]).items():
            scores[k].append(v)
    net.train()
    return {f"val_dice_{Label(k).short_name}": float(np.mean(v)) for k, v in scores.items()}
