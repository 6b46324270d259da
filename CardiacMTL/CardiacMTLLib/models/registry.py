"""Model folders: where the shipped models live, the one reader (manifest + weights, checked by sha256), the
one atomic writer, and the one load-once cache every model loader goes through.

A model folder is ``manifest.json`` (network class and arguments, pre-processing, labels, training record,
scores, the sha256 of the weights) plus ``weights.pt`` and any files the model needs (a feature table).
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from CardiacMTLLib.atomic import record_written, sha256_of, staged_folder
from CardiacMTLLib.errors import CardiacError, CardiacModelError
from CardiacMTLLib.models.device import describe_device, resolve_device, resolve_precision
from CardiacMTLLib.models.runtime import (
    NETWORK_BIN,
    NETWORK_XML,
    RUNTIME_FILES,
    RUNTIME_RECORD,
    HostCPU,
    OpenVINONetwork,
    choose_runtime,
    converted_record,
    has_quantised,
)

# the shipped model folders (weights + manifest + model card); the one definition of where they live
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
DEFAULT_MODEL = "acdc_unet2d"
MANIFEST, WEIGHTS = "manifest.json", "weights.pt"

T = TypeVar("T")


def default_model_dir() -> Path:
    return WEIGHTS_DIR / DEFAULT_MODEL


def resolve_model_dir(model: str | Path | None) -> Path:
    """A model folder from a path, the name of a shipped model, or ``None`` for the default model."""
    if model is None:
        return default_model_dir()
    path = Path(model)
    if not path.exists() and (WEIGHTS_DIR / str(model) / MANIFEST).exists():
        return WEIGHTS_DIR / str(model)
    return path


# --------------------------------------------------------------------------------------------------
# reading and writing a model folder


def read_model_folder(model_dir: Path) -> tuple[dict, dict]:
    """``(manifest, fp32 state dict)`` of a model folder, after checking its files and the weights' sha256."""
    import torch

    manifest_path, weights_path = Path(model_dir) / MANIFEST, Path(model_dir) / WEIGHTS
    for path in (manifest_path, weights_path):
        if not path.exists():
            raise CardiacModelError(f"{path}: missing; a model folder needs manifest.json and weights.pt")
    manifest = json.loads(manifest_path.read_text())
    expected = manifest.get("sha256", {}).get(WEIGHTS)
    if expected and sha256_of(weights_path) != expected:
        raise CardiacModelError(f"{weights_path}: sha256 does not match the manifest (corrupt download?)")
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    return manifest, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def write_model_folder(
    folder: str | Path,
    net_state_dict: Mapping | None,
    manifest: dict,
    extra_files: Mapping[str, str | bytes | Path] | None = None,
) -> Path:
    """Write a model folder atomically: built in a staging folder beside ``folder`` and moved into place
    only when complete (:func:`CardiacMTLLib.atomic.staged_folder`), so a reader never sees new weights
    with an old manifest and a failed run leaves the old folder as it was.

    ``net_state_dict`` is stored as ``weights.pt`` with floating tensors in half precision (inference reads
    them back as fp32); ``None`` writes no weights unless ``extra_files`` brings a ``weights.pt``.
    ``extra_files`` maps file names to their text, their bytes, or a file to copy. ``manifest.json`` is
    ``manifest`` plus the sha256 of ``weights.pt``. Files of ``folder`` that the project did not write (a
    model card) stay; the model files of an earlier run are replaced.
    """
    import torch

    folder = Path(folder)
    extra_files = dict(extra_files or {})
    if (folder / MANIFEST).is_file():
        # a model folder written before folders were marked with the files the project wrote: its model
        # files are the project's to replace (anything else in it stays)
        names = (MANIFEST, WEIGHTS, *RUNTIME_FILES, *extra_files)
        record_written(folder, *(folder / n for n in names if (folder / n).is_file()))
    with staged_folder(folder, overwrite=True) as staging:
        for name, content in extra_files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            elif isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        document = dict(manifest)
        if net_state_dict is not None:
            state = {
                k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()
                for k, v in net_state_dict.items()
            }
            torch.save(state, staging / WEIGHTS)
        if (staging / WEIGHTS).exists():
            document["sha256"] = {WEIGHTS: sha256_of(staging / WEIGHTS)}
            _keep_converted(folder, staging, document["sha256"][WEIGHTS])
        (staging / MANIFEST).write_text(json.dumps(document, indent=2) + "\n")
    return folder


