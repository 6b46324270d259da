"""Segmentation inference: pre-processing, batched network inference, softmax resampling, clean-up.

The steps of Baumgartner et al. (2017), in the order inference needs them: normalise the stack, resample
each slice in plane to the model's spacing, place it centrally into the network's field, run the network
on all slices of a frame as one batch, resample the **softmax** (not the labels) back to the native grid,
take the argmax there, and keep the largest connected component of each structure. The model is a
self-describing folder (``manifest.json`` + ``weights.pt``) written by ``cardiac-train``; the manifest
names the network class, its arguments and the pre-processing, so inference rebuilds exactly what was
trained.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from .errors import CardiacInputError, CardiacModelError
from .preprocess import center_crop_or_pad, normalise_intensity, uncrop

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "acdc_unet2d"
LABELS = {"background": 0, "RV": 1, "Myo": 2, "LV": 3}
# Background pixels this likely to be RV count as RV where the landmark detector looks for the septum's
# ends (rv_contact_mask); chosen on the biv-me expert points and the ACDC validation patients (landmark
# model card).
RV_CONTACT_PROBABILITY = 0.3


def default_model_dir() -> Path:
    return WEIGHTS_DIR / DEFAULT_MODEL


def shipped_models() -> list[str]:
    """Names of the model folders shipped in ``weights/`` (``acdc_unet2d``, ``acdc_mtl_unet2d``, ...)."""
    return sorted(p.parent.name for p in WEIGHTS_DIR.glob("*/manifest.json"))


def resolve_model_dir(model: str | Path | None) -> Path:
    """A model folder from a path, the name of a shipped model, or ``None`` for the default model."""
    if model is None:
        return default_model_dir()
    path = Path(model)
    if not path.exists() and (WEIGHTS_DIR / str(model) / "manifest.json").exists():
        return WEIGHTS_DIR / str(model)
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_device(name: str = "auto"):
    """``auto`` takes CUDA when torch sees a GPU, else the CPU; ``cuda`` without a GPU is an error."""
    import torch

    if isinstance(name, torch.device):
        return name
    if name not in ("auto", "cpu", "cuda"):
        raise CardiacInputError(f"device must be auto, cpu or cuda, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CardiacInputError("--device cuda was asked for, but torch sees no CUDA GPU on this machine")
    return torch.device(name)


def describe_device(device, precision: str = "fp32") -> str:
    """What runs inference, in words a user can check (GPU name and memory, or the CPU threads), and the
    arithmetic when it is not plain fp32."""
    import torch

    extra = "" if precision == "fp32" else f", {precision}"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"cuda: {props.name} ({props.total_memory / 2**30:.0f} GiB{extra})"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'s' if threads != 1 else ''}{extra})"


PRECISIONS = ("auto", "fp32", "bf16")


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device) -> str:
    """``auto`` runs the network in bfloat16 on CPUs that compute it natively (about twice as fast there,
    with the same Dice on the ACDC validation volumes: model card), else in fp32."""
    if precision not in PRECISIONS:
        raise CardiacInputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if device.type == "cpu" and cpu_supports_bf16() else "fp32"
    return precision


@dataclass
class SegmentationModel:
    """A loaded segmentation network with the manifest that describes its pre-processing."""

    net: object
    manifest: dict
    model_dir: Path
    device: object
    precision: str = "fp32"  # the arithmetic of inference: fp32 or bf16 (autocast)

    @property
    def device_text(self) -> str:
        return describe_device(self.device, self.precision)

    @property
    def model_id(self) -> str:
        return str(self.manifest.get("model_id", self.model_dir.name))

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "unknown"))

    @property
    def target_spacing_mm(self) -> float:
        return float(self.manifest["preprocessing"]["target_spacing_mm"])

    @property
    def input_size(self) -> int:
        return int(self.manifest["preprocessing"]["input_size"])


def read_model_folder(model_dir: Path) -> tuple[dict, dict]:
    """``(manifest, fp32 state dict)`` of a model folder, after checking its files and the weights' sha256."""
    import torch

    manifest_path, weights_path = model_dir / "manifest.json", model_dir / "weights.pt"
    for path in (manifest_path, weights_path):
        if not path.exists():
            raise CardiacModelError(f"{path}: missing; a model folder needs manifest.json and weights.pt")
    manifest = json.loads(manifest_path.read_text())
    expected = manifest.get("sha256", {}).get("weights.pt")
    if expected and sha256_of(weights_path) != expected:
        raise CardiacModelError(f"{weights_path}: sha256 does not match the manifest (corrupt download?)")
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    return manifest, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_model(
    model_dir: str | Path | None = None, device: str = "auto", precision: str = "auto"
) -> SegmentationModel:
    """Rebuild the network named by ``model_dir/manifest.json`` and load its weights onto ``device``;
    ``precision`` as in :func:`resolve_precision`."""
    import torch

    from .nets import NETWORKS

    model_dir = resolve_model_dir(model_dir)
    manifest, state = read_model_folder(model_dir)
    manifest_path = model_dir / "manifest.json"
    try:
        net = NETWORKS[manifest["network"]](**manifest["network_kwargs"])
    except KeyError as e:
        raise CardiacModelError(f"{manifest_path}: unknown network {manifest.get('network')!r}") from e
    device = resolve_device(device)
    net.load_state_dict(state)
    net.to(device, memory_format=torch.channels_last).eval()  # faster convolutions on CPU and GPU
    return SegmentationModel(
        net=net,
        manifest=manifest,
        model_dir=model_dir,
        device=device,
        precision=resolve_precision(precision, device),
    )


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 3D connected component (26-connectivity) of a boolean ``(slices, rows, cols)`` mask."""
    components, count = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if count <= 1:
        return components > 0
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components == int(sizes.argmax())


def largest_component_per_structure(labels: np.ndarray) -> np.ndarray:
    """Keep, for every label, only its largest 3D connected component (26-connectivity)."""
    out = labels.copy()
    for value in np.unique(labels):
        if value != 0:
            mask = labels == value
            out[mask & ~largest_component(mask)] = 0
    return out


def predict_probabilities(
    model: SegmentationModel, image: np.ndarray, spacing_mm: tuple[float, float, float]
) -> np.ndarray:
    """Softmax probabilities ``(classes, slices, rows, cols)`` on the native grid of a 3D stack.

    ``image`` is ``(slices, rows, cols)``; ``spacing_mm`` is ``(col, row, slice)`` as in :class:`Cine`.
    """
    return predict_with_areas(model, image, spacing_mm)[0]


def regresses_areas(model: SegmentationModel) -> bool:
    """Whether the network also regresses per-structure areas (the multi-task U-Net)."""
    return bool(getattr(model.net, "regresses_areas", False))


def window_sum(density, logits, model: SegmentationModel):
    """Sum the area density over a window of the training crop's size, centred on the segmented heart.

    The regression path learned its areas on training crops (``manifest training.crop`` pixels, around
    the heart); summing its density over the larger inference field would add the small density it gives
    to background everywhere, so the sum is taken over a training-sized window around the stack's heart.
    """
    import torch

    crop = int(model.manifest.get("training", {}).get("crop", 0)) // 2  # density is at half resolution
    n, _, h, w = density.shape
    if crop <= 0 or crop >= min(h, w):
        return density.sum(dim=(2, 3))
    heart = (logits.argmax(dim=1) > 0)[:, ::2, ::2].any(dim=0)
    if bool(heart.any()):
        rows, cols = torch.nonzero(heart, as_tuple=True)
        cr, cc = float(rows.float().mean()), float(cols.float().mean())
    else:
        cr, cc = h / 2.0, w / 2.0
    r0 = int(min(max(round(cr - crop / 2), 0), h - crop))
    c0 = int(min(max(round(cc - crop / 2), 0), w - crop))
    return density[:, :, r0 : r0 + crop, c0 : c0 + crop].sum(dim=(2, 3))


def predict_with_areas(
    model: SegmentationModel, image: np.ndarray, spacing_mm: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Probabilities as :func:`predict_probabilities` and, for a multi-task network, the regressed areas.

    The areas are ``(slices, 3)`` in mm^2 for the RV cavity, LV myocardium and LV cavity (label values
    1, 2, 3), or ``None`` when the network has no regression path.
    """
    import torch
    import torch.nn.functional as F

    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.size == 0:
        raise CardiacInputError(
            f"expected a non-empty 3D stack (slices, rows, cols), got shape {image.shape}"
        )
    n, rows, cols = image.shape
    target = model.target_spacing_mm
    size = model.input_size
    res_rows = max(1, int(round(rows * spacing_mm[1] / target)))
    res_cols = max(1, int(round(cols * spacing_mm[0] / target)))
    x = torch.from_numpy(normalise_intensity(image))[:, None]
    # linear resampling with the pixel-edge convention (align_corners=False), as scipy's grid_mode zoom
    # used for the training data
    x = F.interpolate(x, size=(res_rows, res_cols), mode="bilinear", align_corners=False)[:, 0].numpy()
    fill = float(x.min())
    x, offset = center_crop_or_pad(x - fill, size)
    x = x + fill
    areas = None
    bf16 = model.precision == "bf16"
    with torch.inference_mode(), torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bf16):
        batch = torch.from_numpy(x)[:, None].to(model.device, memory_format=torch.channels_last)
        if regresses_areas(model):
            from .nets.mtl_unet import areas_mm2

            logits, density = model.net(batch, return_density=True)
            areas = areas_mm2(window_sum(density.float(), logits, model), target * target).cpu().numpy()
        else:
            logits = model.net(batch)
        probs = torch.softmax(logits.float(), dim=1).cpu().numpy()  # (slices, classes, size, size)
    full = uncrop(probs, offset, (res_rows, res_cols))
    inside = uncrop(np.ones((size, size), dtype=bool), offset, (res_rows, res_cols), fill=False)
    full[:, 0][:, ~inside] = 1.0  # outside the network's field: background
    native = F.interpolate(torch.from_numpy(full), size=(rows, cols), mode="bilinear", align_corners=False)
    return native.numpy().transpose(1, 0, 2, 3), areas


