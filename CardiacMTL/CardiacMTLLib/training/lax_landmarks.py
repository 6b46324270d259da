"""``cardiac-train landmarks --view lax``: the VGG16-style regression network for the mitral valve hinges on
long-axis cines, trained on the biv-me study's series plus synthetic cines.

Each real series is held out in turn (leave one series out) and compared with a mean-position baseline;
with ``init`` (a short-axis landmark model: the paper's transfer between views) the network is trained both
from scratch and from it. The model folder holds the network trained on every series.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from CardiacMTLLib.analysis.landmarks.common import network_input, to_native_rc, to_network_units
from CardiacMTLLib.analysis.landmarks.mitral import order_hinges
from CardiacMTLLib.datasets.bivme import LaxSeries, bivme_lax_series
from CardiacMTLLib.io.landmarks import LAX_LABELS
from CardiacMTLLib.models.device import resolve_device
from CardiacMTLLib.models.registry import write_model_folder
from CardiacMTLLib.synthetic.lax import synthetic_lax_cine
from CardiacMTLLib.training.common import run_record
from CardiacMTLLib.training.landmark_common import (
    augment,
    error_stats,
    point_errors_mm,
    predict_points,
    vgg_kwargs,
    vgg_manifest,
)

SYNTHETIC_SPACING_MM = 1.40625


@dataclass
class LaxLandmarkTrainingConfig:
    """What ``cardiac-train landmarks --view lax --method vgg`` is asked to do."""

    data: str | Path  # biv-me study folder (dicom/, guidepoints/)
    out: str | Path  # run folder (model/, lax_loso.json)
    width: int = 64  # channels of the first VGG block (paper: 64)
    dense_units: int = 2048  # units of the two dense layers (paper: 2048)
    size: int = 256  # input field in pixels (paper: 256)
    spacing: float = 1.37  # in-plane spacing of the input (mm)
    batch_norm: bool = False
    batch_size: int = 48
    lr: float = 1.0  # AdaDelta
    epochs: int = 200
    init: str | None = None  # a short-axis landmark model folder (transfer between views)
    synthetic_cines: int = 40  # synthetic long-axis cines added to the real series
    real_weight: float = 8.0  # sampling weight of a real frame (a synthetic one weighs 1)
    seed: int = 0
    threads: int = 1
    device: str = "cpu"
    model_id: str = "bivme-mv-hinge-vgg"
    command: str | None = None  # the command line, recorded in the manifest


def synthetic_series(count: int) -> list[LaxSeries]:
    """``count`` synthetic cines of 10 frames, alternating 4- and 2-chamber views."""
    series = []
    for i in range(count):
        view = "4ch" if i % 2 == 0 else "2ch"
        images, points = synthetic_lax_cine(seed=1000 + i, view=view, num_frames=10)
        series.append(LaxSeries(f"synthetic{i}", view, images, (SYNTHETIC_SPACING_MM,) * 2, points))
    return series


def lax_samples(series: list[LaxSeries], spacing_mm: float, size: int):
    """Network inputs, normalised targets, the flip each view allows, and the input geometries."""
    x, y, flips, geometries = [], [], [], []
    for s in series:
        for image, points in zip(s.images, s.points_rc, strict=True):
            inp, geometry = network_input(image, s.spacing_rc, spacing_mm, size)
            x.append(inp)
            y.append(to_network_units(points, geometry))
            flips.append("horizontal" if s.view == "4ch" else "vertical")
            geometries.append(geometry)
    return np.stack(x), np.stack(y), flips, geometries


def fit_lax(config: LaxLandmarkTrainingConfig, train_x, train_y, flips, weights, init_state, device):
    """A network trained for ``config.epochs`` on weighted random batches (hinges re-ordered by x)."""
    import torch

    from CardiacMTLLib.models.nets import NETWORKS

    torch.manual_seed(config.seed)
    net = NETWORKS["VGGLandmarkNet"](**vgg_kwargs(config)).to(device)
    if init_state is not None:
        net.load_state_dict(init_state)
    optimizer = torch.optim.Adadelta(net.parameters(), lr=config.lr, rho=0.95, eps=1e-8)
    rng = np.random.default_rng(config.seed)
    images_t, targets_t = torch.from_numpy(train_x), torch.from_numpy(train_y)
    probabilities = np.asarray(weights, dtype=float) / np.sum(weights)
    steps = max(1, len(train_x) // config.batch_size)
    flips = np.array(flips)
    for _ in range(config.epochs):
        net.train()
        for _ in range(steps):
            idx = rng.choice(len(train_x), size=config.batch_size, p=probabilities)
            x, y = augment(
                images_t[idx], targets_t[idx], rng, scale_range=None, flip=flips[idx], sort_by_x=True
            )
            loss = torch.nn.functional.mse_loss(net(x.to(device)), y.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return net.eval()


def hinge_errors(pred, truth, geometries, spacing_rc) -> list[float]:
    """Errors (mm) of predicted hinges against the truth, both in :func:`order_hinges` order."""
    errors = []
    for values, target, geometry in zip(pred, truth, geometries, strict=True):
        p = order_hinges(to_native_rc(values, geometry))
        q = order_hinges(to_native_rc(target, geometry))
        errors += point_errors_mm(p, q, spacing_rc)
    return errors


def init_state_of(config: LaxLandmarkTrainingConfig, device) -> dict | None:
    """The fp32 weights of the ``init`` model folder, or ``None``."""
    import torch

    if not config.init:
        return None
    state = torch.load(Path(config.init) / "weights.pt", map_location=device, weights_only=True)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def leave_one_series_out(config, real: list[LaxSeries], syn, init_state, device) -> list[dict]:
    """Per held-out real series: the mean-position baseline and the network(s) trained on the other real
    series plus the synthetic samples ``syn``."""
    folds = []
    for held in real:
        rest = [s for s in real if s is not held]
        test_x, test_y, _, test_geometries = lax_samples([held], config.spacing, config.size)
        baseline = np.mean(
            np.concatenate([lax_samples([s], config.spacing, config.size)[1] for s in rest]), axis=0
        )
        row = {"held_out": held.name, "view": held.view, "frames": len(test_x)}
        row["mean_position_baseline"] = error_stats(
            hinge_errors(np.repeat(baseline[None], len(test_x), 0), test_y, test_geometries, held.spacing_rc)
        )
        for name, init in (("network_from_scratch", None), ("network_transfer_from_sax", init_state)):
            if name == "network_transfer_from_sax" and init is None:
                continue
            net = fit_lax(config, *training_set(config, rest, syn), init, device)
            row[name] = error_stats(
                hinge_errors(predict_points(net, test_x), test_y, test_geometries, held.spacing_rc)
            )
        print(json.dumps(row), flush=True)
        folds.append(row)
    return folds


def training_set(config: LaxLandmarkTrainingConfig, series: list[LaxSeries], syn) -> tuple:
    """``(x, y, flips, weights)`` of the real ``series`` plus the synthetic samples ``syn`` (or ``None``)."""
    x, y, flips, _ = lax_samples(series, config.spacing, config.size)
    weights = [config.real_weight] * len(x)
    if syn is not None:
        syn_x, syn_y, syn_flips, _ = syn
        x, y = np.concatenate([x, syn_x]), np.concatenate([y, syn_y])
        flips = flips + syn_flips
        weights += [1.0] * len(syn_x)
    return x, y, flips, weights


def train_lax(config: LaxLandmarkTrainingConfig) -> dict:
    """Leave-one-series-out evaluation on the biv-me long-axis series, then the model on all of them."""
    import torch

    device = resolve_device(config.device)
    torch.set_num_threads(config.threads)
    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    real = bivme_lax_series(Path(config.data))
    print("series:", [(s.name, s.view, len(s.images)) for s in real], flush=True)
    synthetic = synthetic_series(config.synthetic_cines)
    syn = lax_samples(synthetic, config.spacing, config.size) if synthetic else None
    init_state = init_state_of(config, device)
    folds = leave_one_series_out(config, real, syn, init_state, device)
    net = fit_lax(config, *training_set(config, real, syn), init_state, device)
    training = {
        **run_record(config.command),
        "real_series": [(s.name, s.view, len(s.images)) for s in real],
        "synthetic_cines": config.synthetic_cines,
        "init": config.init,
        "epochs": config.epochs,
    }
    output = "(x, y) per hinge in ((col + 0.5) / size, (row + 0.5) / size); MV_HINGE_1 = smaller column"
    manifest = vgg_manifest(config, "lax (2ch, 4ch)", LAX_LABELS, output, training)
    manifest["leave_one_series_out"] = folds
    write_model_folder(run_dir / "model", net.state_dict(), manifest)
    (run_dir / "lax_loso.json").write_text(json.dumps(folds, indent=2))
    return {"folds": folds}
