"""Analyse a cohort with the LV model fit, then build its atlas from the batch-shaped output: two commands."""

from __future__ import annotations

import csv

import pytest

from CardiacAtlasLib.atlas_io import expand_fit_folders
from CardiacMTLApps.cli.atlas import main as atlas_main
from CardiacMTLApps.workflows import fit_lv, write_result_folder
from CardiacMTLLib.models.registry import load_model
from CardiacMTLLib.pipeline import analyze
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine


@pytest.mark.slow
def test_analyze_with_lv_fit_feeds_cardiac_atlas_build(tmp_path):
    model = load_model(device="cpu")
    out = tmp_path / "cohort"
    for seed in range(3):
        cine = generate_synthetic_cine(seed=seed, num_frames=6, shape=(128, 128, 8)).cine
        result = fit_lv(analyze(cine, model=model))
        assert set(result.lv_fit) >= {"ED", "ES"} and result.provenance["lv_fit_s"] > 0
        write_result_folder(result, out / "studies" / f"synth{seed}")
        assert (out / "studies" / f"synth{seed}" / "lv_model" / "fit.json").is_file()
    (out / "studies" / "unfitted").mkdir()  # a study without a model is skipped, not an error
    cases, skipped = expand_fit_folders([out])
    assert [c for c, _ in cases] == ["synth0", "synth1", "synth2"] and skipped == ["unfitted"]
    assert atlas_main(["build", str(out), "--out", str(tmp_path / "atlas"), "--no-plot"]) == 0
    with open(tmp_path / "atlas" / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
