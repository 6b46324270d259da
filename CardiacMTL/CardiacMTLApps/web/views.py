"""The browser app's page: the drawer with the case, the analysis, the results and the atlas sliders, and
Slicer's views beside it. Layout only: every control calls an action of :class:`~.app.CardiacWebApp` and
every text is a state value (:mod:`.state`).

Controls carry stable element ids (``ELEMENT_IDS``) so the browser tests do not depend on the layout.
"""

from __future__ import annotations

from CardiacMTLApps.web.state import N_MODE_SLIDERS

ELEMENT_IDS = {
    "case": "case-select",
    "load": "load-case",
    "upload": "upload-input",
    "analyze": "analyze-button",
    "confirm_replace": "confirm-replace-text",
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
    "height": "height-input",
    "sex": "sex-input",
    "weight": "weight-input",
    "case_shown": "case-shown",
    "legend": "legend",
    "downloads": "downloads",
    "slice_orientation": "slice-orientation",
    "threed_view": "threed-view",
    "brush_mode": "brush-mode",
    "brush_label": "brush-label",
    "brush_diameter": "brush-diameter",
    "update_results": "update-results",
    "undo_edits": "undo-edits",
    "analyses_started": "analyses-started",
    "reset_atlas": "reset-atlas",
    "frame_label": "frame-label",
    "mode": "session-mode",
    "window": "window-level",
    "figures": "result-figures",
    "surfaces": "show-surfaces",
    "play": "cine-play",
}


def build_ui(app):
    """The page of ``app`` (a :class:`~.app.CardiacWebApp`); returns the trame layout."""
    from trame.ui.vuetify3 import SinglePageWithDrawerLayout
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3

    ids = ELEMENT_IDS
    with SinglePageWithDrawerLayout(app.server, theme="dark", width=430) as layout:
        layout.title.set_text("CardiacMTL")
        layout.footer.hide()  # the views reach the bottom: the slice view's own slider stays visible
        with layout.toolbar:
            v3.VSpacer()
            html.Span(
                "single-user mode: every tab shows the same study",
                id=ids["mode"],
                classes="text-caption mr-4",
            )
            html.Span("{{ device }}", id=ids["device"], classes="text-caption mr-4")
        with layout.drawer, html.Div(classes="pa-3", style="font-size: 0.9rem;"):
            _case_controls(app, ids, html, v3)
            v3.VDivider(classes="my-2")
            with html.Div(v_show=("has_result",)):
                _results(app, ids, html, v3)
            v3.VDivider(classes="my-2")
            _atlas_sliders(app, ids, html, v3)
        with layout.content:
            with html.Div(style="width: 100%; height: calc(100vh - 64px);", id="views"):
                app.layout_manager.initialize_layout_grid(layout)
    return layout


