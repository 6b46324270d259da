"""``cardiac-train densenet``: the thesis' multi-task 3D DenseNet experiment on ACDC, and its model folder.

The thesis trained three variants and compared their diagnostic accuracy: diagnosis only; diagnosis +
ED/ES segmentation; diagnosis + segmentation + the 13 handcrafted features (88 % with segmentation against
64 % without, on its split). This command repeats the experiment with stratified k-fold cross-validation on
every ACDC training patient (``--experiment``), and trains one variant on all patients into a model folder
that ``analyze --diagnosis-model`` can load (``--ship``). Inputs come from
:mod:`CardiacMTLLib.analysis.diagnosis.densenet`, the same code inference uses. Runs are resumable per (variant, fold): finished folds are read back from
``RUN_DIR/results.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from CardiacMTLLib.analysis.diagnosis.densenet import (
    HANDCRAFTED,
    SLICES,
    handcrafted_features,
    prepare_case,
    window,
)
from CardiacMTLLib.datasets.acdc import ed_es_frames, list_acdc_patients
from CardiacMTLLib.io.nifti import read_nifti_volume
from CardiacMTLLib.models.registry import write_model_folder
from CardiacMTLLib.training.common import run_record
from CardiacMTLLib.types import ACDC_GROUP_TO_CLASS, CLASSES

VARIANTS = {
    "diagnosis": ("diagnosis",),
    "diagnosis+segmentation": ("diagnosis", "segmentation"),
    "diagnosis+segmentation+features": ("diagnosis", "segmentation", "features"),
}


@dataclass
class DenseNetTrainingConfig:
    """What ``cardiac-train densenet`` is asked to do: the cross-validated experiment, or with ``ship`` one
    variant trained on every patient into a model folder."""

    data: str | Path  # ACDC training folder (patientNNN/...)
    out: str | Path  # run folder (cache.npz, results.json, model/)
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    ship: str | None = None  # train this variant on all patients instead
    size: str = "cpu"  # network size: "cpu" (CPU_CONFIG) or "thesis"
    folds: int = 5
    epochs: int = 30
    batch_size: int = 4
    lr: float = 5e-4
    alpha: float = 0.3  # weight of the segmentation loss
    beta: float = 0.6  # weight of the feature loss in the head
    input_dropout: float = 0.2
    seed: int = 0
    threads: int = 2
    command: str | None = None  # the command line, recorded in the manifest


def build_cache(data_dir: Path, cache_path: Path) -> dict:
    """Prepared inputs, label crops, handcrafted features (from the expert labels) and class per patient."""
    if cache_path.exists():
        data = np.load(cache_path, allow_pickle=False)
        return {k: data[k] for k in data.files}
    from tqdm import tqdm

    out: dict = {"patients": [], "classes": []}
    for patient, group in tqdm(list_acdc_patients(data_dir), desc="preparing ACDC", unit="patient"):
        vols = []
        for _, image_path, label_path in ed_es_frames(data_dir, patient):
            image, spacing, _ = read_nifti_volume(image_path)
            labels, _, _ = read_nifti_volume(label_path)
            vols.append((image, labels.astype(np.uint8)))
        x, y = prepare_case(vols[0][0], vols[1][0], vols[0][1], vols[1][1], spacing)
        out[f"x_{patient}"], out[f"y_{patient}"] = x, y
        out[f"f_{patient}"] = handcrafted_features(vols[0][1], vols[1][1], spacing)
        out["patients"].append(patient)
        out["classes"].append(ACDC_GROUP_TO_CLASS[group])
    out["patients"], out["classes"] = np.array(out["patients"]), np.array(out["classes"])
    np.savez(cache_path, **out)
    return out


def _batch(cache, patients, rng, train: bool, torch):
    xs, ys, fs = [], [], []
    for p in patients:
        x, y = cache[f"x_{p}"], cache[f"y_{p}"]
        start = int(rng.integers(0, max(1, x.shape[1] - SLICES + 1))) if train else None
        x, y = window(x, start), window(y, start)
        if train:  # in-plane shift of up to 4 pixels (10 mm): the crop centre is never exact in use
            dr, dc = rng.integers(-4, 5, 2)
            x, y = np.roll(x, (dr, dc), axis=(2, 3)), np.roll(y, (dr, dc), axis=(2, 3))
        xs.append(x)
        ys.append(y)
        fs.append(cache[f"f_{p}"])
    return (
        torch.from_numpy(np.stack(xs)),
        torch.from_numpy(np.stack(ys).astype(np.int64)),
        torch.from_numpy(np.stack(fs)),
    )


def train_one(cache, train_ids, tasks, config: DenseNetTrainingConfig, seed: int, progress_desc: str):
    """Train one network on ``train_ids``; returns it (eval mode) and the feature normalisation."""
    import torch
    from tqdm import tqdm

    from CardiacMTLLib.models.nets.densenet3d import CPU_CONFIG, MultiTaskDenseNet3D
    from CardiacMTLLib.training.losses import thesis_loss

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    classes = {p: CLASSES.index(c) for p, c in zip(cache["patients"], cache["classes"], strict=True)}
    feats = np.stack([cache[f"f_{p}"] for p in train_ids])
    mean, std = feats.mean(axis=0), feats.std(axis=0) + 1e-6
    kwargs = dict(CPU_CONFIG, tasks=tasks) if config.size == "cpu" else {"tasks": tasks}
    net = MultiTaskDenseNet3D(**kwargs)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=1e-4)
    iters = int(np.ceil(len(train_ids) / config.batch_size))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs * iters)
    net.train()
    for _ in tqdm(range(config.epochs), desc=progress_desc, unit="epoch", leave=False):
        order = rng.permutation(train_ids)
        for i in range(iters):
            chunk = order[i * config.batch_size : (i + 1) * config.batch_size]
            x, y, f = _batch(cache, chunk, rng, True, torch)
            if config.input_dropout > 0:  # the thesis drops input voxels with probability 0.2
                x = torch.nn.functional.dropout(x, config.input_dropout)
            target = torch.tensor([classes[p] for p in chunk])
            out = net(x)
            loss = thesis_loss(
                out,
                target,
                (f - torch.from_numpy(mean)) / torch.from_numpy(std),
                y[:, 0],
                y[:, 1],
                alpha=config.alpha,
                beta=config.beta,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    net.eval()
    return net, kwargs, (mean, std)


def predict(net, cache, patients) -> np.ndarray:
    import torch

    with torch.inference_mode():
        x = torch.from_numpy(np.stack([window(cache[f"x_{p}"]) for p in patients]))
        return torch.softmax(net(x)["logits"].float(), dim=1).numpy()


def run_experiment(config: DenseNetTrainingConfig) -> dict:
    import torch
    from sklearn.metrics import confusion_matrix
    from sklearn.model_selection import StratifiedKFold

    torch.set_num_threads(config.threads)
    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    cache = build_cache(Path(config.data), run_dir / "cache.npz")
    patients, classes = cache["patients"], cache["classes"]
    results_path = run_dir / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    splitter = StratifiedKFold(n_splits=config.folds, shuffle=True, random_state=config.seed)
    folds = list(splitter.split(patients, classes))
    for variant in config.variants:
        record = results.setdefault(variant, {"folds": {}})
        for k, (train_idx, test_idx) in enumerate(folds):
            if str(k) in record["folds"]:
                continue
            t0 = time.time()
            net, _, _ = train_one(
                cache,
                patients[train_idx],
                VARIANTS[variant],
                config,
                config.seed + k,
                f"{variant} fold {k + 1}",
            )
            proba = predict(net, cache, patients[test_idx])
            record["folds"][str(k)] = {
                "patients": patients[test_idx].tolist(),
                "predicted": [CLASSES[i] for i in proba.argmax(axis=1)],
                "seconds": round(time.time() - t0, 1),
            }
            results_path.write_text(json.dumps(results, indent=2))
            acc = np.mean(np.array(record["folds"][str(k)]["predicted"]) == classes[test_idx])
            print(
                f"{variant} fold {k + 1}/{config.folds}: accuracy {acc:.2f} ({time.time() - t0:.0f} s)",
                flush=True,
            )
        truth, pred = [], []
        for fold in record["folds"].values():
            truth += [str(classes[list(patients).index(p)]) for p in fold["patients"]]
            pred += fold["predicted"]
        record["accuracy"] = round(float(np.mean(np.array(truth) == np.array(pred))), 4)
        record["patients"] = len(truth)
        record["confusion_matrix"] = {
            "rows_true_columns_predicted": list(CLASSES),
            "counts": confusion_matrix(truth, pred, labels=list(CLASSES)).tolist(),
        }
        results_path.write_text(json.dumps(results, indent=2))
        print(
            f"{variant}: {config.folds}-fold accuracy {record['accuracy']:.3f} on {len(truth)} patients",
            flush=True,
        )
    return results


def ship(config: DenseNetTrainingConfig) -> Path:
    """Train the ``ship`` variant on every patient and write the model folder."""
    import torch

    torch.set_num_threads(config.threads)
    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    cache = build_cache(Path(config.data), run_dir / "cache.npz")
    net, kwargs, (mean, std) = train_one(
        cache, cache["patients"], VARIANTS[config.ship], config, config.seed, f"{config.ship} (all patients)"
    )
    results_path = run_dir / "results.json"
    manifest = {
        "model_id": "acdc-densenet3d-mtl",
        "version": time.strftime("%Y%m%d"),
        "task": "diagnosis",
        "network": "MultiTaskDenseNet3D",
        "network_kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
        "classes": list(CLASSES),
        "handcrafted_features": list(HANDCRAFTED),
        "feature_normalisation": {"mean": mean.tolist(), "std": std.tolist()},
        "training": {
            "variant": config.ship,
            "patients": len(cache["patients"]),
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "alpha": config.alpha,
            "beta": config.beta,
            **run_record(config.command),
        },
        "cross_validation": json.loads(results_path.read_text()) if results_path.exists() else None,
    }
    model_dir = write_model_folder(run_dir / "model", net.state_dict(), manifest)
    print(f"model written to {model_dir}")
    return model_dir


def train_densenet(config: DenseNetTrainingConfig) -> dict | Path:
    """The cross-validated experiment (its results), or with ``config.ship`` the model folder."""
    return ship(config) if config.ship else run_experiment(config)
