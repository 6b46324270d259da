"""Pre-processing geometry and the inference code path, with a small randomly initialised network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from CardiacMTLLib.analysis.preprocess import (
    center_crop_or_pad,
    normalise_intensity,
    resample_inplane,
    resample_labels_inplane,
    uncrop,
)
from CardiacMTLLib.analysis.segment import (
    largest_component_per_structure,
    predict_probabilities,
    segment_volume,
)
from CardiacMTLLib.errors import CardiacModelError
from CardiacMTLLib.models.nets.unet import UNet2D
from CardiacMTLLib.models.registry import load_model


def test_crop_then_uncrop_restores_the_covered_region():
    rng = np.random.default_rng(0)
    stack = rng.normal(size=(3, 50, 70)).astype(np.float32)
    cropped, offset = center_crop_or_pad(stack, 64)
    assert cropped.shape == (3, 64, 64)
    back = uncrop(cropped, offset, (50, 70))
    # rows fit entirely (50 < 64), columns are cut to the central 64 of 70
    np.testing.assert_array_equal(back[:, :, 3:67], stack[:, :, 3:67])
    assert np.all(back[:, :, :3] == 0) and np.all(back[:, :, 67:] == 0)


def test_crop_centred_on_a_point_puts_it_in_the_middle():
    stack = np.zeros((1, 100, 100), dtype=np.float32)
    stack[0, 20, 80] = 1.0
    cropped, _ = center_crop_or_pad(stack, 32, center_rc=(20, 80))
    assert tuple(np.argwhere(cropped[0] == 1.0)[0]) == (16, 16)


def test_resampling_scales_the_grid_by_the_spacing_ratio():
    stack = np.ones((2, 100, 60), dtype=np.float32)
    out = resample_inplane(stack, (0.7, 1.4), 1.4)
    assert out.shape == (2, 50, 60)


def test_label_resampling_keeps_a_disc_area_in_mm2():
    rr, cc = np.mgrid[:200, :200]
    labels = ((rr - 100) ** 2 + (cc - 100) ** 2 < 60**2).astype(np.uint8)[None] * 3
    out = resample_labels_inplane(labels, (0.5, 0.5), 1.37, 4)
    area_in = (labels == 3).sum() * 0.25
    area_out = (out == 3).sum() * 1.37**2
    assert abs(area_out - area_in) / area_in < 0.02
    assert set(np.unique(out)) <= {0, 3}


def test_normalised_stack_has_zero_mean_unit_variance():
    rng = np.random.default_rng(1)
    volume = rng.gamma(2.0, 100.0, size=(4, 32, 32))
    out = normalise_intensity(volume)
    assert abs(out.mean()) < 1e-4 and abs(out.std() - 1) < 1e-3


def test_largest_component_removes_spurious_islands():
    labels = np.zeros((3, 40, 40), dtype=np.uint8)
    labels[:, 5:20, 5:20] = 3
    labels[1, 30:33, 30:33] = 3  # island
    labels[1, 25:28, 5:8] = 1
    out = largest_component_per_structure(labels)
    assert (out[1, 30:33, 30:33] == 0).all()
    assert (out == 3).sum() == 3 * 15 * 15
    assert (out == 1).sum() == 9  # a single component is kept


def test_unet_keeps_the_spatial_size():
    net = UNet2D(base_channels=4, depth=3)
    assert net(torch.zeros(2, 1, 48, 64)).shape == (2, 4, 48, 64)


@pytest.fixture
def tiny_model_dir(tmp_path):
    torch.manual_seed(0)
    kwargs = {"in_channels": 1, "num_classes": 4, "base_channels": 4, "depth": 2}
    torch.save(UNet2D(**kwargs).state_dict(), tmp_path / "weights.pt")
    manifest = {
        "model_id": "tiny",
        "version": "test",
        "network": "UNet2D",
        "network_kwargs": kwargs,
        "preprocessing": {"target_spacing_mm": 2.0, "input_size": 32},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def test_probabilities_come_back_on_the_native_grid(tiny_model_dir):
    model = load_model(tiny_model_dir, device="cpu")
    image = np.random.default_rng(2).normal(size=(3, 50, 30)).astype(np.float32)
    probs = predict_probabilities(model, image, (1.5, 1.0, 8.0))
    assert probs.shape == (4, 3, 50, 30)
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
    labels = segment_volume(model, image, (1.5, 1.0, 8.0))
    assert labels.shape == (3, 50, 30) and labels.dtype == np.uint8


def test_bf16_inference_matches_fp32_and_is_named(tiny_model_dir):
    from CardiacMTLLib.errors import CardiacInputError
    from CardiacMTLLib.models.device import cpu_supports_bf16

    image = np.random.default_rng(3).normal(size=(4, 50, 30)).astype(np.float32)
    full = load_model(tiny_model_dir, device="cpu", precision="fp32")
    half = load_model(tiny_model_dir, device="cpu", precision="bf16")
    assert full.precision == "fp32" and "bf16" not in full.device_text
    assert half.precision == "bf16" and half.device_text.endswith(", bf16)")
    p32 = predict_probabilities(full, image, (1.5, 1.0, 8.0))
    p16 = predict_probabilities(half, image, (1.5, 1.0, 8.0))
    assert p16.dtype == np.float32  # probabilities leave in fp32 whatever the arithmetic
    np.testing.assert_allclose(p16, p32, atol=0.05)  # bfloat16 keeps 8 bits of mantissa
    auto = load_model(tiny_model_dir, device="cpu")
    assert auto.precision == ("bf16" if cpu_supports_bf16() else "fp32")
    with pytest.raises(CardiacInputError, match="precision"):
        load_model(tiny_model_dir, device="cpu", precision="fp8")


def test_outside_the_network_field_is_background(tiny_model_dir):
    model = load_model(tiny_model_dir, device="cpu")
    # 200 px at 1 mm -> 100 px at 2 mm; the 32-px field covers only the centre
    probs = predict_probabilities(model, np.ones((1, 200, 200), dtype=np.float32), (1.0, 1.0, 8.0))
    assert probs[0, 0, 0, 0] == pytest.approx(1.0)
    assert probs[0, 0, 199, 199] == pytest.approx(1.0)


def test_missing_model_folder_is_a_model_error(tmp_path):
    with pytest.raises(CardiacModelError, match="manifest.json"):
        load_model(tmp_path / "nowhere", device="cpu")


def test_corrupt_weights_are_detected_by_checksum(tiny_model_dir):
    manifest = json.loads((tiny_model_dir / "manifest.json").read_text())
    manifest["sha256"] = {"weights.pt": "0" * 64}
    (tiny_model_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CardiacModelError, match="sha256"):
        load_model(tiny_model_dir, device="cpu")


def test_clip_range_is_numpys_percentiles_for_integer_and_other_images():
    from CardiacMTLLib.analysis.preprocess import CLIP_PERCENTILES, clip_range

    rng = np.random.default_rng(4)
    with_zeros = np.abs(rng.normal(0.0, 100.0, (4, 64, 64))).astype(np.float32)
    with_zeros[:2] = 0.0
    with_zeros[0, :10] = -0.0  # negative zeros order with the zeros
    images = [
        np.rint(rng.gamma(2.0, 200.0, (6, 70, 90))).astype(np.float32),  # scanner-like integers
        rng.integers(0, 12, (3, 50, 50)).astype(np.float32),  # few distinct values: many ties
        rng.integers(-1024, 3000, (2, 64, 64)).astype(np.float32),  # negative integers (CT-like)
        rng.random((4, 40, 40), dtype=np.float32) * 100,  # not integers
        (rng.integers(0, 2000, (5, 64, 64)) * np.float32(1.37) + np.float32(3.2)).astype(np.float32),  # slope
        rng.normal(-50.0, 300.0, (3, 64, 64)).astype(np.float32),  # negative floats
        with_zeros,
        np.full((2, 64, 64), 7.0, dtype=np.float32),  # constant
        np.array([[[np.nan, 1.0], [2.0, 3.0]]] * 1200, dtype=np.float32),  # not finite: numpy's own path
    ]
    for image in images:  # bit for bit: the statistics are numpy's, and so is their interpolation
        expected = tuple(float(v) for v in np.percentile(image, CLIP_PERCENTILES))
        assert clip_range(image) == pytest.approx(expected, nan_ok=True, rel=0, abs=0)
    for _ in range(40):  # and on stacks of random size and content
        n = int(rng.integers(4096, 60000))
        image = (rng.gamma(1.5, 80.0, n) * rng.choice([1.0, -1.0], n, p=[0.9, 0.1])).astype(np.float32)
        assert clip_range(image) == tuple(float(v) for v in np.percentile(image, CLIP_PERCENTILES))
