"""The steps :mod:`module_check` runs on a Slicer release: what a user and Slicer itself do with the two
modules, from start-up to reload and unload, each step checking what should have happened."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from module_check import REPO, count_observations, load_scripted_module, pump_until

MTL_FILE = REPO / "CardiacMTL" / "CardiacMTL.py"
ATLAS_FILE = REPO / "CardiacAtlas" / "CardiacAtlas.py"


def run_all(slicer, gs, report, sources: Path) -> None:
    with report.step("SampleData: the release's module constructed") as s:
        sample_data = load_scripted_module(slicer, gs, sources / "Modules/Scripted/SampleData/SampleData.py")
        s.check("SampleData module constructed", sample_data.instance is not None)
    for path in (MTL_FILE, ATLAS_FILE):
        with report.step(f"{path.stem}: module file imported, module class constructed") as s:
            module = load_scripted_module(slicer, gs, path)
            s.check("title and category", module.title == module.name and module.categories == ["Cardiac"])
            s.check("icon from Resources/Icons", module.icon is not None and Path(module.icon.path).is_file())
            s.check("self-test registered in slicer.selfTests", module.name in slicer.selfTests)
    sample_data_steps(slicer, gs, report)
    widget_steps(slicer, gs, report, "CardiacMTL", mtl_parameter_checks)
    mtl_workflow_steps(slicer, gs, report)
    widget_steps(slicer, gs, report, "CardiacAtlas", atlas_parameter_checks)
    atlas_workflow_steps(slicer, gs, report)
    for name in ("CardiacMTL", "CardiacAtlas"):
        lifecycle_steps(slicer, gs, report, name)
    for name in ("CardiacMTL", "CardiacAtlas"):
        developer_mode_steps(slicer, gs, report, name)
    for name in ("CardiacMTL", "CardiacAtlas"):
        with report.step(f"{name}: self-test (Slicer's runTest)") as s:
            slicer.selfTests[name](msec=0)
            s.check("runTest passed", True)
    for name in ("CardiacMTL", "CardiacAtlas"):
        older_slicer_steps(slicer, gs, report, name)


def sample_data_steps(slicer, gs, report) -> None:
    import SampleData

    with report.step("CardiacMTL: sample data registered when Slicer has started") as s:
        slicer.app.startupCompleted.emit()
        sources = SampleData.SampleDataLogic.sampleDataSourcesByCategory("Cardiac")
        names = [source.sampleName for source in sources]
        s.check(
            "one source CardiacMTLSyntheticCine in category Cardiac",
            names == ["CardiacMTLSyntheticCine"],
            names,
        )
        source = sources[0]
        s.check(
            "uris, fileNames, nodeNames of equal length (SampleDataSource accepted them)",
            len(source.uris) == len(source.fileNames) == len(source.nodeNames) == 1,
        )
        s.check("thumbnail exists", Path(source.thumbnailFileName).is_file(), source.thumbnailFileName)
    with report.step("CardiacMTL: the Sample Data button generates the synthetic cine") as s:
        logic = SampleData.SampleDataLogic()
        panel = gs.QWidget()
        layout = gs.QVBoxLayout(panel)
        SampleData.SampleDataWidget.setCategoriesFromSampleDataSources(
            layout, slicer.modules.sampleDataSources, logic
        )
        button = slicer.util.findChild(panel, "CardiacMTLSyntheticCinePushButton")
        s.check("button in the Sample Data panel", button.text == "CardiacMTLSyntheticCine", button.text)
        button.click()
        sequences = slicer.util.getNodesByClass("vtkMRMLSequenceNode")
        s.check("a volume sequence in the scene", len(sequences) == 1, [n.GetName() for n in sequences])
        s.check("20 frames", sequences[0].GetNumberOfDataNodes() == 20, sequences[0].GetNumberOfDataNodes())
        s.check(
            "Sample Data's own downloader left it alone (nothing downloaded)",
            not list(Path(slicer.app.cachePath).iterdir()),
        )


def widget_steps(slicer, gs, report, name, parameter_checks) -> None:
    module = getattr(slicer.modules, name.lower())
    with report.step(f"{name}: widget construction and setup()") as s:
        representation = module.widgetRepresentation()
        widget = representation.self()
        s.check(
            "widget instance registered as slicer.modules.<Name>Widget",
            getattr(slicer.modules, name + "Widget") is widget,
        )
        s.check(
            "the .ui widgets are variables of self.ui",
            widget.ui is not None and hasattr(widget.ui, "statusLabel"),
        )
        s.check(
            "scene observers added (VTKObservationMixin)",
            count_observations(widget) == 2,
            count_observations(widget),
        )
        combos = [w for w in widget.ui.__dict__.values() if isinstance(w, slicer.qMRMLNodeComboBox)]
        s.check(
            "node selectors got the scene through the .ui connection",
            all(c.mrmlScene() is slicer.mrmlScene for c in combos),
        )
    with report.step(f"{name}: enter() and the parameter node (GUI <-> node, validation)") as s:
        representation.enter()
        node = widget.logic.getParameterNode()
        s.check("GUI connected to the parameter node", widget._parameterNodeGuiTag is not None)
        s.check(
            "one singleton parameter node", len(slicer.util.getNodesByClass("vtkMRMLScriptedModuleNode")) >= 1
        )
        parameter_checks(slicer, s, widget, node)


def _raises(action) -> str | None:
    try:
        action()
    except Exception as e:  # the wrapper's validators raise ValueError, its type checks TypeError
        return f"{type(e).__name__}: {e}"
    return None


def mtl_parameter_checks(slicer, s, widget, node) -> None:
    ui = widget.ui
    s.check(
        "device choices in the combo box",
        ui.deviceComboBox._entries == ["auto", "cpu", "cuda"],
        ui.deviceComboBox._entries,
    )
    s.check(
        "node selector shows sequences only",
        list(ui.inputSelector.nodeTypes) == ["vtkMRMLSequenceNode"],
        ui.inputSelector.nodeTypes,
    )
    ui.heightSpinBox.value = 172.0
    s.check("GUI -> node: height typed in", node.heightCm == 172.0, node.heightCm)
    node.device = "cpu"
    s.check("node -> GUI: device", ui.deviceComboBox.currentText == "cpu", ui.deviceComboBox.currentText)
    node.device = "auto"
    node.heightCm = 0.0
    sequence = slicer.util.getNodesByClass("vtkMRMLSequenceNode")[0]
    ui.inputSelector.setCurrentNode(sequence)
    s.check("GUI -> node: the cine chosen", node.inputSequence is sequence)
    count = len(slicer.util.getNodesByClass("vtkMRMLSequenceNode"))
    widget.logic.sceneLogic.cine_for(sequence)
    s.check(
        "the Sample Data cine is the one analysed (no copy of it made)",
        len(slicer.util.getNodesByClass("vtkMRMLSequenceNode")) == count,
        f"{count} -> {len(slicer.util.getNodesByClass('vtkMRMLSequenceNode'))} sequences",
    )
    for what, action in (
        ("device 'tpu' refused (Choice)", lambda: setattr(node, "device", "tpu")),
        ("height 300 cm refused (WithinRange)", lambda: setattr(node, "heightCm", 300.0)),
        ("weight -1 kg refused (WithinRange)", lambda: setattr(node, "weightKg", -1.0)),
        (
            "a volume as the cine refused (node type)",
            lambda: setattr(node, "inputSequence", slicer.vtkMRMLScalarVolumeNode()),
        ),
    ):
        s.check(what, _raises(action) is not None, _raises(action))
    s.check(
        "values unchanged after the refusals",
        (node.device, node.heightCm, node.weightKg) == ("auto", 0.0, 0.0),
    )


def atlas_parameter_checks(slicer, s, widget, node) -> None:
    ui = widget.ui
    s.check(
        "phase choices in the combo box", ui.phaseComboBox._entries == ["ED", "ES"], ui.phaseComboBox._entries
    )
    folder = tempfile.mkdtemp(prefix="atlas-folder-")
    ui.atlasDirectoryButton.directory = folder
    s.check("GUI -> node: atlas folder picked", str(node.atlasDirectory) == folder, node.atlasDirectory)
    node.phase = "ES"
    s.check("node -> GUI: phase", ui.phaseComboBox.currentText == "ES")
    node.phase = "ED"
    for what, action in (
        ("phase 'MS' refused (Choice)", lambda: setattr(node, "phase", "MS")),
        ("11 sliders refused (WithinRange 1-10)", lambda: setattr(node, "numberOfSliders", 11)),
    ):
        s.check(what, _raises(action) is not None, _raises(action))


def mtl_workflow_steps(slicer, gs, report) -> None:
    widget = slicer.modules.CardiacMTLWidget
    ui = widget.ui
    with report.step("CardiacMTL: Load the generated demo cine (button)") as s:
        ui.loadDemoButton.click()
        s.check(
            "status says it loaded", ui.statusLabel.text.startswith("Loaded 20 frame"), ui.statusLabel.text
        )
        s.check(
            "the models were checked",
            "(checked on first use)" not in ui.modelsLabel.text,
            ui.modelsLabel.text,
        )
        s.check(
            "the loaded cine is the chosen input",
            widget._parameterNode.inputSequence is widget.logic.sceneLogic.cine_nodes.sequence,
        )
        s.check(
            "the selector shows it", ui.inputSelector.currentNode() is widget._parameterNode.inputSequence
        )
    with report.step("CardiacMTL: Segment & diagnose on the worker thread, polled by the timer") as s:
        ui.applyButton.click()
        s.check("the button becomes Cancel", ui.applyButton.text == "Cancel", ui.applyButton.text)
        busy = [name for name in widget.BUSY_WIDGETS.split() if getattr(ui, name).enabled]
        s.check("loading, the cine selector, update and export are off while it runs", not busy, busy)
        finished = pump_until(gs, lambda: widget._task is None, 600)
        s.check("finished", finished, ui.statusLabel.text)
        s.check(
            "button back to Segment & diagnose",
            ui.applyButton.text == "Segment && diagnose",
            ui.applyButton.text,
        )
        s.check(
            "and the rest back on", all(getattr(ui, name).enabled for name in widget.BUSY_WIDGETS.split())
        )
        s.check(
            "diagnosis shown",
            ui.diagnosisLabel.text not in ("", "No analysis yet."),
            ui.diagnosisLabel.text[:80],
        )
        table = ui.indicesTableView.mrmlTableNode()
        s.check("indices table shown", table is not None and table.GetNumberOfRows() > 10)
        volume = widget.logic.sceneLogic.cine_nodes.volume
        composite = slicer.mrmlScene.GetNodeByID("vtkMRMLSliceCompositeNodeRed")
        s.check(
            "the cine is the slice views' background", composite.GetBackgroundVolumeID() == volume.GetID()
        )
        s.check("slice views rotated to the image planes", _aligned(slicer, volume), _normal(slicer))
    with report.step("CardiacMTL: Cancel while the analysis runs keeps the shown result") as s:
        shown = widget.logic.sceneLogic.result
        ui.applyButton.click()
        ui.applyButton.click()  # the button is Cancel now
        s.check("cancelling", ui.statusLabel.text.startswith("Cancelling"), ui.statusLabel.text)
        s.check("stopped", pump_until(gs, lambda: widget._task is None, 600))
        s.check(
            "status says cancelled",
            ui.statusLabel.text == "Cancelled; nothing was changed.",
            ui.statusLabel.text,
        )
        s.check("button back to Segment & diagnose", ui.applyButton.text == "Segment && diagnose")
        s.check("the shown result kept", widget.logic.sceneLogic.result is shown)
    with report.step("CardiacMTL: Segment Editor paints 10 voxels into ED's LV, Update results") as s:
        scene = widget.logic.sceneLogic
        before = scene.result.indices["LVEDV (mL)"]
        args = (scene.nodes.segmentation, "LV_cavity", scene.cine_nodes.volume)
        lv = slicer.util.arrayFromSegmentBinaryLabelmap(*args)
        free = np.argwhere(lv == 0)[:10]
        lv[tuple(free.T)] = 1
        slicer.util.updateSegmentBinaryLabelmapFromArray(lv, *args)
        ui.updateResultsButton.click()
        grown = scene.result.indices["LVEDV (mL)"] - before
        voxel_ml = scene.cine.voxel_volume_ml
        s.check(
            "LVEDV grew by 10 voxels", abs(grown - 10 * voxel_ml) < 1e-6, f"{grown} mL vs {10 * voxel_ml} mL"
        )
        s.check("status names the edited frame", "frame(s)" in ui.statusLabel.text, ui.statusLabel.text)
    with report.step("CardiacMTL: a landmark dragged refreshes the panel") as s:
        node = next(iter(scene.nodes.landmarks.values()))
        position = [0.0, 0.0, 0.0]
        node.GetNthControlPointPosition(0, position)
        node.SetNthControlPointPosition(0, position[0] + 3.0, position[1], position[2])
        s.check(
            "the landmarks label counts the edit",
            "1 edited" in ui.landmarksLabel.text,
            ui.landmarksLabel.text,
        )
    with report.step("CardiacMTL: Segment & diagnose again after corrections asks first") as s:
        shown, asked = scene.result, []
        confirm = slicer.util.confirmOkCancelDisplay
        slicer.util.confirmOkCancelDisplay = lambda text, *args, **kwargs: asked.append(text) and False
        try:
            ui.applyButton.click()
        finally:
            slicer.util.confirmOkCancelDisplay = confirm
        s.check(
            "asked, naming the corrections",
            len(asked) == 1 and "segmentation of frame(s)" in asked[0] and "moved landmark" in asked[0],
            asked,
        )
        s.check("declined: nothing started, the result kept", widget._task is None and scene.result is shown)
        s.check("the status says so", "kept" in ui.statusLabel.text, ui.statusLabel.text)
    with report.step("CardiacMTL: Export into a folder that has a user's file") as s:
        parent = Path(tempfile.mkdtemp(prefix="export-"))
        (parent / "notes.txt").write_text("the user's own file")
        ui.exportDirectoryButton.directory = str(parent)
        ui.exportButton.click()
        folders = [p for p in parent.iterdir() if p.is_dir()]
        s.check("one case folder written", len(folders) == 1, ui.statusLabel.text)
        written = {p.name for p in folders[0].iterdir()} if folders else set()
        s.check(
            "indices and report written",
            {"indices.json", "indices.csv", "report.png"} <= written,
            sorted(written),
        )
        s.check(
            "landmark markups saved by slicer.util.saveNode", any(n.endswith(".mrk.json") for n in written)
        )
        s.check("the user's file untouched", (parent / "notes.txt").read_text() == "the user's own file")
        ui.exportButton.click()
        s.check("a second export replaces the first", [p for p in parent.iterdir() if p.is_dir()] == folders)
    if hasattr(ui, "exportDicomButton"):
        with report.step("CardiacMTL: Export DICOM of a cine that is not DICOM") as s:
            before = sorted(parent.rglob("*"))
            ui.exportDicomButton.click()
            s.check(
                "one-line refusal in the status",
                "DICOM" in ui.statusLabel.text and "\n" not in ui.statusLabel.text,
                ui.statusLabel.text,
            )
            s.check("nothing written", sorted(parent.rglob("*")) == before)
    with report.step("CardiacMTL: a DICOM study picked with the file button, analysed, Export DICOM") as s:
        from CardiacMTLLib.synthetic.dicom import write_cine_dicom
        from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

        case = generate_synthetic_cine(seed=2, num_frames=4, shape=(64, 64, 4))
        files = write_cine_dicom(case.cine, Path(tempfile.mkdtemp(prefix="dicom-")) / "study")
        gs.ANSWERS["getOpenFileName"].append(str(files[0]))  # a file of one series of the study
        ui.loadFileButton.click()
        sequence = widget._parameterNode.inputSequence
        s.check("the whole study loaded", ui.statusLabel.text == "Loaded 4 frame(s).", ui.statusLabel.text)
        s.check("all 4 slices", widget.logic.sceneLogic.cine.num_slices == 4)
        ui.applyButton.click()
        s.check("analysed", pump_until(gs, lambda: widget._task is None, 600), ui.statusLabel.text)
        s.check("the result is this study's", widget.logic.sceneLogic.cine_nodes.sequence is sequence)
        ui.exportDicomButton.click()
        out = parent / "study_cardiacmtl_dicom"
        written = sorted(p.name for p in out.glob("*.dcm"))
        s.check(
            "DICOM SEG and SR written", written == ["seg_ED.dcm", "seg_ES.dcm", "sr.dcm"], ui.statusLabel.text
        )
        s.check(
            "status names the folder",
            ui.statusLabel.text == f"Exported to {out.resolve()}",
            ui.statusLabel.text,
        )
    if hasattr(widget.logic.sceneLogic.nodes, "strain"):
        with report.step("CardiacMTL: strain table, curves and bull's-eye after the analysis") as s:
            nodes = widget.logic.sceneLogic.nodes
            s.check("strain table", nodes.strain is not None and nodes.strain.GetNumberOfRows() >= 16)
            s.check(
                "strain chart",
                nodes.strain_chart is not None and nodes.strain_chart.GetNumberOfPlotSeriesNodes() == 2,
            )
            s.check(
                "bull's-eye image", nodes.bullseye is not None and nodes.bullseye.GetImageData() is not None
            )


def _normal(slicer):
    matrix = slicer.mrmlScene.GetNodeByID("vtkMRMLSliceNodeRed").GetSliceToRAS()
    return [round(matrix.GetElement(i, 2), 3) for i in range(3)]


def _aligned(slicer, volume) -> bool:
    import vtk

    ijk_to_ras = vtk.vtkMatrix4x4()
    volume.GetIJKToRASDirectionMatrix(ijk_to_ras)
    k_axis = np.array([ijk_to_ras.GetElement(i, 2) for i in range(3)])
    return abs(abs(float(np.dot(k_axis, _normal(slicer)))) - 1) < 1e-3


def atlas_workflow_steps(slicer, gs, report) -> None:
    widget = slicer.modules.CardiacAtlasWidget
    ui = widget.ui
    with report.step("CardiacAtlas: build the demo atlas, move a mode slider, show the plot") as s:
        ui.demoAtlasButton.click()
        s.check("status", ui.statusLabel.text == "Synthetic demo atlas built.", ui.statusLabel.text)
        s.check(
            "one slider per mode",
            len(widget.sliders) == widget._parameterNode.numberOfSliders,
            len(widget.sliders),
        )
        shown = ui.shapeLabel.text
        widget.sliders[0].value = 2.0
        s.check(
            "the slider reshapes the mean (cavity volume in the panel changes)",
            ui.shapeLabel.text != shown,
            ui.shapeLabel.text,
        )
        ui.showPlotButton.click()
        chart = widget.logic.atlasScene.variance_chart
        selected = slicer.app.applicationLogic().GetSelectionNode().GetActivePlotChartID()
        s.check("the explained-variance chart is the plot view's", selected == chart.GetID(), selected)
    with report.step("CardiacAtlas: fit the LV model to the CardiacMTL result") as s:
        ui.fitButton.click()
        s.check("fit shown", ui.fitLabel.text.startswith("ED: cavity"), ui.fitLabel.text)
        s.check("mode scores shown", ui.scoresLabel.text.startswith("mode scores"), ui.scoresLabel.text)


def lifecycle_steps(slicer, gs, report, name) -> None:
    module = getattr(slicer.modules, name.lower())
    representation = module.widgetRepresentation()
    widget = representation.self()
    with report.step(f"{name}: exit() disconnects the GUI") as s:
        representation.exit()
        s.check("no GUI tag", widget._parameterNode is None)
    if name == "CardiacMTL":
        with report.step("CardiacMTL: a scene closed while an analysis runs stops it") as s:
            representation.enter()
            widget.logic.loadDemoCine()
            widget._parameterNode.inputSequence = widget.logic.sceneLogic.cine_nodes.sequence
            widget.ui.applyButton.click()
            s.check("running", widget._task is not None, widget.ui.statusLabel.text)
            slicer.mrmlScene.Clear(0)
            s.check(
                "stopped, the panel idle", widget._task is None and widget.ui.applyButton.text != "Cancel"
            )
            s.check("the status says so", "closed" in widget.ui.statusLabel.text, widget.ui.statusLabel.text)
            study = widget.logic.sceneLogic
            s.check(
                "the study let go of the closed scene's nodes", study.result is None and study.cine is None
            )
            gs.process_events(0.3)  # the cancelled task ends on its own; nothing is shown
            s.check("nothing shown after the close", study.result is None and study.cine_nodes is None)
    with report.step(f"{name}: scene close while entered (StartClose/EndClose observers)") as s:
        representation.enter()
        slicer.mrmlScene.Clear(0)
        s.check("re-entered with the new scene's parameter node", widget._parameterNode is not None)
        s.check(
            "that node is in the scene", slicer.mrmlScene.IsNodePresent(widget._parameterNode.parameterNode)
        )
    with report.step(f"{name}: reload (slicer.util.reloadScriptedModule)") as s:
        old = widget
        study = widget.logic.sceneLogic if name == "CardiacMTL" else None
        slicer.util.reloadScriptedModule(name)
        new = getattr(slicer.modules, name + "Widget")
        s.check("a new widget", new is not old)
        if study is not None:
            s.check("the study kept (the Lib holds it)", new.logic.sceneLogic is study)
        s.check(
            "the old one cleaned up (no observer left)", count_observations(old) == 0, count_observations(old)
        )
        s.check("the new one set up", new.ui is not None and count_observations(new) == 2)
        representation.enter()
        s.check("the new one entered", new._parameterNode is not None)
    with report.step(f"{name}: cleanup() when the module is unloaded") as s:
        slicer.app.moduleManager().moduleAboutToBeUnloaded.emit(name)
        s.check("no observer left", count_observations(new) == 0, count_observations(new))
        representation.exit()


def developer_mode_steps(slicer, gs, report, name) -> None:
    representation = getattr(slicer.modules, name.lower()).widgetRepresentation()
    with report.step(f"{name}: developer mode, the Reload button of Slicer's Reload & Test section") as s:
        gs.QSettings.VALUES["Developer/DeveloperMode"] = "true"
        try:
            representation.reload()
            widget = representation.self()
            s.check("Reload & Test section built by Slicer's setup()", hasattr(widget, "reloadButton"))
            widget.reloadButton.click()
            new = getattr(slicer.modules, name + "Widget")
            s.check("Reload made a new widget, set up", new is not widget and new.ui is not None)
            s.check("the old one cleaned up (no observer left)", count_observations(widget) == 0)
            new.cleanup()
        finally:
            del gs.QSettings.VALUES["Developer/DeveloperMode"]


def older_slicer_steps(slicer, gs, report, name) -> None:
    module = getattr(slicer.modules, name.lower())
    representation = module.widgetRepresentation()
    with report.step(f"{name}: an older Slicer (5.8) gets the message in the panel") as s:
        minor = slicer.app.minorVersion
        slicer.app.minorVersion = 8
        try:
            representation.reload()
            widget = representation.self()
            shown = representation.layout()._items[-1]
            s.check("no panel built", widget.ui is None)
            s.check(
                "a message naming the Slicer needed",
                isinstance(shown, gs.QLabel) and "5.10" in shown.text,
                getattr(shown, "text", shown),
            )
            representation.enter()
            representation.exit()
            widget.cleanup()
            s.check("enter, exit and cleanup without error", True)
        finally:
            slicer.app.minorVersion = minor