def rv_contact_mask(
    probs: np.ndarray, labels: np.ndarray, threshold: float = RV_CONTACT_PROBABILITY
) -> np.ndarray:
    """The RV for finding where it meets the septum: the labelled RV cavity plus the background pixels whose
    RV probability exceeds ``threshold`` (kept where connected to the RV as in the label map).

    The thin tips of the RV crescent along the septum are where the network is least sure; the argmax
    label map cuts them short and moves the insertion points towards the RV centre. ``probs`` is
    ``(classes, slices, rows, cols)`` and ``labels`` the label map made from it.
    """
    return connect_rv_contact(labels, probs[1] > threshold)


def connect_rv_contact(labels: np.ndarray, rv_likely: np.ndarray) -> np.ndarray:
    """:func:`rv_contact_mask` from the likely-RV pixels alone (``probs[1] > threshold``, what
    :func:`segment_cine` keeps for every frame), so that the connected RV is made only where it is used."""
    return largest_component((labels == 1) | ((labels == 0) & rv_likely))


def segment_volume(
    model: SegmentationModel,
    image: np.ndarray,
    spacing_mm: tuple[float, float, float],
    rv_likely_out: list | None = None,
) -> np.ndarray:
    """Label map ``(slices, rows, cols)`` uint8 (0 bg, 1 RV, 2 Myo, 3 LV) of one 3D short-axis stack.

    When ``rv_likely_out`` is a list, the stack's likely-RV pixels are appended to it (as
    :func:`segment_cine` keeps them).
    """
    probs = predict_probabilities(model, image, spacing_mm)
    if rv_likely_out is not None:
        rv_likely_out.append(probs[1] > RV_CONTACT_PROBABILITY)
    return largest_component_per_structure(np.argmax(probs, axis=0).astype(np.uint8))


