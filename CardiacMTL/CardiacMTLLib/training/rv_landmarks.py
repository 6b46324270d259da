"""``cardiac-train landmarks``: the MESA paper's VGG16 landmark regression network for the RV insertions.

Training truth comes from the ACDC expert labels: :func:`~CardiacMTLLib.analysis.landmarks.rv_insertion.
rv_insertion_points` gives the two ends of the stretch of LV epicardium the RV touches on every ED and ES
slice with both ventricles. Inputs are prepared by :func:`~CardiacMTLLib.analysis.landmarks.common.
network_input` (per-image whitening, in-plane resampling, zero-padded centre crop), so training and
inference see the same images. As in the paper (Appendix A): AdaDelta (learning rate 1, rho 0.95, eps
1e-8), mean squared error of the normalised coordinates, the learning rate divided by 5 after 3 epochs
without improvement on the validation set, and augmentation by rotation (+-45 deg), shift (+-25 px at 256
px), shear (+-0.2) and scaling (0.8-1.2, short axis). ``init`` starts from another landmark model (the
paper's transfer between views).

The run is resumable: ``RUN/checkpoint.pt`` is written every epoch, and ``minutes`` bounds the training
time of one call (a second call continues). At the end the network and the segmentation-derived detector
(``segmentation_model``) are compared on the validation patients against the truth derived from the
expert labels, and ``RUN/model`` (``weights.pt`` + ``manifest.json``) and ``RUN/comparison.json`` are
written.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from CardiacMTLLib.analysis.landmarks.common import network_input, to_native_rc, to_network_units
from CardiacMTLLib.analysis.landmarks.rv_insertion import detect_sax_landmarks, rv_insertion_points
from CardiacMTLLib.analysis.segment import segment_volume
from CardiacMTLLib.datasets.acdc import acdc_split, ed_es_frames
from CardiacMTLLib.io.landmarks import SAX_LABELS
from CardiacMTLLib.io.nifti import read_nifti_volume
from CardiacMTLLib.models.device import resolve_device
from CardiacMTLLib.models.registry import MANIFEST, default_model_dir, load_model, write_model_folder
from CardiacMTLLib.training.common import run_record
from CardiacMTLLib.training.landmark_common import (
    augment,
    error_stats,
    point_errors_mm,
    predict_points,
    vgg_kwargs,
    vgg_manifest,
)

# the split of the shipped segmentation model: its validation patients are held out by default
SEGMENTATION_MANIFEST = default_model_dir() / MANIFEST


@dataclass
class RvLandmarkTrainingConfig:
    """What ``cardiac-train landmarks`` (short axis) is asked to do; the defaults are the paper's network."""

    data: str | Path  # ACDC training folder
    out: str | Path  # run folder (checkpoint.pt, caches, model/, comparison.json)
    width: int = 64  # channels of the first VGG block (paper: 64)
    dense_units: int = 2048  # units of the two dense layers (paper: 2048)
    size: int = 256  # input field in pixels (paper: 256)
    spacing: float = 1.37  # in-plane spacing of the input (mm)
    batch_norm: bool = False  # batch norm after each convolution
    batch_size: int = 48  # the paper's
    lr: float = 1.0  # AdaDelta, the paper's
    epochs: int = 200
    minutes: float = 1e9  # training time of this call; call again to resume
    init: str | None = None  # a landmark model folder to start from (transfer between views)
    split_from: str | Path = str(SEGMENTATION_MANIFEST)  # manifest whose validation patients are held out
    segmentation_model: str | None = None  # segmentation model folder for the detector comparison
    seed: int = 0
    threads: int = 1
    device: str = "cpu"
    model_id: str = "acdc-vgg-rv-insertion"
    command: str | None = None  # the command line, recorded in the manifest


