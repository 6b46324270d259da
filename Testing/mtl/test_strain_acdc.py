"""Strain on real ACDC cines (skipped without ../shared/data): healthy hearts read inside the published
feature-tracking range, a dilated cardiomyopathy far below it, and the segmented wall's own thickening,
which the field that carries both borders reports as radial strain, is far above it."""

from __future__ import annotations

import numpy as np
import pytest

from CardiacMTLLib.analysis.strain import measure_strain
from CardiacMTLLib.io.cine import read_cine
from CardiacMTLLib.models.registry import load_model
from CardiacMTLLib.pipeline import analyze
from CardiacMTLLib.types import Label


@pytest.fixture(scope="module")
def analysed():
    """The shipped model's analysis of a patient, made once per patient for the whole module."""
    model, done = load_model(device="cpu"), {}

    def analysis(folder):
        if folder not in done:
            cine = read_cine(folder)
            done[folder] = (cine, analyze(cine, model=model, diagnosis=False))
        return done[folder]

    return analysis


def _strain(acdc_dir, patient: str, analysed, method: str = "contours"):
    cine, result = analysed(acdc_dir / patient)
    ed, es = result.ed_index, result.es_index
    strain = measure_strain(cine, result.labels, ed, es, result.landmarks, method=method)
    return strain, result.labels[ed], result.labels[es]


@pytest.mark.parametrize("patient", ["patient061", "patient062", "patient063"])
def test_healthy_hearts_read_inside_the_feature_tracking_range(acdc_dir, analysed, patient):
    strain, ed, es = _strain(acdc_dir, patient, analysed)
    assert -28.0 <= strain.es_circumferential_pct <= -15.0
    assert 20.0 <= strain.es_radial_pct <= 45.0
    # the segmented wall grows in the slice from ED to ES (tissue brought in by longitudinal shortening)
    myocardium = Label.LV_MYOCARDIUM
    assert np.sum(es == myocardium) > 1.1 * np.sum(ed == myocardium)


def test_the_walls_field_reads_the_thickening_as_radial_strain(acdc_dir, analysed):
    walls, _, _ = _strain(acdc_dir, "patient061", analysed, method="walls")
    default, _, _ = _strain(acdc_dir, "patient061", analysed)
    assert walls.es_radial_pct > 50.0 > 45.0 >= default.es_radial_pct
    assert abs(walls.es_circumferential_pct - default.es_circumferential_pct) < 3.0


@pytest.mark.parametrize("patient", ["patient001", "patient002"])
def test_a_dilated_cardiomyopathy_strains_far_less(acdc_dir, analysed, patient):
    strain, _, _ = _strain(acdc_dir, patient, analysed)
    assert -12.0 <= strain.es_circumferential_pct <= -3.0
    assert 3.0 <= strain.es_radial_pct <= 20.0


def test_the_basal_slices_of_the_bivme_study_in_the_atrium_at_systole_give_no_strain(bivme_dicom_dir):
    """A whole-cycle study of another vendor whose two basal slices (17.7 mm apart) show the atrium at
    systole: followed there, their made-up walls gave GRS 64 %, basal radial strain 182 % and basal
    thickening 184 %. They drop out of the frames they are open in, and the basal segments without wall
    at ES are reported as unmeasured, not as peaks from other frames (which called one akinetic)."""
    cine = read_cine(bivme_dicom_dir)
    result = analyze(cine, model=load_model(device="cpu"), diagnosis=False)
    strain = result.strain
    assert strain is not None and strain.from_curves
    assert 20.0 <= strain.global_radial_pct <= 45.0 and -28.0 <= strain.global_circumferential_pct <= -15.0
    measured = [s for s in strain.segments if s.peak_radial_pct is not None]
    assert len(measured) >= 8 and max(s.peak_radial_pct for s in measured) < 100.0
    assert all(s.thickening_pct is None or s.thickening_pct < 150.0 for s in strain.segments)
    assert strain.unmeasured_segments and set(strain.unmeasured_segments) <= set(range(1, 7))
    assert strain.akinetic_segments == []
    # the global curve is smooth through systole: no frame jumps by more than a third of the peak
    curve = np.array([np.nan if v is None else v for v in strain.global_radial_curve_pct])
    assert np.nanmax(np.abs(np.diff(curve))) < strain.global_radial_pct / 3