def segment_cine(
    model: SegmentationModel,
    cine,
    progress: Callable[[int, int], None] | None = None,
    slice_scores: dict | None = None,
    rv_likely: dict | None = None,
) -> np.ndarray:
    """Label maps ``(frames, slices, rows, cols)`` for every frame of a :class:`Cine`.

    ``progress(done, total)`` is called after each frame so GUIs and the CLI can show a bar. When
    ``slice_scores`` is a dict, it receives ``{frame index: qc.slice_network_scores(...)}`` (per-slice
    softmax uncertainty and, for the multi-task network, regressed against segmented areas). When
    ``rv_likely`` is a dict, it receives ``{frame index: RV probability > RV_CONTACT_PROBABILITY}`` (boolean)
    for the landmarks, which connect it to the RV (:func:`connect_rv_contact`) on the frames they read.
    """
    from .qc import slice_network_scores

    labels = np.zeros(cine.data.shape, dtype=np.uint8)
    for t in range(cine.num_frames):
        probs, areas = predict_with_areas(model, cine.data[t], cine.spacing_mm)
        labels[t] = largest_component_per_structure(np.argmax(probs, axis=0).astype(np.uint8))
        if slice_scores is not None:
            slice_scores[t] = slice_network_scores(probs, labels[t], areas, cine.spacing_mm)
        if rv_likely is not None:
            rv_likely[t] = probs[1] > RV_CONTACT_PROBABILITY
        if progress is not None:
            progress(t + 1, cine.num_frames)
    return labels
