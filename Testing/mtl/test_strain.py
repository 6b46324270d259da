"""Myocardial motion and strain: generated cines with exactly known strain are measured within the bars,
the akinetic segment is found (and no other), and motion without deformation gives no strain."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy import ndimage

from CardiacMTLLib.analysis.motion import area_conserving_shrink, track_myocardium
from CardiacMTLLib.analysis.strain import (
    _level_of_slices,
    aha_segment_map,
    frames_from_reference,
    measure_strain,
    regional_strain_features,
    times_from_reference,
    wall_motion,
)
from CardiacMTLLib.report.text import segment_list, strain_line
from CardiacMTLLib.synthetic.motion import generate_motion_cine
from CardiacMTLLib.types import Cine

SMALL = {"num_frames": 8, "shape": (96, 96, 6), "spacing_mm": (1.6, 1.6, 9.0)}


@pytest.fixture(scope="module")
def normal_case():
    return generate_motion_cine(seed=3, **SMALL)


@pytest.fixture(scope="module")
def infarct_case():
    return generate_motion_cine(seed=4, akinetic_segment=9, **SMALL)


def test_generated_strain_is_realistic_and_exact_where_it_can_be_checked(normal_case, infarct_case):
    es = normal_case.es_index
    assert -24 < normal_case.global_circumferential_pct[es] < -14
    assert 18 < normal_case.global_radial_pct[es] < 35
    assert normal_case.global_circumferential_pct[0] == 0.0
    # an akinetic segment does not move at all
    assert abs(infarct_case.segment_circumferential_pct[9][infarct_case.es_index]) < 1e-9
    assert abs(infarct_case.segment_thickening_pct[9]) < 1e-9


def test_segments_of_generated_heart_are_oriented_as_the_project_orients_them(normal_case):
    measured = aha_segment_map(normal_case.labels[0], normal_case.cine.spacing_mm, normal_case.rv_insertions)
    truth = normal_case.segment_map
    myo = truth > 0
    assert np.mean(measured[myo] == truth[myo]) > 0.97


def test_strain_of_generated_cine_is_recovered_within_the_bars(normal_case):
    result = measure_strain(
        normal_case.cine, normal_case.labels, 0, normal_case.es_index, normal_case.rv_insertions
    )
    assert result.from_curves and len(result.global_circumferential_curve_pct) == SMALL["num_frames"]
    assert abs(result.global_circumferential_pct - normal_case.global_circumferential_pct.min()) <= 1.5
    assert abs(result.global_radial_pct - normal_case.global_radial_pct.max()) <= 3.0
    cs = [
        abs(s.peak_circumferential_pct - normal_case.segment_circumferential_pct[s.segment].min())
        for s in result.segments
    ]
    rs = [abs(s.peak_radial_pct - normal_case.segment_radial_pct[s.segment].max()) for s in result.segments]
    assert np.mean(cs) <= 3.0 and np.mean(rs) <= 6.0
    assert result.akinetic_segments == []
    assert result.time_to_peak_circumferential_ms == pytest.approx(
        normal_case.cine.trigger_times_ms[normal_case.es_index], abs=120
    )


def test_akinetic_segment_is_found_and_only_it(infarct_case):
    result = measure_strain(
        infarct_case.cine, infarct_case.labels, 0, infarct_case.es_index, infarct_case.rv_insertions
    )
    assert result.akinetic_segments == [9]
    assert abs(result.segment(9).peak_circumferential_pct) < 3.0
    assert result.segment(9).thickening_pct < 10.0
    assert regional_strain_features(result)["akinetic_segments"] == 1.0


def test_ed_es_pair_gives_the_ed_to_es_value(normal_case):
    pair = normal_case.cine
    keep = [0, normal_case.es_index]
    cine = Cine(data=pair.data[keep], spacing_mm=pair.spacing_mm, affine=pair.affine, frame_numbers=[1, 5])
    result = measure_strain(cine, normal_case.labels[keep], 0, 1)  # insertion points detected from labels
    assert not result.from_curves and result.frame_numbers == [1, 5]
    assert result.global_circumferential_pct == result.es_circumferential_pct
    assert (
        abs(result.global_circumferential_pct - normal_case.global_circumferential_pct[normal_case.es_index])
        <= 1.5
    )
    rows = result.to_rows()
    assert len(rows) == 17 * 2 and rows[0]["region"] == "global" and rows[1]["circumferential_pct"] < -10
    document = json.loads(json.dumps(result.to_dict()))
    assert document["rule"].startswith("akinetic") and len(document["segments"]) == 16


def _open_into_the_atrium(labels: np.ndarray, k: int, frames) -> None:
    """Take two thirds of slice ``k``'s myocardium away in ``frames``, as a basal slice that the base
    descends through at systole shows the atrium: a cavity whose border is mostly not wall."""
    for t in frames:
        plane = labels[t, k]
        centre = np.argwhere(plane == 3).mean(axis=0)
        r, c = np.nonzero(plane == 2)
        gone = np.abs(np.degrees(np.arctan2(r - centre[0], c - centre[1]))) > 60
        plane[r[gone], c[gone]] = 0


def _basal_slices(case) -> list[int]:
    """The slices of the basal third, as the strain's AHA levels place them, from the base."""
    levels = _level_of_slices(case.labels[0], list(range(case.labels.shape[1])))
    return sorted(k for k, level in levels.items() if level == 0)