def _keep_converted(folder: Path, staging: Path, weights_sha256: str) -> None:
    """Carry a network converted for OpenVINO (:mod:`CardiacMTLLib.models.runtime`) into the folder's new
    version when it was made from the same weights (a manifest rewritten with new scores): the conversion
    is still exact. Converted from other weights, it is left behind with the old version."""
    try:
        record = json.loads((folder / RUNTIME_RECORD).read_text())
    except (OSError, ValueError):
        return
    needed = (RUNTIME_RECORD, NETWORK_XML, NETWORK_BIN)
    if record.get("weights_sha256") == weights_sha256 and all((folder / n).is_file() for n in needed):
        for name in RUNTIME_FILES:
            if (folder / name).is_file() and not (staging / name).exists():
                shutil.copyfile(folder / name, staging / name)


# --------------------------------------------------------------------------------------------------
# loading once


_LOADED: dict[tuple, tuple[tuple, object]] = {}
_LOADED_LOCK = threading.RLock()


def _folder_stamp(model_dir: Path) -> tuple:
    """When and how big the manifest and weights are: a folder rewritten by a training run is read again."""
    stamp = []
    for name in (MANIFEST, WEIGHTS):
        try:
            stat = (model_dir / name).stat()
            stamp.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


def load_once(kind: str, model_dir: str | Path, device: object, precision: str, load: Callable[[], T]) -> T:
    """``load()`` the first time this process asks for the ``kind`` of model in ``model_dir`` on ``device``
    at ``precision``; the same object every time after, until the folder's files change.

    The one load-once cache of the project (segmentation, long-axis, DenseNet and feature models): a
    Slicer session, the web app or a batch worker pays for a model once. Callers must not change the
    object they get (fine-tuning loads with ``cached=False``).
    """
    folder = Path(model_dir).expanduser().resolve()
    key = (kind, str(folder), str(device), precision)
    stamp = _folder_stamp(folder)
    with _LOADED_LOCK:
        if key in _LOADED and _LOADED[key][0] == stamp:
            return _LOADED[key][1]  # type: ignore[return-value]
        loaded = load()
        _LOADED[key] = (stamp, loaded)
        return loaded


def clear_loaded() -> None:
    """Forget every loaded model (the next load reads its folder again), as a fresh process would."""
    with _LOADED_LOCK:
        _LOADED.clear()


# --------------------------------------------------------------------------------------------------
# the segmentation model


@dataclass
class SegmentationModel:
    """A loaded segmentation network with the manifest that describes its pre-processing."""

    net: object
    manifest: dict
    model_dir: Path
    device: object
    precision: str = "fp32"  # the arithmetic of inference: fp32 or bf16 (autocast)
    runtime: str = "torch"  # what runs the network: torch, or OpenVINO on the CPU (models.runtime)

    @property
    def device_text(self) -> str:
        if self.runtime == "openvino":
            threads = int(getattr(self.net, "threads", 0) or 0)
            extra = "" if self.precision == "fp32" else f", {self.precision}"
            return f"cpu (OpenVINO, {threads} thread{'s' if threads != 1 else ''}{extra})"
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


def build_network(manifest: dict, state: dict, manifest_path: Path):
    """The network class and arguments named by a manifest, with ``state`` loaded (on the CPU, eval mode)."""
    from CardiacMTLLib.models.nets import NETWORKS

    try:
        net = NETWORKS[manifest["network"]](**manifest["network_kwargs"])
    except KeyError as e:
        raise CardiacModelError(f"{manifest_path}: unknown network {manifest.get('network')!r}") from e
    net.load_state_dict(state)
    return net.eval()


def fold_batch_norm(net):
    """Fold every batch norm that follows a 2D convolution in a ``Sequential`` into that convolution's
    weights and bias (eval mode: the running statistics), for inference only: the same function of the
    input in one operation instead of two. Returns ``net``, changed in place."""
    import torch
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    with torch.no_grad():
        for module in net.modules():
            if not isinstance(module, nn.Sequential):
                continue
            children = list(module.named_children())
            for (first, conv), (second, norm) in zip(children, children[1:], strict=False):
                if isinstance(conv, nn.Conv2d | nn.ConvTranspose2d) and isinstance(norm, nn.BatchNorm2d):
                    transpose = isinstance(conv, nn.ConvTranspose2d)
                    setattr(module, first, fuse_conv_bn_eval(conv.eval(), norm.eval(), transpose=transpose))
                    setattr(module, second, nn.Identity())
    return net


