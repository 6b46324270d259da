"""``cardiac-train landmarks``: the MESA paper's VGG16 landmark regression network for the RV insertions.

Training truth comes from the ACDC expert labels: :func:`CardiacMTLLib.landmarks.rv_insertion_points`
gives the two ends of the stretch of LV epicardium the RV touches on every ED and ES slice with both
ventricles. Inputs are prepared by :func:`CardiacMTLLib.landmarks.network_input` (per-image whitening,
in-plane resampling, zero-padded centre crop), so training and inference see the same images. As in the
paper (Appendix A): AdaDelta (learning rate 1, rho 0.95, eps 1e-8), mean squared error of the normalised
coordinates, the learning rate divided by 5 after 3 epochs without improvement on the validation set, and
augmentation by rotation (+-45 deg), shift (+-25 px at 256 px), shear (+-0.2) and scaling (0.8-1.2, short
axis). ``--init`` starts from another landmark model (the paper's transfer between views).

The run is resumable: ``RUN/checkpoint.pt`` is written every epoch, and ``--minutes`` bounds the training
time of one call (a second call continues). At the end the network and the segmentation-derived detector
(``--segmentation-model``) are compared on the validation patients against the truth derived from the
expert labels, and ``RUN/model`` (``weights.pt`` + ``manifest.json``) and ``RUN/comparison.json`` are written.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from CardiacMTLLib import __version__
from CardiacMTLLib.analysis.landmarks.common import network_input, to_native_rc, to_network_units
from CardiacMTLLib.analysis.landmarks.rv_insertion import detect_sax_landmarks, rv_insertion_points
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.landmarks import SAX_LABELS
from CardiacMTLLib.models.registry import WEIGHTS_DIR

SEGMENTATION_MANIFEST = WEIGHTS_DIR / "acdc_unet2d" / "manifest.json"


def acdc_ed_es(data_dir: Path, patient: str) -> list[tuple[int, Path, Path]]:
    """``(frame number, image, expert labels)`` of a patient's ED and ES frames."""
    from CardiacMTLLib.io.cine import read_acdc_info

    folder = Path(data_dir) / patient
    info = read_acdc_info(folder / "Info.cfg")
    out = []
    for key in ("ED", "ES"):
        frame = int(info[key])
        image = folder / f"{patient}_frame{frame:02d}.nii.gz"
        out.append((frame, image, image.with_name(image.name.replace(".nii", "_gt.nii"))))
    return out


def truth_by_slice(labels: np.ndarray, spacing, affine, frame: int) -> dict[int, list[tuple[float, float]]]:
    """``{slice: [(row, col) anterior, (row, col) inferior]}`` derived from a label map."""
    return _by_slice(rv_insertion_points(labels, spacing, affine, frame=frame, source="labels"))


def _by_slice(points: list[dict]) -> dict[int, list[tuple[float, float]]]:
    """RV insertion landmarks as ``{slice: [(row, col) anterior, (row, col) inferior]}`` (complete pairs)."""
    by_slice: dict[int, dict] = {}
    for p in points:
        by_slice.setdefault(p["slice"], {})[p["label"]] = (p["ijk"][1], p["ijk"][0])
    return {k: [v[name] for name in SAX_LABELS] for k, v in by_slice.items() if len(v) == 2}


def build_samples(data_dir: Path, patients: list[str], spacing_mm: float, size: int, cache: Path):
    """Network inputs and normalised targets of every ED/ES slice with insertion points."""
    from tqdm import tqdm

    from CardiacMTLLib.io.cine import read_nifti_volume

    if cache.exists():
        data = np.load(cache, allow_pickle=False)
        return data["images"], data["targets"], data["meta"]
    images, targets, meta = [], [], []
    for patient in tqdm(patients, desc="insertion points from expert labels", unit="patient"):
        for frame, image_path, label_path in acdc_ed_es(data_dir, patient):
            image, spacing, affine = read_nifti_volume(image_path)
            labels, _, _ = read_nifti_volume(label_path)
            for k, points in truth_by_slice(labels.astype(np.uint8), spacing, affine, frame).items():
                x, geometry = network_input(image[k], (spacing[1], spacing[0]), spacing_mm, size)
                images.append(x)
                targets.append(to_network_units(points, geometry))
                meta.append((int(patient[-3:]), frame, k))
    np.savez(cache, images=np.stack(images), targets=np.stack(targets), meta=np.array(meta))
    return np.stack(images), np.stack(targets), np.array(meta)


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


def _split(args) -> tuple[list[str], list[str]]:
    from CardiacMTLLib.datasets.acdc import list_acdc_patients

    patients = [p for p, _ in list_acdc_patients(Path(args.data))]
    manifest = json.loads(Path(args.split_from).read_text())
    val = sorted(manifest["training"]["validation_patients"])
    train = sorted(p for p in patients if p not in set(val))
    return train, val


