"""Model folders: where the shipped models live, reading a folder (manifest + weights, checked by sha256) and loading a segmentation model once."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from CardiacMTLLib.errors import CardiacModelError
from CardiacMTLLib.models.device import describe_device, resolve_device, resolve_precision

# the shipped model folders (weights + manifest + model card); the one definition of where they live
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
DEFAULT_MODEL = "acdc_unet2d"


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

    from CardiacMTLLib.models.nets import NETWORKS

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
