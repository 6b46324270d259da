"""LV model fitting (CardiacAtlasLib.fit, contours, guidepoints, fit_io, lv_template, io.guidepoints): known
shapes, known shifts, files, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SHARED_DATA

from CardiacAtlasLib.contours import contours_from_labels
from CardiacAtlasLib.fit import FitOptions, fit_analysis, fit_contours, fit_labels
from CardiacAtlasLib.guidepoints import contours_from_guidepoints
from CardiacAtlasLib.lv_template import MU_MAX, HermiteGrid, Pose, Surface
from CardiacAtlasLib.mesh import read_lv_mesh
from CardiacMTLApps.cli.atlas import main
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.guidepoints import read_guidepoint_folder, read_slice_info
from CardiacMTLLib.io.nifti import write_label_map
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

BIVME_GP = SHARED_DATA / "bivme_patient1" / "guidepoints"
PHASE_KEYS = {
    "residual_mean_mm", "residual_max_mm", "slice_shifts_mm", "lv_cavity_volume_ml", "myocardial_mass_g",
    "segmentation_lv_volume_ml", "pose", "fit_seconds",
}  # fmt: skip


def generated(shift_mm: float, seed: int = 1):
    return generate_synthetic_cine(
        seed=seed, num_frames=2, shape=(96, 96, 8), spacing_mm=(2.0, 2.0, 8.0),
        breath_hold_shift_mm=shift_mm, subslices=1, noise_std=0.0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def still_case():
    return generated(0.0)


@pytest.fixture(scope="module")
def shifted_case():
    return generated(8.0)


# -------------------------------------------------------------------------------------------- template


def test_a_constant_lambda_template_is_a_prolate_spheroid_cut_at_the_base_plane():
    pose = Pose.from_landmarks([0.0, 0.0, 0.0], [90.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    grid = HermiteGrid(4, 8)
    params = np.zeros(grid.n_params)
    params[0] = 0.8
    params[3::4] = 0.8
    points = Surface(grid, params, pose).sample()
    x = points[:, 0] - pose.origin_mm[0]
    radius = np.hypot(points[:, 1], points[:, 2])
    d = pose.focal_mm
    # on the spheroid with semi-axes d cosh 0.8 (long) and d sinh 0.8 (short)
    ellipse = (x / (d * np.cosh(0.8))) ** 2 + (radius / (d * np.sinh(0.8))) ** 2
    assert np.abs(ellipse - 1).max() < 1e-9
    assert np.abs(points[-29:, 0]).max() < 1e-4  # the last row lies on the base plane (x = 0 here)
    assert np.abs(points[:29] - points[0]).max() < 1e-9  # the first row is the apex, one point
    assert pose.mu_max == pytest.approx(MU_MAX)


def test_least_squares_reproduces_a_spheroid_sampled_at_scattered_points():
    pose = Pose.from_landmarks([5.0, -3.0, 2.0], [5.0, -3.0, 92.0], [1.0, 0.0, 0.0])
    rng = np.random.default_rng(0)
    mu = rng.uniform(0.2, 2.0, 400)
    theta = rng.uniform(0, 2 * np.pi, 400)
    points = pose.to_cartesian(0.7, mu, theta)
    from CardiacAtlasLib.fit import _solve_surface

    surface = _solve_surface(pose, points, np.ones(len(points)), FitOptions(), 1.0)
    assert np.abs(surface.lam(mu, theta) - 0.7).max() < 1e-4


# ------------------------------------------------------------------------------- generated label maps


def test_model_volumes_match_the_generated_labels_and_the_residual_is_small(still_case):
    case = still_case
    for t in (case.ed_index, case.es_index):
        result = fit_labels(case.labels[t], case.cine.affine, frame=t, spacing_mm=case.cine.spacing_mm)
        s = result.summary
        assert s["segmentation_lv_volume_ml"] == pytest.approx(case.lv_volume_ml[t], rel=1e-6)
        assert s["lv_cavity_volume_ml"] == pytest.approx(case.lv_volume_ml[t], rel=0.04)
        myo_g = case.myo_volume_ml[t] * 1.05
        assert s["myocardial_mass_g"] == pytest.approx(myo_g, rel=0.12)
        assert s["residual_mean_mm"] < 0.8
        assert max(r["magnitude_mm"] for r in s["slice_shifts_mm"]) < 1.5  # nothing to correct
        assert "no mitral valve points" in s["pose"]["base"] and "segmentation" in s["pose"]["septum"]
        assert {"base", "apex", "septum"} <= set(s["pose"]["derived_from_segmentation"])


def test_known_breath_hold_shifts_of_up_to_8_mm_are_recovered_within_1_mm(shifted_case):
    case = shifted_case
    truth = case.slice_shifts_mm
    assert np.linalg.norm(truth, axis=1).max() > 6.0
    result = fit_labels(case.labels[0], case.cine.affine, spacing_mm=case.cine.spacing_mm)
    table = result.summary["slice_shifts_mm"]
    slices = [row["slice"] for row in table]
    # the fit reports the correction (minus the displacement); a shift common to all slices is a move of
    # the heart, not a breath-hold difference, so both sides are compared without their mean
    found = -np.array([row["in_plane_row_col_mm"] for row in table])
    expected = truth[slices]
    error = np.linalg.norm((found - found.mean(axis=0)) - (expected - expected.mean(axis=0)), axis=1)
    assert error.max() <= 1.0, f"per-slice shift errors {np.round(error, 2)} mm"
    without = fit_labels(
        case.labels[0],
        case.cine.affine,
        spacing_mm=case.cine.spacing_mm,
        options=FitOptions(shift_iterations=0),
    )
    assert result.summary["residual_mean_mm"] < 0.6 * without.summary["residual_mean_mm"]


def test_every_fit_has_the_same_mesh_topology_with_column_0_at_the_septum(still_case, shifted_case):
    a = fit_labels(still_case.labels[0], still_case.cine.affine, spacing_mm=still_case.cine.spacing_mm)
    b = fit_labels(shifted_case.labels[1], shifted_case.cine.affine, spacing_mm=shifted_case.cine.spacing_mm)
    for result in (a, b):
        assert result.mesh.points_mm.shape == (1682, 3) and result.mesh.n_endo == 841
    assert np.array_equal(a.mesh.faces_endo, b.mesh.faces_endo)
    assert np.array_equal(a.mesh.faces_epi, b.mesh.faces_epi)
    # the first column faces the RV: nearer the RV cavity's centre than the opposite column
    labels, affine = still_case.labels[0], still_case.cine.affine
    rv = np.argwhere(labels == 1).mean(axis=0)  # (slice, row, col)
    rv_mm = (affine @ np.array([rv[2], rv[1], rv[0], 1.0]))[:3]
    grid = a.mesh.points_mm[841:].reshape(29, 29, 3)
    assert np.linalg.norm(grid[14, 0] - rv_mm) < np.linalg.norm(grid[14, 14] - rv_mm)


def test_fit_analysis_takes_an_analysis_result_without_files(still_case):
    from types import SimpleNamespace

    result = SimpleNamespace(cine=still_case.cine, labels=still_case.labels, ed_index=0, es_index=1)
    fits = fit_analysis(result)
    assert set(fits) == {"ED", "ES"}
    assert fits["ED"].summary["frame"] == 0 and fits["ES"].summary["frame"] == 1
    assert fits["ED"].summary["lv_cavity_volume_ml"] > fits["ES"].summary["lv_cavity_volume_ml"]
    assert isinstance(fits["ED"].mesh.points_mm, np.ndarray)


def test_a_fit_asked_to_stop_stops_between_frames(still_case):
    from types import SimpleNamespace

    from CardiacMTLLib.errors import CardiacCancelled

    result = SimpleNamespace(cine=still_case.cine, labels=still_case.labels, ed_index=0, es_index=1)
    asked = []

    def stop_after_first_frame() -> bool:
        asked.append(True)
        return len(asked) > 1

    with pytest.raises(CardiacCancelled, match="stopped on request"):
        fit_analysis(result, should_stop=stop_after_first_frame)
    assert len(asked) == 2  # asked before ED (go on) and before ES (stop)


# ---------------------------------------------------------------------------------- files and the CLI


def write_analysis_folder(case, folder, landmarks=None):
    (folder / "segmentation").mkdir(parents=True)
    write_label_map(
        case.labels, case.cine.affine, folder / "segmentation" / "cine_seg.nii.gz", case.cine.spacing_mm
    )
    document = {
        "indices": {"ED frame": 0, "ES frame": 1},
        "volume_curve_ml": {"frames": [0, 1]},
        "segmentation_files": ["segmentation/cine_seg.nii.gz"],
    }
    (folder / "indices.json").write_text(json.dumps(document))
    if landmarks is not None:
        (folder / "landmarks.json").write_text(json.dumps(landmarks))
    return folder


def test_fit_command_on_an_analysis_folder_writes_models_and_fit_json(still_case, tmp_path, capsys):
    case = still_case
    # mitral valve hinge points 4 mm above the basal slice's centre, on the LV centre line
    centre = np.argwhere(case.labels[0, 0] == 3).mean(axis=0)
    hinges = [
        {"label": name, "frame": 0, "slice": None, "ijk": [centre[1] + dc, centre[0], -0.5]}
        for name, dc in (("MV_HINGE_1", -10.0), ("MV_HINGE_2", 10.0))
    ]
    folder = write_analysis_folder(case, tmp_path / "analysis", landmarks=hinges)
    out = tmp_path / "fit"
    assert main(["fit", str(folder), "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "fit.json",
        "lv_model_ED.vtk",
        "lv_model_ES.vtk",
    ]
    document = json.loads((out / "fit.json").read_text())
    for phase in ("ED", "ES"):
        assert PHASE_KEYS <= set(document[phase])
        assert isinstance(document[phase]["residual_mean_mm"], float)
        for row in document[phase]["slice_shifts_mm"]:
            assert set(row) == {"slice", "shift_mm", "in_plane_row_col_mm", "magnitude_mm"}
        assert "mitral valve hinge landmarks" in document[phase]["pose"]["base"]
        assert "base" not in document[phase]["pose"]["derived_from_segmentation"]
    assert document["ED"]["segmentation_lv_volume_ml"] == pytest.approx(case.lv_volume_ml[0], rel=1e-3)
    assert document["input"]["kind"].startswith("analyze output")
    mesh = read_lv_mesh(out / "lv_model_ED.vtk")
    assert mesh.endo_cavity_volume_ml == pytest.approx(document["ED"]["lv_cavity_volume_ml"], abs=1e-3)
    assert "ED (frame 0)" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def write_guidepoint_folder(folder, semi_axes_by_phase, bad_line: bool = False):
    """A CAP-style folder of a truncated ellipsoid LV (long axis along -z), one file per phase."""
    folder.mkdir()
    sax_z = [-10.0, -20.0, -30.0, -40.0, -50.0, -60.0]
    lines = []
    for n, z in enumerate(sax_z, start=1):
        lines.append(f"img{n}.dcm\tsliceID: \t{n}\tImagePositionPatient\t-100 -100 {z}\t"
                     "ImageOrientationPatient\t1 0 0 0 1 0\tPixelSpacing\t1.5 1.5")  # fmt: skip
    lines.append("lax.dcm\tsliceID: \t7\tImagePositionPatient\t-100 0 50\tImageOrientationPatient\t1 0 0 0 0 -1\t"
                 "PixelSpacing\t1.5 1.5")  # fmt: skip
    (folder / "SliceInfoFile.txt").write_text("\n".join(lines) + "\n")
    for phase, (long_endo, short_endo, wall) in enumerate(semi_axes_by_phase):
        rows = ["x\ty\tz\tcontour type\tframeID\tweight\ttime frame"]
        for surface, (a, b) in (
            ("ENDOCARDIAL", (long_endo, short_endo)),
            ("EPICARDIAL", (long_endo + wall, short_endo + wall)),
        ):
            for n, z in enumerate(sax_z, start=1):
                depth = -z  # mm below the base plane z = 0
                if depth >= a:
                    continue
                r = b * np.sqrt(1 - (depth / a) ** 2)
                for angle in np.linspace(0, 2 * np.pi, 40, endpoint=False):
                    rows.append(
                        f"{r * np.cos(angle):.4f}\t{r * np.sin(angle):.4f}\t{z:.4f}\tSAX_LV_{surface}\t{n}\t1.0\t{phase}"
                    )
            for t in np.linspace(0.02, np.pi - 0.02, 60):
                x, depth = b * np.cos(t), a * np.sin(t)
                rows.append(f"{x:.4f}\t0.0\t{-depth:.4f}\tLAX_LV_{surface}\t7\t1.0\t{phase}")
        rows.append(f"{-short_endo:.4f}\t0.0\t0.0\tMITRAL_VALVE\t7\t1.0\t{phase}")
        rows.append(f"{short_endo:.4f}\t0.0\t0.0\tMITRAL_VALVE\t7\t1.0\t{phase}")
        rows.append(f"0.0\t0.0\t{-(long_endo + wall):.4f}\tAPEX_POINT\t7\t1.0\t{phase}")
        for n in (2, 3):
            for angle in (np.pi / 2 + 0.6, np.pi / 2 - 0.6):
                r = short_endo + wall
                rows.append(
                    f"{r * np.cos(angle):.4f}\t{r * np.sin(angle):.4f}\t{sax_z[n - 1]:.4f}\tRV_INSERT\t{n}\t1.0\t{phase}"
                )
        if bad_line:
            rows.insert(3, "1.0\t2.0\tnot-a-number\tSAX_LV_ENDOCARDIAL\t1\t1.0\t0")
        (folder / f"GPFile_{phase:03d}.txt").write_text("\n".join(rows) + "\n")
    return folder


def truncated_ellipsoid_ml(a: float, b: float) -> float:
    """Half a prolate ellipsoid (long semi-axis a, short b), cut at its equator."""
    return 2.0 / 3.0 * np.pi * a * b * b / 1000.0


def test_fit_command_on_a_guidepoint_folder_finds_ed_and_es_and_the_shapes(tmp_path):
    phases = [(60.0, 22.0, 9.0), (70.0, 27.0, 8.0), (52.0, 16.0, 11.0)]  # phase 1 is ED, phase 2 ES
    folder = write_guidepoint_folder(tmp_path / "gp", phases)
    out = tmp_path / "fit"
    assert main(["fit", str(folder), "--out", str(out), "--quiet"]) == 0
    document = json.loads((out / "fit.json").read_text())
    assert document["ED"]["frame"] == 1 and document["ES"]["frame"] == 2
    for key, (a, b, _) in (("ED", phases[1]), ("ES", phases[2])):
        s = document[key]
        assert s["residual_mean_mm"] < 0.5 and s["residual_max_mm"] < 2.5
        assert s["lv_cavity_volume_ml"] == pytest.approx(truncated_ellipsoid_ml(a, b), rel=0.03)
        assert s["segmentation_lv_volume_ml"] is None
        assert s["pose"]["base"].startswith("MITRAL_VALVE") and s["pose"]["septum"].startswith("RV_INSERT")
        assert s["pose"]["septal_axis"] == pytest.approx([0.0, 1.0, 0.0], abs=0.02)
        assert all(row["magnitude_mm"] < 0.5 for row in s["slice_shifts_mm"])  # LAX data anchor; no shifts
    assert document["ED"]["coordinates"].startswith("patient mm")


def test_guidepoint_folder_is_read_once_for_every_phase_with_unit_image_axes(tmp_path):
    folder = write_guidepoint_folder(tmp_path / "gp", [(60.0, 22.0, 9.0), (52.0, 16.0, 11.0)])
    images, phases = read_guidepoint_folder(folder)
    assert sorted(images) == [1, 2, 3, 4, 5, 6, 7] and sorted(phases) == [0, 1]
    lax = images[7]
    assert lax.image_file == "lax.dcm"
    assert lax.position_mm == pytest.approx([-100.0, 0.0, 50.0])
    assert lax.normal == pytest.approx([0.0, 1.0, 0.0])  # (1, 0, 0) x (0, 0, -1)
    points = phases[0]
    assert len(points.points_mm) == len(points.contour_types) == len(points.frame_ids) == len(points.weights)
    mitral = points.points_mm[points.of_type("MITRAL_VALVE")]
    np.testing.assert_allclose(mitral, [[-22.0, 0.0, 0.0], [22.0, 0.0, 0.0]], atol=1e-9)
    assert set(points.frame_ids[points.of_type("SAX_LV_ENDOCARDIAL")]) <= {1, 2, 3, 4, 5, 6}
    (folder / "SliceInfoFile.txt").write_text(
        "\n".join(
            line for line in (folder / "SliceInfoFile.txt").read_text().splitlines() if "lax" not in line
        )
    )
    with pytest.raises(CardiacInputError, match=r"GPFile_000.txt: frame ids \[7\] are not in SliceInfoFile"):
        read_guidepoint_folder(folder)


def test_guidepoint_slices_shifted_in_plane_are_moved_back(tmp_path):
    folder = write_guidepoint_folder(tmp_path / "gp", [(60.0, 22.0, 9.0)])
    planes = read_slice_info(folder / "SliceInfoFile.txt")
    data = contours_from_guidepoints(folder / "GPFile_000.txt", planes)
    shifts = {1: [3.0, -2.0, 0.0], 3: [-4.0, 1.0, 0.0], 5: [0.0, 5.0, 0.0]}
    for i, plane in enumerate(data.planes):
        if plane.index in shifts:
            data.points_mm[data.plane == i] += shifts[plane.index]
    result = fit_contours(data)
    found = {row["slice"]: np.array(row["shift_mm"]) for row in result.summary["slice_shifts_mm"]}
    for index, shift in shifts.items():
        assert np.linalg.norm(found[index] + shift) < 0.5, (index, found[index])
    assert result.summary["residual_mean_mm"] < 0.5


def test_bad_inputs_are_named(tmp_path, capsys):
    folder = write_guidepoint_folder(tmp_path / "gp", [(60.0, 22.0, 9.0)], bad_line=True)
    assert main(["fit", str(folder), "--out", str(tmp_path / "fit")]) == 2
    message = capsys.readouterr().err
    assert "GPFile_000.txt, line 4" in message and "not-a-number" in message
    assert not (tmp_path / "fit").exists()

    analysis = tmp_path / "analysis"
    (analysis / "segmentation").mkdir(parents=True)
    (analysis / "indices.json").write_text(json.dumps({
        "indices": {"ED frame": 0, "ES frame": 1}, "volume_curve_ml": {"frames": [0, 1]},
        "segmentation_files": ["segmentation/missing_seg.nii.gz"],
    }))  # fmt: skip
    assert main(["fit", str(analysis), "--out", str(tmp_path / "fit")]) == 2
    assert "missing_seg.nii.gz" in capsys.readouterr().err

    assert main(["fit", str(tmp_path), "--out", str(tmp_path / "fit")]) == 2
    assert "neither an analyze output folder" in capsys.readouterr().err
    with pytest.raises(CardiacInputError, match="no LV cavity or myocardium"):
        contours_from_labels(np.zeros((4, 20, 20), np.uint8), np.eye(4))


# ---------------------------------------------------------------------------------------- real data


@pytest.mark.data
def test_bivme_guide_points_fit_within_1_mm_at_end_diastole(tmp_path):
    if not BIVME_GP.is_dir():
        pytest.skip(f"biv-me guide points not found at {BIVME_GP}")
    planes = read_slice_info(BIVME_GP / "SliceInfoFile.txt")
    # phase 24 has the largest short-axis endocardial area (the fit command's ED); phase 0 is its neighbour
    for phase in (24, 0):
        result = fit_contours(contours_from_guidepoints(BIVME_GP / f"GPFile_{phase:03d}.txt", planes))
        s = result.summary
        assert s["residual_sax_mean_mm"] <= 1.0, s
        assert s["residual_sax_max_mm"] < 5.0
        assert 150 < s["lv_cavity_volume_ml"] < 220 and 100 < s["myocardial_mass_g"] < 160
        assert s["pose"]["apex"].startswith("APEX_POINT")
