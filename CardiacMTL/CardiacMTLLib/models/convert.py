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
    NETWORK_XML,
    RUNTIME_FILES,
    RUNTIME_RECORD,
)


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
    write_json_atomic(record, model_dir / RUNTIME_RECORD)
    if (model_dir / OUTPUT_MANIFEST).exists():  # a folder the project wrote: these files are its own too
        record_written(model_dir, *(model_dir / name for name in RUNTIME_FILES))
    return record
