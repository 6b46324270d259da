"""``cardiac-mtl app``: the browser app on trame-slicer, with Slicer's own slice and 3D views.

A thin entry point like the desktop module: it holds a trame server, one :class:`SlicerApp` scene and the
panel; everything that touches the scene goes through :class:`CardiacMTLLib.scene.CardiacScene` and
:class:`CardiacAtlasLib.scene.AtlasScene`, everything that computes goes through ``pipeline.analyze``.
The network and the diagnosis classifier are loaded once in the background when the server starts, so
a click on **Segment & diagnose** pays only for the analysis itself.

Controls carry stable element ids (``ELEMENT_IDS``) so the browser tests do not depend on the layout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from CardiacMTLLib.errors import CardiacCancelled, CardiacError

logger = logging.getLogger(__name__)

DEMO_CASE = "Synthetic demo cine (generated)"
DEFAULT_ACDC = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "acdc"
DEFAULT_CAP_ATLAS = DEFAULT_ACDC.parent / "cap_lv_atlas_mesa"
N_MODE_SLIDERS = 3
ELEMENT_IDS = {
    "case": "case-select",
    "load": "load-case",
    "upload": "upload-input",
    "analyze": "analyze-button",
    "progress": "analysis-progress",
    "status": "status-text",
    "error": "error-text",
    "device": "device-text",
    "diagnosis": "diagnosis-text",
    "probabilities": "diagnosis-probabilities",
    "criteria": "diagnosis-criteria",
    "indices": "indices-table",
    "qc": "qc-warnings",
    "landmarks": "landmark-list",
    "frame": "frame-slider",
    "atlas_volume": "atlas-shape-text",
    "fit": "lv-fit-text",
    "download_csv": "download-csv",
    "timing": "analysis-time",
    "slice_view": "slice-view",
    "threed_view": "threed-view",
}


def _lowest_priority() -> None:
    """Run the calling thread at the lowest CPU priority (Linux: per-thread nice; elsewhere unchanged)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Engine:
    """Model, classifier and atlas, loaded once (in a thread) and shared by every analysis."""

    def __init__(self, device: str = "auto", precision: str = "auto"):
        self.device, self.precision = device, precision
        self.model = None
        self.classifier = None
        self.device_text = "loading the network ..."
        self.error: str | None = None
        self.ready = Future()

    def load(self) -> None:
        try:
            from CardiacMTLLib.analysis.diagnosis.classifiers import load_classifier
            from CardiacMTLLib.models.registry import load_model

            self.model = load_model(device=self.device, precision=self.precision)
            self.classifier = load_classifier()
            self.classifier.fit_all()
            # shown only once everything is loaded, so the panel's device line also says "ready"
            self.device_text = self.model.device_text
            self.ready.set_result(True)
        except Exception as exc:  # shown in the panel; the server keeps running
            self.error = f"could not load the network: {exc}"
            self.device_text = self.error
            self.ready.set_result(False)


def load_app_atlas(atlas_dir: str | Path | None) -> tuple:
    """``(atlas, name)`` for the atlas panel: ``atlas_dir`` (a ``cardiac-atlas build``/``import-cap`` folder,
    or the CAP release's folder with ``PCA_ED.mat``, ``PCA_ES.mat``, ``SurfaceFaces.mat``); without one, the
    published CAP MESA atlas when it lies beside the ACDC data, else a small synthetic atlas."""
    from CardiacAtlasLib.atlas_io import read_atlas
    from CardiacAtlasLib.cap import cap_release_files, read_cap_atlas

    if atlas_dir is not None:
        files = cap_release_files(atlas_dir)
        if files:
            return read_cap_atlas(*files), f"CAP MESA LV atlas ({atlas_dir})"
        return read_atlas(Path(atlas_dir)), str(atlas_dir)
    files = cap_release_files(DEFAULT_CAP_ATLAS)
    if files:
        atlas = read_cap_atlas(*files)
        return atlas, f"CAP MESA LV atlas ({len(atlas.scores_):,} cases)"
    return default_atlas(), "synthetic demo atlas (40 generated LV shapes)"


