"""One study as a GUI drives it: a cine loaded into the scene, analysed in the background, its result shown
as nodes and exported. Qt-free: the Slicer module's logic and the browser app hold a :class:`Study`, so a
Load, a Segment & diagnose and an Export do the same in both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from CardiacMTLLib.errors import CardiacError
from CardiacMTLLib.io.cine import checked_patient, read_cine
from CardiacMTLLib.io.dicom_export import source_files, write_dicom_exports
from CardiacMTLLib.outputs import export_folder, write_outputs
from CardiacMTLLib.pipeline import analyze
from CardiacMTLLib.scene.cardiac import CardiacScene, cine_from_sequence
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine
from CardiacMTLLib.tasks import BackgroundTask
from CardiacMTLLib.types import AnalysisResult, Cine

DEMO_NAME = "synthetic cine"


class Study(CardiacScene):
    """A :class:`CardiacScene` with the actions of a panel: load, analyse in the background, export."""

    def load_file(
        self,
        path: str | Path,
        height_cm: float | None = None,
        weight_kg: float | None = None,
        all_frames: bool = False,
    ):
        """Read a cine (ACDC patient folder, NIfTI 3D/4D, DICOM series or study folder) and show it as a
        sequence; a file that is not NIfTI stands for its folder (a file dialog picks a file of the patient or
        series), and for the study folder above it when its series holds a single slice position (scanners
        often write a short-axis stack as one series per slice). ``all_frames``: an ACDC patient folder's
        whole cine (its ``_4d.nii.gz``), not only its ED and ES frame files."""
        path = Path(path)
        picked_file = path.is_file() and ".nii" not in path.suffixes
        path = path.parent if picked_file else path
        cine = read_cine(path, height_cm=height_cm, weight_kg=weight_kg, all_frames=all_frames)
        if picked_file and cine.num_slices == 1 and cine.extra.get("dicom_files"):
            try:
                study = read_cine(path.parent, height_cm=height_cm, weight_kg=weight_kg)
            except CardiacError:
                study = None  # not a study folder: the series as it is (the analysis says what it lacks)
            if study is not None and study.num_slices > 1:
                cine, path = study, path.parent
        return self.load_cine(cine, name=Path(str(path)).name.split(".")[0] or "cine")

    def load_demo(self, seed: int = 0, **generator_options):
        """The generated demo cine, whose ground truth is known (nothing is downloaded)."""
        return self.load_cine(generate_synthetic_cine(seed=seed, **generator_options).cine, name=DEMO_NAME)

    def cine_for(
        self,
        sequence_node,
        height_cm: float | None = None,
        weight_kg: float | None = None,
        sex: str | None = None,
    ) -> Cine:
        """The cine to analyse for ``sequence_node``: the one loaded here (with its file's frame numbers and
        patient data), else one read from the nodes (and loaded); a height, weight or sex (``"M"``/``"F"``)
        given replaces the input's, on a copy; one no person has is an error."""
        height_cm, weight_kg, _ = checked_patient(height_cm, weight_kg, None)
        if self.cine_nodes is None or self.cine_nodes.sequence is not sequence_node:
            self.load_cine(cine_from_sequence(sequence_node), name=sequence_node.GetName())
        return dataclasses.replace(
            self.cine,
            height_cm=height_cm or self.cine.height_cm,
            weight_kg=weight_kg or self.cine.weight_kg,
            sex=sex if sex in ("M", "F") else self.cine.sex,
        )

    def start_analysis(
        self,
        cine: Cine | None = None,
        device: str = "auto",
        load_models: Callable[[], tuple] | None = None,
    ) -> BackgroundTask[AnalysisResult]:
        """``pipeline.analyze`` of ``cine`` (default: the loaded one) on a started background task.

        ``load_models()`` returns ``(model, classifier)`` and is called inside the task, so models loaded
        once (or still loading) do not block the caller; without it the shipped model is loaded on
        ``device``. A cancel before the first frame stops the task before the network runs.
        """
        return self.analysis_task(cine, device, load_models).start()

    def analysis_task(
        self,
        cine: Cine | None = None,
        device: str = "auto",
        load_models: Callable[[], tuple] | None = None,
        low_priority: bool = False,
    ) -> BackgroundTask[AnalysisResult]:
        """The background task of :meth:`start_analysis`, not started; ``low_priority`` runs it at the
        lowest CPU priority, so the thread that serves the panel (a browser's sliders) answers first."""
        cine = cine if cine is not None else self.cine

        def work(progress) -> AnalysisResult:
            progress(0, cine.num_frames)
            model, classifier = load_models() if load_models is not None else (None, None)
            progress(0, cine.num_frames)
            return analyze(cine, model=model, device=device, progress=progress, classifier=classifier)

        return BackgroundTask(work, name="analysis", low_priority=low_priority)

    def export(self, parent: str | Path, save_node: Callable[[object, str], object] | None = None) -> Path:
        """The shown result's folder (as ``cardiac-mtl analyze`` writes it) in a folder named after the case
        inside ``parent``; an earlier export of the case is replaced, nothing else is touched. With
        ``save_node(node, path)`` (Slicer's ``slicer.util.saveNode``) each frame's landmark markups are
        saved beside it as ``landmarks_frame<N>.mrk.json``."""
        result = self.result
        if result is None:
            raise CardiacError("nothing to export: run Segment & diagnose first")
        frames = result.cine.frame_numbers

        def save_markups(staging: Path) -> None:
            for frame, node in self.nodes.landmarks.items():
                save_node(node, str(staging / f"landmarks_frame{frames[frame]}.mrk.json"))

        return write_outputs(
            result,
            export_folder(result, parent),
            overwrite=True,
            inputs=(result.cine.source,),
            extra=save_markups if save_node is not None else None,
        )

    def export_dicom(self, parent: str | Path) -> Path:
        """The shown result as DICOM, written by the library's one writer
        (:func:`~CardiacMTLLib.io.dicom_export.write_dicom_exports`, as ``cardiac-mtl analyze --dicom-out``):
        ``seg_ED.dcm``, ``seg_ES.dcm`` (DICOM SEG referencing the source images) and ``sr.dcm`` (TID 1500
        report of the indices and the diagnosis), in ``<case>_cardiacmtl_dicom`` inside ``parent``. Under the
        output policy: an earlier DICOM export of the case is replaced, a folder holding anyone else's files
        is refused. A cine not read from DICOM is refused before anything is written."""
        result = self.result
        if result is None:
            raise CardiacError("nothing to export: run Segment & diagnose first")
        source_files(result.cine)  # CardiacInputError for a NIfTI or ACDC input: one line, nothing written
        folder = export_folder(result, parent)
        return write_dicom_exports(
            result, folder.with_name(folder.name + "_dicom"), overwrite=True, inputs=(result.cine.source,)
        )
