"""The work-saving inference path: the heart window of the network's field, its fall-back to the whole
field, batch norms folded into the convolutions, and label argmax; each checked against the plain path."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from CardiacMTLLib.analysis.preprocess import heart_window, touches_window_edge
from CardiacMTLLib.analysis.segment import (
    argmax_labels,
    checked_window,
    field_prediction,
    label_disagreement,
    largest_component_per_structure,
    network_field,
    predict_in_window,
    saves_work,
    segment_cine,
    segment_volume,
)
from CardiacMTLLib.models.nets.unet import UNet2D
from CardiacMTLLib.models.registry import SegmentationModel, fold_batch_norm
from CardiacMTLLib.types import Cine


def test_heart_window_holds_the_heart_with_its_margin_on_the_networks_grid():
    mask = np.zeros((3, 192, 192), dtype=bool)
    mask[1, 60:100, 70:130] = True  # 40 x 60 px
    r0, c0, size = heart_window(mask, 192, margin_px=10)
    assert r0 % 16 == 0 and c0 % 16 == 0 and size % 16 == 0
    assert r0 <= 60 - 10 and r0 + size >= 100 + 10
    assert c0 <= 70 - 10 and c0 + size >= 130 + 10
    assert (c0, size) == (48, 96)  # the grid lines around columns 60..140, none wider
    assert 0 <= r0 and r0 + size <= 192 and 0 <= c0 and c0 + size <= 192


def test_a_window_on_the_networks_grid_reads_the_image_as_the_whole_field_does():
    """A U-Net pools 16 x 16 cells: on a window whose corner lies on that grid the centre of the window
    gets nearly the whole field's output; a window 4 or 8 pixels off pools other pixels together."""
    torch.manual_seed(0)
    net = UNet2D(base_channels=8, depth=4).eval()
    x = torch.randn(1, 1, 160, 160)
    with torch.inference_mode():
        whole = net(x)

        def difference(r0: int) -> float:
            window = net(x[..., r0 : r0 + 96, r0 : r0 + 96])
            return float((window - whole[..., r0 : r0 + 96, r0 : r0 + 96])[..., 24:72, 24:72].abs().mean())

        on_grid = max(difference(32), difference(48))
        off_grid = min(difference(36), difference(40), difference(44))
    assert on_grid < 0.6 * off_grid


def test_heart_window_stays_inside_the_field_and_gives_up_when_too_large():
    mask = np.zeros((1, 192, 192), dtype=bool)
    mask[0, 0:20, 170:192] = True  # in a corner: the window is pushed inside the field
    r0, c0, size = heart_window(mask, 192, margin_px=20)
    assert r0 == 0 and c0 + size == 192
    assert heart_window(np.zeros((2, 192, 192), dtype=bool), 192, 20) is None  # nothing found
    mask[0, 10:180, 10:180] = True
    assert heart_window(mask, 192, margin_px=20) is None  # nearly the whole field: run the field


def test_only_inner_window_edges_count_as_touched():
    window = (0, 32, 64)  # on the field's top edge, inside it elsewhere
    found = np.zeros((1, 64, 64), dtype=bool)
    found[0, 0, 30] = True  # on the top edge, which is the field's own
    assert not touches_window_edge(found, window, 192)
    found[0, 30, 63] = True  # on the right edge, inside the field
    assert touches_window_edge(found, window, 192)


def test_argmax_labels_equals_numpys_argmax_ties_included():
    rng = np.random.default_rng(0)
    probs = rng.random((4, 3, 20, 30)).astype(np.float32)
    probs[:, 0, :4] = 0.25  # ties: the first class wins, as in numpy
    np.testing.assert_array_equal(argmax_labels(probs), np.argmax(probs, axis=0))
    np.testing.assert_array_equal(
        argmax_labels(probs.transpose(1, 0, 2, 3), axis=1), np.argmax(probs, axis=0)
    )


def test_folded_batch_norm_computes_the_same_function():
    torch.manual_seed(0)
    net = UNet2D(base_channels=4, depth=2).eval()
    for module in net.modules():  # statistics other than the initial ones, so folding has work to do
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    x = torch.randn(2, 1, 32, 48)
    with torch.inference_mode():
        expected = net(x)
        folded = fold_batch_norm(net)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        torch.testing.assert_close(folded(x), expected, atol=1e-4, rtol=1e-4)


class BrightIsLV(nn.Module):
    """A network without context: each pixel brighter than 1 is LV cavity, the rest background, so any
    window of the field that holds the heart must give exactly the labels of the whole field."""

    def __init__(self):
        super().__init__()
        self.seen = []  # the input shapes it ran on

    def forward(self, x):
        self.seen.append(tuple(x.shape))
        z = torch.zeros_like(x)
        return torch.cat([-(x - 1.0) * 8, z - 20, z - 20, (x - 1.0) * 8], dim=1)


