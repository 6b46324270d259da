"""The segmentation network on OpenVINO, the CPU runtime that needs no torch at run time.

A model folder may carry, beside ``weights.pt``, the same network converted for OpenVINO
(``network.xml`` + ``network.bin``, fp32 weights) and ``runtime.json``, which records the sha256 of the
``weights.pt`` it was converted from, of its own files, and how closely its logits matched torch's when it
was made (:func:`CardiacMTLLib.models.convert.export_openvino`). On the CPU, inference then runs on
OpenVINO: the same network, about 1.2-1.7 times faster per batch than torch in the same precision on the
2-core machine this project is measured on, and without importing torch (about 2 s of every command's
start-up). bfloat16 is OpenVINO's
inference precision hint, taken where the CPU computes it natively, as for torch (:func:`resolve_precision`).

The folder may also carry the network quantised to int8 (``network-int8.xml``/``.bin``, made from the fp32
conversion by NNCF's post-training quantisation, calibrated on network fields of the training patients:
:func:`CardiacMTLLib.models.convert.quantise_openvino`). Where it is there, made from these weights and
undamaged, ``--precision int8`` runs it on the CPU: about 1.7 times the fp32 network's speed on the
2-core machine, the same Dice on the validation patients to 0.0011, a few pixels' difference on images
unlike ACDC's (``auto`` keeps to fp32 or bf16: :func:`CardiacMTLLib.models.device.resolve_precision`).

torch stays the model definition and the trainer: the converted network is built from the shipped
weights, checked against them, and ignored (torch runs instead) wherever it does not match them, is
missing or is damaged, where a GPU is used, or where ``CARDIACMTL_RUNTIME=torch`` asks for it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from CardiacMTLLib.atomic import sha256_of
from CardiacMTLLib.errors import CardiacInputError, CardiacModelError

RUNTIMES = ("auto", "torch", "openvino")
# ``auto`` unless told otherwise: torch everywhere with CARDIACMTL_RUNTIME=torch (a comparison, a problem
# with OpenVINO on some machine), OpenVINO on the CPU with CARDIACMTL_RUNTIME=openvino
RUNTIME_VARIABLE = "CARDIACMTL_RUNTIME"
RUNTIME_RECORD, NETWORK_XML, NETWORK_BIN = "runtime.json", "network.xml", "network.bin"
NETWORK_INT8_XML, NETWORK_INT8_BIN = "network-int8.xml", "network-int8.bin"
QUANTISED_FILES = (NETWORK_INT8_XML, NETWORK_INT8_BIN)
# what a conversion writes; the quantised pair is there only where it was made (and passed its check)
RUNTIME_FILES = (RUNTIME_RECORD, NETWORK_XML, NETWORK_BIN, *QUANTISED_FILES)
# the networks the conversion is made and checked for (plain logits out); the multi-task U-Net's area
# regression runs on torch
CONVERTIBLE = ("UNet2D",)
# the converted network's fp32 logits must match torch's to this (logits reach about 10 in magnitude)
MAX_LOGIT_DIFFERENCE = 1e-3

_threads: int | None = None


@dataclass(frozen=True)
class HostCPU:
    """The device of a network that runs on OpenVINO: this machine's CPU (``type`` as torch's devices)."""

    type: str = "cpu"

    def __str__(self) -> str:
        return "cpu"


def set_inference_threads(threads: int | None) -> None:
    """The threads an OpenVINO network compiled from now on uses (``None``: OpenVINO's choice, the cores);
    torch's ``set_num_threads`` for this runtime, which a batch worker sets to its own thread count."""
    global _threads
    _threads = int(threads) if threads else None


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def requested_runtime(runtime: str = "auto") -> str:
    """``runtime``, or the environment's ``CARDIACMTL_RUNTIME`` where it is ``auto``."""
    if runtime == "auto":
        runtime = os.environ.get(RUNTIME_VARIABLE, "auto").strip().lower() or "auto"
    if runtime not in RUNTIMES:
        raise CardiacInputError(f"runtime must be one of {RUNTIMES}, got {runtime!r} ({RUNTIME_VARIABLE}?)")
    return runtime


def gpu_visible() -> bool:
    """Whether this machine may have a CUDA GPU, known without importing torch: an NVIDIA driver is loaded
    and ``CUDA_VISIBLE_DEVICES`` does not hide every device. Where torch is imported already, its answer."""
    if "torch" in sys.modules:
        return bool(sys.modules["torch"].cuda.is_available())
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidiactl").exists()


def converted_record(model_dir: Path, manifest: dict) -> dict | None:
    """The folder's ``runtime.json`` when its converted network is there and was made from this folder's
    weights (the sha256 the manifest records), else ``None``."""
    record_path = Path(model_dir) / RUNTIME_RECORD
    if manifest.get("network") not in CONVERTIBLE or not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return None
    weights = manifest.get("sha256", {}).get("weights.pt")
    if not weights or record.get("weights_sha256") != weights:
        return None  # converted from other weights: stale
    if not all((Path(model_dir) / name).is_file() for name in (NETWORK_XML, NETWORK_BIN)):
        return None
    return record


def choose_runtime(runtime: str, device: str, model_dir: Path, manifest: dict) -> str:
    """``"openvino"`` or ``"torch"`` for a model folder on ``device`` (``auto``/``cpu``/``cuda``).

    ``auto`` takes OpenVINO on the CPU where it is installed and the folder carries a network converted
    from its weights, torch otherwise (a GPU, a multi-task network, a folder a user trained and did not
    convert). ``openvino`` asked for explicitly is an error where it cannot run.
    """
    runtime = requested_runtime(runtime)
    if runtime == "torch":
        return "torch"
    on_cpu = device == "cpu" or (device == "auto" and not gpu_visible())
    usable = on_cpu and openvino_installed() and converted_record(model_dir, manifest) is not None
    if runtime == "openvino" and not usable:
        why = (
            "a GPU is in use"
            if not on_cpu
            else "openvino is not installed"
            if not openvino_installed()
            else f"{model_dir} has no network converted from its weights (cardiac-train export-openvino)"
        )
        raise CardiacModelError(f"the OpenVINO runtime was asked for, but {why}")
    return "openvino" if usable else "torch"


def has_quantised(model_dir: Path, record: dict | None) -> bool:
    """Whether a folder whose conversion is ``record`` (:func:`converted_record`) carries its int8 network,
    quantised from that conversion (the sha256 of the fp32 files it was made from match the record's)."""
    if not record or not record.get("int8", {}).get("sha256"):
        return False
    made_from = record["int8"].get("made_from", {})
    if any(made_from.get(name) != record.get("sha256", {}).get(name) for name in (NETWORK_XML, NETWORK_BIN)):
        return False
    return all((Path(model_dir) / name).is_file() for name in QUANTISED_FILES)


_CONVERSION_TOOLS = "openvino.tools.ovc"
_IMPORT_LOCK = threading.Lock()


def import_openvino():
    """``openvino``, imported without its model-conversion tools when nothing has imported it yet.

    ``import openvino`` also imports ``openvino.tools.ovc`` and its telemetry, only to offer
    ``openvino.convert_model``: about 0.05 s of every analysis on the 2-core machine, which running a
    converted network never uses. That one attribute is then supplied on first use (a module
    ``__getattr__``), so the conversion (:mod:`CardiacMTLLib.models.convert`) and any other code in the
    same process, a Slicer session's included, find ``openvino`` as it always is.
    """
    with _IMPORT_LOCK:
        if "openvino" in sys.modules or _CONVERSION_TOOLS in sys.modules:
            import openvino

            return openvino
        sys.modules[_CONVERSION_TOOLS] = None  # openvino's own ``try: from ... except ImportError``
        try:
            import openvino
        finally:
            if sys.modules.get(_CONVERSION_TOOLS, False) is None:
                del sys.modules[_CONVERSION_TOOLS]
        if not hasattr(openvino, "convert_model") and not hasattr(openvino, "__getattr__"):
            openvino.__getattr__ = _conversion_attribute
        return openvino


def _conversion_attribute(name: str):
    """``openvino.convert_model`` on first use, for an ``openvino`` imported by :func:`import_openvino`."""
    import openvino

    if name != "convert_model":
        raise AttributeError(f"module 'openvino' has no attribute {name!r}")
    from openvino.tools.ovc import convert_model

    openvino.convert_model = convert_model
    return convert_model


class OpenVINONetwork:
    """A converted segmentation network: ``net(batch)`` on a float32 ``(N, 1, H, W)`` array (``H`` and ``W``
    multiples of 16) returns the fp32 logits ``(N, classes, H, W)`` as numpy.

    Compiled once for any batch size and field size; calls are serialised (one inference request), as a
    batch worker's threads share one torch network.
    """

    def __init__(self, model_dir: Path, precision: str = "fp32") -> None:
        ov = import_openvino()

        record = json.loads((Path(model_dir) / RUNTIME_RECORD).read_text())
        files, expected = (NETWORK_XML, NETWORK_BIN), record.get("sha256", {})
        if precision == "int8":  # the quantised network; its other layers in fp32
            files, expected = QUANTISED_FILES, record.get("int8", {}).get("sha256", {})
        for name in files:
            if not expected.get(name) or sha256_of(Path(model_dir) / name) != expected[name]:
                raise CardiacModelError(f"{Path(model_dir) / name}: sha256 does not match {RUNTIME_RECORD}")
        core = ov.Core()
        config = {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "PERFORMANCE_HINT": "LATENCY",
        }
        if _threads:
            config["INFERENCE_NUM_THREADS"] = _threads
        self.compiled = core.compile_model(core.read_model(Path(model_dir) / files[0]), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.threads = int(self.compiled.get_property("INFERENCE_NUM_THREADS")) or os.cpu_count() or 1
        self.lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        with self.lock:
            out = self.request.infer({0: batch})[0]
            return np.array(out, dtype=np.float32)  # a copy: the request's buffer is reused by the next call

    def eval(self):
        return self