def _predict(net, images: np.ndarray, batch: int = 64) -> np.ndarray:
    import torch

    device = next(net.parameters()).device
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            out.append(net(torch.from_numpy(images[i : i + batch])[:, None].to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 4), dtype=np.float32)


def _errors_mm(pred: np.ndarray, truth: np.ndarray, spacing_mm: float, size: int) -> np.ndarray:
    diff = (pred - truth).reshape(len(pred), -1, 2) * size * spacing_mm
    return np.hypot(diff[..., 0], diff[..., 1]).ravel()


def train_landmarks(args: argparse.Namespace) -> dict:
    import torch

    from CardiacMTLLib.models.nets import NETWORKS

    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_ids, val_ids = _split(args)
    print(f"{len(train_ids)} training and {len(val_ids)} validation patients (split from {args.split_from})")
    tag = f"{args.spacing:g}mm_{args.size}px"
    tr_x, tr_y, _ = build_samples(
        Path(args.data), train_ids, args.spacing, args.size, run_dir / f"train_{tag}.npz"
    )
    va_x, va_y, va_meta = build_samples(
        Path(args.data), val_ids, args.spacing, args.size, run_dir / f"val_{tag}.npz"
    )
    print(f"{len(tr_x)} training and {len(va_x)} validation slices")

    net_kwargs = _vgg_kwargs(args)
    from CardiacMTLLib.models.device import resolve_device

    device = resolve_device(args.device)
    net = NETWORKS["VGGLandmarkNet"](**net_kwargs).to(device)
    optimizer = torch.optim.Adadelta(net.parameters(), lr=args.lr, rho=0.95, eps=1e-8)
    rng = np.random.default_rng(args.seed)
    state = {"epoch": 0, "elapsed_s": 0.0, "history": [], "best": None, "stale": 0}
    checkpoint_path = run_dir / "checkpoint.pt"
    if checkpoint_path.exists():
        saved = torch.load(checkpoint_path, map_location=device, weights_only=False)
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        rng = saved["rng"]
        state = saved["state"]
        torch.set_rng_state(saved["torch_rng"])
        print(f"resuming after epoch {state['epoch']} ({state['elapsed_s'] / 60:.1f} min trained)")
    elif args.init:
        init = torch.load(Path(args.init) / "weights.pt", map_location=device, weights_only=True)
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in init.items()})
        print(f"initialised from {args.init} (transfer between views)")

    images_t, targets_t = torch.from_numpy(tr_x), torch.from_numpy(tr_y)
    budget_s = args.minutes * 60.0
    call_start = time.perf_counter()
    while state["epoch"] < args.epochs and time.perf_counter() - call_start < budget_s:
        t0 = time.perf_counter()
        net.train()
        order = rng.permutation(len(tr_x))
        losses = []
        for i in range(0, len(order) - args.batch_size + 1, args.batch_size):
            idx = torch.from_numpy(order[i : i + args.batch_size])
            x, y = augment(images_t[idx], targets_t[idx], rng)
            loss = torch.nn.functional.mse_loss(net(x.to(device)), y.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss))
            if time.perf_counter() - call_start > budget_s:
                break
        net.eval()
        predicted = _predict(net, va_x)
        val_err = _errors_mm(predicted, va_y, args.spacing, args.size)
        val_rmse = float(np.sqrt(np.mean((predicted - va_y) ** 2)))
        state["epoch"] += 1
        state["elapsed_s"] += time.perf_counter() - t0
        entry = {
            "epoch": state["epoch"],
            "train_mse": float(np.mean(losses)) if losses else None,
            "val_rmse": val_rmse,
            "val_median_mm": float(np.median(val_err)),
            "minutes": round(state["elapsed_s"] / 60, 2),
        }
        state["history"].append(entry)
        print(json.dumps(entry), flush=True)
        if state["best"] is None or val_rmse < state["best"] - 1e-6:
            state["best"], state["stale"] = val_rmse, 0
            torch.save(net.state_dict(), run_dir / "best.pt")
        else:
            state["stale"] += 1
            if state["stale"] % 3 == 0:  # the paper: learning rate / 5 after 3 stagnant epochs
                for group in optimizer.param_groups:
                    group["lr"] /= 5.0
        torch.save(
            {
                "model": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": rng,
                "torch_rng": torch.get_rng_state(),
                "state": state,
                "net_kwargs": net_kwargs,
            },
            checkpoint_path,
        )
    if (run_dir / "best.pt").exists():
        net.load_state_dict(torch.load(run_dir / "best.pt", map_location=device, weights_only=True))
    net.eval()
    manifest = {
        "model_id": args.model_id,
        "version": "0.1.0",
        "task": "landmarks",
        "view": "sax",
        "landmarks": list(SAX_LABELS),
        "network": "VGGLandmarkNet",
        "network_kwargs": net_kwargs,
        "preprocessing": {
            "target_spacing_mm": args.spacing,
            "input_size": args.size,
            "normalisation": "per-image whitening (zero mean, unit standard deviation), then zero padding",
            "output": "(x, y) per landmark, ((col + 0.5) / size, (row + 0.5) / size) of the padded input",
        },
        "training": {
            **_run_record(),
            "truth": "ends of the LV epicardium touched by the RV cavity, derived from the ACDC expert labels",
            "train_patients": train_ids,
            "validation_patients": val_ids,
            "epochs": state["epoch"],
            "minutes": round(state["elapsed_s"] / 60, 1),
            "history": state["history"],
        },
    }
    model_dir = _write_model_folder(run_dir, net, manifest)
    comparison = compare_detectors(args, net, val_ids)
    manifest["scores"] = comparison["summary"]
    (model_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (run_dir / "comparison.json").write_text(json.dumps(comparison, indent=2))
    print(json.dumps(comparison["summary"], indent=2))
    return comparison


def _stats(errors: list[float]) -> dict:
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


def _run_record() -> dict:
    """How a model was made: the command line and the software version (for its manifest)."""
    return {
        "command": "cardiac-train " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "software": f"CardiacMTL {__version__}",
    }


def _write_model_folder(run_dir: Path, net, manifest: dict) -> Path:
    """``run_dir/model``: the network's weights in half precision and ``manifest`` with their sha256."""
    import torch

    from CardiacMTLLib.models.registry import sha256_of

    model_dir = run_dir / "model"
    model_dir.mkdir(exist_ok=True)
    state = {
        k: v.detach().cpu().half() if v.is_floating_point() else v.cpu() for k, v in net.state_dict().items()
    }
    torch.save(state, model_dir / "weights.pt")
    manifest["sha256"] = {"weights.pt": sha256_of(model_dir / "weights.pt")}
    (model_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return model_dir


def compare_detectors(args: argparse.Namespace, net, val_ids: list[str]) -> dict:
    """Errors (mm, in plane) of the network and the segmentation-derived detector on ``val_ids``.

    Truth: the points derived from the expert labels. The network is asked on every slice that has truth
    (it does not decide whether a slice has insertion points); the segmentation-derived detector runs on
    the predicted segmentation of the whole frame, and slices where it finds no points count as misses.
    """

    from CardiacMTLLib.analysis.segment import segment_volume
    from CardiacMTLLib.io.cine import read_nifti_volume
    from CardiacMTLLib.models.registry import load_model

    seg_model = load_model(args.segmentation_model, device="cpu") if args.segmentation_model else None
    errors: dict[str, list[float]] = {"network": [], "segmentation": []}
    missed = extra = truth_count = 0
    per_patient = []
    for patient in val_ids:
        for frame, image_path, label_path in acdc_ed_es(Path(args.data), patient):
            image, spacing, affine = read_nifti_volume(image_path)
            labels, _, _ = read_nifti_volume(label_path)
            truth = truth_by_slice(labels.astype(np.uint8), spacing, affine, frame)
            truth_count += 2 * len(truth)
            spacing_rc = np.array([spacing[1], spacing[0]])
            row = {"patient": patient, "frame": frame, "slices": len(truth)}
            if net is not None and truth:
                inputs, geometries = [], []
                for k in truth:
                    x, geometry = network_input(image[k], tuple(spacing_rc), args.spacing, args.size)
                    inputs.append(x)
                    geometries.append(geometry)
                out = _predict(net, np.stack(inputs))
                e = []
                for (_k, points), values, geometry in zip(truth.items(), out, geometries, strict=True):
                    e += _point_errors_mm(to_native_rc(values, geometry), points, spacing_rc)
                errors["network"] += e
                row["network_median_mm"] = round(float(np.median(e)), 2)
            if seg_model is not None:
                # the shipped detector exactly as analyze runs it, on this one frame
                rv_likely: list = []
                predicted = segment_volume(seg_model, image, spacing, rv_likely_out=rv_likely)
                volume = SimpleNamespace(spacing_mm=spacing, affine=affine, frame_numbers=[frame])
                found = _by_slice(detect_sax_landmarks(predicted[None], volume, [0], {0: rv_likely[0]}))
                e = []
                for k, points in truth.items():
                    if k not in found:
                        missed += 2
                        continue
                    e += _point_errors_mm(found[k], points, spacing_rc)
                extra += 2 * len(set(found) - set(truth))
                errors["segmentation"] += e
                row["segmentation_median_mm"] = round(float(np.median(e)), 2) if e else None
            per_patient.append(row)
    summary = {
        "validation_patients": len(val_ids),
        "truth_points": truth_count,
        "network (VGG16-style regression)": _stats(errors["network"]),
        "segmentation-derived detector": {
            **_stats(errors["segmentation"]),
            "missed_points": missed,
            "extra_points": extra,
        },
    }
    return {"summary": summary, "per_volume": per_patient, "errors_mm": errors}


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "landmarks",
        help="RV insertion points: the VGG16-style regression network and its comparison with the "
        "segmentation-derived detector",
    )
    parser.add_argument(
        "--view", choices=["sax", "lax"], default="sax", help="sax: RV insertions; lax: mitral hinges"
    )
    parser.add_argument(
        "--data",
        required=True,
        help="sax: ACDC training folder; lax: biv-me study folder (dicom/, guidepoints/)",
    )
    parser.add_argument(
        "--method",
        choices=["segmentation", "vgg"],
        default="vgg",
        help="lax: segmentation fine-tunes the --init U-Net on the long-axis LV contours (the shipped "
        "detector); vgg trains the paper's regression network",
    )
    parser.add_argument(
        "--iterations", type=int, default=600, help="lax segmentation: training iterations per model"
    )
    parser.add_argument(
        "--synthetic-cines", type=int, default=40, help="lax: synthetic long-axis cines added"
    )
    parser.add_argument("--real-weight", type=float, default=8.0, help="lax: sampling weight of a real frame")
    parser.add_argument(
        "--out", required=True, help="run folder (checkpoint.pt, caches, model/, comparison.json)"
    )
    parser.add_argument("--width", type=int, default=64, help="channels of the first VGG block (paper: 64)")
    parser.add_argument(
        "--dense-units", type=int, default=2048, help="units of the two dense layers (paper: 2048)"
    )
    parser.add_argument("--size", type=int, default=256, help="input field in pixels (paper: 256)")
    parser.add_argument("--spacing", type=float, default=1.37, help="in-plane spacing of the input (mm)")
    parser.add_argument("--batch-norm", action="store_true", help="batch norm after each convolution")
    parser.add_argument(
        "--batch-size", type=int, help="default: 48 (the paper's) for vgg, 8 for segmentation"
    )
    parser.add_argument(
        "--lr", type=float, help="default: AdaDelta 1.0 (the paper's) for vgg, Adam 3e-4 for segmentation"
    )
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument(
        "--minutes", type=float, default=1e9, help="training time of this call; rerun to resume"
    )
    parser.add_argument(
        "--init",
        help="model folder to start from: a landmark network (the paper's transfer between views), or for "
        "the lax segmentation a segmentation model (default: the shipped ACDC U-Net)",
    )
    parser.add_argument(
        "--split-from",
        default=str(SEGMENTATION_MANIFEST),
        help="manifest whose validation_patients are held out (default: the shipped segmentation model's)",
    )
    parser.add_argument("--segmentation-model", help="segmentation model folder for the detector comparison")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    parser.add_argument("--model-id", help="default: acdc-vgg-rv-insertion, or bivme-lax-unet2d")


def main_landmarks(args: argparse.Namespace) -> None:
    if not Path(args.data).is_dir():
        raise CardiacInputError(f"{args.data}: no such folder (expected the ACDC training data)")
    segmentation = args.view == "lax" and args.method == "segmentation"
    if args.batch_size is None:
        args.batch_size = 8 if segmentation else 48
    if args.lr is None:
        args.lr = 3e-4 if segmentation else 1.0
    if args.model_id is None:
        args.model_id = "bivme-lax-unet2d" if segmentation else "acdc-vgg-rv-insertion"
    if segmentation and args.init is None:
        args.init = str(SEGMENTATION_MANIFEST.parent)
    if segmentation:
        train_lax_segmentation(args)
    elif args.view == "lax":
        train_lax(args)
    else:
        train_landmarks(args)


# --------------------------------------------------------------------------------------------------
# long axis: mitral valve hinge points (biv-me study + synthetic cines)


def _open_curve(points_rc: np.ndarray) -> np.ndarray:
    """A contour's points in order from one end to the other, cut at the widest gap (the valve opening):
    guide-point contours may list a stray point of the start at their end."""
    gaps = np.linalg.norm(np.roll(points_rc, -1, axis=0) - points_rc, axis=1)
    return np.roll(points_rc, -(int(np.argmax(gaps)) + 1), axis=0)


def lax_contour_labels(endo_rc, epi_rc, shape: tuple[int, int]) -> np.ndarray:
    """A long-axis label map (3 LV cavity, 2 myocardium) from open endo- and epicardial contour points.

    The cavity is the endocardial curve closed by the straight valve line between its ends; the
    myocardium lies inside the epicardial curve (its points put in the order of the endocardium they face:
    guide-point lists come in pieces) and outside the cavity, but never beyond the valve line.
    """
    from matplotlib.path import Path as PolygonPath

    endo = _open_curve(np.asarray(endo_rc, dtype=float))
    epi = np.asarray(epi_rc, dtype=float)
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(endo, axis=0), axis=1))]
    facing = np.argmin(np.linalg.norm(epi[:, None] - endo[None], axis=2), axis=1)
    epi = epi[np.argsort(arc[facing], kind="stable")]
    # only the box around the contours can be inside them
    low = np.clip(np.floor(np.vstack([endo, epi]).min(axis=0)).astype(int) - 2, 0, None)
    high = np.minimum(np.ceil(np.vstack([endo, epi]).max(axis=0)).astype(int) + 3, shape)
    rows, cols = np.maximum(high - low, 1)
    grid = np.stack(np.mgrid[low[0] : low[0] + rows, low[1] : low[1] + cols], axis=-1).reshape(-1, 2)
    grid = grid.astype(float)

    def inside(polygon):
        return PolygonPath(polygon).contains_points(grid).reshape(rows, cols)

    cavity = inside(endo)
    a, ab = endo[0], endo[-1] - endo[0]
    along = ((grid - a) @ ab) / max(float(ab @ ab), 1e-9)
    across = (ab[0] * (grid[:, 1] - a[1]) - ab[1] * (grid[:, 0] - a[0])) / max(float(np.hypot(*ab)), 1e-9)
    centre = endo.mean(axis=0) - a
    apex_side = np.sign(ab[0] * centre[1] - ab[1] * centre[0])
    beyond_valve = ((along > 0.03) & (along < 0.97) & (across * apex_side < 1.5)).reshape(rows, cols)
    box = np.zeros((rows, cols), dtype=np.uint8)
    box[inside(epi) & ~cavity & ~beyond_valve] = 2
    box[cavity] = 3
    labels = np.zeros(shape, dtype=np.uint8)
    labels[low[0] : low[0] + rows, low[1] : low[1] + cols] = box[: shape[0] - low[0], : shape[1] - low[1]]
    return labels