@dataclass
class LandmarkTrainingState:
    """What a checkpoint restores besides the weights: epochs, time trained, history, early-stop record."""

    epoch: int = 0
    elapsed_s: float = 0.0
    history: list[dict] = field(default_factory=list)
    best: float | None = None
    stale: int = 0


def truth_by_slice(labels: np.ndarray, spacing, affine, frame: int) -> dict[int, list[tuple[float, float]]]:
    """``{slice: [(row, col) anterior, (row, col) inferior]}`` derived from a label map."""
    return landmarks_by_slice(rv_insertion_points(labels, spacing, affine, frame=frame, source="labels"))


def landmarks_by_slice(points: list[dict]) -> dict[int, list[tuple[float, float]]]:
    """RV insertion landmarks as ``{slice: [(row, col) anterior, (row, col) inferior]}`` (complete pairs)."""
    by_slice: dict[int, dict] = {}
    for p in points:
        by_slice.setdefault(p["slice"], {})[p["label"]] = (p["ijk"][1], p["ijk"][0])
    return {k: [v[name] for name in SAX_LABELS] for k, v in by_slice.items() if len(v) == 2}


def build_samples(data_dir: Path, patients: list[str], spacing_mm: float, size: int, cache: Path):
    """Network inputs and normalised targets of every ED/ES slice with insertion points."""
    from tqdm import tqdm

    if cache.exists():
        data = np.load(cache, allow_pickle=False)
        return data["images"], data["targets"], data["meta"]
    images, targets, meta = [], [], []
    for patient in tqdm(patients, desc="insertion points from expert labels", unit="patient"):
        for frame, image_path, label_path in ed_es_frames(data_dir, patient):
            image, spacing, affine = read_nifti_volume(image_path)
            labels, _, _ = read_nifti_volume(label_path)
            for k, points in truth_by_slice(labels.astype(np.uint8), spacing, affine, frame).items():
                x, geometry = network_input(image[k], (spacing[1], spacing[0]), spacing_mm, size)
                images.append(x)
                targets.append(to_network_units(points, geometry))
                meta.append((int(patient[-3:]), frame, k))
    np.savez(cache, images=np.stack(images), targets=np.stack(targets), meta=np.array(meta))
    return np.stack(images), np.stack(targets), np.array(meta)


def errors_mm(pred: np.ndarray, truth: np.ndarray, spacing_mm: float, size: int) -> np.ndarray:
    """Point errors (mm at the network's spacing) between normalised predictions and targets."""
    diff = (pred - truth).reshape(len(pred), -1, 2) * size * spacing_mm
    return np.hypot(diff[..., 0], diff[..., 1]).ravel()


def resume(checkpoint_path: Path, net, optimizer, config: RvLandmarkTrainingConfig, device):
    """``(rng, state)`` of the last finished epoch from the checkpoint, else a start (from ``init``)."""
    import torch

    rng = np.random.default_rng(config.seed)
    if checkpoint_path.exists():
        saved = torch.load(checkpoint_path, map_location=device, weights_only=False)
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["torch_rng"])
        state = LandmarkTrainingState(**saved["state"])
        print(f"resuming after epoch {state.epoch} ({state.elapsed_s / 60:.1f} min trained)")
        return saved["rng"], state
    if config.init:
        init = torch.load(Path(config.init) / "weights.pt", map_location=device, weights_only=True)
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in init.items()})
        print(f"initialised from {config.init} (transfer between views)")
    return rng, LandmarkTrainingState()


