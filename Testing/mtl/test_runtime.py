"""The CPU runtime of the segmentation network (OpenVINO, models/runtime.py) and the torch-free resampling
it relies on: the same numbers as torch, chosen where it can run, refused where it cannot."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from CardiacMTLLib.analysis.preprocess import linear_taps, resize_bilinear, uncrop
from CardiacMTLLib.analysis.segment import native_part, network_probabilities, softmax, to_native_grid
from CardiacMTLLib.errors import CardiacModelError
from CardiacMTLLib.models import runtime
from CardiacMTLLib.models.registry import clear_loaded, default_model_dir, load_model, preload_model

openvino = pytest.importorskip("openvino", reason="openvino is not installed: the torch runtime only")


def test_numpy_resampling_is_torchs_bilinear():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(1)
    for shape, size in (((5, 37, 41), (53, 29)), ((2, 4, 30, 30), (45, 45)), ((3, 1, 7, 9), (7, 20))):
        planes = rng.random(shape, dtype=np.float32)
        flat = torch.from_numpy(planes.reshape((-1, 1) + shape[-2:]))
        expected = F.interpolate(flat, size=size, mode="bilinear", align_corners=False).numpy()
        assert np.abs(resize_bilinear(planes, size) - expected.reshape(shape[:-2] + size)).max() < 2e-5
        part = resize_bilinear(planes, size, slice(3, 11), slice(2, 9))
        assert np.abs(part - expected.reshape(shape[:-2] + size)[..., 3:11, 2:9]).max() < 2e-5


def test_native_grid_of_a_windowed_softmax_equals_the_whole_resampling():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(2)
    field = np.zeros((3, 4, 64, 64), dtype=np.float32)
    field[:, 0] = 1.0
    logits = rng.standard_normal((3, 4, 20, 24)).astype(np.float32) * 3
    field[:, :, 20:40, 16:40] = softmax(logits)
    offset, resampled, native = (5, -3), (70, 58), (90, 81)
    out = to_native_grid(field.copy(), offset, resampled, native)
    full = uncrop(field, offset, resampled)
    inside = uncrop(np.ones((64, 64), dtype=bool), offset, resampled, fill=False)
    full[:, 0][:, ~inside] = 1.0
    expected = F.interpolate(torch.from_numpy(full), size=native, mode="bilinear", align_corners=False)
    expected = expected.numpy().transpose(1, 0, 2, 3)
    assert out.shape == expected.shape
    assert np.abs(out - expected).max() < 2e-5
    assert (out[0] == 1.0).sum() > 0.5 * out[0].size  # most of the grid is certain background


def test_shipped_network_is_converted_from_the_shipped_weights():
    folder = default_model_dir()
    manifest = json.loads((folder / "manifest.json").read_text())
    record = runtime.converted_record(folder, manifest)
    assert record is not None, "the shipped network has no OpenVINO conversion of its weights"
    assert record["weights_sha256"] == manifest["sha256"]["weights.pt"]
    assert record["check"]["max_abs_logit_difference_fp32"] <= runtime.MAX_LOGIT_DIFFERENCE


def test_converted_network_computes_what_torch_computes():
    pytest.importorskip("torch")
    converted = load_model(device="cpu", precision="fp32", runtime="openvino", cached=False)
    reference = load_model(device="cpu", precision="fp32", runtime="torch", cached=False)
    assert converted.runtime == "openvino" and reference.runtime == "torch"
    assert "OpenVINO" in converted.device_text
    field = np.random.default_rng(3).standard_normal((2, 80, 112)).astype(np.float32)
    probs, areas = network_probabilities(converted, field)
    expected, _ = network_probabilities(reference, field)
    assert areas is None and probs.shape == expected.shape == (2, 4, 80, 112)
    assert np.abs(probs - expected).max() < 1e-4


def test_runtime_is_chosen_by_device_variable_and_folder(tmp_path, monkeypatch):
    folder = default_model_dir()
    manifest = json.loads((folder / "manifest.json").read_text())
    monkeypatch.delenv(runtime.RUNTIME_VARIABLE, raising=False)
    assert runtime.choose_runtime("auto", "cpu", folder, manifest) == "openvino"
    assert runtime.choose_runtime("auto", "cuda", folder, manifest) == "torch"
    monkeypatch.setenv(runtime.RUNTIME_VARIABLE, "torch")
    assert runtime.choose_runtime("auto", "cpu", folder, manifest) == "torch"
    monkeypatch.setenv(runtime.RUNTIME_VARIABLE, "tensorflow")
    with pytest.raises(Exception, match="runtime must be one of"):
        runtime.choose_runtime("auto", "cpu", folder, manifest)
    monkeypatch.delenv(runtime.RUNTIME_VARIABLE)
    # a conversion of other weights is stale: torch runs, and asking for OpenVINO says why it cannot
    copy = tmp_path / "model"
    shutil.copytree(folder, copy)
    record = json.loads((copy / runtime.RUNTIME_RECORD).read_text())
    record["weights_sha256"] = "0" * 64
    (copy / runtime.RUNTIME_RECORD).write_text(json.dumps(record))
    assert runtime.choose_runtime("auto", "cpu", copy, manifest) == "torch"
    with pytest.raises(CardiacModelError, match="no network converted from its weights"):
        runtime.choose_runtime("openvino", "cpu", copy, manifest)
    with pytest.raises(CardiacModelError, match="a GPU is in use"):
        runtime.choose_runtime("openvino", "cuda", folder, manifest)


def test_a_preloaded_network_is_the_one_the_analysis_loads_and_torch_is_never_preloaded(
    tmp_path, monkeypatch
):
    monkeypatch.delenv(runtime.RUNTIME_VARIABLE, raising=False)
    copy = tmp_path / "model"
    shutil.copytree(default_model_dir(), copy)
    clear_loaded()
    thread = preload_model(copy, device="cpu", precision="fp32")
    assert thread is not None
    thread.join(120)
    assert not thread.is_alive()
    model = load_model(copy, device="cpu", precision="fp32")
    assert model.runtime == "openvino" and load_model(copy, device="cpu", precision="fp32") is model
    # a damaged network: the preload fails quietly, and the analysis's own load says what is wrong
    data = bytearray((copy / runtime.NETWORK_BIN).read_bytes())
    data[1000] ^= 0xFF
    (copy / runtime.NETWORK_BIN).write_bytes(bytes(data))
    (copy / "manifest.json").touch()  # the folder changed: the cache reads it again
    clear_loaded()
    thread = preload_model(copy, device="cpu", precision="fp32")
    thread.join(120)
    with pytest.raises(CardiacModelError, match="sha256 does not match"):
        load_model(copy, device="cpu", precision="fp32")
    assert preload_model(copy, device="cuda") is None
    monkeypatch.setenv(runtime.RUNTIME_VARIABLE, "torch")
    assert preload_model(copy, device="cpu") is None
    clear_loaded()


@pytest.mark.parametrize(
    "name, precision, other",
    [(runtime.NETWORK_BIN, "fp32", "int8"), (runtime.NETWORK_INT8_BIN, "int8", "fp32")],
)
def test_a_damaged_network_file_is_refused_and_the_other_precision_still_runs(
    tmp_path, name, precision, other
):
    copy = tmp_path / "model"
    shutil.copytree(default_model_dir(), copy)
    data = bytearray((copy / name).read_bytes())
    data[1000] ^= 0xFF
    (copy / name).write_bytes(bytes(data))
    with pytest.raises(CardiacModelError, match=f"{name}: sha256 does not match"):
        load_model(copy, device="cpu", precision=precision, cached=False)
    assert load_model(copy, device="cpu", precision=other, cached=False).precision == other


def test_rescoring_a_folder_keeps_its_conversion_and_retraining_drops_it(tmp_path):
    torch = pytest.importorskip("torch")
    from CardiacMTLLib.models.registry import WEIGHTS, read_model_folder, write_model_folder

    copy = tmp_path / "model"
    shutil.copytree(default_model_dir(), copy)
    manifest, state = read_model_folder(copy)
    manifest = {k: v for k, v in manifest.items() if k != "sha256"}
    write_model_folder(copy, None, dict(manifest, scores={"note": "rescored"}), {WEIGHTS: copy / WEIGHTS})
    rescored = json.loads((copy / "manifest.json").read_text())
    assert rescored["scores"] == {"note": "rescored"}
    assert runtime.converted_record(copy, rescored) is not None
    changed = {k: (v + 0.5 if v.is_floating_point() else v) for k, v in state.items()}
    write_model_folder(copy, {k: torch.as_tensor(v) for k, v in changed.items()}, manifest)
    retrained = json.loads((copy / "manifest.json").read_text())
    assert runtime.converted_record(copy, retrained) is None
    assert load_model(copy, device="cpu", cached=False).runtime == "torch"


def test_analysis_on_the_cpu_does_not_import_torch(tmp_path):
    code = (
        "import sys; from CardiacMTLApps.cli.mtl import main; "
        f"code = main(['demo', '--out', {str(tmp_path / 'out')!r}]); "
        "print('TORCH', 'torch' in sys.modules); sys.exit(code)"
    )
    env_code = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env_without_runtime()
    )
    assert env_code.returncode == 0, env_code.stderr[-2000:]
    assert "TORCH False" in env_code.stdout
    assert "OpenVINO" in env_code.stdout + env_code.stderr


def _env_without_runtime() -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if k != runtime.RUNTIME_VARIABLE}
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["TQDM_DISABLE"] = "1"
    return env


def test_entropy_counts_certain_background_as_the_whole_computation_does():
    from CardiacMTLLib.analysis.qc import softmax_entropy

    rng = np.random.default_rng(5)
    field = np.zeros((3, 4, 64, 64), dtype=np.float32)
    field[:, 0] = 1.0
    field[:, :, 10:30, 20:50] = softmax(rng.standard_normal((3, 4, 20, 30)).astype(np.float32) * 4)
    probs = to_native_grid(field, (-4, 2), (70, 60), (80, 75))
    for p in (
        probs,
        np.ascontiguousarray(probs[:, :, :40]),
        np.eye(4, dtype=np.float32)[[0] * 6].T.reshape(4, 1, 2, 3),
    ):
        clipped = np.clip(p, 1e-7, 1.0)
        expected = -(clipped * np.log(clipped)).sum(axis=0).sum(axis=(1, 2))
        assert softmax_entropy(p) == pytest.approx(expected, rel=1e-5)


def test_the_native_part_gives_the_labels_scores_and_rv_of_the_whole_grid():
    """segment_cine and segment_volume make the label map, the entropy and the likely RV on the part of
    the native grid that is not certain background: the same values as on the whole grid."""
    from CardiacMTLLib.analysis.qc import slice_network_scores
    from CardiacMTLLib.analysis.segment import (
        argmax_labels,
        labels_on_part,
        largest_component_per_structure,
        native_part,
    )

    rng = np.random.default_rng(8)
    field = np.zeros((5, 4, 64, 64), dtype=np.float32)
    field[:, 0] = 1.0
    logits = rng.standard_normal((5, 4, 24, 28)).astype(np.float32) * 3
    logits[:, 1:, 8:16, 8:20] += 6.0  # a heart, and stray islands the clean-up removes
    field[:, :, 18:42, 20:48] = softmax(logits)
    for offset, resampled, native in (((5, -3), (70, 58), (90, 81)), ((-4, 2), (70, 60), (80, 75))):
        whole = to_native_grid(field.copy(), offset, resampled, native)
        part, rows, cols = native_part(field.copy(), offset, resampled, native)
        assert part.shape[2] < native[0] and part.shape[3] < native[1]  # a part, not the whole grid
        assert np.array_equal(whole[:, :, rows, cols], part)
        labels = labels_on_part(part, rows, cols, native)
        assert np.array_equal(labels, largest_component_per_structure(argmax_labels(whole)))
        spacing = (1.3, 1.4, 8.0)
        expected = slice_network_scores(whole, labels, None, spacing)
        scores = slice_network_scores(part, labels, None, spacing, native_pixels=native[0] * native[1])
        assert scores.keys() == expected.keys()
        for key in expected:
            assert np.array_equal(scores[key], expected[key])
    empty = np.zeros_like(field)
    empty[:, 0] = 1.0
    part, rows, cols = native_part(empty, (0, 0), (64, 64), (64, 64))
    assert part.shape == (4, 5, 0, 0)
    assert not labels_on_part(part, rows, cols, (64, 64)).any()


def test_the_native_part_equals_placing_the_whole_field_then_resampling():
    """native_part places on the resampled grid only the block its resampling reads: bit for bit what
    placing the whole field (background outside it) and resampling the part gives."""

    def placed_whole(field, offset, resampled, native):
        full = uncrop(field, offset, resampled)
        inside = uncrop(np.ones(field.shape[-2:], dtype=bool), offset, resampled, fill=False)
        full[:, 0][:, ~inside] = 1.0
        uncertain = (full[:, 0] != 1.0).any(axis=0)
        reads = []
        for axis, n_out in ((0, native[0]), (1, native[1])):
            present = np.flatnonzero(uncertain.any(axis=1 - axis))
            first, second, _ = linear_taps(uncertain.shape[axis], n_out)
            touched = np.flatnonzero(
                ((first >= present[0]) & (first <= present[-1]))
                | ((second >= present[0]) & (second <= present[-1]))
            )
            reads.append(slice(int(touched[0]), int(touched[-1]) + 1))
        return resize_bilinear(full, native, *reads).transpose(1, 0, 2, 3), *reads

    rng = np.random.default_rng(11)
    for case in range(12):
        field = np.zeros((3, 4, 64, 64), dtype=np.float32)
        field[:, 0] = 1.0
        r, c, h, w = (int(v) for v in (*rng.integers(0, 30, 2), *rng.integers(4, 34, 2)))
        if case % 3 == 0:  # the uncertain pixels reach the field's first row and column ...
            r, c = 0, 0
        elif case % 3 == 1:  # ... or its last: the resampling reads the grid beyond the field
            r, c = 64 - h, 64 - w
        field[:, :, r : r + h, c : c + w] = softmax(rng.standard_normal((3, 4, h, w)).astype(np.float32) * 3)
        offset = (int(rng.integers(-40, 30)), int(rng.integers(-40, 30)))  # the field partly off the grid too
        resampled = (int(rng.integers(40, 90)), int(rng.integers(40, 90)))
        native = (int(rng.integers(30, 120)), int(rng.integers(30, 120)))
        part, rows, cols = native_part(field.copy(), offset, resampled, native)
        within = all(
            o + lo < n and o + hi > 0
            for o, lo, hi, n in zip(offset, (r, c), (r + h, c + w), resampled, strict=True)
        )
        if not within:
            continue  # the heart's pixels all off the grid: certain background, an empty part (below)
        expected, expected_rows, expected_cols = placed_whole(field, offset, resampled, native)
        assert (rows, cols) == (expected_rows, expected_cols), case
        assert np.array_equal(part, expected), case
    empty, rows, cols = native_part(field, (200, 200), (64, 64), (64, 64))  # the field beside the grid
    assert empty.shape == (4, 3, 0, 0) and (rows, cols) == (slice(0, 0), slice(0, 0))


# ------------------------------------------------------------------------------------------ int8


def _synthetic_fields(model, seeds=(0, 1)) -> np.ndarray:
    from CardiacMTLLib.analysis.segment import network_field
    from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

    fields = []
    for seed in seeds:
        case = generate_synthetic_cine(seed=seed, num_frames=2, shape=(160, 160, 6))
        fields += [network_field(model, case.cine.data[f], case.cine.spacing_mm)[0] for f in range(2)]
    return np.concatenate(fields)[:, None]


def _heart_agreement(a: np.ndarray, b: np.ndarray) -> float:
    la, lb = a.argmax(axis=1), b.argmax(axis=1)
    heart = (la > 0) | (lb > 0)
    return float((la[heart] == lb[heart]).mean())


def test_int8_runs_where_asked_for_and_the_folder_is_quantised_and_is_refused_elsewhere():
    from CardiacMTLLib.errors import CardiacInputError
    from CardiacMTLLib.models.device import resolve_precision

    cpu = runtime.HostCPU()
    assert resolve_precision("int8", cpu, quantised=True) == "int8"
    assert resolve_precision("auto", cpu, quantised=True) in ("fp32", "bf16")  # auto keeps the exact network
    assert resolve_precision("fp32", cpu, quantised=True) == "fp32"
    assert resolve_precision("auto", cpu, quantised=False) in ("fp32", "bf16")
    with pytest.raises(CardiacInputError, match="quantised"):
        resolve_precision("int8", cpu, quantised=False)

    class Cuda:
        type = "cuda"

    assert resolve_precision("auto", Cuda(), quantised=True) == "fp32"
    with pytest.raises(CardiacInputError, match="on the CPU"):
        resolve_precision("int8", Cuda(), quantised=True)


def test_shipped_int8_network_labels_the_heart_as_the_fp32_network(tmp_path):
    folder = default_model_dir()
    int8 = load_model(folder, device="cpu", precision="int8", cached=False)
    fp32 = load_model(folder, device="cpu", precision="fp32", cached=False)
    assert (int8.runtime, int8.precision, fp32.precision) == ("openvino", "int8", "fp32")
    assert "int8" in int8.device_text
    field = _synthetic_fields(fp32)[:, 0]
    agreement = _heart_agreement(network_probabilities(int8, field)[0], network_probabilities(fp32, field)[0])
    assert agreement >= 0.97, agreement
    # without its quantised files the folder runs the fp32 network, and int8 asked for is refused
    copy = tmp_path / "model"
    shutil.copytree(folder, copy)
    for name in runtime.QUANTISED_FILES:
        (copy / name).unlink()
    assert load_model(copy, device="cpu", cached=False).precision in ("fp32", "bf16")
    with pytest.raises(Exception, match="quantised"):
        load_model(copy, device="cpu", precision="int8", cached=False)
    # a quantisation recorded as made from other fp32 files is not this network's
    shutil.rmtree(copy)
    shutil.copytree(folder, copy)
    record = json.loads((copy / runtime.RUNTIME_RECORD).read_text())
    record["int8"]["made_from"][runtime.NETWORK_BIN] = "0" * 64
    (copy / runtime.RUNTIME_RECORD).write_text(json.dumps(record))
    assert not runtime.has_quantised(copy, record)
    with pytest.raises(Exception, match="quantised"):
        load_model(copy, device="cpu", precision="int8", cached=False)


def test_quantisation_is_checked_recorded_and_dropped_by_a_new_conversion(tmp_path, monkeypatch):
    pytest.importorskip("nncf", reason="nncf is not installed: no int8 quantisation")
    pytest.importorskip("torch")
    from CardiacMTLLib.models import convert

    copy = tmp_path / "model"
    shutil.copytree(default_model_dir(), copy)
    for name in runtime.QUANTISED_FILES:
        (copy / name).unlink()
    record = json.loads((copy / runtime.RUNTIME_RECORD).read_text())
    (copy / runtime.RUNTIME_RECORD).write_text(json.dumps({k: v for k, v in record.items() if k != "int8"}))
    fp32 = load_model(copy, device="cpu", precision="fp32", cached=False)
    fields = _synthetic_fields(fp32, seeds=(0, 1, 2))
    calibration, check = fields[:12], fields[12:]
    # a check it cannot pass: nothing is written, and the error says by how much it missed
    monkeypatch.setattr(convert, "MIN_INT8_AGREEMENT", 1.01)
    with pytest.raises(CardiacModelError, match="not kept"):
        convert.quantise_openvino(copy, calibration, check)
    assert not any((copy / name).exists() for name in runtime.QUANTISED_FILES)
    assert "int8" not in json.loads((copy / runtime.RUNTIME_RECORD).read_text())
    monkeypatch.setattr(convert, "MIN_INT8_AGREEMENT", 0.95)
    record = convert.quantise_openvino(copy, calibration, check, {"calibration": {"what": "synthetic"}})
    assert record["int8"]["calibration"] == {"slices": 12, "what": "synthetic"}
    assert record["int8"]["check"]["label_agreement"] >= 0.95
    int8 = load_model(copy, device="cpu", precision="int8", cached=False)
    assert int8.precision == "int8"
    assert (
        _heart_agreement(
            network_probabilities(int8, check[:, 0])[0], network_probabilities(fp32, check[:, 0])[0]
        )
        >= 0.95
    )
    # converting the network again replaces it: its quantisation is gone with it
    convert.export_openvino(copy)
    assert not any((copy / name).exists() for name in runtime.QUANTISED_FILES)
    with pytest.raises(Exception, match="quantised"):
        load_model(copy, device="cpu", precision="int8", cached=False)
