"""The LV shape atlas (CardiacAtlasLib): Procrustes, PCA, fit folders, CAP import, associations, CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import REPO_ROOT
from scipy.spatial.transform import Rotation

from CardiacAtlasLib.associate import associate_scores
from CardiacAtlasLib.atlas import Atlas, build_atlas, procrustes_align, rigid_transform
from CardiacAtlasLib.atlas_io import read_atlas, read_fit_folders
from CardiacAtlasLib.cap import read_cap_atlas
from CardiacAtlasLib.fit import fit_analysis
from CardiacAtlasLib.mesh import LVMesh, capped_triangles, grid_faces, read_lv_mesh, write_lv_mesh
from CardiacAtlasLib.synthetic import sample_shapes, synthetic_shape_model, write_fit_folders
from CardiacMTLApps.cli.atlas import main
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

CAP = REPO_ROOT.parent / "shared" / "data" / "cap_lv_atlas_mesa"
CAP_FILES = [CAP / "PCA_ED.mat", CAP / "PCA_ES.mat", CAP / "SurfaceFaces.mat"]
SD_MM = (40.0, 20.0, 10.0, 5.0)


@pytest.fixture(scope="module")
def model():
    return synthetic_shape_model()


@pytest.fixture(scope="module")
def cohort(model):
    shapes, coefficients = sample_shapes(model, 120, sd_mm=SD_MM, seed=3)
    atlas = build_atlas(
        shapes, [f"case_{i:04d}" for i in range(len(shapes))], model.faces_endo, model.faces_epi, model.n_endo
    )
    return shapes, coefficients, atlas


@pytest.fixture
def cap_files():
    if not all(p.is_file() for p in CAP_FILES):
        pytest.skip(f"CAP MESA atlas not found at {CAP} (a fresh clone has no ../shared/data)")
    return CAP_FILES


# ------------------------------------------------------------------------------------------ Procrustes


def test_procrustes_removes_a_known_rotation_and_translation(model):
    shape = model.mean.reshape(-1, 3)
    rotation = Rotation.from_euler("xyz", [30, -50, 110], degrees=True).as_matrix()
    moved = shape @ rotation.T + np.array([12.0, -40.0, 7.5])
    aligned, mean = procrustes_align(np.stack([shape, moved]))
    assert np.abs(aligned[1] - aligned[0]).max() < 1e-8
    assert np.abs(mean - (shape - shape.mean(axis=0))).max() < 1e-8
    found, scale, _, _ = rigid_transform(moved, shape)
    assert scale == 1.0
    assert np.abs(found - rotation).max() < 1e-10  # moved @ found undoes moved = shape @ rotation.T


def test_procrustes_removes_size_only_when_asked(model):
    shape = model.mean.reshape(-1, 3)
    bigger = 1.2 * shape @ Rotation.from_euler("z", 40, degrees=True).as_matrix().T
    rigid, _ = procrustes_align(np.stack([shape, bigger]))
    scaled, mean = procrustes_align(np.stack([shape, bigger]), scaling=True)
    assert np.abs(scaled[1] - scaled[0]).max() < 1e-8
    # the scaled atlas stays in mm: the mean has the inputs' mean centroid size (1.1 x the template's)
    size = np.linalg.norm(shape - shape.mean(axis=0))
    assert np.linalg.norm(mean) == pytest.approx(1.1 * size, rel=1e-6)
    assert np.linalg.norm(rigid[1]) / np.linalg.norm(rigid[0]) == pytest.approx(1.2, rel=1e-9)


# ----------------------------------------------------------------------------------------------- PCA


def test_pca_recovers_the_known_modes_in_variance_order(cohort):
    _, coefficients, atlas = cohort
    sd = atlas.sd_mm_[:4]
    assert np.all(np.diff(atlas.explained_variance_[:5]) < 0)
    assert sd == pytest.approx(SD_MM, rel=0.2)  # 120 cases: sample SDs within 20 %
    assert atlas.sd_mm_[4] < 1.5  # beyond the four modes only the 0.1 mm noise is left
    # the rest is the 0.1 mm noise on each of the D coordinates
    expected = np.sum(np.square(SD_MM)) / (np.sum(np.square(SD_MM)) + 0.1**2 * atlas.mean_.size)
    assert atlas.explained_variance_ratio_[:4].sum() == pytest.approx(expected, abs=0.02)
    for k in range(4):
        r = np.corrcoef(atlas.scores_[:, k], coefficients[:, k])[0, 1]
        assert abs(r) > 0.98, f"mode {k + 1}: scores correlate at r = {r:.3f} with the known coefficients"
    # mode 1 is size and by convention + enlarges the heart
    r_size = np.corrcoef(atlas.scores_[:, 0], coefficients[:, 0])[0, 1]
    assert r_size > 0.98


def test_projection_of_a_moved_case_gives_its_scores(cohort):
    _, _, atlas = cohort
    scores = np.array([55.0, -30.0, 12.0, 4.0])
    shape = atlas.shape(scores)
    rotation = Rotation.from_euler("xyz", [-20, 75, 140], degrees=True).as_matrix()
    moved = shape @ rotation.T + np.array([-3.0, 25.0, 60.0])
    projected = atlas.project(moved)
    assert projected[:4] == pytest.approx(scores, abs=1e-6)
    assert np.abs(projected[4:]).max() < 1e-6


def test_atlas_fits_and_transforms_like_a_scikit_learn_estimator(model):
    shapes, _ = sample_shapes(model, 12, sd_mm=SD_MM, seed=4)
    case_ids = [f"c{i}" for i in range(12)]
    atlas = Atlas(n_modes=5)
    assert atlas.fit(shapes, case_ids, model.faces_endo, model.faces_epi, model.n_endo) is atlas
    assert atlas.components_.shape == (5, atlas.mean_.size) and atlas.scores_.shape == (12, 5)
    assert atlas.components_ @ atlas.components_.T == pytest.approx(np.eye(5), abs=1e-9)
    # the training cases transform to their own scores, however they were moved
    assert atlas.transform(shapes) == pytest.approx(atlas.scores_, abs=1e-6)
    assert atlas.project(shapes[3]) == pytest.approx(atlas.scores_[3], abs=1e-6)
    back = atlas.inverse_transform(atlas.scores_[:2])
    assert back.shape == (2, 2, model.mean.shape[1], 3)
    assert atlas.transform(back) == pytest.approx(atlas.scores_[:2], abs=1e-6)
    assert (
        Atlas(n_modes=50).fit(shapes, case_ids, model.faces_endo, model.faces_epi, model.n_endo).n_modes_
        == 11
    )
    with pytest.raises(CardiacInputError, match="alignment_phase must be None"):
        Atlas(alignment_phase="ED").fit(shapes, case_ids, model.faces_endo, model.faces_epi, model.n_endo)


def test_cavity_volume_of_a_mesh_survives_the_vtk_round_trip(model, tmp_path):
    mesh = LVMesh(model.mean[0], model.faces_endo, model.faces_epi, model.n_endo)
    write_lv_mesh(mesh, tmp_path / "lv.vtk")
    back = read_lv_mesh(tmp_path / "lv.vtk")
    assert back.n_endo == model.n_endo
    assert np.array_equal(back.faces_epi, model.faces_epi)
    assert back.endo_cavity_volume_ml == pytest.approx(mesh.endo_cavity_volume_ml, rel=1e-12)
    assert 100 < mesh.endo_cavity_volume_ml < 160 < mesh.epi_volume_ml


# ------------------------------------------------------------------------------------------ associate


def test_association_auc_is_near_one_for_a_label_made_from_mode_1_and_near_half_for_noise(cohort):
    _, _, atlas = cohort
    mode1 = atlas.scores_[:, 0]
    dilated = np.where(mode1 > np.median(mode1), "dilated", "normal")
    result = associate_scores(atlas.scores_, dilated, "dilated")
    (only,) = result.classes
    assert only.auc > 0.95 and only.ci_low > 0.85
    assert result.n_modes == 12 and result.n_folds == 10  # one mode per 10 cases

    noise = np.random.default_rng(7).choice(["yes", "no"], len(mode1))
    (random_class,) = associate_scores(atlas.scores_, noise, "noise").classes
    assert 0.3 < random_class.auc < 0.7
    assert random_class.ci_low < 0.5 < random_class.ci_high


def test_a_categorical_label_gets_one_auc_per_class(cohort):
    _, _, atlas = cohort
    tertile = np.digitize(atlas.scores_[:, 0], np.quantile(atlas.scores_[:, 0], [1 / 3, 2 / 3]))
    labels = np.array(["small", "medium", "large"])[tertile]
    result = associate_scores(atlas.scores_, labels, "size")
    aucs = {c.label: c.auc for c in result.classes}
    assert set(aucs) == {"small", "medium", "large"}
    assert aucs["small"] > 0.9 and aucs["large"] > 0.9


# ----------------------------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def fit_folders(model, tmp_path_factory):
    shapes, coefficients = sample_shapes(model, 24, sd_mm=SD_MM, seed=11)
    return write_fit_folders(model, shapes, tmp_path_factory.mktemp("fits")), coefficients


def test_build_command_writes_a_complete_atlas_folder(fit_folders, tmp_path, capsys):
    folders, coefficients = fit_folders
    out = tmp_path / "atlas"
    assert main(["build", *map(str, folders), "--out", str(out), "--mesh-modes", "2"]) == 0
    document = json.loads((out / "atlas.json").read_text())
    assert document["alignment"]["scaling"] is False
    assert document["phases"] == ["ED", "ES"] and document["n_cases"] == 24
    atlas = read_atlas(out)
    assert atlas.case_ids_ == [f.name for f in folders]
    assert abs(np.corrcoef(atlas.scores_[:, 0], coefficients[:, 0])[0, 1]) > 0.95
    with open(out / "variance.csv") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[-1]["cumulative_fraction"]) == pytest.approx(1.0, abs=1e-4)
    meshes = sorted(p.name for p in (out / "meshes").iterdir())
    assert len(meshes) == 2 * (1 + 2 * 6)
    plus = read_lv_mesh(out / "meshes" / "mode01_plus3sd_ED.vtk").endo_cavity_volume_ml
    minus = read_lv_mesh(out / "meshes" / "mode01_minus3sd_ED.vtk").endo_cavity_volume_ml
    assert plus > read_lv_mesh(out / "meshes" / "mean_ED.vtk").endo_cavity_volume_ml > minus
    assert (out / "modes.png").stat().st_size > 10_000
    assert "mode 1" in capsys.readouterr().out

    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["case_id", "big"])
        for case, c in zip(atlas.case_ids_, coefficients[:, 0], strict=True):
            writer.writerow([case, int(c > 0)])
    again = [
        "associate",
        str(out),
        "--labels",
        str(labels),
        "--column",
        "big",
        "--out",
        str(tmp_path / "a.csv"),
    ]
    assert main(again) == 0
    with open(tmp_path / "a.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert float(row["auc"]) > 0.9
    # --overwrite replaces the table an earlier associate wrote, never a file of the user's
    assert main([*again, "--overwrite"]) == 0
    notes = tmp_path / "notes.csv"
    notes.write_text("the user's\n")
    assert main([*again[:-1], str(notes), "--overwrite"]) == 2
    assert "did not write it" in capsys.readouterr().err and notes.read_text() == "the user's\n"


def test_build_refuses_a_case_without_correspondence_and_leaves_nothing(fit_folders, model, tmp_path, capsys):
    folders, _ = fit_folders
    odd = tmp_path / "odd_case"
    odd.mkdir()
    half = model.faces_endo[: len(model.faces_endo) // 2]
    for phase in ("ED", "ES"):
        write_lv_mesh(
            LVMesh(model.mean[0], half, model.faces_epi, model.n_endo), odd / f"lv_model_{phase}.vtk"
        )
    out = tmp_path / "atlas"
    assert main(["build", *map(str, folders[:3]), str(odd), "--out", str(out)]) == 2
    message = capsys.readouterr().err
    assert "odd_case/lv_model_ED.vtk" in message and "do not correspond" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd_case"]


def test_build_names_a_missing_model_file(fit_folders, tmp_path, capsys):
    folders, _ = fit_folders
    empty = tmp_path / "empty_case"
    empty.mkdir()
    assert main(["build", str(folders[0]), str(empty), "--out", str(tmp_path / "atlas")]) == 2
    assert "empty_case/lv_model_ED.vtk: LV model file not found" in capsys.readouterr().err
    assert not (tmp_path / "atlas").exists()


def test_associate_names_a_missing_column(cohort, tmp_path, capsys):
    atlas_dir = tmp_path / "atlas"
    atlas_dir.mkdir()
    (atlas_dir / "scores.csv").write_text("case_id,mode_1\na,1\nb,2\n")
    labels = tmp_path / "labels.csv"
    labels.write_text("case_id,diabetes\na,1\nb,0\n")
    assert main(["associate", str(atlas_dir), "--labels", str(labels), "--column", "smoking"]) == 2
    message = capsys.readouterr().err
    assert str(labels) in message and "'smoking'" in message


def test_import_cap_names_a_file_that_is_not_a_cap_atlas(tmp_path, capsys):
    from scipy.io import savemat

    wrong = tmp_path / "PCA_ED.mat"
    savemat(wrong, {"something": np.zeros(3)})
    text = tmp_path / "faces.mat"
    text.write_text("not a MATLAB file")
    assert main(["import-cap", str(wrong), str(wrong), str(text), "--out", str(tmp_path / "cap")]) == 2
    assert "faces.mat: not a readable MATLAB file" in capsys.readouterr().err
    savemat(text, {"Face": {"Endo": np.ones((4, 3)), "Epi": np.full((4, 3), 842.0)}})
    assert main(["import-cap", str(wrong), str(wrong), str(text), "--out", str(tmp_path / "cap")]) == 2
    assert "PCA_ED.mat: expected a MATLAB struct 'PCA_ED'" in capsys.readouterr().err
    assert not (tmp_path / "cap").exists()


# ------------------------------------------------------------------------------------- CAP MESA atlas


def _winding_numbers(triangles: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Generalised winding number of closed ``triangles`` (m, 3, 3) at ``points`` (n, 3): 1 inside, 0 out."""
    a, b, c = (triangles[None, :, i] - points[:, None] for i in range(3))
    la, lb, lc = (np.linalg.norm(v, axis=2) for v in (a, b, c))
    numerator = np.einsum("nmi,nmi->nm", a, np.cross(b, c))
    denominator = (
        la * lb * lc + np.einsum("nmi,nmi->nm", a, b) * lc + np.einsum("nmi,nmi->nm", b, c) * la
        + np.einsum("nmi,nmi->nm", c, a) * lb
    )  # fmt: skip
    return np.abs(np.arctan2(numerator, denominator).sum(axis=1) / (2 * np.pi))