def test_a_basal_slice_that_opens_into_the_atrium_at_systole_is_not_followed_there(normal_case):
    """Without the rule its made-up wall gave GRS 37.5 % (truth 25.5 %), basal radial strain up to 72 %
    and a basal thickening of 5 %; the other basal slice still measures the basal segments."""
    es = normal_case.es_index
    basal = _basal_slices(normal_case)[0]
    labels = normal_case.labels.copy()
    _open_into_the_atrium(labels, basal, (es - 1, es, es + 1))
    motion = track_myocardium(normal_case.cine, labels, 0)
    assert not motion.contours[basal].followed[[es - 1, es, es + 1]].any()
    assert motion.contours[basal].followed[[1, es + 2]].all()
    result = measure_strain(normal_case.cine, labels, 0, es, normal_case.rv_insertions, motion=motion)
    assert abs(result.global_circumferential_pct - normal_case.global_circumferential_pct.min()) <= 1.5
    assert abs(result.global_radial_pct - normal_case.global_radial_pct.max()) <= 3.0
    for s in result.segments[:6]:
        assert abs(s.peak_radial_pct - normal_case.segment_radial_pct[s.segment].max()) <= 6.0
        assert abs(s.thickening_pct - normal_case.segment_thickening_pct[s.segment]) <= 10.0
    assert result.akinetic_segments == [] and result.hypokinetic_segments == []


def test_a_segment_not_followed_at_end_systole_has_no_peak_rather_than_one_from_other_frames(normal_case):
    """Both basal slices in the atrium at ES: the basal segments' curves stop around systole, and a peak
    taken from the frames they were followed in is a value of another time of the cycle (segment 1 read
    -34 % here; on the biv-me study such a peak called a basal segment akinetic)."""
    es = normal_case.es_index
    labels = normal_case.labels.copy()
    for k in _basal_slices(normal_case):
        _open_into_the_atrium(labels, k, (es - 1, es, es + 1))
    result = measure_strain(normal_case.cine, labels, 0, es, normal_case.rv_insertions)
    for s in result.segments[:6]:
        assert s.peak_circumferential_pct is None and s.peak_radial_pct is None and s.wall_motion is None
        assert s.thickening_pct is None
        assert s.circumferential_curve_pct[1] is not None and s.circumferential_curve_pct[es] is None
    assert all(s.peak_circumferential_pct is not None for s in result.segments[6:])
    assert result.akinetic_segments == [] and result.hypokinetic_segments == []
    assert abs(result.global_circumferential_pct - normal_case.global_circumferential_pct.min()) <= 1.5
    assert result.unmeasured_segments == [1, 2, 3, 4, 5, 6]
    assert json.loads(json.dumps(result.to_dict()))["unmeasured_segments"] == [1, 2, 3, 4, 5, 6]
    assert strain_line(result).endswith(
        "; segments 1-6 not measured (not followed to ES: no cavity there, or one mostly without wall)"
    )
    assert segment_list([9, 1, 2, 3, 5, 6, 13]) == "1-3, 5, 6, 9, 13"
    result.global_circumferential_curve_pct[0] = None  # a frame without strain: the peak keeps its frame
    curve = [np.nan if v is None else v for v in result.global_circumferential_curve_pct]
    assert f"at frame {result.frame_numbers[int(np.nanargmin(curve))]};" in strain_line(result)


