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
from CardiacMTLLib.scene.markups import write_markups_json
from CardiacMTLLib.scene.sequences import CineNodes, borrow_cine
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine
from CardiacMTLLib.tasks import BackgroundTask
from CardiacMTLLib.types import AnalysisResult, Cine

DEMO_NAME = "synthetic cine"

# the study of each scene, kept here and not by a GUI module: a module reloaded (Slicer's Reload) or a
# second panel finds the same study; {id(scene): study}
_STUDIES: dict[int, Study] = {}


def study_for(scene, **options) -> Study:
    """The one :class:`Study` of ``scene``, made with ``options`` on first use (Sample Data's loader, the
    panel, the Python console and the CardiacAtlas module see one study, across module reloads)."""
    study = _STUDIES.get(id(scene))
    if study is None or study.scene is not scene:
        study = _STUDIES[id(scene)] = Study(scene, **options)
    return study


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
        patient data), else one read from the nodes, whose results are shown on the user's own nodes
        (:meth:`borrow_sequence`); a height, weight or sex (``"M"``/``"F"``) given replaces the input's,
        on a copy; one no person has is an error."""
        height_cm, weight_kg, _ = checked_patient(height_cm, weight_kg, None)
        if self.cine_nodes is None or self.cine_nodes.sequence is not sequence_node:
            self.borrow_sequence(sequence_node)
        return dataclasses.replace(
            self.cine,
            height_cm=height_cm or self.cine.height_cm,
            weight_kg=weight_kg or self.cine.weight_kg,
            sex=sex if sex in ("M", "F") else self.cine.sex,
        )

    def borrow_sequence(self, sequence_node) -> CineNodes:
        """Make a volume sequence the user loaded (Add Data, the DICOM browser, a saved scene) the study's
        cine where it is: no copy, its browser plays the results, and :meth:`clear` leaves it in the scene.
        The previous study's nodes are removed."""
        cine = cine_from_sequence(sequence_node)  # a sequence that is not a cine is refused first
        self.clear()
        self.cine, self.cine_nodes = cine, borrow_cine(self.scene, sequence_node, self.logics)
        return self.cine_nodes

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

    def result_with_edits(self) -> AnalysisResult:
        """The shown result with the segmentation as the user corrected it (what Update results gives), so
        that what is exported is what the user sees; raises when there is none."""
        if self.result is None:
            raise CardiacError("nothing to export: run Segment & diagnose first")
        if self.nodes.segmentation_sequence is not None:
            self.update_from_segmentation()
        return self.result

    def export(self, parent: str | Path) -> Path:
        """The shown result's folder (as ``cardiac-mtl analyze`` writes it) in a folder named after the case
        inside ``parent``, with Segment Editor's corrections applied first (:meth:`result_with_edits`); an
        earlier export of the case is replaced, nothing else is touched. Each frame's landmark markups are
        written beside it as ``landmarks_frame<N>.mrk.json`` (Slicer's markups format); the nodes are left
        as they were (a copy is exported: a later scene save does not write into the export)."""
        result = self.result_with_edits()
        frames = result.cine.frame_numbers

        def save_markups(staging: Path) -> None:
            for frame, node in self.nodes.landmarks.items():
                write_markups_json(node, staging / f"landmarks_frame{frames[frame]}.mrk.json")

        return write_outputs(
            result,
            export_folder(result, parent),
            overwrite=True,
            inputs=(result.cine.source,),
            extra=save_markups if self.nodes.landmarks else None,
        )

    def export_dicom(self, parent: str | Path) -> Path:
        """The shown result as DICOM, written by the library's one writer
        (:func:`~CardiacMTLLib.io.dicom_export.write_dicom_exports`, as ``cardiac-mtl analyze --dicom-out``):
        ``seg_ED.dcm``, ``seg_ES.dcm`` (DICOM SEG referencing the source images) and ``sr.dcm`` (TID 1500
        report of the indices and the diagnosis), in ``<case>_cardiacmtl_dicom`` inside ``parent``. Under the
        output policy: an earlier DICOM export of the case is replaced, a folder holding anyone else's files
        is refused. A cine not read from DICOM is refused before anything is written."""
        if self.result is None:
            raise CardiacError("nothing to export: run Segment & diagnose first")
        source_files(
            self.result.cine
        )  # CardiacInputError for a NIfTI or ACDC input: one line, nothing written
        result = self.result_with_edits()
        folder = export_folder(result, parent)
        return write_dicom_exports(
            result, folder.with_name(folder.name + "_dicom"), overwrite=True, inputs=(result.cine.source,)
        )