def _case_controls(app, ids, html, v3) -> None:
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
        v3.VBtn("Load", id=ids["load"], click=app.load_case, disabled=("running",), size="small")
    with v3.VFileInput(
        id=ids["upload"],
        v_model=("upload",),
        label="or upload a cine (NIfTI, a zip, ACDC or DICOM files)",
        multiple=True,
        density="compact",
        hide_details=True,
        classes="mt-2",
        disabled=("running",),
    ):
        # hundreds of DICOM files: their number, not every name
        with v3.Template(v_slot_selection="{ fileNames }"):
            html.Span("{{ fileNames.length === 1 ? fileNames[0] : fileNames.length + ' files' }}")
    with html.Div(classes="d-flex align-center mt-1", v_show=("case_loaded",)):
        html.Span("window", classes="text-caption mr-2")
        v3.VRangeSlider(
            id=ids["window"], v_model=("window_range",), min=("intensity_range[0]",),
            max=("intensity_range[1]",), step=("intensity_step",), density="compact", hide_details=True,
        )  # fmt: skip
    with html.Div(classes="d-flex mt-2"):
        v3.VTextField(
            id=ids["height"], v_model=("height_cm",), label="height (cm)", type="number",
            density="compact", hide_details=True, classes="mr-2", disabled=("running",),
        )  # fmt: skip
        v3.VTextField(
            id=ids["weight"], v_model=("weight_kg",), label="weight (kg)", type="number",
            density="compact", hide_details=True, classes="mr-2", disabled=("running",),
        )  # fmt: skip
        v3.VSelect(
            id=ids["sex"], v_model=("sex",), items=("sex_items",), label="sex", density="compact",
            hide_details=True, disabled=("running",), style="max-width: 9em;",
        )  # fmt: skip
    html.Div("{{ case_name_shown }}", id=ids["case_shown"], classes="text-caption mt-1")
    # the slice view's axes in RAS, for the browser tests to compare with the image's direction (hidden)
    html.Div("{{ JSON.stringify(slice_orientation) }}", id=ids["slice_orientation"], style="display: none;")
    v3.VBtn(
        "{{ running ? 'Cancel' : (confirm_replace ? 'Replace my edits' : 'Segment & diagnose') }}",
        id=ids["analyze"],
        click=(app.on_analyze, "[running]"),  # what the button showed: a late Cancel starts nothing
        color=("running ? 'warning' : 'primary'",),
        disabled=("!case_loaded",),
        block=True,
        classes="mt-3",
    )
    v3.VProgressLinear(
        id=ids["progress"], model_value=("progress",), v_show=("running",), height=6, classes="mt-1"
    )
    html.Div(
        "{{ confirm_replace }}", id=ids["confirm_replace"], v_show=("confirm_replace",),
        classes="text-warning text-caption mt-1",
    )  # fmt: skip
    html.Div("{{ status }}", id=ids["status"], classes="text-caption mt-1")
    html.Div("{{ analyses_started }}", id=ids["analyses_started"], style="display: none;")
    html.Div("{{ error }}", id=ids["error"], v_show=("error",), classes="text-error text-caption")
    html.Div(
        "{{ analysis_seconds === null ? '' : 'click to results: ' + analysis_seconds + ' s (CPU ' + "
        "analysis_cpu_seconds + ' s)' }}",
        id=ids["timing"],
        classes="text-caption",
    )
    with html.Div(v_show=("case_loaded && n_frames > 1",), classes="mt-2"):
        html.Div("{{ frame_label }}", id=ids["frame_label"], classes="text-caption")
        with html.Div(classes="d-flex align-center"):
            v3.VBtn(
                icon=("playing ? 'mdi-pause' : 'mdi-play'",), id=ids["play"], click=app.toggle_play,
                size="x-small", variant="tonal", classes="mr-2",
            )  # fmt: skip
            with html.Div(id=ids["frame"], style="flex: 1;"):  # the id on the slider's box
                v3.VSlider(
                    v_model=("frame",), min=0, max=("n_frames - 1",), step=1, density="compact",
                    hide_details=True,
                )  # fmt: skip


