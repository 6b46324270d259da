"""The actions that also fit the LV finite-element model (CardiacAtlas): the one place where a file
workflow uses both libraries."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from CardiacMTLLib import actions
from CardiacMTLLib.atomic import claim_folder, record_written, staged_folder, write_json_atomic
from CardiacMTLLib.evaluation.metrics import dice_per_class
from CardiacMTLLib.outputs import write_outputs
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine, write_synthetic_case
from CardiacMTLLib.types import AnalysisResult, Label


def fit_lv(result: AnalysisResult) -> AnalysisResult:
    """Fit the LV finite-element model (CardiacAtlas) to the result's ED and ES segmentation and landmarks.

    Stores the fits in ``result.lv_fit`` (written by :func:`write_outputs` into ``lv_model/``, where
    ``cardiac-atlas build`` finds them) and the time in ``provenance["lv_fit_s"]``.
    """
    from CardiacAtlasLib.fit import fit_analysis

    t0 = time.perf_counter()
    result.lv_fit = fit_analysis(result)
    result.provenance["lv_fit_s"] = round(time.perf_counter() - t0, 3)
    return result


def analyze_path(path, out_dir, fit_lv_model: bool = False, **options) -> AnalysisResult:
    """:func:`CardiacMTLLib.actions.analyze_path`, with the LV model fitted (after any landmark
    corrections) and written into ``lv_model/`` of the same result folder when ``fit_lv_model``."""
    if fit_lv_model:
        options.update(fit=fit_lv, write=write_result_folder)
    return actions.analyze_path(path, out_dir, **options)


def write_result_folder(
    result: AnalysisResult, out_dir: str | Path, overwrite: bool = False, inputs: tuple = ()
) -> Path:
    """:func:`~CardiacMTLLib.outputs.write_outputs`, with the fitted LV model (when there is one) in
    ``lv_model/`` of the same staged folder."""

    def write_lv_model(staging: Path) -> None:
        from CardiacAtlasLib.fit_io import write_fit_folder

        write_fit_folder(
            result.lv_fit,
            staging / "lv_model",
            {"path": str(result.cine.source), "kind": "analyze (segmentation and landmarks)"},
        )

    extra = write_lv_model if result.lv_fit else None
    return write_outputs(result, out_dir, overwrite=overwrite, inputs=inputs, extra=extra)


def run_demo(
    out_dir: str | Path,
    seed: int = 0,
    device: str = "auto",
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    precision: str = "auto",
) -> tuple[AnalysisResult, dict]:
    """``cardiac-mtl demo``: generate the synthetic cine into ``out_dir/input``, analyse it into
    ``out_dir/analysis`` (the network in ``precision``) and compare with its exact ground truth
    (``out_dir/demo_summary.json``)."""
    out = claim_folder(out_dir, overwrite=overwrite)
    case = generate_synthetic_cine(seed=seed)
    with staged_folder(out / "input", overwrite=True) as staging:
        write_synthetic_case(case, staging)
    record_written(out, out / "input")
    result = analyze_path(
        out / "input" / "synthetic_cine.nii.gz",
        out / "analysis",
        height_cm=case.cine.height_cm,
        weight_kg=case.cine.weight_kg,
        device=device,
        progress=progress,
        overwrite=True,
        precision=precision,
    )
    record_written(out, out / "analysis")
    summary = demo_summary(case, result)
    write_json_atomic(summary, out / "demo_summary.json")
    record_written(out, out / "demo_summary.json")
    return result, summary


def demo_summary(case, result: AnalysisResult) -> dict:
    """Dice over all frames and the volumes and EF of a synthetic case, true against measured."""
    scores = dice_per_class(result.labels, case.labels)
    dice = {
        v.short_name: round(scores[int(v)], 4)
        for v in (Label.LV_CAVITY, Label.RV_CAVITY, Label.LV_MYOCARDIUM)
    }
    ed, es = case.ed_index, case.es_index
    true_ef = 100 * (case.lv_volume_ml[ed] - case.lv_volume_ml[es]) / case.lv_volume_ml[ed]
    lv_curve = np.asarray(result.volume_curve_ml["LV"])
    return {
        "dice_vs_truth_all_frames": dice,
        "true": {
            "ED index": int(ed),
            "ES index": int(es),
            "LVEDV (mL)": round(float(case.lv_volume_ml[ed]), 2),
            "LVESV (mL)": round(float(case.lv_volume_ml[es]), 2),
            "LVEF (%)": round(float(true_ef), 2),
        },
        "measured": {
            "ED index": int(result.ed_index),
            "ES index": int(result.es_index),
            "LVEDV (mL)": result.indices["LVEDV (mL)"],
            "LVESV (mL)": result.indices["LVESV (mL)"],
            "LVEF (%)": result.indices["LVEF (%)"],
        },
        "max abs LV volume error over the cycle (mL)": round(
            float(np.max(np.abs(lv_curve - case.lv_volume_ml))), 2
        ),
    }