def test_translation_and_rotation_alone_give_no_strain():
    case = generate_motion_cine(
        seed=5, endocardial_shortening=0.0, translation_mm=4.0, twist_deg=8.0, **SMALL
    )
    assert np.abs(case.global_circumferential_pct).max() < 1e-9
    result = measure_strain(case.cine, case.labels, 0, case.es_index, case.rv_insertions)
    assert abs(result.es_circumferential_pct) < 1.0 and abs(result.es_radial_pct) < 2.0
    assert max(abs(s.peak_circumferential_pct) for s in result.segments) < 3.0


def test_warped_ed_myocardium_lands_on_the_es_myocardium(normal_case):
    es = normal_case.es_index
    motion = track_myocardium(normal_case.cine, normal_case.labels, 0, [0, es])
    ed_myo, es_myo = normal_case.labels[0] == 2, normal_case.labels[es] == 2
    warped = motion.warp_reference_mask(ed_myo, es)

    def overlap(a, b):
        return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())

    assert overlap(warped, es_myo) > 0.9 > overlap(ed_myo, es_myo)


def test_the_area_conserving_fit_is_the_least_squares_map_of_both_borders():
    rng = np.random.default_rng(0)
    endo = rng.uniform(15, 35, 200)
    epi = endo + rng.uniform(4, 14, 200)
    endo_es = endo * rng.uniform(0.55, 1.0, 200)
    # borders whose ring keeps its area: the map is exact, and each border's own shrink is the fit
    epi_es = np.sqrt(endo_es**2 + epi**2 - endo**2)
    shrink = area_conserving_shrink(endo, epi, endo_es, epi_es)
    np.testing.assert_allclose(shrink, endo**2 - endo_es**2, rtol=1e-9, atol=1e-6)
    # a ring that grows (tissue brought into the slice): the shrink that fits both borders best in mm,
    # between the endocardium's own and the epicardium's own
    epi_es = np.sqrt(endo_es**2 + (epi**2 - endo**2) * rng.uniform(1.0, 1.5, 200))
    shrink = area_conserving_shrink(endo, epi, endo_es, epi_es)
    low, high = np.minimum(epi**2 - epi_es**2, 0.0) - 1.0, 0.999 * endo**2
    grid = low + np.linspace(0, 1, 40001)[:, np.newaxis] * (high - low)
    cost = (np.sqrt(endo**2 - grid) - endo_es) ** 2 + (np.sqrt(epi**2 - grid) - epi_es) ** 2
    best = grid[np.argmin(cost, axis=0), np.arange(200)]
    np.testing.assert_allclose(shrink, best, atol=float((high - low).max() / 40000))
    assert np.all(shrink <= endo**2 - endo_es**2 + 1e-9) and np.all(shrink >= epi**2 - epi_es**2 - 1e-9)