def bivme_lax_series(bivme_dir: Path) -> list[dict]:
    """The long-axis series of a biv-me study that carry ``MITRAL_VALVE`` guide points.

    Returns ``{"name", "view", "images" (frames, rows, cols), "spacing_rc", "points_rc" (frames, 2, 2),
    "labels" (frames, rows, cols) or None}`` with the guide points (LPS mm) projected into the series'
    pixels; the phase of ``GPFile_NNN.txt`` is the series' frame NNN in trigger-time order. ``labels`` are
    the LV cavity and myocardium drawn from the ``LAX_LV_ENDOCARDIAL``/``LAX_LV_EPICARDIAL`` contours
    (:func:`lax_contour_labels`) when every phase has them.
    """
    from CardiacMTLLib.analysis.landmarks.mitral import order_hinges
    from CardiacMTLLib.io.lax import read_lax_cine

    gp_dir, dicom_dir = Path(bivme_dir) / "guidepoints", Path(bivme_dir) / "dicom"
    file_of = {}
    for line in (gp_dir / "SliceInfoFile.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) > 2:
            file_of[int(parts[2])] = parts[0]
    points: dict[int, dict[int, list]] = {}
    contours: dict[tuple, list] = {}
    for path in sorted(gp_dir.glob("GPFile_*.txt")):
        t = int(path.stem.split("_")[1])
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) > 4 and parts[3] == "MITRAL_VALVE":
                points.setdefault(int(parts[4]), {}).setdefault(t, []).append([float(v) for v in parts[:3]])
            elif len(parts) > 4 and parts[3] in ("LAX_LV_ENDOCARDIAL", "LAX_LV_EPICARDIAL"):
                contours.setdefault((int(parts[4]), t, parts[3]), []).append([float(v) for v in parts[:3]])
    series = []
    for frame_id, per_phase in sorted(points.items()):
        matches = list(dicom_dir.glob(f"*/{file_of[frame_id]}"))
        if not matches:
            continue
        folder = matches[0].parent
        cine = read_lax_cine(folder)
        description = " ".join(cine.extra.get("series_descriptions", [])).upper()
        view = "2ch" if "2CH" in description else "4ch"
        inverse = np.linalg.inv(cine.affine)

        def to_rc(lps, inverse=inverse) -> np.ndarray:
            lps = np.asarray(lps, dtype=float)
            ras = np.c_[-lps[:, 0], -lps[:, 1], lps[:, 2], np.ones(len(lps))]
            return (inverse @ ras.T).T[:, [1, 0]]

        labels = None
        names = ("LAX_LV_ENDOCARDIAL", "LAX_LV_EPICARDIAL")
        if all((frame_id, t, n) in contours for t in range(cine.num_frames) for n in names):
            labels = np.stack(
                [
                    lax_contour_labels(
                        to_rc(contours[(frame_id, t, names[0])]),
                        to_rc(contours[(frame_id, t, names[1])]),
                        cine.data.shape[2:],
                    )
                    for t in range(cine.num_frames)
                ]
            )
        targets = []
        for t in range(cine.num_frames):
            lps = per_phase.get(t, [])
            if len(lps) != 2:
                raise CardiacInputError(
                    f"{gp_dir}: phase {t} of frameID {frame_id} has {len(lps)} mitral points"
                )
            targets.append(order_hinges(to_rc(lps)))
        series.append(
            {
                "name": folder.name,
                "view": view,
                "images": cine.data[:, 0],
                "spacing_rc": (cine.spacing_mm[1], cine.spacing_mm[0]),
                "points_rc": np.array(targets, dtype=np.float32),
                "labels": labels,
            }
        )
    if not series:
        raise CardiacInputError(f"{bivme_dir}: no long-axis series with MITRAL_VALVE guide points found")
    return series


