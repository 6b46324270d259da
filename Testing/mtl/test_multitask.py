"""The multi-task networks of the seeds: the uncertainty-weighted MTL U-Net (segmentation + area regression,
network QC) and the thesis' multi-task 3D DenseNet (diagnosis + ED/ES segmentation + handcrafted features)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from CardiacMTLLib.analysis.qc import AREA_DISAGREEMENT_THRESHOLD, network_qc, slice_network_scores
from CardiacMTLLib.models.nets import NETWORKS
from CardiacMTLLib.models.nets.densenet3d import CPU_CONFIG, MultiTaskDenseNet3D
from CardiacMTLLib.models.nets.mtl_unet import AREA_UNIT_MM2, MTLUNet2D, areas_mm2
from CardiacMTLLib.models.nets.unet import UNet2D
from CardiacMTLLib.training.losses import (
    area_targets,
    thesis_loss,
    uncertainty_weighted_loss,
    weighted_dice_loss,
)


def test_mtl_unet_initialised_from_a_plain_unet_segments_exactly_like_it():
    torch.manual_seed(0)
    plain = UNet2D(base_channels=4).eval()
    mtl = MTLUNet2D(base_channels=4)
    mtl.init_from_unet(plain.state_dict())
    mtl.eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        logits, areas = mtl(x, return_areas=True)
        assert torch.allclose(mtl(x), plain(x), atol=1e-5)
    assert torch.allclose(logits, plain(x), atol=1e-5)
    assert areas.shape == (2, 3) and bool((areas >= 0).all())
    # the regression path starts as a copy of the segmentation path's last stage
    for a, b in zip(mtl.reg_decoder.parameters(), mtl.decoders[-1].parameters(), strict=True):
        assert torch.equal(a, b)


def test_mtl_unet_area_head_works_at_any_input_size():
    net = MTLUNet2D(base_channels=4).eval()
    with torch.no_grad():
        for size in (32, 48, 64):
            _, areas = net(torch.zeros(1, 1, size, size), return_areas=True)
            assert areas.shape == (1, 3)


def test_area_targets_count_pixels_per_structure():
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    labels[0, :2, :3] = 1  # 6 RV pixels
    labels[0, 4:, 4:] = 3  # 16 LV pixels
    labels[1, 0, 0] = 2
    expected = torch.tensor([[6.0, 0.0, 16.0], [0.0, 1.0, 0.0]]) / AREA_UNIT_MM2
    assert torch.allclose(area_targets(labels), expected)
    # 16 LV pixels of 1.5 x 1.5 mm are 36 mm^2
    assert areas_mm2(area_targets(labels), 2.25)[0, 2].item() == pytest.approx(36.0)


def test_uncertainty_weighted_loss_is_minimised_at_the_task_noise():
    """Eq. (5): d/ds2 (L/exp(s2) + s2) = 0 at exp(s2) = L; d/ds1 (S/exp(2 s1) + s1) = 0 at exp(2 s1) = 2 S."""
    seg, reg = torch.tensor(0.2), torch.tensor(3.0)
    s = torch.tensor([0.5 * np.log(2 * 0.2), np.log(3.0)], dtype=torch.float32, requires_grad=True)
    uncertainty_weighted_loss(seg, reg, s).backward()
    assert torch.allclose(s.grad, torch.zeros(2), atol=1e-6)
    s2 = torch.zeros(2, requires_grad=True)
    uncertainty_weighted_loss(seg, reg, s2).backward()
    assert s2.grad[1] < 0  # the regression loss (3) is larger than its current sigma (1): sigma grows


def test_network_scores_and_flags():
    labels = np.zeros((2, 10, 10), dtype=np.uint8)
    labels[:, 2:6, 2:6] = 3  # 16 pixels of LV on both slices
    probs = np.zeros((4, 2, 10, 10), dtype=np.float32)
    probs[0] = 1.0
    probs[0][labels == 3] = 0.0
    probs[3][labels == 3] = 1.0
    spacing = (2.0, 2.0, 8.0)  # 4 mm^2 pixels: 64 mm^2 of LV
    areas = np.array([[0.0, 0.0, 64.0], [0.0, 0.0, 64.0 + 2 * AREA_DISAGREEMENT_THRESHOLD * 264.0]])
    scores = slice_network_scores(probs, labels, areas, spacing)
    assert scores["entropy"] == pytest.approx([0.0, 0.0], abs=1e-4)  # one-hot probabilities
    assert scores["area_disagreement"][0] == pytest.approx(0.0)
    findings = network_qc(scores, frame_number=7)
    assert [(f["frame"], f["slice"]) for f in findings] == [(7, 1)]
    assert "area disagreement" in findings[0]["problem"]
    # a plain U-Net has no regressed areas: entropy only, and no network finding
    plain = slice_network_scores(probs, labels, None, spacing)
    assert "area_disagreement" not in plain and network_qc(plain, 1) == []
    # a network that hesitates between all four labels on slice 0 is flagged by its entropy alone
    probs[:, 0] = 0.25
    unsure = network_qc(slice_network_scores(probs, labels, None, spacing), 3)
    assert [(f["frame"], f["slice"]) for f in unsure] == [(3, 0)]
    assert "uncertain segmentation" in unsure[0]["problem"]


def test_segmentation_with_a_multitask_model_folder(tmp_path):
    from CardiacMTLLib.analysis.segment import predict_with_areas, regresses_areas, segment_cine
    from CardiacMTLLib.models.registry import load_model
    from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

    kwargs = {"in_channels": 1, "num_classes": 4, "base_channels": 4, "depth": 4}
    torch.manual_seed(0)
    torch.save(MTLUNet2D(**kwargs).state_dict(), tmp_path / "weights.pt")
    manifest = {
        "model_id": "test-mtl",
        "network": "MTLUNet2D",
        "network_kwargs": kwargs,
        "preprocessing": {"target_spacing_mm": 1.37, "input_size": 64},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    model = load_model(tmp_path, device="cpu")
    assert regresses_areas(model) and "MTLUNet2D" in NETWORKS
    cine = generate_synthetic_cine(seed=1, num_frames=2, shape=(96, 96, 4)).cine
    probs, areas = predict_with_areas(model, cine.data[0], cine.spacing_mm)
    assert probs.shape[1:] == cine.data.shape[1:] and areas.shape == (cine.data.shape[1], 3)
    assert np.allclose(probs.sum(axis=0), 1.0, atol=1e-4)
    scores: dict = {}
    labels = segment_cine(model, cine, slice_scores=scores)
    assert labels.shape == cine.data.shape and sorted(scores) == [0, 1]
    assert scores[0]["area_disagreement"].shape == (cine.data.shape[1],)


@pytest.mark.parametrize(
    "tasks",
    [("diagnosis",), ("diagnosis", "segmentation"), ("diagnosis", "segmentation", "features")],
)
def test_densenet_outputs_per_variant(tasks):
    torch.manual_seed(0)
    net = MultiTaskDenseNet3D(**dict(CPU_CONFIG, tasks=tasks))
    x = torch.randn(2, 3, 6, 32, 32)
    out = net(x)
    assert out["logits"].shape == (2, 5)
    assert ("features" in out) == ("features" in tasks)
    if "segmentation" in tasks:
        size = 32 // CPU_CONFIG["seg_downsampling"]
        assert out["seg_ed"].shape == out["seg_es"].shape == (2, 4, 6, size, size)
    y = torch.randint(0, 4, (2, 6, 32, 32))
    loss = thesis_loss(out, torch.tensor([0, 3]), torch.zeros(2, 13), y, y)
    loss.backward()
    assert torch.isfinite(loss)


def test_full_resolution_segmentation_branch_as_in_the_thesis():
    net = MultiTaskDenseNet3D(**dict(CPU_CONFIG, seg_downsampling=1))
    out = net(torch.randn(1, 3, 6, 32, 32))
    assert out["seg_ed"].shape == (1, 4, 6, 32, 32)


def test_thesis_loss_weights():
    """alpha * seg + (1 - alpha) * (beta * features + (1 - beta) * diagnosis)."""
    logits = torch.zeros(1, 5)  # cross-entropy log(5)
    seg = torch.zeros(1, 4, 1, 2, 2)
    y_seg = torch.zeros(1, 1, 2, 2, dtype=torch.long)
    out = {"logits": logits, "features": torch.ones(1, 13), "seg_ed": seg, "seg_es": seg}
    dice = weighted_dice_loss(seg, y_seg).item()
    expected = 0.3 * dice + 0.7 * (0.6 * 1.0 + 0.4 * np.log(5))
    got = thesis_loss(out, torch.tensor([1]), torch.zeros(1, 13), y_seg, y_seg, alpha=0.3, beta=0.6)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert thesis_loss({"logits": logits}, torch.tensor([1]), None, None, None).item() == pytest.approx(
        np.log(5)
    )


def test_densenet_input_and_handcrafted_features():
    from CardiacMTLLib.analysis.diagnosis.densenet import (
        SIZE,
        SLICES,
        handcrafted_features,
        prepare_case,
        window,
    )

    ed_lab = np.zeros((8, 100, 90), dtype=np.uint8)
    ed_lab[:, 60:80, 20:40] = 3  # LV: 8 * 400 voxels of 1.25 x 1.25 x 10 mm = 50 mL
    ed_lab[:, 60:80, 40:50] = 1  # RV: 25 mL
    es_lab = ed_lab.copy()
    es_lab[:, 60:70, 20:40] = 2  # half the LV becomes myocardium at ES
    spacing = (1.25, 1.25, 10.0)
    f = handcrafted_features(ed_lab, es_lab, spacing)
    assert f[0] == pytest.approx(50.0) and f[1] == pytest.approx(25.0) and f[3] == pytest.approx(25.0)
    assert f[6] == pytest.approx(0.5)  # LV EF
    assert f[9] == pytest.approx(2.0)  # LV/RV at ED
    rng = np.random.default_rng(0)
    image = rng.normal(size=ed_lab.shape).astype(np.float32)
    x, y = prepare_case(image, image * 0.5, ed_lab, es_lab, spacing)
    assert x.shape == (3, 8, SIZE, SIZE) and y.shape == (2, 8, SIZE, SIZE)
    assert np.allclose(x[1], x[0] - x[2])
    rows, cols = np.nonzero(y[0].max(axis=0) > 0)  # the heart is centred in the crop
    assert abs((rows.min() + rows.max()) / 2 - SIZE / 2) <= 1.5
    assert abs((cols.min() + cols.max()) / 2 - SIZE / 2) <= 1.5
    assert window(x).shape[1] == SLICES and window(x[:, :3]).shape[1] == SLICES  # padded
    with pytest.raises(Exception, match="no heart"):
        prepare_case(image, image, np.zeros_like(ed_lab), es_lab, spacing)


def test_densenet_training_step_and_prediction_on_a_tiny_cohort():
    from CardiacMTLLib.analysis.diagnosis.densenet import SIZE
    from CardiacMTLLib.training.densenet import VARIANTS, DenseNetTrainingConfig, predict, train_one

    rng = np.random.default_rng(0)
    patients = np.array([f"p{i}" for i in range(5)])
    cache = {"patients": patients, "classes": np.array(["NOR", "MINF", "DCM", "HCM", "ARV"])}
    for p in patients:
        cache[f"x_{p}"] = rng.normal(size=(3, 7, SIZE, SIZE)).astype(np.float32)
        cache[f"y_{p}"] = rng.integers(0, 4, (2, 7, SIZE, SIZE)).astype(np.uint8)
        cache[f"f_{p}"] = rng.normal(size=13).astype(np.float32)
    config = DenseNetTrainingConfig(data="unused", out="unused", lr=1e-3, batch_size=4, epochs=1)
    net, kwargs, (mean, std) = train_one(
        cache, patients, VARIANTS["diagnosis+segmentation+features"], config, 0, "test"
    )
    proba = predict(net, cache, patients[:2])
    assert proba.shape == (2, 5) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert mean.shape == std.shape == (13,)


def test_analyze_with_the_densenet_as_diagnosis_model(tmp_path):
    """An image-based diagnosis model plugs into analyze: the block names it and its probabilities sum to 1."""
    from CardiacMTLLib.analysis.diagnosis.classifiers import load_classifier
    from CardiacMTLLib.errors import CardiacModelError
    from CardiacMTLLib.pipeline import analyze
    from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

    kwargs = dict(CPU_CONFIG, tasks=["diagnosis"])
    torch.manual_seed(0)
    torch.save(MultiTaskDenseNet3D(**kwargs).state_dict(), tmp_path / "weights.pt")
    manifest = {"model_id": "test-densenet", "version": "t", "network": "MultiTaskDenseNet3D"}
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "network_kwargs": kwargs}))
    classifier = load_classifier(str(tmp_path))
    assert classifier.model_id == "test-densenet"
    cine = generate_synthetic_cine(seed=2, num_frames=6, shape=(128, 128, 6)).cine
    result = analyze(cine, device="cpu", classifier=classifier)
    block = result.diagnosis
    assert block["model"].startswith("test-densenet") and block["class"] in block["probabilities"]
    assert sum(block["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert "images" in block["features_used"]
    with pytest.raises(CardiacModelError, match="manifest.json"):
        load_classifier(str(tmp_path / "missing"))