def test_a_wall_that_grows_in_the_slice_thickens_the_walls_field_and_not_the_area_conserving_one(
    normal_case,
):
    """Through-plane motion brings tissue into the slice at end-systole: a thicker ES wall with the same
    endocardium. The "walls" field carries each border onto its tracked border, so its radial strain is the
    wall's thickening; the default field keeps each ring's area, fitted to both borders, and changes far
    less."""
    es = normal_case.es_index
    labels = normal_case.labels[[0, es]].copy()
    cine = normal_case.cine
    pair = Cine(data=cine.data[[0, es]], spacing_mm=cine.spacing_mm, affine=cine.affine, frame_numbers=[1, 2])
    truth = normal_case.global_radial_pct[es]
    exact = {
        m: measure_strain(pair, labels, 0, 1, normal_case.rv_insertions, method=m)
        for m in ("contours", "walls")
    }
    # on the exact walls the default field is the generator's own map: within half a point
    assert abs(exact["contours"].es_radial_pct - truth) < 0.5
    assert abs(exact["contours"].es_circumferential_pct - normal_case.global_circumferential_pct[es]) < 1.0
    lv = (labels[1] == 2) | (labels[1] == 3)
    grown = ndimage.binary_dilation(lv, np.ones((1, 3, 3), bool), iterations=2) & ~lv & (labels[1] == 0)
    labels[1][grown] = 2
    thick = {
        m: measure_strain(pair, labels, 0, 1, normal_case.rv_insertions, method=m)
        for m in ("contours", "walls")
    }
    gain = {m: thick[m].es_radial_pct - exact[m].es_radial_pct for m in thick}
    assert gain["walls"] > 20.0
    # (a little lower: the epicardium that the added tissue pushes outwards asks for less contraction)
    assert abs(gain["contours"]) < 0.25 * gain["walls"]


def test_wall_motion_rule():
    assert wall_motion(-2.0, -20.0) == "akinetic"
    assert wall_motion(-10.0, -20.0) == "hypokinetic"
    assert wall_motion(-18.0, -20.0) == "normal"
    assert wall_motion(None, -20.0) is None
    # akinetic needs the wall to stay thin too: a segment that thickens is only hypokinetic
    assert wall_motion(-2.0, -20.0, thickening_pct=5.0, mean_thickening_pct=50.0) == "akinetic"
    assert wall_motion(-2.0, -20.0, thickening_pct=30.0, mean_thickening_pct=50.0) == "hypokinetic"
    assert wall_motion(-5.0, -20.0, thickening_pct=11.0, mean_thickening_pct=60.0) == "akinetic"
    # a stretching segment (dyskinetic) is not spared by its magnitude
    assert wall_motion(4.0, -20.0, thickening_pct=-5.0, mean_thickening_pct=50.0) == "akinetic"


def test_regional_features_tell_an_infarct_from_global_hypokinesia(infarct_case):
    dcm = generate_motion_cine(seed=6, hypokinesia=0.4, **SMALL)
    features = {}
    for name, case in (("infarct", infarct_case), ("dcm", dcm)):
        result = measure_strain(case.cine, case.labels, 0, case.es_index, case.rv_insertions)
        features[name] = regional_strain_features(result)
    # the infarct's spread relative to its mean is large, the DCM's small; its weakest segment is still
    assert features["infarct"]["segmental_cs_cv"] > 2 * features["dcm"]["segmental_cs_cv"]
    assert features["infarct"]["weakest_segment_cs_share"] < 0.2 < features["dcm"]["weakest_segment_cs_share"]
    assert features["infarct"]["thickening_cv"] > features["dcm"]["thickening_cv"]
    assert features["dcm"]["GCS"] > 0.6 * features["infarct"]["GCS"]  # less negative: weaker


def test_bad_inputs_are_named(normal_case):
    from CardiacMTLLib.errors import CardiacInputError

    with pytest.raises(CardiacInputError, match="labels must have"):
        measure_strain(normal_case.cine, normal_case.labels[0], 0, 1)
    with pytest.raises(CardiacInputError, match="method"):
        track_myocardium(normal_case.cine, normal_case.labels, 0, method="optical flow")
    with pytest.raises(CardiacInputError, match="AHA segments"):
        generate_motion_cine(akinetic_segment=17)