@pytest.mark.data
def test_cap_atlas_layout_gives_an_lv_endocardium_inside_its_epicardium(cap_files):

    atlas = read_cap_atlas(*cap_files)
    assert atlas.source_["coordinate_layout"] == "interleaved"
    lengths = atlas.source_["mean_edge_length_mm"]
    assert lengths["interleaved"] < 7 and lengths["blocked"] > 30
    volumes = {}
    for phase in ("ED", "ES"):
        mesh = atlas.mesh(atlas.shape(), phase)
        volumes[phase] = mesh.endo_cavity_volume_ml
        epi = capped_triangles(mesh.points_mm, mesh.faces_epi)
        endo_points = mesh.points_mm[: mesh.n_endo]
        # leave out the basal ring, which lies in the plane that caps the epicardium
        axis_position = endo_points[:, 0]
        interior = endo_points[axis_position > axis_position.min() + 3.0]
        inside = _winding_numbers(epi, interior) > 0.5
        assert inside.mean() > 0.99, f"{phase}: {100 * (1 - inside.mean()):.1f} % of endo points outside epi"
        assert mesh.epi_volume_ml > volumes[phase] + 80  # a myocardium of at least 80 mL
    assert 80 < volumes["ED"] < 200
    assert 20 < volumes["ES"] < 0.6 * volumes["ED"]


