"""The actions that also fit the LV finite-element model (CardiacAtlas): the one place where a file
workflow uses both libraries."""

from __future__ import annotations

import time
from pathlib import Path

from CardiacMTLLib import actions
from CardiacMTLLib.outputs import write_outputs
from CardiacMTLLib.types import AnalysisResult


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
        from CardiacAtlasLib.fit import write_fit_folder

        write_fit_folder(
            result.lv_fit,
            staging / "lv_model",
            {"path": str(result.cine.source), "kind": "analyze (segmentation and landmarks)"},
        )

    extra = write_lv_model if result.lv_fit else None
    return write_outputs(result, out_dir, overwrite=overwrite, inputs=inputs, extra=extra)