def test_report_shows_the_strain_row_when_there_is_strain(infarct_case, tmp_path):
    import dataclasses

    import matplotlib.image

    from CardiacMTLLib.pipeline import measure
    from CardiacMTLLib.report.figures import write_report

    result = measure(infarct_case.cine, infarct_case.labels, {"model_id": "truth"}, diagnosis=False)
    assert result.strain is not None and result.strain.akinetic_segments == [9]
    with_strain = matplotlib.image.imread(write_report(result, tmp_path / "with.png"))
    without = matplotlib.image.imread(
        write_report(dataclasses.replace(result, strain=None), tmp_path / "no.png")
    )
    # a second row (curves and three bull's-eyes) below the slices, curves and numbers
    assert with_strain.shape[0] > 1.5 * without.shape[0]
    bottom = with_strain[int(0.62 * with_strain.shape[0]) :, :, :3]
    assert (np.abs(bottom - 1.0).sum(axis=2) > 0.3).mean() > 0.05  # drawn, not blank


def test_times_go_round_the_cycle_from_an_end_diastole_at_the_end():
    data = np.zeros((5, 2, 8, 8), dtype=np.float32)
    frames = [1, 2, 3, 4, 5]
    cine = Cine(data, (1.0, 1.0, 8.0), np.eye(4), frames, trigger_times_ms=[0, 40, 80, 120, 160])
    assert times_from_reference(cine, 4, [4, 0, 1, 2]) == [0.0, 40.0, 80.0, 120.0]
    assert times_from_reference(cine, 0, [0, 2]) == [0.0, 80.0]
    plain = Cine(data, (1.0, 1.0, 8.0), np.eye(4), frames)
    assert times_from_reference(plain, 3, [3, 4, 0]) == [None, None, None]  # no time is made up
    assert frames_from_reference(plain, 3, [3, 4, 0]) == [0, 1, 2]
    assert frames_from_reference(plain, 4, [4, 0, 1, 2]) == [0, 1, 2, 3]
    pair = Cine(data[:2], (1.0, 1.0, 8.0), np.eye(4), [1, 12])  # an ACDC ED/ES pair of frame files
    assert times_from_reference(pair, 0, [0, 1]) == [None, None]
    assert frames_from_reference(pair, 0, [0, 1]) == [0, 11]


def _strain_without_trigger_times(case):
    cine = dataclasses.replace(case.cine, trigger_times_ms=None)
    return measure_strain(cine, case.labels, 0, case.es_index, case.rv_insertions)


def test_without_trigger_times_strain_times_are_frames_not_milliseconds(normal_case, tmp_path):
    from matplotlib.figure import Figure

    from CardiacMTLLib.outputs import write_strain_files
    from CardiacMTLLib.report.figures import draw_strain_row

    timed = measure_strain(
        normal_case.cine, normal_case.labels, 0, normal_case.es_index, normal_case.rv_insertions
    )
    plain = _strain_without_trigger_times(normal_case)
    assert plain.times_ms == [None] * len(plain.frame_numbers)
    assert plain.frames_from_ed == list(range(len(plain.frame_numbers)))
    assert plain.time_to_peak_radial_ms is None and plain.time_to_peak_circumferential_ms is None
    assert all(s.time_to_peak_circumferential_ms is None for s in plain.segments)
    # the same peak, counted in frames; with trigger times in ms as well, at that frame's time
    peak = timed.time_to_peak_circumferential_frames
    assert plain.time_to_peak_circumferential_frames == peak and 0 < peak < len(plain.frame_numbers)
    assert timed.time_to_peak_circumferential_ms == pytest.approx(timed.times_ms[peak])
    assert timed.frames_from_ed == plain.frames_from_ed
    write_strain_files(plain, tmp_path)
    document = json.loads((tmp_path / "strain.json").read_text())
    assert document["time_to_peak_radial_ms"] is None and document["times_ms"][1] is None
    assert document["time_to_peak_radial_frames"] == plain.time_to_peak_radial_frames
    rows = (tmp_path / "strain.csv").read_text().splitlines()
    assert rows[0] == "region,frame,time_ms,frames_from_ed,radial_pct,circumferential_pct"
    assert rows[2].split(",")[2:4] == ["", "1"]  # global, second frame: no time, one frame from ED
    labels = []
    for strain in (plain, timed):
        fig = Figure()
        axes = [fig.add_subplot(1, 4, i + 1) for i in range(4)]
        draw_strain_row(fig, axes, strain)
        labels.append(axes[0].get_xlabel())
    assert labels == ["frames from ED", "time from ED (ms)"]


