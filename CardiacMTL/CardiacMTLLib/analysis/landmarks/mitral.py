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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from CardiacMTLLib.analysis.landmarks.common import longest_circular_run, network_input, to_native_rc
from CardiacMTLLib.analysis.masks import fill_holes
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.landmarks import LAX_LABELS, make_point
from CardiacMTLLib.models.device import resolve_device
from CardiacMTLLib.models.registry import (
    MANIFEST,
    WEIGHTS_DIR,
    build_network,
    load_model,
    load_once,
    read_model_folder,
)
from CardiacMTLLib.types import Label

LAX_MODEL = "mv_hinge_vgg"
LAX_SEGMENTATION_MODEL = "lax_unet2d"
METHODS = ("segmentation", "vgg")
VIEWS = ("2ch", "4ch")
# A border point of the LV cavity is covered by myocardium when the myocardium lies within this many
# pixels of it; the uncovered stretch is the mitral opening.
MYOCARDIUM_TOUCH_PIXELS = 1.5


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


def load_lax_model(model_dir: str | Path | None = None, device: str = "auto") -> LaxLandmarkModel:
    """The mitral hinge network from ``model_dir`` (default: the shipped one) on ``device``, loaded once."""
    model_dir = Path(model_dir) if model_dir is not None else WEIGHTS_DIR / LAX_MODEL
    device = resolve_device(device)

    def load() -> LaxLandmarkModel:
        manifest, state = read_model_folder(model_dir)
        net = build_network(manifest, state, model_dir / MANIFEST).to(device)
        return LaxLandmarkModel(net=net, manifest=manifest, model_dir=model_dir)

    return load_once("lax-landmarks", model_dir, device, "fp32", load)


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
    device = next(model.net.parameters()).device
    with torch.inference_mode():
        out = model.net(torch.from_numpy(np.stack(inputs))[:, None].to(device)).float().cpu().numpy()
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
    cavity = fill_holes(labels == Label.LV_CAVITY)
    myocardium = labels == Label.LV_MYOCARDIUM
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


def load_lax_segmentation_model(model_dir: str | Path | None = None, device: str = "auto"):
    """The long-axis LV segmentation network (default: the shipped ``lax_unet2d``) on ``device``, loaded once."""
    model_dir = Path(model_dir) if model_dir is not None else WEIGHTS_DIR / LAX_SEGMENTATION_MODEL
    return load_model(model_dir, device)


def segment_lax(model, cine) -> np.ndarray:
    """Label maps ``(frames, rows, cols)`` (2 myocardium, 3 LV cavity) of a one-slice long-axis cine."""
    from CardiacMTLLib.analysis.segment import largest_component_per_structure, predict_probabilities

    probs = predict_probabilities(model, cine.data[:, 0], cine.spacing_mm)  # frames as a stack
    return largest_component_per_structure(np.argmax(probs, axis=0).astype(np.uint8))


def model_method(model_dir: str | Path) -> str:
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
            points.append(make_point(label, cine.frame_numbers[t], 0, ijk, cine.ras_affine, source=source))
    return points
