"""Mitral valve hinge points on long-axis cines (2- and 4-chamber views), and synthetic long-axis cines.

Two detectors. The shipped one (``method="segmentation"``) segments the LV cavity and myocardium on
every frame with a U-Net fine-tuned on long-axis frames (``weights/lax_unet2d``) and takes the hinges
where the myocardium ends around the cavity: the two ends of the mitral opening, the stretch of the
cavity's border that no myocardium covers (:func:`hinges_from_lax_labels`). The other (``method="vgg"``)
is the MESA paper's VGG16-style regression network (:mod:`CardiacMTLLib.nets.vgg`) at a reduced width,
applied frame by frame to the whitened, resampled, zero-padded image
(:func:`CardiacMTLLib.landmarks.network_input`); it is kept for comparison and as the fallback when no
frame can be segmented. ``MV_HINGE_1`` is the hinge further left in the image
(smaller column) and ``MV_HINGE_2`` the other: the expert files name no side, so the order follows the
image. Long-axis input is a DICOM series folder (one plane, frames in time), a NIfTI 2D+t image
(``x, y, t``) or a 4D NIfTI with one slice. :func:`synthetic_lax_cine` draws long-axis cines with known
hinge points (LV, LA and, in the 4-chamber view, RV and RA as ellipses over a textured, noisy background;
the annulus descends towards the apex in systole) for training.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from .errors import CardiacInputError
from .landmarks import LAX_LABELS, longest_circular_run, make_point, network_input, to_native_rc

LAX_MODEL = "mv_hinge_vgg"
LAX_SEGMENTATION_MODEL = "lax_unet2d"
METHODS = ("segmentation", "vgg")
VIEWS = ("2ch", "4ch")
# A border point of the LV cavity is covered by myocardium when the myocardium lies within this many
# pixels of it; the uncovered stretch is the mitral opening.
MYOCARDIUM_TOUCH_PIXELS = 1.5


# --------------------------------------------------------------------------------------------------
# reading a long-axis cine


def read_lax_cine(path: str | Path):
    """A long-axis cine as a :class:`~CardiacMTLLib.cine.Cine` with one slice and its frames in time.

    A 3D NIfTI image is taken as 2D+t (its third axis is time), a 4D one must have a single slice; a
    folder is read as a DICOM series (the plane with the most phases).
    """
    from .cine import Cine, _read_checked_nifti, read_cine

    path = Path(path)
    if not path.exists():
        raise CardiacInputError(f"{path}: no such file or folder")
    if path.is_file() and path.name.lower().endswith((".nii", ".nii.gz")):
        data, zooms, affine, _ = _read_checked_nifti(path)
        if data.ndim == 3:
            frames = np.transpose(data, (2, 1, 0))[:, np.newaxis]  # (t, 1, rows, cols)
        elif data.shape[2] == 1:
            frames = np.transpose(data[:, :, 0, :], (2, 1, 0))[:, np.newaxis]
        else:
            raise CardiacInputError(
                f"{path}: a long-axis cine must be 2D+t (x, y, t) or 4D with one slice, got shape {data.shape}"
            )
        spacing = (zooms[0], zooms[1], zooms[2] if data.ndim == 4 else 1.0)
        return Cine(
            data=frames,
            spacing_mm=spacing,
            affine=affine,
            frame_numbers=list(range(frames.shape[0])),
            source=str(path),
            image_stems=[path.name.split(".nii")[0]],
        )
    cine = read_cine(path)
    if cine.num_slices != 1:
        raise CardiacInputError(
            f"{path}: expected one long-axis plane, found {cine.num_slices} parallel slices (a short-axis stack?)"
        )
    return cine


# --------------------------------------------------------------------------------------------------
# the model


@dataclass
class LaxLandmarkModel:
    net: object
    manifest: dict
    model_dir: Path

    @property
    def spacing_mm(self) -> float:
        return float(self.manifest["preprocessing"]["target_spacing_mm"])

    @property
    def size(self) -> int:
        return int(self.manifest["preprocessing"]["input_size"])


def load_lax_model(model_dir: str | Path | None = None) -> LaxLandmarkModel:
    """The mitral hinge network from ``model_dir`` (default: the shipped one), on the CPU."""

    from .nets import NETWORKS
    from .segment import WEIGHTS_DIR, read_model_folder

    model_dir = Path(model_dir) if model_dir is not None else WEIGHTS_DIR / LAX_MODEL
    manifest, state = read_model_folder(model_dir)
    net = NETWORKS[manifest["network"]](**manifest["network_kwargs"])
    net.load_state_dict(state)
    return LaxLandmarkModel(net=net.eval(), manifest=manifest, model_dir=model_dir)


def order_hinges(points_rc) -> list[tuple[float, float]]:
    """``[MV_HINGE_1, MV_HINGE_2]``: the hinge with the smaller column first."""
    return sorted(((float(r), float(c)) for r, c in points_rc), key=lambda p: p[1])


def predict_hinges_rc(model: LaxLandmarkModel, images: np.ndarray, spacing_rc_mm) -> list[list[tuple]]:
    """Hinge points ``[[(row, col), (row, col)], ...]`` of a ``(frames, rows, cols)`` long-axis cine."""
    import torch

    inputs, geometries = [], []
    for image in images:
        x, geometry = network_input(image, spacing_rc_mm, model.spacing_mm, model.size)
        inputs.append(x)
        geometries.append(geometry)
    with torch.inference_mode():
        out = model.net(torch.from_numpy(np.stack(inputs))[:, None]).numpy()
    return [order_hinges(to_native_rc(v, g)) for v, g in zip(out, geometries, strict=True)]


def hinges_from_lax_labels(
    labels: np.ndarray, spacing_rc_mm, touch_pixels: float = MYOCARDIUM_TOUCH_PIXELS
) -> list[tuple[float, float]] | None:
    """The mitral hinges ``[(row, col), (row, col)]`` of one long-axis label map (2 myocardium, 3 LV cavity).

    The cavity's border (the 0.5 level of the lightly smoothed largest cavity region) is followed all
    round; a border point is covered when myocardium lies within ``touch_pixels`` of it. The longest
    uncovered stretch is the mitral opening and its two ends, the last covered points, are the hinges,
    ordered as :func:`order_hinges`. ``None`` when the frame has no cavity with myocardium around it.
    """
    import contourpy

    labels = np.asarray(labels)
    cavity = ndimage.binary_fill_holes(labels == 3)
    myocardium = labels == 2
    components, count = ndimage.label(cavity)
    if count == 0 or myocardium.sum() < 10:
        return None
    cavity = components == int(np.argmax(np.bincount(components.ravel())[1:]) + 1)
    smooth = ndimage.gaussian_filter(np.pad(cavity, 2).astype(np.float32), 0.7)
    lines = contourpy.contour_generator(z=smooth).lines(0.5)
    if not lines:
        return None
    border = max(lines, key=len)[:-1] - 2.0  # (x = col, y = row), closed: the last point repeats the first
    spacing_rc = (float(spacing_rc_mm[0]), float(spacing_rc_mm[1]))
    to_myocardium = ndimage.distance_transform_edt(~myocardium, sampling=spacing_rc)
    distance = ndimage.map_coordinates(to_myocardium, [border[:, 1], border[:, 0]], order=1, mode="nearest")
    covered = distance <= touch_pixels * max(spacing_rc)
    if covered.all() or not covered.any():
        return None
    opening, length = longest_circular_run(~covered)
    n = len(border)
    first, last = border[(opening - 1) % n], border[(opening + length) % n]  # the last covered points
    return order_hinges([(first[1], first[0]), (last[1], last[0])])


def load_lax_segmentation_model(model_dir: str | Path | None = None):
    """The long-axis LV segmentation network (default: the shipped ``lax_unet2d``), on the CPU."""
    from .segment import WEIGHTS_DIR, load_model

    return load_model(
        Path(model_dir) if model_dir is not None else WEIGHTS_DIR / LAX_SEGMENTATION_MODEL, "cpu"
    )


def segment_lax(model, cine) -> np.ndarray:
    """Label maps ``(frames, rows, cols)`` (2 myocardium, 3 LV cavity) of a one-slice long-axis cine."""
    from .segment import largest_component_per_structure, predict_probabilities

    probs = predict_probabilities(model, cine.data[:, 0], cine.spacing_mm)  # frames as a stack
    return largest_component_per_structure(np.argmax(probs, axis=0).astype(np.uint8))


def _model_method(model_dir: str | Path) -> str:
    manifest = Path(model_dir) / "manifest.json"
    if not manifest.is_file():
        raise CardiacInputError(f"{manifest}: missing; --model must be a model folder")
    return "vgg" if json.loads(manifest.read_text()).get("network") == "VGGLandmarkNet" else "segmentation"


def detect_mv_hinges(
    cine, model=None, method: str | None = None, labels_out: list | None = None
) -> list[dict]:
    """``MV_HINGE_1``/``MV_HINGE_2`` on every frame of a one-slice long-axis cine (landmark dicts).

    ``method`` is ``"segmentation"`` (default) or ``"vgg"``; ``model`` a loaded model of that kind (by
    default the shipped one). With the segmentation, a frame whose hinges cannot be found borrows those of
    the nearest frame that has them (its ``source`` says so); when no frame has them, the VGG network
    places all of them. When ``labels_out`` is a list, the long-axis label maps ``(frames, rows, cols)``
    the hinges were read from are appended to it.
    """
    if method is None:
        method = "vgg" if isinstance(model, LaxLandmarkModel) else "segmentation"
    if method not in METHODS:
        raise CardiacInputError(f"method must be one of {METHODS}, got {method!r}")
    spacing_rc = (cine.spacing_mm[1], cine.spacing_mm[0])
    per_frame: list[tuple[list, str]] = []
    if method == "segmentation":
        model = model or load_lax_segmentation_model()
        labels = segment_lax(model, cine)
        if labels_out is not None:
            labels_out.append(labels)
        found = [hinges_from_lax_labels(frame, spacing_rc) for frame in labels]
        have = [t for t, h in enumerate(found) if h is not None]
        if have:
            for t, hinges in enumerate(found):
                source = model.model_id
                if hinges is None:
                    nearest = min(have, key=lambda j: abs(j - t))
                    hinges, source = found[nearest], f"{model.model_id} (frame {cine.frame_numbers[nearest]})"
                per_frame.append((hinges, source))
        else:
            model, method = None, "vgg"
    if method == "vgg":
        model = model or load_lax_model()
        hinges = predict_hinges_rc(model, cine.data[:, 0], spacing_rc)
        per_frame = [(h, model.manifest["model_id"]) for h in hinges]
    points = []
    rows, cols = cine.data.shape[2:]
    for t, (hinges, source) in enumerate(per_frame):
        for label, (r, c) in zip(LAX_LABELS, hinges, strict=True):
            ijk = (float(np.clip(c, 0, cols - 1)), float(np.clip(r, 0, rows - 1)), 0.0)
            points.append(make_point(label, cine.frame_numbers[t], 0, ijk, cine.affine, source=source))
    return points


def landmarks_path(
    path: str | Path,
    view: str,
    out_dir: str | Path,
    model_dir=None,
    method: str = "segmentation",
    overwrite: bool = False,
) -> list[dict]:
    """``cardiac-mtl landmarks``: hinge points of a long-axis cine written to ``out_dir`` atomically.

    ``model_dir`` (optional) is a model folder of either kind; it decides the method."""
    from .atomic import check_output_folder, staged_folder
    from .landmarks import write_landmark_files

    check_output_folder(out_dir, inputs=(path,), overwrite=overwrite)
    if view not in VIEWS:
        raise CardiacInputError(f"view must be one of {VIEWS}, got {view!r}")
    if model_dir is not None:
        method = _model_method(model_dir)
    if method not in METHODS:
        raise CardiacInputError(f"method must be one of {METHODS}, got {method!r}")
    cine = read_lax_cine(path)
    if method == "vgg":
        model = load_lax_model(model_dir)
    else:
        model = load_lax_segmentation_model(model_dir)
    t0 = time.perf_counter()
    labels: list = []
    points = detect_mv_hinges(cine, model, method, labels_out=labels)
    seconds = time.perf_counter() - t0
    with staged_folder(out_dir, inputs=(path,), overwrite=overwrite) as staging:
        write_landmark_files(points, staging)
        if labels:  # what the hinges were read from, to check them against the image
            from .cine import write_label_map

            write_label_map(
                labels[0][:, np.newaxis], cine.affine, staging / "lax_segmentation.nii.gz", cine.spacing_mm
            )
        write_hinge_figure(cine, points, staging / "landmarks.png", labels[0] if labels else None)
        (staging / "provenance.json").write_text(
            json.dumps(
                {
                    "input": str(path),
                    "view": view,
                    "method": method,
                    "model_id": model.manifest.get("model_id"),
                    "frames": cine.num_frames,
                    "seconds": round(seconds, 3),
                },
                indent=2,
            )
        )
    return points


def write_hinge_figure(
    cine, points: list[dict], path: Path, labels: np.ndarray | None = None, frames: int = 4
) -> Path:
    """A picture of the hinges on ``frames`` evenly spaced frames of a long-axis cine, with the LV cavity
    (red) and myocardium (green) contours they were read from when ``labels`` are given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = np.unique(np.linspace(0, cine.num_frames - 1, min(frames, cine.num_frames)).round().astype(int))
    fig, axes = plt.subplots(1, len(picks), figsize=(3.6 * len(picks), 3.9), squeeze=False)
    for ax, t in zip(axes[0], picks, strict=True):
        image = cine.data[t, 0]
        low, high = np.percentile(image, [1, 99.5])
        ax.imshow(image, cmap="gray", vmin=low, vmax=high)
        if labels is not None:
            for value, colour in ((3, "tab:red"), (2, "tab:green")):
                if (labels[t] == value).any():
                    ax.contour(labels[t] == value, levels=[0.5], colors=[colour], linewidths=1.0)
        here = [p for p in points if p["frame"] == cine.frame_numbers[t]]
        for p in here:
            ax.plot(p["ijk"][0], p["ijk"][1], "o", ms=7, mfc="yellow", mec="black", mew=0.8)
            ax.annotate(
                p["label"][-1],
                (p["ijk"][0], p["ijk"][1]),
                xytext=(5, -5),
                textcoords="offset points",
                color="yellow",
                fontsize=9,
            )
        heart = np.argwhere(labels[t] > 0) if labels is not None else np.zeros((0, 2))
        if len(heart) or here:  # zoom on the LV (else the hinges) with a margin
            corners = [heart[:, ::-1]] if len(heart) else []
            corners += [np.array([p["ijk"][:2] for p in here])] if here else []
            box = np.concatenate(corners)
            centre = (box.min(axis=0) + box.max(axis=0)) / 2
            half = max(float(np.ptp(box, axis=0).max()) / 2 + 15.0, 30.0 / float(cine.spacing_mm[0]))
            ax.set_xlim(centre[0] - half, centre[0] + half)
            ax.set_ylim(centre[1] + half, centre[1] - half)
        ax.set_title(f"frame {cine.frame_numbers[t]}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        "mitral valve hinges (1, 2)" + ("; LV cavity red, myocardium green" if labels is not None else ""),
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


# --------------------------------------------------------------------------------------------------
# synthetic long-axis cines


def _ellipse(x, y, centre, u, semi_u, semi_v):
    du, dv = (x - centre[0]) * u[0] + (y - centre[1]) * u[1], -(x - centre[0]) * u[1] + (y - centre[1]) * u[0]
    return (du / semi_u) ** 2 + (dv / semi_v) ** 2, du, dv


def synthetic_lax_cine(
    seed: int = 0,
    view: str = "4ch",
    num_frames: int = 25,
    shape: tuple[int, int] = (208, 256),
    spacing_mm: float = 1.40625,
    noise_std: float = 0.04,
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic long-axis cine ``(frames, rows, cols)`` and its hinge points ``(frames, 2, 2)`` (row, col).

    The LV is a half ellipse from the mitral annulus to the apex with a myocardial band around it, the
    LA an ellipse beyond the annulus; the 4-chamber view adds the RV and RA beside them. The annulus
    moves towards the apex and the cavity narrows in systole. Hinges lie on the annulus where the
    myocardium ends, ordered by column.
    """
    from .synthetic import contraction

    if view not in VIEWS:
        raise CardiacInputError(f"view must be one of {VIEWS}, got {view!r}")
    rng = np.random.default_rng(seed)
    rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols].astype(float) * spacing_mm
    angle = np.deg2rad(rng.uniform(30, 150) if rng.uniform() < 0.8 else rng.uniform(-180, 180))
    u = np.array([np.cos(angle), np.sin(angle)])  # annulus -> apex, (x, y)
    v = np.array([-u[1], u[0]])
    centre_fov = np.array([cols, rows]) * spacing_mm / 2
    base0 = centre_fov - u * rng.uniform(20, 45) + v * rng.uniform(-15, 15)
    length, radius, wall = rng.uniform(75, 100), rng.uniform(20, 28), rng.uniform(7, 11)
    la_len, la_w = rng.uniform(25, 40), rng.uniform(18, 28)
    side = 1 if rng.uniform() < 0.5 else -1
    texture = ndimage.gaussian_filter(rng.standard_normal((rows, cols)), 3)
    texture /= texture.std() + 1e-9
    background = 0.3 + 0.08 * texture
    for _ in range(25):  # organs, fat and lung patches
        c = rng.uniform(0, 1, 2) * np.array([cols, rows]) * spacing_mm
        q, *_ = _ellipse(x, y, c, np.array([1.0, 0.0]), rng.uniform(8, 40), rng.uniform(8, 40))
        background[q < 1] = rng.choice([0.05, 0.25, 0.4, 0.85])
    background = ndimage.gaussian_filter(background, 1.0)
    images = np.zeros((num_frames, rows, cols), dtype=np.float32)
    hinges = np.zeros((num_frames, 2, 2), dtype=np.float32)
    squeeze = contraction(np.arange(num_frames) / num_frames)
    for t in range(num_frames):
        c = float(squeeze[t])
        base = base0 + u * 12.0 * c
        cav_r, cav_l = radius * (1 - 0.3 * c), (length - 12.0 * c) * (1 - 0.05 * c)
        w = wall * (1 + 0.4 * c)
        image = background.copy()
        q_epi, du, dv = _ellipse(x, y, base, u, cav_l + w, cav_r + w)
        q_cav, *_ = _ellipse(x, y, base, u, cav_l, cav_r)
        lv_side = du >= 0
        if view == "4ch":
            rv_base = base + v * side * (cav_r + w + 14) - u * 4
            q_rv, du_rv, _ = _ellipse(x, y, rv_base, u, 0.8 * cav_l, 0.7 * cav_r)
            q_rvw, *_ = _ellipse(x, y, rv_base, u, 0.8 * cav_l + 3, 0.7 * cav_r + 3)
            image[(q_rvw < 1) & (du_rv >= 0)] = 0.27
            image[(q_rv < 1) & (du_rv >= 0)] = 0.85
            q_ra, *_ = _ellipse(x, y, rv_base - u * (la_len * 0.9), u, la_len * 0.9, la_w * 0.9)
            image[q_ra < 1] = 0.85
        image[(q_epi < 1) & lv_side] = 0.27
        q_la, *_ = _ellipse(x, y, base - u * (la_len - 2), u, la_len, la_w)
        image[q_la < 1] = 0.95
        image[(q_cav < 1) & lv_side] = 1.0
        # the annulus: a short dark hinge where the LV wall meets the LA
        hinge_xy = [base + v * s * (cav_r + 0.35 * w) for s in (-1, 1)]
        for h in hinge_xy:
            image[np.hypot(x - h[0], y - h[1]) < 0.45 * w] = 0.22
        images[t] = image
        hinges[t] = order_hinges([(h[1] / spacing_mm, h[0] / spacing_mm) for h in hinge_xy])
    images = ndimage.gaussian_filter(images, (0, 0.8, 0.8))
    bias = 0.85 + 0.3 * np.linspace(0, 1, cols)[np.newaxis, :] * rng.uniform(0.5, 1.5)
    real = images * bias + noise_std * rng.standard_normal(images.shape)
    imaginary = noise_std * rng.standard_normal(images.shape)
    return (np.hypot(real, imaginary) * 800).astype(np.float32), hinges