@pytest.mark.data
def test_cap_joint_atlas_reproduces_its_scores_when_projecting_a_case(cap_files, tmp_path):

    atlas = read_cap_atlas(*cap_files)
    assert atlas.phases == ("ED", "ES") and atlas.n_modes_ == 20 and len(atlas.case_ids_) == 1991
    assert 0.5 < atlas.explained_variance_ratio_.sum() < 1.0
    for case in (0, 100, 1990):
        shape = atlas.shape(atlas.scores_[case])
        moved = shape @ Rotation.from_euler("y", 35, degrees=True).as_matrix().T + 20.0
        assert atlas.project(moved) == pytest.approx(atlas.scores_[case], abs=0.2)
    assert main([
        "import-cap", *map(str, cap_files), "--out", str(tmp_path / "cap"), "--phase", "ES", "--mesh-modes", "1",
        "--no-plot",
    ]) == 0  # fmt: skip
    single = read_atlas(tmp_path / "cap")
    assert single.phases == ("ES",) and single.n_modes_ == 10
    assert single.explained_variance_ratio_[0] == pytest.approx(0.4, abs=0.1)


@pytest.mark.data
def test_cap_atlas_vertices_are_in_the_fitted_meshes_order(cap_files):
    """A fitted LV model and the imported CAP atlas share vertex order: vertex i is the same place."""
    from types import SimpleNamespace

    atlas = read_cap_atlas(*cap_files)
    np.testing.assert_array_equal(atlas.faces_endo_, grid_faces(29, 29))
    np.testing.assert_array_equal(atlas.faces_epi_, grid_faces(29, 29, offset=841))
    mean = atlas.mesh(atlas.shape(), "ED")
    assert mean.endo_cavity_volume_ml == pytest.approx(120.4, abs=0.5)  # the published mean, reordered
    # column 0 lies at theta = 0 in CAP's model frame (long axis +x, theta = atan2(z, y)), rows run apex->base
    rows = mean.points_mm[:841].reshape(29, 29, 3)
    assert abs(np.arctan2(rows[14, 0, 2], rows[14, 0, 1])) < np.deg2rad(10)
    assert rows[0, :, 0].mean() > rows[-1, :, 0].mean() + 50  # apex (+x) first, base last
    case = generate_synthetic_cine(seed=2, num_frames=4)
    fits = fit_analysis(
        SimpleNamespace(cine=case.cine, labels=case.labels, ed_index=0, es_index=case.es_index)
    )
    shape = np.concatenate([fits[p].mesh.points_mm for p in atlas.phases])
    scores = atlas.project(shape)
    rotation, scale, source_centre, target_centre = rigid_transform(
        shape[:1682], atlas.mean_.reshape(-1, 3)[:1682], False
    )
    aligned = scale * (shape - source_centre) @ rotation + target_centre
    # what the modes cannot explain, in the atlas frame
    residual = (aligned.reshape(-1) - atlas.mean_ - scores @ atlas.components_).reshape(-1, 3)
    # a generated heart lies within the atlas' span to a few mm; in CAP's own vertex order it missed by ~30 mm
    assert np.linalg.norm(residual, axis=1).mean() < 6.0


