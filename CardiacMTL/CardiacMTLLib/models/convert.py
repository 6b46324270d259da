"""Converting a model folder's segmentation network for the OpenVINO runtime (:mod:`CardiacMTLLib.models.runtime`):
made from the folder's own ``weights.pt`` by OpenVINO's converter, checked against torch's logits, and
recorded beside the weights. Needs torch and openvino; inference needs only openvino.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from CardiacMTLLib.atomic import OUTPUT_MANIFEST, record_written, sha256_of, write_json_atomic
from CardiacMTLLib.errors import CardiacModelError
from CardiacMTLLib.models.registry import MANIFEST, WEIGHTS, build_network, read_model_folder
from CardiacMTLLib.models.runtime import (
    CONVERTIBLE,
    MAX_LOGIT_DIFFERENCE,
    NETWORK_BIN,
    NETWORK_INT8_XML,
    NETWORK_XML,
    QUANTISED_FILES,
    RUNTIME_FILES,
    RUNTIME_RECORD,
    converted_record,
)

# The int8 network is kept only where it labels the check fields' heart pixels (those either network calls
# heart) as the fp32 network does on at least this share: the shipped one measured 99.4 % on fields of
# training patients it was not calibrated on, and Dice on the validation patients within 0.001 of fp32's.
MIN_INT8_AGREEMENT = 0.98


def export_openvino(model_dir: str | Path) -> dict:
    """Convert a model folder's segmentation network for OpenVINO (``network.xml``/``.bin``, fp32 weights),
    check its logits against torch's on a fixed random batch, and record both in ``runtime.json``.

    Needs torch and openvino. Returns the record. The files are written atomically and added to the
    folder's list of the files the project wrote.
    """
    import openvino as ov
    import torch

    model_dir = Path(model_dir)
    manifest, state = read_model_folder(model_dir)
    if manifest.get("network") not in CONVERTIBLE:
        raise CardiacModelError(
            f"{model_dir}: {manifest.get('network')} networks run on torch; only {CONVERTIBLE} are converted"
        )
    net = build_network(manifest, state, model_dir / MANIFEST)
    channels = int(manifest["network_kwargs"].get("in_channels", 1))
    size = int(manifest["preprocessing"]["input_size"])
    converted = ov.convert_model(
        net, example_input=torch.zeros(1, channels, size, size), input=[(-1, channels, -1, -1)]
    )
    # a fixed random batch of a size unlike the example's: the dynamic shapes are checked too
    batch = np.random.default_rng(0).standard_normal((3, channels, 96, 144)).astype(np.float32)
    with torch.inference_mode():
        expected = net(torch.from_numpy(batch)).numpy()
    with tempfile.TemporaryDirectory(prefix=".openvino-", dir=model_dir) as staging:
        staging = Path(staging)
        # fp32 weights: in fp16 the batch norms OpenVINO folds into the convolutions would round
        ov.save_model(converted, staging / NETWORK_XML, compress_to_fp16=False)
        compiled = ov.Core().compile_model(
            ov.Core().read_model(staging / NETWORK_XML), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
        )
        difference = float(
            np.abs(np.asarray(compiled.create_infer_request().infer({0: batch})[0]) - expected).max()
        )
        if not difference <= MAX_LOGIT_DIFFERENCE:
            raise CardiacModelError(
                f"{model_dir}: the converted network's logits differ from torch's by {difference:.3g}"
            )
        record = {
            "runtime": "openvino",
            "files": [NETWORK_XML, NETWORK_BIN],
            "weights_sha256": manifest.get("sha256", {}).get(WEIGHTS) or sha256_of(model_dir / WEIGHTS),
            "sha256": {name: sha256_of(staging / name) for name in (NETWORK_XML, NETWORK_BIN)},
            "input": f"float32 (N, {channels}, H, W), H and W multiples of 16; output: logits",
            "check": {
                "batch": "3 x 96 x 144, standard normal, seed 0",
                "max_abs_logit_difference_fp32": difference,
            },
            "made_with": {"torch": torch.__version__, "openvino": ov.__version__},
        }
        for name in (NETWORK_XML, NETWORK_BIN):
            os.replace(staging / name, model_dir / name)
        for name in QUANTISED_FILES:  # a quantisation of the network this replaces
            if (model_dir / name).is_file():
                os.remove(model_dir / name)
    write_json_atomic(record, model_dir / RUNTIME_RECORD)
    if (model_dir / OUTPUT_MANIFEST).exists():  # a folder the project wrote: these files are its own too
        record_written(model_dir, *(model_dir / n for n in RUNTIME_FILES if (model_dir / n).is_file()))
    return record


def _labels(compiled, fields: np.ndarray, batch: int = 16) -> np.ndarray:
    request = compiled.create_infer_request()
    return np.concatenate(
        [
            np.asarray(request.infer({0: fields[i : i + batch]})[0]).argmax(axis=1)
            for i in range(0, len(fields), batch)
        ]
    )


def quantise_openvino(
    model_dir: str | Path, calibration: np.ndarray, check: np.ndarray, described: dict | None = None
) -> dict:
    """Quantise a folder's OpenVINO network (:func:`export_openvino` first) to int8 with NNCF's
    post-training quantisation: activations calibrated on ``calibration``, float32 ``(N, 1, H, W)`` network
    inputs as inference prepares them (:func:`CardiacMTLLib.analysis.segment.network_field`), and checked
    on ``check``, other such inputs: the int8 network must give the fp32 network's label on at least
    ``MIN_INT8_AGREEMENT`` of the pixels either of them labels heart (else nothing is written and
    :class:`CardiacModelError` says by how much it missed).

    Writes ``network-int8.xml``/``.bin`` atomically and records them, the calibration (``described``: what
    the fields are) and the check in ``runtime.json`` under ``int8``. Needs openvino and nncf. Returns the
    record.
    """
    import nncf
    import openvino as ov

    model_dir = Path(model_dir)
    manifest, _ = read_model_folder(model_dir)
    record = converted_record(model_dir, manifest)
    if record is None:
        raise CardiacModelError(
            f"{model_dir}: no network converted from its weights to quantise (export first)"
        )
    calibration = np.ascontiguousarray(calibration, dtype=np.float32)
    check = np.ascontiguousarray(check, dtype=np.float32)
    core = ov.Core()
    fp32 = core.read_model(model_dir / NETWORK_XML)
    quantised = nncf.quantize(
        fp32,
        nncf.Dataset([calibration[i : i + 1] for i in range(len(calibration))]),
        preset=nncf.QuantizationPreset.PERFORMANCE,  # symmetric activations: the fast int8 kernels
        subset_size=len(calibration),
    )
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    expected = _labels(core.compile_model(fp32, "CPU", config), check)
    with tempfile.TemporaryDirectory(prefix=".openvino-int8-", dir=model_dir) as staging:
        staging = Path(staging)
        ov.save_model(quantised, staging / NETWORK_INT8_XML, compress_to_fp16=False)
        got = _labels(core.compile_model(core.read_model(staging / NETWORK_INT8_XML), "CPU", config), check)
        heart = (expected > 0) | (got > 0)
        agreement = float((expected[heart] == got[heart]).mean()) if heart.any() else 0.0
        if not agreement >= MIN_INT8_AGREEMENT:
            raise CardiacModelError(
                f"{model_dir}: the int8 network labels {100 * agreement:.2f} % of the heart's pixels as the "
                f"fp32 network does (at least {100 * MIN_INT8_AGREEMENT:.0f} % needed); not kept"
            )
        record = dict(record)
        record["int8"] = {
            "files": list(QUANTISED_FILES),
            "sha256": {name: sha256_of(staging / name) for name in QUANTISED_FILES},
            "made_from": {
                NETWORK_XML: record["sha256"][NETWORK_XML],
                NETWORK_BIN: record["sha256"][NETWORK_BIN],
            },
            "method": "NNCF post-training quantisation, performance preset (symmetric), fast bias correction",
            "calibration": {"slices": int(len(calibration)), **(described or {}).get("calibration", {})},
            "check": {
                "slices": int(len(check)),
                **(described or {}).get("check", {}),
                "pixels": int(heart.sum()),
                "label_agreement": agreement,
                "min_label_agreement": MIN_INT8_AGREEMENT,
            },
            "made_with": {"openvino": ov.__version__, "nncf": nncf.__version__},
        }
        for name in QUANTISED_FILES:
            os.replace(staging / name, model_dir / name)
    write_json_atomic(record, model_dir / RUNTIME_RECORD)
    if (model_dir / OUTPUT_MANIFEST).exists():
        record_written(model_dir, *(model_dir / name for name in QUANTISED_FILES))
    return record
