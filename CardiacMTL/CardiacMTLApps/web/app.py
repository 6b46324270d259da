"""``cardiac-mtl app``: the browser app on trame-slicer, with Slicer's own slice and 3D views.

A thin front end like the desktop module: a trame server, one :class:`SlicerApp` scene and the panel.
The scene and the actions are the Lib's (:class:`CardiacMTLLib.scene.study.Study`, which the Slicer module
uses too, and :class:`CardiacAtlasLib.scene.AtlasScene`); the analysis runs on a
:class:`CardiacMTLLib.tasks.BackgroundTask` that the event loop awaits, so Cancel reaches it; the page is
:mod:`.views`, its texts :mod:`.state`, the network and the atlas :mod:`.resources`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from pathlib import Path

from trame.app import get_server

from CardiacAtlasLib.fit import fit_analysis
from CardiacAtlasLib.scene import AtlasScene, add_lv_fits
from CardiacMTLApps.web import display
from CardiacMTLApps.web import state as panel
from CardiacMTLApps.web.editing import EditingActions, SegmentationBrush
from CardiacMTLApps.web.resources import (
    DEMO_CASE,
    Engine,
    acdc_case,
    list_cases,
    load_app_atlas,
    read_uploaded_cine,
    result_files,
    uploaded_names,
)
from CardiacMTLApps.web.serverlog import log_to, quiet_closed_tabs
from CardiacMTLApps.web.views import ELEMENT_IDS, build_ui
from CardiacMTLLib.errors import CardiacError
from CardiacMTLLib.models.device import resolve_device
from CardiacMTLLib.outputs import indices_csv_text
from CardiacMTLLib.report.text import outcome_text, progress_text, replace_edits_text
from CardiacMTLLib.scene.cardiac import ModuleLogics
from CardiacMTLLib.scene.study import Study
from CardiacMTLLib.tasks import BackgroundTask, TaskOutcome

logger = logging.getLogger(__name__)

N_MODE_SLIDERS = panel.N_MODE_SLIDERS
PLAY_INTERVAL_S = 0.1  # at most 10 frames a second: each frame is rendered and streamed as images
__all__ = ["CardiacWebApp", "ELEMENT_IDS", "main"]


class CardiacWebApp(EditingActions):
    """The trame server, the Slicer scene with its views, and the panel's actions."""

    def __init__(
        self,
        server=None,
        acdc_dir: Path | None = None,
        atlas_dir: Path | None = None,
        device: str = "auto",
        precision: str = "auto",
    ):
        # imported here, after main() chose how VTK renders without a display
        import slicer
        from trame_slicer.core import LayoutManager, SlicerApp
        from trame_slicer.rca_view import register_rca_factories
        from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

        self.server = get_server(server, client_type="vue3")
        self.state, self.ctrl = self.server.state, self.server.controller
        self.acdc_dir = Path(acdc_dir) if acdc_dir else None
        self.slicer_app = SlicerApp()
        sequences = self.slicer_app.register_module_logic(slicer.vtkSlicerSequencesLogic())
        logics = ModuleLogics(sequences, self.slicer_app.segmentations_logic)
        self.scene_logic = Study(self.slicer_app.scene, logics)
        self.scene_logic.add_listener(self._on_result_changed)
        register_rca_factories(self.slicer_app.view_manager, self.server)
        self.layout_manager = LayoutManager(self.slicer_app.scene, self.slicer_app.view_manager, self.server)
        self.slice_view_def = ViewLayoutDefinition.axial_view()
        self.threed_view_def = ViewLayoutDefinition.threed_view()
        # the atlas lives in its own coordinates: its shape gets a 3D view of its own
        self.atlas_view_def = ViewLayoutDefinition.threed_view(name="AtlasThreeD", label="atlas")
        right = Layout(LayoutDirection.Vertical, [self.threed_view_def, self.atlas_view_def])
        self.layout_manager.register_layout_dict(
            {"cardiac": Layout(LayoutDirection.Horizontal, [self.slice_view_def, right])}
        )
        self.layout_manager.set_layout("cardiac")

        # torch is imported here, before the loader thread: scipy, used on this thread meanwhile, looks up
        # torch.Tensor once torch is in sys.modules and must not find it half imported
        with contextlib.suppress(CardiacError):
            resolve_device(device)
        # the atlas (scipy.io, scipy.linalg) before the loader thread starts importing sklearn and scipy
        atlas, atlas_name = load_app_atlas(atlas_dir, self.acdc_dir)
        self.engine = Engine(device, precision).start()
        self.atlas_scene = AtlasScene(self.slicer_app.scene, atlas, n_sliders=N_MODE_SLIDERS)
        self._show_only_in(self.atlas_scene.model, [self.atlas_view_def])
        self.fit_models: dict = {}
        self.brush = SegmentationBrush(self.slicer_app.segmentation_editor)
        self._analysed = None  # the analysis's own result, for "Undo edits"
        self._edit_kind = "Landmark edited"
        self._analysis: BackgroundTask | None = None
        self._fit: BackgroundTask | None = None
        # uploads stay on disk while their case is shown: the DICOM exports read the source images again
        self._upload_dir: tempfile.TemporaryDirectory | None = None
        self._download_dir: tempfile.TemporaryDirectory | None = None
        self._downloads: dict[str, Path] = {}

        self._case_list = list_cases(self.acdc_dir)
        self._uploaded: tuple | None = None  # (name, cine) of the last upload
        self.state.update(
            panel.initial_state(self._case_list, DEMO_CASE, self.engine.device_text, atlas_name, atlas)
        )
        self.state.atlas_shape_text = panel.atlas_text(self.atlas_scene)
        self.state.change("frame")(self._on_frame)
        self.state.change(*[f"mode_{k}" for k in range(N_MODE_SLIDERS)])(self._on_modes)
        self.state.change("upload")(self._on_upload)
        self.state.change("brush_mode", "brush_label", "brush_diameter_mm")(self._on_brush)
        self.state.change("window_range")(self._on_window)
        self.state.change("show_surfaces")(self._on_surfaces)
        self.ui = build_ui(self)
        self.ctrl.on_server_ready.add(self._on_ready)

    # ------------------------------------------------------------------------------------------ views
    def _show_only_in(self, node, view_defs) -> None:
        ids = [self.slicer_app.view_manager.get_view(v.singleton_tag).get_view_node_id() for v in view_defs]
        for n in range(node.GetNumberOfDisplayNodes()):
            node.GetNthDisplayNode(n).SetViewNodeIDs(ids)

    def _view(self, definition):
        return self.slicer_app.view_manager.get_view(definition.singleton_tag)

    def _frame_atlas(self) -> None:
        """The atlas view framed on the atlas shape as seen from the front: trame-slicer's reset fits the
        camera before it turns to the anterior view, which leaves a long LV overflowing the view."""
        view = self._view(self.atlas_view_def)
        if view is not None:
            display.keep_out_of_view(self.slicer_app.scene, view, keep=[self.atlas_scene.model])
            view.reset_view()
            view.reset_camera()
            view.zoom(
                -0.6
            )  # room for the shapes of the mode sliders (+-3 SD), which the view does not follow
            view.schedule_render()

    def _on_ready(self, **_):
        self._frame_atlas()
        asyncio.ensure_future(self._show_engine())

    async def _show_engine(self):
        await self.engine.task.wait_async(interval_s=0.2)
        with self.state:
            self.state.device = self.engine.device_text
            if self.engine.error:
                self.state.error = self.engine.error

    # -------------------------------------------------------------------------------------- actions
    def load_case(self, name: str | None = None):
        """Load the chosen case (demo or an ACDC patient) into the scene."""
        if self._refused_while_running():
            return
        name = name or self.state.case_name
        try:
            if name == DEMO_CASE:
                nodes = self.scene_logic.load_demo(seed=0, num_frames=12, shape=(160, 160, 8))
            elif self._uploaded is not None and name == self._uploaded[0]:
                nodes = self.scene_logic.load_cine(self._uploaded[1], name="cine")
            else:
                folder, all_frames = acdc_case(name)
                nodes = self.scene_logic.load_file(self.acdc_dir / folder, all_frames=all_frames)
        except CardiacError as exc:
            self._show_error(str(exc))
            return
        self._show_cine(nodes, name)

    def _show_cine(self, nodes, name: str) -> None:
        self._clear_result_state()
        cine = self.scene_logic.cine
        self.slicer_app.display_manager.show_volume_in_slice_background(nodes.volume)
        self.slicer_app.display_manager.show_volume_in_slice_foreground(None)
        self._view(self.slice_view_def).set_visible_in_3d(True)
        self._reset_views()
        # the slice view in the image's own plane (an oblique short axis is not resliced axially)
        slice_node = self._view(self.slice_view_def).get_view_node()
        slice_node.RotateToVolumePlane(nodes.volume)
        self._view(self.slice_view_def).fit_view_to_content()
        s = self.state
        s.case_loaded, s.n_frames, s.frame, s.playing = True, cine.num_frames, 0, False
        s.case_name_shown = name
        s.height_cm, s.weight_kg, s.sex = cine.height_cm, cine.weight_kg, cine.sex
        s.slice_orientation = panel.slice_orientation(slice_node)
        s.frame_label = panel.frame_label(cine, None, 0)
        s.update(panel.window_state(nodes.volume))
        s.status, s.error = panel.loaded_text(name, cine), ""

    def _reset_views(self) -> None:
        """Every view framed on what it shows; the slice plane in the patient's 3D view only (a reset
        shows it in every 3D view again), so the atlas view frames the atlas alone."""
        self.slicer_app.display_manager.reset_views()
        self._frame_atlas()

    def _on_window(self, window_range, **_):
        if self.scene_logic.cine_nodes is not None:
            display.set_window(self.scene_logic.cine_nodes.volume, window_range)

    def _clear_result_state(self) -> None:
        self.brush.detach()
        self._analysed = None
        self.state.update(panel.cleared_result_state())
        self._downloads = {}
        if self._download_dir is not None:
            self._download_dir.cleanup()
            self._download_dir = None
        for model in self.fit_models.values():
            if self.slicer_app.scene.IsNodePresent(model):
                self.slicer_app.scene.RemoveNode(model)
        self.fit_models = {}

    def _refused_while_running(self) -> bool:
        """Whether a new case must wait (an analysis runs: its result would be shown on the new case); the
        page disables Load and upload meanwhile, so this answers a click that was already on its way."""
        if self._analysis is None:
            return False
        self._show_error(panel.BUSY_TEXT)
        return True

    def _show_error(self, message: str) -> None:
        self.state.error = message
        self.state.status = "Error."
        logger.error(message)

    def on_analyze(self, cancel_shown: bool = False):
        """Segment & diagnose, or Cancel while it runs (``cancel_shown``: the button showed Cancel when it was
        clicked; see :func:`.state.analyze_click`). The handler returns at once: the analysis runs on a
        background task whose end a separate coroutine awaits, so the server still reads the next click
        (the client's messages are handled one after the other) and a Cancel reaches the task."""
        action = panel.analyze_click(bool(cancel_shown), self._analysis is not None)
        if action == "none":
            logger.info(
                "a click that crossed the analysis's %s was ignored", "end" if cancel_shown else "start"
            )
            return
        if action == "cancel":
            self._analysis.cancel()
            with self.state:
                self.state.status = "Cancelling ..."
            return
        if self.scene_logic.cine is None:
            with self.state:
                self._show_error("Load a case first.")
            return
        if not self.state.confirm_replace and (edits := self.scene_logic.edits_at_stake()) is not None:
            with self.state:  # the button asks; a second click replaces them
                self.state.confirm_replace = f"{replace_edits_text(edits)} Click again to go on."
            return
        try:
            cine = self.scene_logic.cine_for(
                self.scene_logic.cine_nodes.sequence,
                height_cm=panel.positive_or_none(self.state.height_cm),
                weight_kg=panel.positive_or_none(self.state.weight_kg),
                sex=self.state.sex,
            )
        except CardiacError as exc:  # a height or weight no person has (1.84 typed for 184 cm)
            with self.state:
                self._show_error(str(exc))
            return
        started, cpu_started = time.perf_counter(), time.process_time()
        if self._fit is not None:
            self._fit.cancel()  # its result would be thrown away; the analysis gets the CPU
        # the lowest CPU priority: the panel's own thread (sliders, views, Cancel) gets the CPU first; on an
        # otherwise idle machine the analysis still has every core
        self._analysis = task = self.scene_logic.analysis_task(
            cine=cine, load_models=self.engine.models, low_priority=True
        ).start()
        with self.state:
            self.state.update(
                {
                    "running": True,
                    "progress": 0,
                    "error": "",
                    "confirm_replace": "",
                    "status": progress_text(0, 0),
                }
            )
            self.state.analyses_started += 1  # the browser tests check that a Cancel starts none
        asyncio.ensure_future(self._finish_analysis(task, started, cpu_started))

    async def _finish_analysis(self, task: BackgroundTask, started: float, cpu_started: float) -> None:
        """Show the progress of the analysis ``task`` while it runs, then its outcome and result."""
        try:
            # a Cancel shows at once, even while the low-priority thread waits for the CPU to finish its frame
            outcome = await task.wait_async(
                interval_s=0.05, on_progress=self._show_progress, settle_on_cancel=True
            )
        finally:
            self._analysis = None
            with self.state:
                self.state.running = False
        if outcome is not TaskOutcome.SUCCEEDED:
            with self.state:
                if outcome is TaskOutcome.FAILED:
                    self._show_error(str(task.error))
                else:
                    self.state.status = outcome_text(outcome.value)
            if self.scene_logic.result is not None:  # the result still shown gets its model back
                await self._fit_lv_model()
            return
        analysed = time.perf_counter()
        with self.state:
            self._analysed = task.result
            self._show_result(task.result)
            s = self.state
            s.analysis_seconds = round(time.perf_counter() - started, 2)
            # the process's CPU time (all its threads): the wall time to expect on an idle machine
            s.analysis_cpu_seconds = round(time.process_time() - cpu_started, 2)
            s.status = (
                f"Done in {s.analysis_seconds:.2f} s ({s.analysis_cpu_seconds:.2f} s of CPU): analysis "
                f"{analysed - started:.2f} s, display {time.perf_counter() - analysed:.2f} s."
            )
            logger.info("%s", s.status)
        self._prepare_downloads(task.result)
        await self._fit_lv_model()

    def _show_progress(self, status) -> None:
        with self.state:
            self.state.progress = status.percent
            self.state.status = progress_text(status.done, status.total)

    def _show_result(self, result) -> None:
        nodes = self.scene_logic.show_result(result)
        self._landmarks_in_slice_view_only()
        self.brush.attach(nodes.segmentation, self.scene_logic.cine_nodes.volume)
        self._show_only_in(nodes.segmentation, [self.slice_view_def, self.threed_view_def])
        self._on_surfaces(self.state.show_surfaces)
        self._reset_views()
        self.state.has_result = True
        self.state.frame = result.ed_index
        self._fill_panel(result)

    def _landmarks_in_slice_view_only(self) -> None:
        for markups in self.scene_logic.nodes.landmarks.values():  # a stack per frame would clutter 3D
            self._show_only_in(markups, [self.slice_view_def])

    def _prepare_downloads(self, result) -> None:
        """Write the result's files (as ``cardiac-mtl analyze`` does, named after the study) for download,
        and draw the panel's figures, on a background task: the result is on screen meanwhile."""
        self._downloads, self.state.downloads, self.state.figures = {}, [], {}
        folder = tempfile.TemporaryDirectory(prefix="cardiacmtl-downloads-")

        def work(progress):
            return result_files(result, Path(folder.name)), panel.figures_state(result)

        task = BackgroundTask(work, name="result files").start()
        asyncio.ensure_future(self._show_downloads(task, result, folder))

    async def _show_downloads(self, task, result, folder) -> None:
        outcome = await task.wait_async(interval_s=0.1)
        if result is not self.scene_logic.result:  # a newer result (edit, new case) is being prepared
            folder.cleanup()
            return
        if self._download_dir is not None:
            self._download_dir.cleanup()
        self._download_dir = folder
        with self.state:
            if outcome is TaskOutcome.SUCCEEDED:
                self._downloads, figures = task.result
                self.state.downloads = panel.download_rows(self._downloads)
                self.state.figures = figures
            else:
                self.state.error = f"downloads not available: {task.error}"

    def _fill_panel(self, result) -> None:
        self.state.confirm_replace = ""  # a new result (an edit, an undo): the question is asked again
        self.state.update(panel.result_state(result, self.engine.device_text))
        self.state.frame_label = panel.frame_label(self.scene_logic.cine, result, self.state.frame)
        self._update_landmark_screen()

    def _on_result_changed(self, result) -> None:
        """A landmark was moved in a view, or the segmentation updated: the scene logic has updated the
        result; refresh the panel."""
        with self.state:
            self._landmarks_in_slice_view_only()  # an update of the segmentation makes them again
            self._fill_panel(result)
            self._prepare_downloads(result)
            self.state.status = f"{self._edit_kind}; indices updated."
        asyncio.ensure_future(self._fit_lv_model())

    def _on_surfaces(self, show_surfaces, **_):
        """The shown frame's segmentation as surfaces in the patient's 3D view (with the LV model)."""
        segmentation = self.scene_logic.nodes.segmentation
        if segmentation is None or segmentation.GetDisplayNode() is None:
            return
        if show_surfaces:
            segmentation.CreateClosedSurfaceRepresentation()
        segmentation.GetDisplayNode().SetVisibility3D(bool(show_surfaces))
        self._view(self.threed_view_def).schedule_render()

    def reset_atlas(self):
        """The atlas sliders back to the mean shape."""
        self.state.update({f"mode_{k}": 0.0 for k in range(N_MODE_SLIDERS)})

    async def _fit_lv_model(self):
        """Fit the LV model to the result (on a background task) and show it in 3D with its mode scores."""
        result = self.scene_logic.result
        if self._fit is not None:
            self._fit.cancel()
        with self.state:
            self.state.fit_text = "Fitting the LV model ..."

        # lowest CPU priority: an analysis the user starts meanwhile gets the CPU first, and the fit stops
        # between frames once the case changed or a new analysis started (it would be thrown away)
        def stale() -> bool:
            return fit.cancel_requested or result is not self.scene_logic.result

        fit = self._fit = BackgroundTask(
            lambda progress: fit_analysis(result, should_stop=stale), name="LV model fit", low_priority=True
        )
        outcome = await fit.start().wait_async(interval_s=0.1)
        if outcome is TaskOutcome.CANCELLED or result is not self.scene_logic.result:
            return  # a newer result (edit, new case) replaced this one while fitting
        if outcome is TaskOutcome.FAILED:  # the model is an extra view of the result
            with self.state:
                self.state.fit_text = f"LV model not fitted: {fit.error}"
            return
        fits = fit.result
        with self.state:
            self.fit_models = add_lv_fits(self.slicer_app.scene, fits, self.fit_models)
            for model in self.fit_models.values():
                self._show_only_in(model, [self.slice_view_def, self.threed_view_def])
            try:
                scores = self.atlas_scene.project_case({p: f.mesh for p, f in fits.items()})
                sd = scores[:N_MODE_SLIDERS] / self.atlas_scene.atlas.sd_mm_[:N_MODE_SLIDERS]
                self.state.fit_text = panel.fit_text(fits, mode_sd=sd)
            except CardiacError as exc:
                self.state.fit_text = panel.fit_text(fits, mode_error=str(exc))
            self._view(self.threed_view_def).reset_view()
            self._view(self.threed_view_def).schedule_render()

    def toggle_play(self):
        """Play the cine over all its frames in a loop (up to 10 frames a second), or stop it."""
        self.state.playing = not self.state.playing
        if self.state.playing:
            asyncio.ensure_future(self._play())

    async def _play(self):
        while self.state.playing and self.scene_logic.cine_nodes is not None:
            await asyncio.sleep(PLAY_INTERVAL_S)
            if not self.state.playing or self.state.n_frames < 2:
                break
            with self.state:
                self.state.frame = (int(self.state.frame) + 1) % int(self.state.n_frames)
        with self.state:
            self.state.playing = False

    def _on_frame(self, frame, **_):
        if self.scene_logic.cine_nodes is None:
            return
        frame = int(frame)
        if frame != self.scene_logic.frame:
            self.scene_logic.set_frame(frame)
        self.state.frame_label = panel.frame_label(self.scene_logic.cine, self.scene_logic.result, frame)
        self._update_landmark_screen()

    def _on_modes(self, **kwargs):
        self.atlas_scene.set_mode_sd(
            {k: float(self.state[f"mode_{k}"] or 0.0) for k in range(N_MODE_SLIDERS)}
        )
        self.state.atlas_shape_text = panel.atlas_text(self.atlas_scene)
        view = self._view(self.atlas_view_def)
        if view is not None:
            view.schedule_render()

    def _on_upload(self, upload, **_):
        if not upload:
            return
        if self._refused_while_running():
            self.state.upload = None
            return
        files = upload if isinstance(upload, list) else [upload]
        folder = tempfile.TemporaryDirectory(prefix="cardiacmtl-upload-")
        try:
            cine = read_uploaded_cine(files, Path(folder.name))
        except CardiacError as exc:
            folder.cleanup()
            self._show_error(str(exc))
            return
        if self._upload_dir is not None:
            self._upload_dir.cleanup()
        self._upload_dir = folder
        name = uploaded_names(files)
        self._uploaded = (name, cine)
        # the case box names the upload (Load shows it again); the file input is emptied, so the same
        # file uploaded again is read again
        self.state.cases = [*self._case_list, name]
        self.state.case_name = name
        self.state.upload = None
        self._show_cine(self.scene_logic.load_cine(cine, name="cine"), name)

    def download_csv(self):
        """``indices.csv`` of the shown result, as ``cardiac-mtl analyze`` writes it."""
        result = self.scene_logic.result
        if result is None:
            return None
        return self.server.protocol.addAttachment(indices_csv_text(result).encode("utf-8"))

    def download(self, kind: str):
        """The file ``kind`` of :func:`~.resources.result_files` for the shown result."""
        path = self._downloads.get(kind)
        if path is None or not path.is_file():
            return None
        return self.server.protocol.addAttachment(path.read_bytes())

    def _update_landmark_screen(self) -> None:
        """Where each shown landmark is in the slice view (a hidden element the browser tests drag from)."""
        frame = self.scene_logic.frame if self.scene_logic.cine_nodes is not None else None
        node = self.scene_logic.nodes.landmarks.get(frame) if frame is not None else None
        self.state.landmark_screen = display.landmark_screen(self._view(self.slice_view_def), node)

    def jump_to_landmark(self, index: int = 0):
        """Show landmark ``index`` of the result: its frame, and its slice in the slice view (to drag it)."""
        found = self.scene_logic.landmark_point(int(index))
        if found is None:
            return
        node, point = found
        frame = self.scene_logic.landmark_frame(int(index))
        self.state.frame = frame
        self._on_frame(frame)
        ras = [0.0, 0.0, 0.0]
        node.GetNthControlPointPosition(point, ras)
        self._view(self.slice_view_def).get_view_node().JumpSliceByOffsetting(*ras)
        display.keep_out_of_view(
            self.slicer_app.scene, self._view(self.atlas_view_def), keep=[self.atlas_scene.model]
        )
        self._update_landmark_screen()


def main(
    port: int = 8080,
    host: str = "127.0.0.1",
    acdc_dir: Path | None = None,
    atlas_dir: Path | None = None,
    device: str = "auto",
    open_browser: bool = False,
    precision: str = "auto",
) -> None:
    """Start the app and serve it at ``http://host:port`` until interrupted."""
    if not os.environ.get("DISPLAY"):
        # no X server: render Slicer's views off screen through EGL rather than failing over from X11
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    log_to()
    quiet_closed_tabs()
    app = CardiacWebApp(acdc_dir=acdc_dir, atlas_dir=atlas_dir, device=device, precision=precision)
    print(
        f"CardiacMTL app on http://{host}:{port}/ (device: loading; Ctrl+C stops). Single-user mode: "
        "every browser tab shows the same study.",
        flush=True,
    )
    # timeout=0: the server keeps running when the last tab closes (a reload or a second tab finds it)
    app.server.start(port=port, host=host, open_browser=open_browser, timeout=0)