def test_build_reads_a_batch_output_folder_and_skips_studies_without_a_fit(model, tmp_path, capsys):
    shapes, _ = sample_shapes(model, 4, sd_mm=SD_MM, seed=5)
    studies = tmp_path / "batch" / "studies"
    for i, shape in enumerate(shapes):
        # two studies keep their fit in lv_model/ (where analyze writes it), two in the study folder itself
        folder = studies / f"study{i}" / ("lv_model" if i % 2 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        for phase, points in zip(("ED", "ES"), shape, strict=True):
            mesh = LVMesh(points, model.faces_endo, model.faces_epi, model.n_endo)
            write_lv_mesh(mesh, folder / f"lv_model_{phase}.vtk")
    (studies / "no_fit_yet").mkdir()
    (studies / "no_fit_yet" / "indices.json").write_text("{}")
    read, case_ids, _ = read_fit_folders([tmp_path / "batch"])
    assert case_ids == ["study0", "study1", "study2", "study3"]
    assert np.allclose(read, shapes)
    assert read_fit_folders([studies / "study0"])[1] == ["study0"]
    assert main(["build", str(tmp_path / "batch"), "--out", str(tmp_path / "atlas"), "--no-plot"]) == 0
    assert read_atlas(tmp_path / "atlas").case_ids_ == case_ids
    empty = tmp_path / "empty_batch" / "studies" / "s1"
    empty.mkdir(parents=True)
    assert main(["build", str(tmp_path / "empty_batch"), "--out", str(tmp_path / "atlas2")]) == 2
    assert "none of its 1 studies has a fitted LV model" in capsys.readouterr().err