def default_atlas():
    """A small atlas for the sliders: synthetic LV shapes with known modes (no data needed)."""
    from CardiacAtlasLib.atlas import build_atlas
    from CardiacAtlasLib.synthetic import sample_shapes, synthetic_shape_model

    model = synthetic_shape_model()
    shapes, _ = sample_shapes(model, 40, seed=0)
    return build_atlas(
        shapes,
        [f"synthetic_{i:02d}" for i in range(len(shapes))],
        model.faces_endo,
        model.faces_epi,
        model.n_endo,
        n_modes=8,
    )


def list_cases(acdc_dir: Path | None) -> list[str]:
    cases = [DEMO_CASE]
    if acdc_dir is not None and acdc_dir.is_dir():
        cases += sorted(p.name for p in acdc_dir.iterdir() if (p / "Info.cfg").is_file())
    return cases


def indices_csv_bytes(result) -> bytes:
    """``indices.csv`` exactly as ``cardiac-mtl analyze`` writes it (via ``pipeline.write_outputs``)."""
    from CardiacMTLLib.outputs import write_outputs

    with tempfile.TemporaryDirectory() as tmp:
        out = write_outputs(result, Path(tmp) / "analysis")
        return (out / "indices.csv").read_bytes()


def read_uploaded_cine(files: list[dict], folder: Path):
    """Write uploaded files into ``folder`` and read them as one cine (a NIfTI file, an ACDC or DICOM set)."""
    from trame.app.file_upload import ClientFile

    from CardiacMTLLib.io.cine import read_cine

    paths = []
    for file in files:
        client_file = ClientFile(file)
        path = folder / Path(client_file.name).name
        path.write_bytes(client_file.content)
        paths.append(path)
    if len(paths) == 1 and paths[0].name.endswith((".nii", ".nii.gz")):
        return read_cine(paths[0])
    return read_cine(folder)