def pixelwise_model(input_size: int = 128) -> SegmentationModel:
    manifest = {"preprocessing": {"target_spacing_mm": 1.5, "input_size": input_size}}
    return SegmentationModel(BrightIsLV(), manifest, model_dir=None, device=torch.device("cpu"))


def disc_stack(centre_rc, radius=12, shape=(5, 160, 160)):
    rr, cc = np.mgrid[: shape[1], : shape[2]]
    disc = ((rr - centre_rc[0]) ** 2 + (cc - centre_rc[1]) ** 2) < radius**2
    image = np.where(disc, 3.0, 0.2).astype(np.float32)
    return np.repeat(image[None], shape[0], axis=0)


def test_a_window_around_the_heart_gives_the_labels_of_the_whole_field():
    model = pixelwise_model()
    image = disc_stack((80, 90))
    spacing = (1.5, 1.5, 8.0)
    full, _, used_full, _ = predict_in_window(model, image, spacing, "full")
    windowed, _, used, _ = predict_in_window(model, image, spacing, "heart")
    assert used_full is None and used is not None and used[2] < 128  # the window was smaller: less work
    np.testing.assert_array_equal(argmax_labels(windowed), argmax_labels(full))
    np.testing.assert_allclose(windowed.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(segment_volume(model, image, spacing), argmax_labels(full))


def test_a_heart_cut_by_the_window_is_run_on_a_larger_window_or_the_field():
    model = pixelwise_model()
    image = disc_stack((80, 80), radius=10)
    image[:, 75:85, 80:150] = 3.0  # a bright band from the heart towards the edge of the field
    spacing = (1.5, 1.5, 8.0)
    full, _, _, _ = predict_in_window(model, image, spacing, "full")
    small = (40, 40, 48)  # a window around the disc only: the band runs out of it
    result, _, used, _ = predict_in_window(model, image, spacing, small)
    assert used != small
    np.testing.assert_array_equal(argmax_labels(result), argmax_labels(full))


def test_a_cine_segmented_in_windows_equals_frame_by_frame_whole_fields():
    model = pixelwise_model(192)  # a field as large as the shipped network's, as much room around the heart
    frames = [disc_stack((80 + t, 85 - t), radius=14 - t) for t in range(4)]
    cine = Cine(np.stack(frames), (1.5, 1.5, 8.0), np.eye(4), frame_numbers=[0, 1, 2, 3])
    labels = segment_cine(model, cine)
    # the first frame on the whole field, the others on the window it placed (and their middle slices on
    # the whole field, to check the window against): less work than the whole field for every frame
    seen = model.net.seen
    assert seen[0] == (5, 1, 192, 192) and any(s[-1] < 192 for s in seen[1:])
    assert sum(np.prod(s) for s in seen) < 0.9 * 4 * 5 * 192 * 192
    for t in range(4):
        probs, _, _, _ = predict_in_window(model, cine.data[t], cine.spacing_mm, "full")
        np.testing.assert_array_equal(labels[t], argmax_labels(probs))


def test_a_window_the_network_reads_differently_is_not_kept():
    model = pixelwise_model()
    image = disc_stack((80, 90))
    spacing = (1.5, 1.5, 8.0)
    x, _, _ = network_field(model, image, spacing)
    whole, _, _, _ = field_prediction(model, x, None)
    window = heart_window(argmax_labels(whole, axis=1) > 0, 128, 10)
    assert checked_window(model, x, window, whole) == window  # context-free network: the same labels
    relabelled = whole.copy()
    relabelled[:, [0, 3]] = relabelled[:, [3, 0]]  # as if the whole field had read the heart otherwise
    assert checked_window(model, x, window, relabelled) is None
    assert label_disagreement(argmax_labels(whole, axis=1), argmax_labels(relabelled, axis=1)) == 1.0


@pytest.mark.parametrize("window", ["full", "heart"])
def test_an_empty_stack_falls_back_to_the_whole_field(window):
    model = pixelwise_model()
    image = np.full((3, 100, 100), 0.2, dtype=np.float32)
    probs, _, used, _ = predict_in_window(model, image, (1.5, 1.5, 8.0), window)
    assert used is None and (argmax_labels(probs) == 0).all()


def test_clean_up_inside_the_bounding_box_equals_the_whole_image():
    from scipy import ndimage

    rng = np.random.default_rng(4)
    labels = np.zeros((6, 80, 90), dtype=np.uint8)
    labels[1:5, 20:60, 30:70] = rng.integers(0, 4, size=(4, 40, 40), dtype=np.uint8)  # many islands
    expected = labels.copy()  # the plain definition, on the whole image
    for value in (1, 2, 3):
        components, count = ndimage.label(labels == value, structure=np.ones((3, 3, 3), dtype=bool))
        sizes = np.bincount(components.ravel())
        sizes[0] = 0
        expected[(labels == value) & (components != sizes.argmax())] = 0
    np.testing.assert_array_equal(largest_component_per_structure(labels), expected)
    assert not largest_component_per_structure(np.zeros((2, 5, 5), dtype=np.uint8)).any()


class NeedsTheWholeField(BrightIsLV):
    """A network that finds the heart only with the whole field around it (an extreme of the context the
    U-Net reads): on any smaller window it sees nothing."""

    def forward(self, x):
        out = super().forward(x)
        return out if x.shape[-1] == 128 else torch.cat([out[:, :1] * 0 + 50, out[:, 1:] * 0 - 50], dim=1)


def test_a_cine_whose_window_the_check_turns_down_keeps_to_the_whole_field():
    model = pixelwise_model()
    model.net = NeedsTheWholeField()
    frames = [disc_stack((80, 85 - t), radius=14) for t in range(4)]
    cine = Cine(np.stack(frames), (1.5, 1.5, 8.0), np.eye(4), frame_numbers=[0, 1, 2, 3])
    labels = segment_cine(model, cine)
    reference = BrightIsLV()
    for t in range(4):
        model.net, net = reference, model.net
        probs, _, _, _ = predict_in_window(model, cine.data[t], cine.spacing_mm, "full")
        model.net = net
        np.testing.assert_array_equal(labels[t], argmax_labels(probs))
    assert (labels == 3).any()
    # one checking pass on a window, then whole fields only
    assert sum(s[-1] < 128 for s in model.net.seen) == 1


def test_a_gpu_runs_the_whole_field_as_before():
    assert saves_work(pixelwise_model())
    on_gpu = SegmentationModel(BrightIsLV(), {}, model_dir=None, device=torch.device("cuda"))
    assert not saves_work(on_gpu)  # no CUDA needed to ask: the device is only named


def test_where_no_window_is_used_each_frame_runs_the_network_once(monkeypatch):
    """On a GPU (or for the area-regressing network) every frame runs the whole field, and nothing is spent
    on proposing and checking windows that would not be used."""
    from CardiacMTLLib.analysis import segment

    model = pixelwise_model()
    monkeypatch.setattr(segment, "saves_work", lambda _model: False)
    frames = [disc_stack((80 + t, 85 - t), radius=14 - t) for t in range(4)]
    cine = Cine(np.stack(frames), (1.5, 1.5, 8.0), np.eye(4), frame_numbers=[0, 1, 2, 3])
    labels = segment_cine(model, cine)
    assert model.net.seen == [(5, 1, 128, 128)] * 4
    for t in range(4):
        probs, _, _, _ = predict_in_window(model, cine.data[t], cine.spacing_mm, "full")
        np.testing.assert_array_equal(labels[t], argmax_labels(probs))


def test_a_cine_reports_every_frame_in_order_and_a_cancel_leaves_no_frame_running(monkeypatch):
    """The post-processing of a frame runs beside the network on the next: progress still comes once per
    frame, in order, after that frame's labels exist; an exception raised by progress (a Cancel) stops
    the run, and no frame is post-processed after it."""
    import CardiacMTLLib.analysis.segment as segment

    model = pixelwise_model()
    frames = [disc_stack((80 + t, 85 - t), radius=14 - t) for t in range(6)]
    cine = Cine(np.stack(frames), (1.5, 1.5, 8.0), np.eye(4), frame_numbers=list(range(6)))
    reported, scores, likely = [], {}, {}

    def progress(done, total):
        assert total == 6 and done - 1 in scores and done - 1 in likely
        reported.append(done)

    labels = segment_cine(model, cine, progress=progress, slice_scores=scores, rv_likely=likely)
    assert reported == [1, 2, 3, 4, 5, 6]
    assert all((labels[t] > 0).any() for t in range(6))

    class Cancelled(Exception):
        pass

    finished = []
    original = segment.labels_on_part

    def counted(*args):
        finished.append(1)
        return original(*args)

    def cancel_at_two(done, total):
        if done == 2:
            raise Cancelled

    monkeypatch.setattr(segment, "labels_on_part", counted)
    with pytest.raises(Cancelled):
        segment_cine(model, cine, progress=cancel_at_two)
    after = len(finished)
    assert after <= 3  # frames 1 and 2, and at most the one already running beside the network
    time.sleep(0.2)
    assert len(finished) == after  # nothing ran on after the cancel