def test_the_analysis_tracks_the_motion_on_a_thread_and_measures_the_strain_of_measure_strain(
    infarct_case, monkeypatch
):
    """``measure`` tracks the myocardium beside the indices and landmarks; its strain is the one
    ``measure_strain`` gives from the same labels and landmarks."""
    import threading

    import CardiacMTLLib.analysis.strain as strain_module
    from CardiacMTLLib import pipeline

    threads = []
    track = strain_module.track_myocardium

    def recorded(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return track(*args, **kwargs)

    monkeypatch.setattr(strain_module, "track_myocardium", recorded)
    case = infarct_case
    result = pipeline.measure(case.cine, case.labels, {}, diagnosis=False)
    assert len(threads) == 1 and threads[0].startswith("cardiac-mtl-tracking")
    expected = measure_strain(
        case.cine, case.labels, result.ed_index, result.es_index, landmarks=result.landmarks
    )
    got, want = result.strain.to_dict(), expected.to_dict()
    for values in (got, want):  # timings
        values.pop("seconds"), values["extra"].pop("motion_s")
    assert got == want


def test_a_cancel_beside_the_tracking_waits_for_it_and_a_failed_tracking_gives_no_strain(
    normal_case, monkeypatch
):
    """A Cancel at the stage after the indices leaves no tracking thread running; a tracking that fails
    (no wall to follow) gives a result without strain, as before."""
    import threading
    import time

    import CardiacMTLLib.analysis.strain as strain_module
    from CardiacMTLLib import pipeline
    from CardiacMTLLib.errors import CardiacCancelled, CardiacInputError

    started, finished = threading.Event(), threading.Event()

    def slow_failure(*args, **kwargs):
        started.set()
        time.sleep(0.3)
        finished.set()
        raise CardiacInputError("no myocardium to follow")

    def cancel():
        started.wait(5)
        raise CardiacCancelled("cancelled")

    monkeypatch.setattr(strain_module, "track_myocardium", slow_failure)
    case = normal_case
    with pytest.raises(CardiacCancelled):
        pipeline.measure(case.cine, case.labels, {}, diagnosis=False, checkpoint=cancel)
    assert finished.is_set()
    started.clear()
    result = pipeline.measure(case.cine, case.labels, {}, diagnosis=False)
    assert started.is_set() and result.strain is None and result.indices["LVEF (%)"] is not None


@pytest.mark.parametrize("method", ["labels", "images"])
def test_the_demons_methods_kept_for_comparison_recover_the_ed_to_es_strain(normal_case, method):
    """The registration methods the default was chosen against (motion.py) still run and measure: on the
    generated ED/ES pair GCS within 1.5 points and GRS within 8 of the truth (-20.0 / +25.5 %), and their
    settings can be set (more smoothing, a stiffer field, less radial strain)."""
    es = normal_case.es_index
    truth_cs = normal_case.global_circumferential_pct[es]
    truth_rs = normal_case.global_radial_pct[es]
    result = measure_strain(
        normal_case.cine,
        normal_case.labels,
        0,
        es,
        normal_case.rv_insertions,
        method=method,
        frame_indices=[0, es],
    )
    assert result.method == method
    assert abs(result.es_circumferential_pct - truth_cs) <= 1.5
    assert abs(result.es_radial_pct - truth_rs) <= 8.0
    stiff = track_myocardium(
        normal_case.cine, normal_case.labels, 0, [0, es], method=method, smoothing_px=6.0
    )
    stiffer = measure_strain(
        normal_case.cine, normal_case.labels, 0, es, normal_case.rv_insertions, motion=stiff
    )
    assert abs(stiffer.es_radial_pct) < abs(result.es_radial_pct)