def train_epoch(net, optimizer, images_t, targets_t, rng, config, device, deadline: float) -> list[float]:
    """One shuffled pass of augmented batches (stopping early at ``deadline``); the batch losses."""
    import torch

    net.train()
    order = rng.permutation(len(images_t))
    losses = []
    for i in range(0, len(order) - config.batch_size + 1, config.batch_size):
        idx = torch.from_numpy(order[i : i + config.batch_size])
        x, y = augment(images_t[idx], targets_t[idx], rng)
        loss = torch.nn.functional.mse_loss(net(x.to(device)), y.to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
        if time.perf_counter() > deadline:
            break
    return losses


def end_of_epoch(net, optimizer, state: LandmarkTrainingState, entry: dict, run_dir: Path) -> None:
    """Record the epoch; keep the best weights; divide the learning rate by 5 after 3 stagnant epochs."""
    import torch

    state.history.append(entry)
    print(json.dumps(entry), flush=True)
    if state.best is None or entry["val_rmse"] < state.best - 1e-6:
        state.best, state.stale = entry["val_rmse"], 0
        torch.save(net.state_dict(), run_dir / "best.pt")
    else:
        state.stale += 1
        if state.stale % 3 == 0:  # the paper: learning rate / 5 after 3 stagnant epochs
            for group in optimizer.param_groups:
                group["lr"] /= 5.0


def train_landmarks(config: RvLandmarkTrainingConfig) -> dict:
    """Train (or resume) the RV insertion network, compare it with the detector, write ``OUT/model``."""
    import torch

    from CardiacMTLLib.models.nets import NETWORKS

    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    split = acdc_split(config.data, from_manifest=config.split_from)
    print(
        f"{len(split.train)} training and {len(split.validation)} validation patients "
        f"(split from {config.split_from})"
    )
    tag = f"{config.spacing:g}mm_{config.size}px"
    data_dir = Path(config.data)
    tr_x, tr_y, _ = build_samples(
        data_dir, split.train, config.spacing, config.size, run_dir / f"train_{tag}.npz"
    )
    va_x, va_y, _ = build_samples(
        data_dir, split.validation, config.spacing, config.size, run_dir / f"val_{tag}.npz"
    )
    print(f"{len(tr_x)} training and {len(va_x)} validation slices")

    device = resolve_device(config.device)
    net = NETWORKS["VGGLandmarkNet"](**vgg_kwargs(config)).to(device)
    optimizer = torch.optim.Adadelta(net.parameters(), lr=config.lr, rho=0.95, eps=1e-8)
    checkpoint_path = run_dir / "checkpoint.pt"
    rng, state = resume(checkpoint_path, net, optimizer, config, device)
    images_t, targets_t = torch.from_numpy(tr_x), torch.from_numpy(tr_y)
    deadline = time.perf_counter() + config.minutes * 60.0
    while state.epoch < config.epochs and time.perf_counter() < deadline:
        t0 = time.perf_counter()
        losses = train_epoch(net, optimizer, images_t, targets_t, rng, config, device, deadline)
        net.eval()
        predicted = predict_points(net, va_x)
        state.epoch += 1
        state.elapsed_s += time.perf_counter() - t0
        entry = {
            "epoch": state.epoch,
            "train_mse": float(np.mean(losses)) if losses else None,
            "val_rmse": float(np.sqrt(np.mean((predicted - va_y) ** 2))),
            "val_median_mm": float(np.median(errors_mm(predicted, va_y, config.spacing, config.size))),
            "minutes": round(state.elapsed_s / 60, 2),
        }
        end_of_epoch(net, optimizer, state, entry, run_dir)
        checkpoint = {
            "model": net.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": rng,
            "torch_rng": torch.get_rng_state(),
            "state": vars(state),
            "net_kwargs": vgg_kwargs(config),
        }
        torch.save(checkpoint, checkpoint_path)
    if (run_dir / "best.pt").exists():
        net.load_state_dict(torch.load(run_dir / "best.pt", map_location=device, weights_only=True))
    net.eval()
    comparison = compare_detectors(
        config.data, split.validation, config.segmentation_model, net, config.spacing, config.size
    )
    manifest = rv_landmark_manifest(config, split, state)
    manifest["scores"] = comparison["summary"]
    write_model_folder(run_dir / "model", net.state_dict(), manifest)
    (run_dir / "comparison.json").write_text(json.dumps(comparison, indent=2))
    print(json.dumps(comparison["summary"], indent=2))
    return comparison


def rv_landmark_manifest(config: RvLandmarkTrainingConfig, split, state: LandmarkTrainingState) -> dict:
    training = {
        **run_record(config.command),
        "truth": "ends of the LV epicardium touched by the RV cavity, derived from the ACDC expert labels",
        "train_patients": split.train,
        "validation_patients": split.validation,
        "epochs": state.epoch,
        "minutes": round(state.elapsed_s / 60, 1),
        "history": state.history,
    }
    output = "(x, y) per landmark, ((col + 0.5) / size, (row + 0.5) / size) of the padded input"
    return vgg_manifest(config, "sax", SAX_LABELS, output, training)


def compare_detectors(
    data_dir: str | Path,
    patients: list[str],
    segmentation_model: str | Path | None = None,
    net=None,
    spacing_mm: float = 1.37,
    size: int = 256,
) -> dict:
    """Errors (mm, in plane) of the network ``net`` (inputs at ``spacing_mm`` and ``size``) and of the
    segmentation-derived detector (with ``segmentation_model``) on ``patients``; either may be left out.

    Truth: the points derived from the expert labels. The network is asked on every slice that has truth
    (it does not decide whether a slice has insertion points); the segmentation-derived detector runs on
    the predicted segmentation of the whole frame, and slices where it finds no points count as misses.
    """
    seg_model = load_model(segmentation_model, device="cpu") if segmentation_model else None
    errors: dict[str, list[float]] = {"network": [], "segmentation": []}
    missed = extra = truth_count = 0
    per_patient = []
    for patient in patients:
        for frame, image_path, label_path in ed_es_frames(Path(data_dir), patient):
            image, spacing, affine = read_nifti_volume(image_path)
            labels, _, _ = read_nifti_volume(label_path)
            truth = truth_by_slice(labels.astype(np.uint8), spacing, affine, frame)
            truth_count += 2 * len(truth)
            spacing_rc = np.array([spacing[1], spacing[0]])
            row = {"patient": patient, "frame": frame, "slices": len(truth)}
            if net is not None and truth:
                inputs, geometries = [], []
                for k in truth:
                    x, geometry = network_input(image[k], tuple(spacing_rc), spacing_mm, size)
                    inputs.append(x)
                    geometries.append(geometry)
                out = predict_points(net, np.stack(inputs))
                e = []
                for (_k, points), values, geometry in zip(truth.items(), out, geometries, strict=True):
                    e += point_errors_mm(to_native_rc(values, geometry), points, spacing_rc)
                errors["network"] += e
                row["network_median_mm"] = round(float(np.median(e)), 2)
            if seg_model is not None:
                # the shipped detector exactly as analyze runs it, on this one frame
                rv_likely: list = []
                predicted = segment_volume(seg_model, image, spacing, rv_likely_out=rv_likely)
                volume = SimpleNamespace(spacing_mm=spacing, affine=affine, frame_numbers=[frame])
                found = landmarks_by_slice(
                    detect_sax_landmarks(predicted[None], volume, [0], {0: rv_likely[0]})
                )
                e = []
                for k, points in truth.items():
                    if k not in found:
                        missed += 2
                        continue
                    e += point_errors_mm(found[k], points, spacing_rc)
                extra += 2 * len(set(found) - set(truth))
                errors["segmentation"] += e
                row["segmentation_median_mm"] = round(float(np.median(e)), 2) if e else None
            per_patient.append(row)
    summary = {
        "validation_patients": len(patients),
        "truth_points": truth_count,
        "network (VGG16-style regression)": error_stats(errors["network"]),
        "segmentation-derived detector": {
            **error_stats(errors["segmentation"]),
            "missed_points": missed,
            "extra_points": extra,
        },
    }
    return {"summary": summary, "per_volume": per_patient, "errors_mm": errors}