def _converted_manifest(model_dir: Path, device, runtime: str) -> dict | None:
    """The manifest of ``model_dir`` where its network is to run on OpenVINO on this ``device`` and
    ``runtime`` (:func:`~CardiacMTLLib.models.runtime.choose_runtime`: no torch imported to tell), else
    ``None`` (torch runs it, and says what is wrong with a damaged folder)."""
    if hasattr(device, "type"):  # a torch device
        return None
    try:
        manifest = json.loads((Path(model_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if choose_runtime(runtime, device, Path(model_dir), manifest) == "openvino" else None


def preload_model(
    model_dir: str | Path | None = None, device: str = "auto", precision: str = "auto"
) -> threading.Thread | None:
    """Start loading the segmentation model of :func:`load_model` with these arguments on a thread, where
    its network will run on OpenVINO, and return the thread; else (torch would run it) start nothing.

    The analysis of a file calls it before reading the input: OpenVINO compiles the network (about 0.1 s,
    outside Python's lock) while the input is read. The later :func:`load_model` with the same arguments
    waits for this load and gets its model (:func:`load_once`); where this load failed, that call loads
    again and raises the error. torch is never preloaded: an input refused on reading would wait for its
    import, a second or two.
    """
    try:
        if _converted_manifest(resolve_model_dir(model_dir), device, "auto") is None:
            return None
    except CardiacError:
        return None  # load_model says what is wrong

    def load() -> None:
        try:
            load_model(model_dir, device=device, precision=precision)
        except Exception:  # noqa: BLE001 - the analysis's own load_model raises it where it matters
            pass

    thread = threading.Thread(target=load, name="cardiac-mtl-model-load")
    thread.start()
    return thread


def load_model(
    model_dir: str | Path | None = None,
    device: str = "auto",
    precision: str = "auto",
    cached: bool = True,
    runtime: str = "auto",
) -> SegmentationModel:
    """Rebuild the network named by ``model_dir/manifest.json`` and load its weights onto ``device``;
    ``precision`` as in :func:`resolve_precision`. Loaded once per folder, device and precision
    (:func:`load_once`) unless ``cached`` is false (a trainer that changes the network). The cached
    network is for inference only: on the CPU in fp32 its batch norms are folded into the convolutions
    (:func:`fold_batch_norm`).

    ``runtime`` (:func:`CardiacMTLLib.models.runtime.choose_runtime`): on the CPU the folder's network
    converted for OpenVINO runs where it exists and matches the weights (no torch imported), else torch.
    A trainer that changes the network asks for ``runtime="torch"``.
    """
    model_dir = resolve_model_dir(model_dir)
    manifest = _converted_manifest(model_dir, device, runtime)
    if manifest is not None:
        host = HostCPU()
        quantised = has_quantised(model_dir, converted_record(model_dir, manifest))
        precision = resolve_precision(precision, host, quantised)

        def load_converted() -> SegmentationModel:
            net = OpenVINONetwork(model_dir, precision)
            return SegmentationModel(net, manifest, model_dir, host, precision, runtime="openvino")

        if not cached:
            return load_converted()
        return load_once("segmentation:openvino", model_dir, host, precision, load_converted)
    import torch

    device = resolve_device(device)
    precision = resolve_precision(precision, device)

    def load() -> SegmentationModel:
        manifest, state = read_model_folder(model_dir)
        net = build_network(manifest, state, model_dir / MANIFEST)
        if cached and precision == "fp32" and device.type == "cpu":
            # in bfloat16 the folded weights round differently: a few hundred voxels of the demo's cine
            # change label and its AHA wall thickness by up to 0.8 %, so only fp32 folds
            fold_batch_norm(net)
        net.to(device, memory_format=torch.channels_last)  # faster convolutions on CPU and GPU
        return SegmentationModel(
            net=net, manifest=manifest, model_dir=model_dir, device=device, precision=precision
        )

    return load_once("segmentation", model_dir, device, precision, load) if cached else load()


@dataclass(frozen=True)
class CatalogueCheck:
    """One model of ``weights/catalogue.json`` checked file by file against its sha256 sums."""

    model_id: str
    version: str
    problems: tuple[str, ...] = ()  # "<file> missing", "<file> corrupt (sha256 mismatch)"


def verify_catalogue(weights_dir: Path = WEIGHTS_DIR) -> list[CatalogueCheck]:
    """Check every shipped model's files against the catalogue's sha256 sums (a damaged install shows
    before an analysis fails on it)."""
    catalogue = json.loads((weights_dir / "catalogue.json").read_text())
    checks = []
    for key, entry in catalogue["models"].items():
        problems = []
        for name, digest in entry.get("files", {}).items():
            path = weights_dir / entry.get("folder", key) / name
            if not path.is_file():
                problems.append(f"{name} missing")
            elif sha256_of(path) != digest:
                problems.append(f"{name} corrupt (sha256 mismatch)")
        checks.append(
            CatalogueCheck(str(entry.get("model_id", key)), str(entry.get("version", "")), tuple(problems))
        )
    return checks