def _lax_samples(series: list[dict], spacing_mm: float, size: int):
    x, y, flips, geometries = [], [], [], []
    for s in series:
        for image, points in zip(s["images"], s["points_rc"], strict=True):
            inp, geometry = network_input(image, s["spacing_rc"], spacing_mm, size)
            x.append(inp)
            y.append(to_network_units(points, geometry))
            flips.append("horizontal" if s["view"] == "4ch" else "vertical")
            geometries.append(geometry)
    return np.stack(x), np.stack(y), flips, geometries


def _fit_lax(args, train_x, train_y, flips, weights, init_state, device, epochs: int):
    import torch

    from CardiacMTLLib.models.nets import NETWORKS

    torch.manual_seed(args.seed)
    net = NETWORKS["VGGLandmarkNet"](**_vgg_kwargs(args)).to(device)
    if init_state is not None:
        net.load_state_dict(init_state)
    optimizer = torch.optim.Adadelta(net.parameters(), lr=args.lr, rho=0.95, eps=1e-8)
    rng = np.random.default_rng(args.seed)
    images_t, targets_t = torch.from_numpy(train_x), torch.from_numpy(train_y)
    probabilities = np.asarray(weights, dtype=float) / np.sum(weights)
    steps = max(1, len(train_x) // args.batch_size)
    flips = np.array(flips)
    for _ in range(epochs):
        net.train()
        for _ in range(steps):
            idx = rng.choice(len(train_x), size=args.batch_size, p=probabilities)
            x, y = augment(
                images_t[idx], targets_t[idx], rng, scale_range=None, flip=flips[idx], sort_by_x=True
            )
            loss = torch.nn.functional.mse_loss(net(x.to(device)), y.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return net.eval()


def _vgg_kwargs(args) -> dict:
    """Constructor arguments of the landmark network (both views) from the command line."""
    return {
        "in_channels": 1,
        "num_points": 2,
        "width": args.width,
        "dense_units": args.dense_units,
        "size": args.size,
        "batch_norm": args.batch_norm,
    }


def _point_errors_mm(found, truth, spacing_rc) -> list[float]:
    """In-plane distances (mm) between paired ``(row, col)`` points."""
    return [float(np.hypot(*(np.subtract(p, q) * spacing_rc))) for p, q in zip(found, truth, strict=True)]


def _hinge_errors(pred, truth, geometries, spacing_rc) -> list[float]:
    from CardiacMTLLib.analysis.landmarks.mitral import order_hinges

    errors = []
    for values, target, geometry in zip(pred, truth, geometries, strict=True):
        p = order_hinges(to_native_rc(values, geometry))
        q = order_hinges(to_native_rc(target, geometry))
        errors += _point_errors_mm(p, q, spacing_rc)
    return errors


def _label_hinge_errors(labels, truth_rc, spacing_rc) -> tuple[list[float], int]:
    """Errors (mm) of the hinges read from each long-axis label map against the truth, and how many maps
    gave none."""
    from CardiacMTLLib.analysis.landmarks.mitral import hinges_from_lax_labels

    errors, missed = [], 0
    for frame, truth in zip(labels, truth_rc, strict=True):
        found = hinges_from_lax_labels(frame, spacing_rc)
        if found is None:
            missed += 1
        else:
            errors += _point_errors_mm(found, truth, spacing_rc)
    return errors, missed


def train_lax(args: argparse.Namespace) -> dict:
    """Leave-one-series-out evaluation on the biv-me long-axis series, then the model on all of them."""
    import torch

    from CardiacMTLLib.models.device import resolve_device
    from CardiacMTLLib.synthetic.lax import synthetic_lax_cine

    device = resolve_device(args.device)
    torch.set_num_threads(args.threads)
    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    real = bivme_lax_series(Path(args.data))
    print("series:", [(s["name"], s["view"], len(s["images"])) for s in real], flush=True)
    synthetic = []
    for i in range(args.synthetic_cines):
        view = "4ch" if i % 2 == 0 else "2ch"
        images, points = synthetic_lax_cine(seed=1000 + i, view=view, num_frames=10)
        synthetic.append(
            {
                "name": f"synthetic{i}",
                "view": view,
                "images": images,
                "spacing_rc": (1.40625,) * 2,
                "points_rc": points,
            }
        )
    syn_x, syn_y, syn_flips, _ = (
        _lax_samples(synthetic, args.spacing, args.size) if synthetic else (None,) * 4
    )
    init_state = None
    if args.init:
        state = torch.load(Path(args.init) / "weights.pt", map_location=device, weights_only=True)
        init_state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}

    def training_set(series):
        x, y, flips, _ = _lax_samples(series, args.spacing, args.size)
        weights = [args.real_weight] * len(x)
        if syn_x is not None:
            x, y = np.concatenate([x, syn_x]), np.concatenate([y, syn_y])
            flips = flips + syn_flips
            weights += [1.0] * len(syn_x)
        return x, y, flips, weights

    folds = []
    for held in real:
        rest = [s for s in real if s is not held]
        test_x, test_y, _, test_geometries = _lax_samples([held], args.spacing, args.size)
        baseline = np.mean(
            np.concatenate([_lax_samples([s], args.spacing, args.size)[1] for s in rest]), axis=0
        )
        row = {"held_out": held["name"], "view": held["view"], "frames": len(test_x)}
        row["mean_position_baseline"] = _stats(
            _hinge_errors(
                np.repeat(baseline[None], len(test_x), 0), test_y, test_geometries, held["spacing_rc"]
            )
        )
        for name, init in (("network_from_scratch", None), ("network_transfer_from_sax", init_state)):
            if name == "network_transfer_from_sax" and init is None:
                continue
            x, y, flips, weights = training_set(rest)
            net = _fit_lax(args, x, y, flips, weights, init, device, args.epochs)
            row[name] = _stats(
                _hinge_errors(_predict(net, test_x), test_y, test_geometries, held["spacing_rc"])
            )
        print(json.dumps(row), flush=True)
        folds.append(row)
    x, y, flips, weights = training_set(real)
    net = _fit_lax(args, x, y, flips, weights, init_state, device, args.epochs).cpu()
    manifest = {
        "model_id": args.model_id,
        "version": "0.1.0",
        "task": "landmarks",
        "view": "lax (2ch, 4ch)",
        "landmarks": ["MV_HINGE_1", "MV_HINGE_2"],
        "network": "VGGLandmarkNet",
        "network_kwargs": _vgg_kwargs(args),
        "preprocessing": {
            "target_spacing_mm": args.spacing,
            "input_size": args.size,
            "normalisation": "per-image whitening (zero mean, unit standard deviation), then zero padding",
            "output": "(x, y) per hinge in ((col + 0.5) / size, (row + 0.5) / size); MV_HINGE_1 = smaller column",
        },
        "training": {
            **_run_record(),
            "real_series": [(s["name"], s["view"], len(s["images"])) for s in real],
            "synthetic_cines": args.synthetic_cines,
            "init": args.init,
            "epochs": args.epochs,
        },
        "leave_one_series_out": folds,
    }
    _write_model_folder(run_dir, net, manifest)
    (run_dir / "lax_loso.json").write_text(json.dumps(folds, indent=2))
    return {"folds": folds}


# --------------------------------------------------------------------------------------------------
# long axis: the LV segmentation the shipped mitral hinge detector reads


def _lax_training_arrays(series: list[dict], spacing_mm: float):
    """Normalised, resampled frames and labels of ``series`` padded to one shape, and their heart centres."""
    from CardiacMTLLib.analysis.preprocess import (
        normalise_intensity,
        resample_inplane,
        resample_labels_inplane,
    )

    frames, labels = [], []
    for s in series:
        # the whole cine is normalised as one stack, as inference normalises it
        frames += list(resample_inplane(normalise_intensity(s["images"]), s["spacing_rc"], spacing_mm))
        labels += list(resample_labels_inplane(s["labels"], s["spacing_rc"], spacing_mm, 4))
    rows, cols = max(f.shape[0] for f in frames), max(f.shape[1] for f in frames)
    x = np.zeros((len(frames), rows, cols), dtype=np.float32)
    y = np.zeros((len(frames), rows, cols), dtype=np.int64)
    for i, (f, lab) in enumerate(zip(frames, labels, strict=True)):
        x[i] = f.min()
        x[i, : f.shape[0], : f.shape[1]] = f
        y[i, : lab.shape[0], : lab.shape[1]] = lab
    centres = np.array([np.argwhere(lab > 0).mean(axis=0) for lab in labels])
    return x, y, centres


def _fit_lax_segmentation(args, series: list[dict], seed: int):
    """Fine-tune the ``--init`` segmentation model on the long-axis ``series`` (returns the loaded model)."""
    import torch

    from CardiacMTLLib.models.registry import load_model
    from CardiacMTLLib.training.common import augment_batch, soft_dice_loss

    model = load_model(args.init, device="cpu")
    net = model.net.to(memory_format=torch.contiguous_format).train()
    x, y, centres = _lax_training_arrays(series, model.target_spacing_mm)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=args.lr)
    started = time.perf_counter()
    for iteration in range(args.iterations):
        pick = rng.choice(len(x), args.batch_size)
        xb, yb = augment_batch(x[pick], y[pick], centres[pick], model.input_size, rng, torch)
        if rng.uniform() < 0.5:  # long-axis views come mirrored either way (MESA flips them too)
            xb, yb = xb.flip(-1), yb.flip(-1)
        if rng.uniform() < 0.5:
            xb, yb = xb.flip(-2), yb.flip(-2)
        logits = net(xb)
        loss = torch.nn.functional.cross_entropy(logits, yb) + soft_dice_loss(logits, yb, logits.shape[1])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if iteration % 100 == 0 or iteration == args.iterations - 1:
            print(
                f"  iteration {iteration}: loss {loss.item():.3f} ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    net.eval()
    return model


def lax_hinge_errors(model, s: dict) -> dict:
    """Hinge errors (mm) of the segmentation-derived detector on one series, and the labels' Dice."""
    from CardiacMTLLib.analysis.landmarks.mitral import segment_lax

    cine = SimpleNamespace(
        data=s["images"][:, None], spacing_mm=(s["spacing_rc"][1], s["spacing_rc"][0], 1.0)
    )
    labels = segment_lax(model, cine)
    errors, missed = _label_hinge_errors(labels, s["points_rc"], s["spacing_rc"])
    dice = {}
    for value, name in ((2, "myocardium"), (3, "cavity")):
        a, b = labels == value, s["labels"] == value
        dice[name] = round(float(2 * (a & b).sum() / max(int(a.sum() + b.sum()), 1)), 3)
    return {**_stats(errors), "frames_without_hinges": missed, "dice": dice, "errors_mm": errors}


def train_lax_segmentation(args: argparse.Namespace) -> dict:
    """Leave-one-series-out on the biv-me long-axis series, then the shipped model trained on all of them."""
    import torch

    torch.set_num_threads(args.threads)
    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    real = [s for s in bivme_lax_series(Path(args.data)) if s["labels"] is not None]
    if len(real) < 2:
        raise CardiacInputError(f"{args.data}: fewer than two long-axis series with LV contours")
    print("series:", [(s["name"], s["view"], len(s["images"])) for s in real], flush=True)
    folds = []
    for k, held in enumerate(real):
        print(f"held out: {held['name']}", flush=True)
        model = _fit_lax_segmentation(args, [s for s in real if s is not held], seed=args.seed + k)
        row = {"held_out": held["name"], "view": held["view"], "frames": len(held["images"])}
        row["network"] = lax_hinge_errors(model, held)
        # the same hinge rule on the expert's own contours: what a perfect segmentation would give
        reference, _ = _label_hinge_errors(held["labels"], held["points_rc"], held["spacing_rc"])
        row["expert_contours"] = _stats(reference)
        print(json.dumps({k: v for k, v in row["network"].items() if k != "errors_mm"}), flush=True)
        folds.append(row)
    pooled = [e for row in folds for e in row["network"]["errors_mm"]]
    summary = {
        "pooled": _stats(pooled),
        "per_series": {
            r["held_out"]: {k: v for k, v in r["network"].items() if k != "errors_mm"} for r in folds
        },
    }
    print(json.dumps(summary, indent=2), flush=True)
    model = _fit_lax_segmentation(args, real, seed=args.seed)
    init = model.manifest
    manifest = {
        "model_id": args.model_id,
        "version": "0.1.0",
        "task": "lax_segmentation",
        "view": "long axis (2ch, 3ch, 4ch)",
        "network": init["network"],
        "network_kwargs": init["network_kwargs"],
        "labels": {"0": "background", "2": "LV myocardium", "3": "LV cavity"},
        "preprocessing": init["preprocessing"],
        "training": {
            **_run_record(),
            "init": str(args.init),
            "real_series": [(s["name"], s["view"], len(s["images"])) for s in real],
            "iterations": args.iterations,
            "batch_size": args.batch_size,
            "lr": args.lr,
        },
        "leave_one_series_out": summary,
    }
    _write_model_folder(run_dir, model.net, manifest)
    (run_dir / "lax_segmentation_loso.json").write_text(json.dumps(folds, indent=2))
    return {"folds": folds, "summary": summary}