def _results(app, ids, html, v3) -> None:
    with html.Div(id=ids["legend"], classes="d-flex mb-1 text-caption"):
        with html.Span(v_for="l in legend", key="l.name", classes="mr-3"):
            html.Span("■ ", style=("{ color: l.colour }",))
            html.Span("{{ l.name }}")
    html.Div("Diagnosis", classes="text-subtitle-2")
    html.Div("{{ diagnosis_text }}", id=ids["diagnosis"], classes="text-h6")
    with html.Div(id=ids["probabilities"], classes="d-flex flex-wrap"):
        html.Span("{{ p }}", v_for="p in probabilities", key="p", classes="mr-3 text-caption")
    with v3.VTable(id=ids["criteria"], density="compact", classes="text-caption"):
        with html.Tbody(), html.Tr(v_for="c in criteria"):
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
        with html.Tbody(), html.Tr(v_for="row in indices_rows", key="row.metric"):
            html.Td("{{ row.metric }}")
            html.Td("{{ row.value }}")
            html.Td("{{ row.unit }}")
    v3.VBtn(
        "Download indices.csv",
        id=ids["download_csv"],
        size="small",
        classes="mt-2",
        click=f"utils.download('indices.csv', trigger('{app.ctrl.trigger_name(app.download_csv)}'), 'text/csv')",
    )
    with html.Div(id=ids["downloads"], classes="d-flex flex-wrap mt-1"):
        v3.VBtn(
            "{{ d.name }}",
            v_for="d in downloads",
            key="d.kind",
            id=("`dl-${d.kind}`",),
            size="x-small",
            variant="tonal",
            classes="mr-1 mb-1",
            click=f"utils.download(d.name, trigger('{app.ctrl.trigger_name(app.download)}', [d.kind]), d.type)",
        )
    html.Div("Landmarks", classes="text-subtitle-2 mt-2")
    # one line per landmark, slice and phase: a scrolling box, so the figures and editing stay in reach
    with html.Div(id=ids["landmarks"], classes="text-caption", style="max-height: 9em; overflow-y: auto;"):
        html.Div("none found", v_if=("landmark_rows.length === 0",))
        html.Div(
            "{{ lm.text }}",
            v_for="lm in landmark_rows",
            key="lm.index",
            id=("`landmark-${lm.index}`",),
            click=(app.jump_to_landmark, "[lm.index]"),
            style="cursor: pointer;",
        )
    # where each landmark is on the slice view, for the browser tests to drag one (hidden)
    html.Div("{{ JSON.stringify(landmark_screen) }}", id="landmark-screen", style="display: none;")
    html.Div("{{ fit_text }}", id=ids["fit"], classes="text-caption mt-1")
    with html.Div(id=ids["figures"], classes="mt-2"):
        html.Img(src=("figures.volume",), v_if=("figures.volume",), id="volume-curve", style="width: 100%;")
        html.Img(src=("figures.strain",), v_if=("figures.strain",), id="strain-curves", style="width: 100%;")
        html.Img(src=("figures.bullseye",), v_if=("figures.bullseye",), id="bullseye", style="width: 100%;")
    _editing(app, ids, html, v3)


def _editing(app, ids, html, v3) -> None:
    html.Div("Correct the segmentation (shown frame)", classes="text-subtitle-2 mt-2")
    with html.Div(classes="d-flex align-center"):
        with v3.VBtnToggle(
            id=ids["brush_mode"], v_model=("brush_mode",), mandatory=True, density="compact", classes="mr-2"
        ):
            v3.VBtn("off", value="off", id="brush-off", size="small")
            v3.VBtn("paint", value="paint", id="brush-paint", size="small")
            v3.VBtn("erase", value="erase", id="brush-erase", size="small")
        v3.VSelect(
            id=ids["brush_label"], v_model=("brush_label",), items=("brush_labels",),
            density="compact", hide_details=True, classes="mr-2",
        )  # fmt: skip
        v3.VTextField(
            id=ids["brush_diameter"], v_model=("brush_diameter_mm",), label="brush (mm)", type="number",
            density="compact", hide_details=True, style="max-width: 90px;",
        )  # fmt: skip
    with html.Div(classes="d-flex mt-1"):
        v3.VBtn(
            "Update results", id=ids["update_results"], click=app.update_results, size="small",
            disabled=("running",), classes="mr-2",
        )  # fmt: skip
        v3.VBtn("Undo edits", id=ids["undo_edits"], click=app.undo_edits, size="small", disabled=("running",))


def _atlas_sliders(app, ids, html, v3) -> None:
    html.Div("Shape atlas: {{ atlas_name }}", classes="text-subtitle-2")
    for k in range(N_MODE_SLIDERS):
        html.Div(
            f"mode {k + 1} ({{{{ mode_explained[{k}] }}}}): {{{{ mode_{k}.toFixed(1) }}}} SD",
            classes="text-caption",
        )
        with html.Div(id=f"mode-slider-{k + 1}"):  # the id on the slider's box, not its hidden input
            v3.VSlider(v_model=(f"mode_{k}",), min=-3, max=3, step=0.1, density="compact", hide_details=True)
    html.Div("{{ atlas_shape_text }}", id=ids["atlas_volume"], classes="text-caption")
    v3.VBtn(
        "Reset to the mean shape", id=ids["reset_atlas"], click=app.reset_atlas, size="small", classes="mt-1"
    )
