"""``cardiac-train densenet``: the thesis' multi-task 3D DenseNet experiment on ACDC, and its model folder.

The thesis trained three variants and compared their diagnostic accuracy: diagnosis only; diagnosis +
ED/ES segmentation; diagnosis + segmentation + the 13 handcrafted features (88 % with segmentation against
64 % without, on its split). This command repeats the experiment with stratified k-fold cross-validation on
every ACDC training patient (``--experiment``), and trains one variant on all patients into a model folder
that ``analyze --diagnosis-model`` can load (``--ship``). Inputs come from :mod:`.densenet_diagnosis`,
the same code inference uses. Runs are resumable per (variant, fold): finished folds are read back from
``RUN_DIR/results.json``.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from CardiacMTLLib import __version__
from CardiacMTLLib.analysis.diagnosis.densenet import (
    HANDCRAFTED,
    SLICES,
    handcrafted_features,
    prepare_case,
    window,
)
from CardiacMTLLib.types import ACDC_GROUP_TO_CLASS, CLASSES

VARIANTS = {
    "diagnosis": ("diagnosis",),
    "diagnosis+segmentation": ("diagnosis", "segmentation"),
    "diagnosis+segmentation+features": ("diagnosis", "segmentation", "features"),
}


def build_cache(data_dir: Path, cache_path: Path) -> dict:
    """Prepared inputs, label crops, handcrafted features (from the expert labels) and class per patient."""
    if cache_path.exists():
        data = np.load(cache_path, allow_pickle=False)
        return {k: data[k] for k in data.files}
    from tqdm import tqdm

    from CardiacMTLLib.datasets.acdc import list_acdc_patients
    from CardiacMTLLib.io.cine import read_acdc_info, read_nifti_volume

    out: dict = {"patients": [], "classes": []}
    for patient, group in tqdm(list_acdc_patients(data_dir), desc="preparing ACDC", unit="patient"):
        folder = Path(data_dir) / patient
        info = read_acdc_info(folder / "Info.cfg")
        vols = []
        for frame in (int(info["ED"]), int(info["ES"])):
            image_path = folder / f"{patient}_frame{frame:02d}.nii.gz"
            image, spacing, _ = read_nifti_volume(image_path)
            labels, _, _ = read_nifti_volume(image_path.with_name(image_path.name.replace(".nii", "_gt.nii")))
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


def train_one(cache, train_ids, tasks, args, seed: int, progress_desc: str):
    """Train one network on ``train_ids``; returns it (eval mode) and the feature normalisation."""
    import torch
    from tqdm import tqdm

    from CardiacMTLLib.models.nets.densenet3d import CPU_CONFIG, MultiTaskDenseNet3D, thesis_loss

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    classes = {p: CLASSES.index(c) for p, c in zip(cache["patients"], cache["classes"], strict=True)}
    feats = np.stack([cache[f"f_{p}"] for p in train_ids])
    mean, std = feats.mean(axis=0), feats.std(axis=0) + 1e-6
    kwargs = dict(CPU_CONFIG, tasks=tasks) if args.size == "cpu" else {"tasks": tasks}
    net = MultiTaskDenseNet3D(**kwargs)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr, weight_decay=1e-4)
    iters = int(np.ceil(len(train_ids) / args.batch_size))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs * iters)
    net.train()
    for _ in tqdm(range(args.epochs), desc=progress_desc, unit="epoch", leave=False):
        order = rng.permutation(train_ids)
        for i in range(iters):
            chunk = order[i * args.batch_size : (i + 1) * args.batch_size]
            x, y, f = _batch(cache, chunk, rng, True, torch)
            if args.input_dropout > 0:  # the thesis drops input voxels with probability 0.2
                x = torch.nn.functional.dropout(x, args.input_dropout)
            target = torch.tensor([classes[p] for p in chunk])
            out = net(x)
            loss = thesis_loss(
                out,
                target,
                (f - torch.from_numpy(mean)) / torch.from_numpy(std),
                y[:, 0],
                y[:, 1],
                alpha=args.alpha,
                beta=args.beta,
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


def run_experiment(args) -> dict:
    import torch
    from sklearn.metrics import confusion_matrix
    from sklearn.model_selection import StratifiedKFold

    torch.set_num_threads(args.threads)
    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    cache = build_cache(Path(args.data), run_dir / "cache.npz")
    patients, classes = cache["patients"], cache["classes"]
    results_path = run_dir / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    splitter = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=args.seed)
    folds = list(splitter.split(patients, classes))
    for variant in args.variants:
        record = results.setdefault(variant, {"folds": {}})
        for k, (train_idx, test_idx) in enumerate(folds):
            if str(k) in record["folds"]:
                continue
            t0 = time.time()
            net, _, _ = train_one(
                cache, patients[train_idx], VARIANTS[variant], args, args.seed + k, f"{variant} fold {k + 1}"
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
                f"{variant} fold {k + 1}/{args.folds}: accuracy {acc:.2f} ({time.time() - t0:.0f} s)",
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
            f"{variant}: {args.folds}-fold accuracy {record['accuracy']:.3f} on {len(truth)} patients",
            flush=True,
        )
    return results


def ship(args) -> Path:
    """Train ``--ship VARIANT`` on every patient and write the model folder."""
    import torch

    torch.set_num_threads(args.threads)
    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    cache = build_cache(Path(args.data), run_dir / "cache.npz")
    net, kwargs, (mean, std) = train_one(
        cache, cache["patients"], VARIANTS[args.ship], args, args.seed, f"{args.ship} (all patients)"
    )
    model_dir = run_dir / "model"
    model_dir.mkdir(exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    torch.save(state, model_dir / "weights.pt")
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
            "variant": args.ship,
            "patients": len(cache["patients"]),
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "alpha": args.alpha,
            "beta": args.beta,
            "command": "cardiac-train " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "software": f"CardiacMTL {__version__}",
        },
        "cross_validation": json.loads(results_path.read_text()) if results_path.exists() else None,
    }
    (model_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"model written to {model_dir}")
    return model_dir


def train_densenet(args) -> None:
    if args.ship:
        ship(args)
    else:
        run_experiment(args)


def add_parser(sub) -> None:
    parser = sub.add_parser("densenet", help="the thesis' multi-task 3D DenseNet: CV experiment or model")
    parser.add_argument("--data", required=True, help="ACDC training folder (patientNNN/...)")
    parser.add_argument("--out", required=True, help="run folder (cache.npz, results.json, model/)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--ship", choices=list(VARIANTS), help="train this variant on all patients instead")
    parser.add_argument("--size", choices=["cpu", "thesis"], default="cpu", help="network size")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--alpha", type=float, default=0.3, help="weight of the segmentation loss")
    parser.add_argument("--beta", type=float, default=0.6, help="weight of the feature loss in the head")
    parser.add_argument("--input-dropout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