class CardiacWebApp:
    """The trame server, the Slicer scene with its views, and the panel's state and actions."""

    def __init__(
        self,
        server=None,
        acdc_dir: Path | None = DEFAULT_ACDC,
        atlas_dir: Path | None = None,
        device: str = "auto",
        precision: str = "auto",
    ):
        from trame.app import get_server
        from trame_slicer.core import LayoutManager, SlicerApp
        from trame_slicer.rca_view import register_rca_factories
        from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

        from CardiacAtlasLib.scene import AtlasScene
        from CardiacMTLLib.scene.cardiac import CardiacScene, ModuleLogics

        self.server = get_server(server, client_type="vue3")
        self.state, self.ctrl = self.server.state, self.server.controller
        self.acdc_dir = Path(acdc_dir) if acdc_dir else None
        self.slicer_app = SlicerApp()
        import slicer

        sequences = self.slicer_app.register_module_logic(slicer.vtkSlicerSequencesLogic())
        self.scene_logic = CardiacScene(
            self.slicer_app.scene, ModuleLogics(sequences, self.slicer_app.segmentations_logic)
        )
        self.scene_logic.add_listener(self._on_result_changed)
        register_rca_factories(self.slicer_app.view_manager, self.server)
        self.layout_manager = LayoutManager(self.slicer_app.scene, self.slicer_app.view_manager, self.server)
        self.slice_view_def = ViewLayoutDefinition.axial_view()
        self.threed_view_def = ViewLayoutDefinition.threed_view()
        # the atlas lives in its own coordinates: its shape gets a 3D view of its own
        self.atlas_view_def = ViewLayoutDefinition.threed_view(name="AtlasThreeD", label="atlas")
        self.layout_manager.register_layout_dict(
            {
                "cardiac": Layout(
                    LayoutDirection.Horizontal,
                    [
                        self.slice_view_def,
                        Layout(LayoutDirection.Vertical, [self.threed_view_def, self.atlas_view_def]),
                    ],
                )
            }
        )
        self.layout_manager.set_layout("cardiac")

        import torch  # noqa: F401  (imported here, not first in the loader thread: scipy probes torch.Tensor)

        self.engine = Engine(device, precision)
        threading.Thread(target=self.engine.load, daemon=True).start()
        atlas, atlas_name = load_app_atlas(atlas_dir)
        self.atlas_scene = AtlasScene(self.slicer_app.scene, atlas, n_sliders=N_MODE_SLIDERS)
        self._show_only_in(self.atlas_scene.model, [self.atlas_view_def])
        self.fit_models: dict = {}
        self._cancel = threading.Event()
        self._fit_executor = ThreadPoolExecutor(1, thread_name_prefix="lv-fit", initializer=_lowest_priority)
        self._running = False
        self._analysis_started = 0.0

        s = self.state
        s.trame__title = "CardiacMTL"
        s.cases = list_cases(self.acdc_dir)
        s.case_name = DEMO_CASE
        s.upload = None
        s.running = False
        s.progress = 0
        s.status = "Choose a case and press Load."
        s.error = ""
        s.device = self.engine.device_text
        s.case_loaded = False
        s.has_result = False
        s.diagnosis_text = ""
        s.probabilities = []
        s.criteria = []
        s.indices_rows = []
        s.qc_rows = []
        s.landmark_rows = []
        s.landmark_screen = []
        s.frame = 0
        s.n_frames = 1
        s.frame_label = ""
        s.analysis_seconds = None
        s.analysis_cpu_seconds = None
        s.atlas_name = atlas_name
        s.mode_explained = [f"{100 * f:.1f} %" for f in atlas.explained_variance_ratio_[:N_MODE_SLIDERS]]
        for k in range(N_MODE_SLIDERS):
            s[f"mode_{k}"] = 0.0
        s.atlas_shape_text = self._atlas_text()
        s.fit_text = ""
        s.change("frame")(self._on_frame)
        s.change(*[f"mode_{k}" for k in range(N_MODE_SLIDERS)])(self._on_modes)
        s.change("upload")(self._on_upload)
        self._build_ui()
        self.server.controller.on_server_ready.add(self._on_ready)

    # ------------------------------------------------------------------------------------------ views
    def _show_only_in(self, node, view_defs) -> None:
        ids = [self.slicer_app.view_manager.get_view(v.singleton_tag).get_view_node_id() for v in view_defs]
        for n in range(node.GetNumberOfDisplayNodes()):
            node.GetNthDisplayNode(n).SetViewNodeIDs(ids)

    def _atlas_view(self):
        return self.slicer_app.view_manager.get_view(self.atlas_view_def.singleton_tag)

    def _slice_view(self):
        return self.slicer_app.view_manager.get_view(self.slice_view_def.singleton_tag)

    def _threed_view(self):
        return self.slicer_app.view_manager.get_view(self.threed_view_def.singleton_tag)

    def _on_ready(self, **_):
        self._atlas_view().reset_view()  # frame the atlas shape
        asyncio.ensure_future(self._poll_engine())

    async def _poll_engine(self):
        while not self.engine.ready.done():
            await asyncio.sleep(0.2)
        with self.state:
            self.state.device = self.engine.device_text
            if self.engine.error:
                self.state.error = self.engine.error

    # -------------------------------------------------------------------------------------- actions
    def load_case(self, name: str | None = None):
        """Load the chosen case (demo or an ACDC patient) into the scene."""
        name = name or self.state.case_name
        from CardiacMTLLib.io.cine import read_cine
        from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

        try:
            if name == DEMO_CASE:
                cine = generate_synthetic_cine(seed=0, num_frames=12, shape=(160, 160, 8)).cine
            else:
                cine = read_cine(self.acdc_dir / name)
        except CardiacError as exc:
            self._show_error(str(exc))
            return
        self._show_cine(cine, name)

    def _show_cine(self, cine, name: str) -> None:
        self._clear_result_state()
        nodes = self.scene_logic.load_cine(cine, name="cine")
        self.slicer_app.display_manager.show_volume_in_slice_background(nodes.volume)
        self.slicer_app.display_manager.show_volume_in_slice_foreground(None)
        self._slice_view().set_visible_in_3d(True)
        self.slicer_app.display_manager.reset_views()
        s = self.state
        s.case_loaded = True
        s.n_frames = cine.num_frames
        s.frame = 0
        s.frame_label = self._frame_label(0)
        s.status = (
            f"Loaded {name}: {cine.num_frames} frame(s) × {cine.num_slices} slices, "
            f"{cine.data.shape[2]} × {cine.data.shape[3]} pixels of "
            f"{cine.spacing_mm[0]:.2f} × {cine.spacing_mm[1]:.2f} × {cine.spacing_mm[2]:.1f} mm."
        )
        s.error = ""

    def _clear_result_state(self) -> None:
        s = self.state
        s.has_result = False
        s.diagnosis_text = ""
        s.probabilities, s.criteria, s.indices_rows, s.qc_rows = [], [], [], []
        s.landmark_rows, s.landmark_screen = [], []
        s.analysis_seconds = s.analysis_cpu_seconds = None
        s.fit_text = ""
        s.progress = 0
        for model in self.fit_models.values():
            if self.slicer_app.scene.IsNodePresent(model):
                self.slicer_app.scene.RemoveNode(model)
        self.fit_models = {}

    def _show_error(self, message: str) -> None:
        self.state.error = message
        self.state.status = "Error."
        logger.error(message)

    async def on_analyze(self):
        """Segment & diagnose, or Cancel while it runs."""
        if self._running:
            self._cancel.set()
            with self.state:
                self.state.status = "Cancelling ..."
            return
        cine = self.scene_logic.cine
        if cine is None:
            with self.state:
                self._show_error("Load a case first.")
            return
        self._running = True
        self._cancel.clear()
        self._analysis_started = time.perf_counter()
        cpu_started = time.process_time()
        with self.state:
            self.state.running = True
            self.state.progress = 0
            self.state.error = ""
            self.state.status = "Segmenting ..."
        loop = asyncio.get_running_loop()

        def progress(done: int, total: int) -> None:
            if self._cancel.is_set():
                raise CardiacCancelled("analysis cancelled by the user")
            loop.call_soon_threadsafe(self._set_progress, done, total)

        def work():
            self.engine.ready.result()  # the network may still be loading at start-up
            if self.engine.error:
                raise CardiacError(self.engine.error)
            from CardiacMTLLib.pipeline import analyze

            return analyze(
                cine, model=self.engine.model, classifier=self.engine.classifier, progress=progress
            )

        try:
            result = await loop.run_in_executor(None, work)
            analysed = time.perf_counter()
            self._attach_landmarks(result)
            with self.state:
                self._show_result(result)
                self.state.analysis_seconds = round(time.perf_counter() - self._analysis_started, 2)
                # the process's CPU time (all its threads): the wall time to expect on an idle machine
                self.state.analysis_cpu_seconds = round(time.process_time() - cpu_started, 2)
                self.state.status = (
                    f"Done in {self.state.analysis_seconds:.2f} s ({self.state.analysis_cpu_seconds:.2f} s of "
                    f"CPU): analysis {analysed - self._analysis_started:.2f} s, display "
                    f"{time.perf_counter() - analysed:.2f} s."
                )
                logger.info("%s", self.state.status)
        except CardiacCancelled:
            with self.state:
                self.state.status = "Cancelled; nothing was changed."
        except CardiacError as exc:
            with self.state:
                self._show_error(str(exc))
        finally:
            self._running = False
            with self.state:
                self.state.running = False
        if self.scene_logic.result is not None:
            await self._fit_lv_model()

    def _set_progress(self, done: int, total: int) -> None:
        with self.state:
            self.state.progress = round(100 * done / max(total, 1))
            self.state.status = f"Segmenting frame {done} of {total} ..."

    def _attach_landmarks(self, result) -> None:
        """Landmarks from the library when it has them (the result gains ``landmarks``)."""
        if getattr(result, "landmarks", None) is not None:
            return
        try:
            from CardiacMTLLib.analysis.landmarks import rv_insertion as landmark_lib

            finder = getattr(landmark_lib, "detect_landmarks", None) or getattr(
                landmark_lib, "analysis_landmarks", None
            )
            result.landmarks = finder(result) if finder is not None else []
        except Exception as exc:  # landmarks are an extra: the analysis stands without them
            logger.warning("no landmarks: %s", exc)
            result.landmarks = []

    def _show_result(self, result) -> None:
        nodes = self.scene_logic.show_result(result)
        for markups in nodes.landmarks.values():  # one stack of labels per frame would clutter the 3D views
            self._show_only_in(markups, [self.slice_view_def])
        self.slicer_app.display_manager.reset_views()
        self.state.has_result = True
        self.state.frame = result.ed_index
        self._fill_panel(result)

    def _fill_panel(self, result) -> None:
        s = self.state
        diagnosis = result.diagnosis or {}
        if diagnosis.get("class"):
            s.diagnosis_text = f"{diagnosis['class']}: {diagnosis.get('class_name', '')}"
            s.probabilities = [
                {"cls": c, "p": round(100 * p, 1)} for c, p in (diagnosis.get("probabilities") or {}).items()
            ]
            s.criteria = [
                {
                    "cls": c.get("class"),
                    "index": c.get("index"),
                    "rule": c.get("rule"),
                    "value": _fmt(c.get("value")),
                    "status": c.get("status"),
                }
                for c in diagnosis.get("criteria") or []
            ]
        else:
            s.diagnosis_text = f"No diagnosis: {diagnosis.get('error', 'not computed')}"
            s.probabilities, s.criteria = [], []
        from CardiacMTLLib.scene.cardiac import split_metric

        s.indices_rows = [
            {"metric": split_metric(k)[0], "value": _fmt(v), "unit": split_metric(k)[1]}
            for k, v in result.indices.items()
        ]
        s.qc_rows = [
            f"frame {f['frame']}"
            + ("" if f.get("slice") is None else f" slice {f['slice']}")
            + f": {f['problem']}"
            for f in result.qc
        ]
        s.landmark_rows = [
            {
                "label": lm.get("label"),
                "frame": lm.get("frame"),
                "slice": lm.get("slice"),
                "edited": bool(lm.get("edited")),
                "ijk": ", ".join(f"{v:.1f}" for v in lm.get("ijk", [])),
                "index": i,
            }
            for i, lm in enumerate(getattr(result, "landmarks", None) or [])
        ]
        s.device = result.provenance.get("device", self.engine.device_text)
        s.frame_label = self._frame_label(s.frame)
        self._update_landmark_screen()

    def _on_result_changed(self, result) -> None:
        """A landmark was moved in a view: the scene logic has updated the result; refresh the panel."""
        with self.state:
            self._fill_panel(result)
            self.state.status = "Landmark edited; indices updated."
        asyncio.ensure_future(self._fit_lv_model())

    async def _fit_lv_model(self):
        """Fit the LV model to the result (in a thread) and show it in 3D with the patient's mode scores."""
        result = self.scene_logic.result
        try:
            from CardiacAtlasLib.fit import fit_analysis
        except ImportError:
            return
        with self.state:
            self.state.fit_text = "Fitting the LV model ..."
        try:
            # background work on its own lowest-priority thread: an analysis the user starts meanwhile gets
            # the CPU first, and the fit stops between frames once the case changed or a new analysis
            # started (it would be thrown away)
            fits = await asyncio.get_running_loop().run_in_executor(
                self._fit_executor,
                lambda: fit_analysis(
                    result, should_stop=lambda: self._running or result is not self.scene_logic.result
                ),
            )
        except CardiacCancelled:
            return
        except Exception as exc:  # the model is an extra view of the result
            with self.state:
                self.state.fit_text = f"LV model not fitted: {exc}"
            return
        if result is not self.scene_logic.result:
            return  # a newer result (edit, new case) replaced this one while fitting
        from CardiacAtlasLib.scene import add_lv_fits

        with self.state:
            self.fit_models = add_lv_fits(self.slicer_app.scene, fits, self.fit_models)
            for model in self.fit_models.values():
                self._show_only_in(model, [self.slice_view_def, self.threed_view_def])
            parts = []
            for phase, fit in fits.items():
                parts.append(f"{phase}: cavity {fit.mesh.endo_cavity_volume_ml:.0f} mL")
            try:
                scores = self.atlas_scene.project_case({p: f.mesh for p, f in fits.items()})
                sd = scores[:N_MODE_SLIDERS] / self.atlas_scene.atlas.sd_mm_[:N_MODE_SLIDERS]
                parts.append("mode scores " + ", ".join(f"{v:+.1f} SD" for v in sd))
            except CardiacError as exc:
                parts.append(f"no mode scores ({exc})")
            self.state.fit_text = "LV model " + "; ".join(parts)
            self._threed_view().reset_view()
            self._threed_view().schedule_render()

    def _on_frame(self, frame, **_):
        if self.scene_logic.cine_nodes is None:
            return
        frame = int(frame)
        if frame != self.scene_logic.frame:
            self.scene_logic.set_frame(frame)
        self.state.frame_label = self._frame_label(frame)
        self._update_landmark_screen()

    def _frame_label(self, index: int) -> str:
        cine = self.scene_logic.cine
        if cine is None:
            return ""
        label = f"frame {cine.frame_numbers[index]} ({index + 1}/{cine.num_frames})"
        result = self.scene_logic.result
        if result is not None:
            label += " ED" if index == result.ed_index else " ES" if index == result.es_index else ""
        return label

    def _on_modes(self, **kwargs):
        values = {k: float(self.state[f"mode_{k}"] or 0.0) for k in range(N_MODE_SLIDERS)}
        self.atlas_scene.set_mode_sd(values)
        self.state.atlas_shape_text = self._atlas_text()
        view = self._atlas_view()
        if view is not None:
            view.schedule_render()

    def _atlas_text(self) -> str:
        cavity, epi = self.atlas_scene.shape_volumes_ml()
        sd = ", ".join(f"{v:+.1f}" for v in self.atlas_scene.sd)
        return f"Shape at ({sd}) SD: cavity {cavity:.1f} mL, myocardium {epi - cavity:.1f} mL"

    def _on_upload(self, upload, **_):
        if not upload:
            return
        files = upload if isinstance(upload, list) else [upload]
        with tempfile.TemporaryDirectory() as tmp:
            try:
                cine = read_uploaded_cine(files, Path(tmp))
            except CardiacError as exc:
                self._show_error(str(exc))
                return
        self._show_cine(cine, ", ".join(f.get("name", "upload") for f in files))

    def download_csv(self):
        result = self.scene_logic.result
        if result is None:
            return None
        return self.server.protocol.addAttachment(indices_csv_bytes(result))

    def _update_landmark_screen(self) -> None:
        """Where each shown landmark is in the slice view, in CSS pixels from its top-left corner.

        Used by the browser tests to drag a point; harmless for users (a hidden element).
        """
        view = self._slice_view()
        points = []
        frame = self.scene_logic.frame if self.scene_logic.cine_nodes is not None else None
        node = self.scene_logic.nodes.landmarks.get(frame) if frame is not None else None
        if view is not None and node is not None:
            import vtk

            slice_node = view.get_view_node()
            xy_to_ras = vtk.vtkMatrix4x4()
            xy_to_ras.DeepCopy(slice_node.GetXYToRAS())
            xy_to_ras.Invert()
            height = slice_node.GetDimensions()[1]
            normal = np.array([slice_node.GetSliceToRAS().GetElement(r, 2) for r in range(3)])
            origin = np.array([slice_node.GetSliceToRAS().GetElement(r, 3) for r in range(3)])
            for n in range(node.GetNumberOfControlPoints()):
                ras = np.zeros(3)
                node.GetNthControlPointPosition(n, ras)
                x, y, _, _ = xy_to_ras.MultiplyPoint([*ras, 1.0])
                points.append(
                    {
                        "n": n,
                        "label": node.GetNthControlPointLabel(n),
                        "x": round(x, 1),
                        "y": round(height - y, 1),
                        "distance_mm": round(float(abs(np.dot(ras - origin, normal))), 2),
                    }
                )
        self.state.landmark_screen = points

    def jump_to_landmark(self, index: int = 0):
        """Show landmark ``index`` of the result: its frame, and its slice in the slice view (to drag it)."""
        found = self.scene_logic.landmark_point(int(index))
        if found is None:
            return
        node, point = found
        frame = self.scene_logic.landmark_frame(int(index))
        self.state.frame = frame
        self._on_frame(frame)
        ras = np.zeros(3)
        node.GetNthControlPointPosition(point, ras)
        self._slice_view().get_view_node().JumpSliceByOffsetting(*ras)
        self._update_landmark_screen()

    # -------------------------------------------------------------------------------------------- UI
    def _build_ui(self):
        from trame.ui.vuetify3 import SinglePageWithDrawerLayout
        from trame.widgets import html
        from trame.widgets import vuetify3 as v3

        ids = ELEMENT_IDS
        with SinglePageWithDrawerLayout(self.server, theme="dark", width=430) as layout:
            self.ui = layout
            layout.title.set_text("CardiacMTL")
            with layout.toolbar:
                v3.VSpacer()
                html.Span("{{ device }}", id=ids["device"], classes="text-caption mr-4")
            with layout.drawer, html.Div(classes="pa-3", style="font-size: 0.9rem;"):
                html.Div("Case", classes="text-subtitle-2")
                with html.Div(classes="d-flex align-center"):
                    v3.VAutocomplete(  # type to filter: a cohort folder holds a hundred cases
                        id=ids["case"],
                        v_model=("case_name",),
                        items=("cases",),
                        density="compact",
                        hide_details=True,
                        classes="mr-2",
                    )
                    v3.VBtn("Load", id=ids["load"], click=self.load_case, disabled=("running",), size="small")
                v3.VFileInput(
                    id=ids["upload"],
                    v_model=("upload",),
                    label="or upload a cine (NIfTI, ACDC or DICOM files)",
                    multiple=True,
                    density="compact",
                    hide_details=True,
                    classes="mt-2",
                    disabled=("running",),
                )
                v3.VBtn(
                    "{{ running ? 'Cancel' : 'Segment & diagnose' }}",
                    id=ids["analyze"],
                    click=self.on_analyze,
                    color=("running ? 'warning' : 'primary'",),
                    disabled=("!case_loaded",),
                    block=True,
                    classes="mt-3",
                )
                v3.VProgressLinear(
                    id=ids["progress"],
                    model_value=("progress",),
                    v_show=("running",),
                    height=6,
                    classes="mt-1",
                )
                html.Div("{{ status }}", id=ids["status"], classes="text-caption mt-1")
                html.Div("{{ error }}", id=ids["error"], v_show=("error",), classes="text-error text-caption")
                html.Div(
                    "{{ analysis_seconds === null ? '' : 'click to results: ' + analysis_seconds + ' s (CPU ' + analysis_cpu_seconds + ' s)' }}",
                    id=ids["timing"],
                    classes="text-caption",
                )
                with html.Div(v_show=("case_loaded && n_frames > 1",), classes="mt-2"):
                    html.Div("{{ frame_label }}", classes="text-caption")
                    v3.VSlider(
                        id=ids["frame"],
                        v_model=("frame",),
                        min=0,
                        max=("n_frames - 1",),
                        step=1,
                        density="compact",
                        hide_details=True,
                    )
                v3.VDivider(classes="my-2")
                with html.Div(v_show=("has_result",)):
                    html.Div("Diagnosis", classes="text-subtitle-2")
                    html.Div("{{ diagnosis_text }}", id=ids["diagnosis"], classes="text-h6")
                    with html.Div(id=ids["probabilities"], classes="d-flex flex-wrap"):
                        html.Span(
                            "{{ item.cls }} {{ item.p }} %",
                            v_for="item in probabilities",
                            key="item.cls",
                            classes="mr-3 text-caption",
                        )
                    with v3.VTable(id=ids["criteria"], density="compact", classes="text-caption"):
                        with html.Tbody():
                            with html.Tr(v_for="c in criteria"):
                                html.Td("{{ c.cls }}")
                                html.Td("{{ c.index }} {{ c.rule }}")
                                html.Td("{{ c.value }}")
                                html.Td("{{ c.status }}")
                    html.Div("QC warnings", classes="text-subtitle-2 mt-2")
                    with html.Div(id=ids["qc"], classes="text-caption"):
                        html.Div("none", v_if=("qc_rows.length === 0",))
                        html.Div("⚠ {{ q }}", v_for="q in qc_rows", classes="text-warning")
                    html.Div("Indices", classes="text-subtitle-2 mt-2")
                    with v3.VTable(id=ids["indices"], density="compact", classes="text-caption"):
                        with html.Thead(), html.Tr():
                            html.Th("Metric")
                            html.Th("Value")
                            html.Th("Unit")
                        with html.Tbody():
                            with html.Tr(v_for="row in indices_rows", key="row.metric"):
                                html.Td("{{ row.metric }}")
                                html.Td("{{ row.value }}")
                                html.Td("{{ row.unit }}")
                    v3.VBtn(
                        "Download indices.csv",
                        id=ids["download_csv"],
                        size="small",
                        classes="mt-2",
                        click=(
                            "utils.download('indices.csv', trigger('"
                            f"{self.ctrl.trigger_name(self.download_csv)}"
                            "'), 'text/csv')"
                        ),
                    )
                    html.Div("Landmarks", classes="text-subtitle-2 mt-2")
                    with html.Div(id=ids["landmarks"], classes="text-caption"):
                        html.Div("none found", v_if=("landmark_rows.length === 0",))
                        html.Div(
                            "{{ lm.label }} frame {{ lm.frame }} slice {{ lm.slice }} ({{ lm.ijk }})"
                            "{{ lm.edited ? ' edited' : '' }}",
                            v_for="lm in landmark_rows",
                            key="lm.index",
                            id=("`landmark-${lm.index}`",),
                            click=(self.jump_to_landmark, "[lm.index]"),
                            style="cursor: pointer;",
                        )
                    html.Div(
                        "{{ JSON.stringify(landmark_screen) }}", id="landmark-screen", style="display: none;"
                    )
                    html.Div("{{ fit_text }}", id=ids["fit"], classes="text-caption mt-1")
                v3.VDivider(classes="my-2")
                html.Div("Shape atlas: {{ atlas_name }}", classes="text-subtitle-2")
                for k in range(N_MODE_SLIDERS):
                    html.Div(
                        f"mode {k + 1} ({{{{ mode_explained[{k}] }}}}): {{{{ mode_{k}.toFixed(1) }}}} SD",
                        classes="text-caption",
                    )
                    with html.Div(
                        id=f"mode-slider-{k + 1}"
                    ):  # the id on the slider's box, not its hidden input
                        v3.VSlider(
                            v_model=(f"mode_{k}",),
                            min=-3,
                            max=3,
                            step=0.1,
                            density="compact",
                            hide_details=True,
                        )
                html.Div("{{ atlas_shape_text }}", id=ids["atlas_volume"], classes="text-caption")
            with layout.content:
                with html.Div(style="width: 100%; height: calc(100vh - 64px);", id="views"):
                    self.layout_manager.initialize_layout_grid(layout)


def main(
    port: int = 8080,
    host: str = "127.0.0.1",
    acdc_dir: Path | None = DEFAULT_ACDC,
    atlas_dir: Path | None = None,
    device: str = "auto",
    open_browser: bool = False,
    precision: str = "auto",
) -> None:
    """Start the app and serve it at ``http://host:port`` until interrupted."""
    import os

    if not os.environ.get("DISPLAY"):
        # no X server: render Slicer's views off screen through EGL rather than failing over from X11
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    app = CardiacWebApp(acdc_dir=acdc_dir, atlas_dir=atlas_dir, device=device, precision=precision)
    print(f"CardiacMTL app on http://{host}:{port}/ (device: loading; Ctrl+C stops)", flush=True)
    app.server.start(port=port, host=host, open_browser=open_browser)
