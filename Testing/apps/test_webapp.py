"""The browser app end to end, in headless Chromium: load a case, cancel an analysis, segment and diagnose it,
drag a landmark, move an atlas mode slider, download the indices.

Drives Debian's ``/usr/bin/chromium`` through playwright (never a downloaded browser). Screenshots of
each step go to ``Testing/artifacts/webapp/`` (ignored by git) for a person to look at.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from pathlib import Path

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, playwright_or_skip

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "Testing" / "artifacts" / "webapp"
ACDC = REPO_ROOT.parent / "shared" / "data" / "acdc"

playwright_api = playwright_or_skip()

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def app_url():
    from CardiacMTLApps.web.process import running_app

    data = ["--data", str(ACDC)] if (ACDC / "patient001" / "Info.cfg").exists() else []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # a busy 2-core machine may take minutes to start it; about 10 s when idle
    with running_app("--device", "cpu", *data, log_path=ARTIFACTS / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def page(app_url):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1500, "height": 950}, accept_downloads=True)
        page = context.new_page()
        page.goto(app_url)
        page.wait_for_selector("#analyze-button", timeout=60_000)
        yield page
        browser.close()


def _shot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def _text(page, element_id: str) -> str:
    return page.locator(f"#{element_id}").inner_text()


def _wait_text(page, element_id: str, predicate: str, timeout_ms: int = 120_000) -> None:
    """Wait until ``predicate`` (a JS expression of ``t``, the element's text) holds; a timeout names what
    the page showed instead (its status and error too), so a failed run says where the app stood."""
    try:
        page.wait_for_function(
            f"() => {{ const e = document.getElementById('{element_id}'); if (!e) return false;"
            f" const t = e.textContent; return {predicate}; }}",
            timeout=timeout_ms,
        )
    except playwright_api.Error as exc:
        shown = {
            i: page.locator(f"#{i}").all_text_contents() for i in (element_id, "status-text", "error-text")
        }
        _shot(page, f"timeout_{element_id}")
        raise AssertionError(
            f"{predicate} did not hold within {timeout_ms} ms; the page showed {shown}"
        ) from exc


def _choose_case(page, case: str) -> None:
    page.locator("#case-select").click()
    page.keyboard.press("Control+A")  # replace the shown case: the list filters as one types
    page.keyboard.type(case)
    page.wait_for_timeout(800)
    page.locator(".v-overlay--active .v-list-item", has_text=case).first.click()
    page.wait_for_timeout(500)


@pytest.fixture(scope="module")
def twenty_frame_cine(tmp_path_factory) -> Path:
    """A generated 20-frame short-axis cine as a 4D NIfTI file, to upload."""
    return _generated_cine(tmp_path_factory, "synthetic20_4d.nii.gz", seed=3, frames=20, shape=(160, 160, 8))


@pytest.fixture(scope="module")
def slider_cine(tmp_path_factory) -> Path:
    """A longer generated cine (30 frames of 10 slices), whose analysis outlasts six slider moves."""
    return _generated_cine(tmp_path_factory, "synthetic30_4d.nii.gz", seed=4, frames=30, shape=(176, 176, 10))


def _generated_cine(tmp_path_factory, name: str, seed: int, frames: int, shape) -> Path:
    from CardiacMTLLib.io.nifti import write_cine_nifti
    from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

    cine = generate_synthetic_cine(seed=seed, num_frames=frames, shape=shape).cine
    return write_cine_nifti(cine, tmp_path_factory.mktemp("cine") / name)


def _started(page) -> int:
    return int(page.locator("#analyses-started").text_content() or 0)


# in the page: when an element's text first satisfies ``test``, the time (performance.now()) in window.seen
WATCH_JS = """([id, test]) => {
    window.seen = null;
    const e = document.getElementById(id);
    const check = new Function('t', 'return ' + test);
    new MutationObserver((_, observer) => {
        if (window.seen === null && check(e.textContent)) { window.seen = performance.now(); observer.disconnect(); }
    }).observe(e, {childList: true, subtree: true, characterData: true});
}"""


def _upload_and_start(page, cine_path: Path) -> int:
    """Upload ``cine_path``, start Segment & diagnose and wait for its first frames; the analyses started."""
    _wait_text(page, "device-text", "t.includes('cpu') || t.includes('cuda')")
    page.locator("#upload-input").set_input_files(str(cine_path))
    _wait_text(page, "status-text", f"t.startsWith('Loaded {cine_path.name}')", timeout_ms=180_000)
    started = _started(page)
    page.locator("#analyze-button").click()
    _wait_text(page, "status-text", "t.startsWith('Segmenting frame')", timeout_ms=300_000)
    _wait_text(page, "status-text", "/frame [2-9]/.test(t)", timeout_ms=120_000)  # the network is running
    return started


def test_cancel_during_a_20_frame_analysis_stops_within_a_second_and_starts_nothing(page, twenty_frame_cine):
    started = _upload_and_start(page, twenty_frame_cine)
    assert _started(page) == started + 1
    _shot(page, "00a_running")
    page.evaluate(WATCH_JS, ["status-text", "t.startsWith('Cancelled')"])
    # the click and its clock in the page, so the interval is the app's, not playwright's round trips
    clicked = page.evaluate(
        "() => { const t = performance.now(); document.getElementById('analyze-button').click(); return t; }"
    )
    page.wait_for_function("() => window.seen !== null", timeout=60_000)
    stopped_ms = page.evaluate("() => window.seen") - clicked
    page.wait_for_timeout(3000)  # a queued click would start a second analysis by now
    _shot(page, "00b_cancelled")
    (ARTIFACTS / "cancel.json").write_text(json.dumps({"cancel_to_stopped_ms": round(stopped_ms, 1)}))
    assert stopped_ms < 1000, f"Cancel took {stopped_ms:.0f} ms to stop the analysis"
    assert _text(page, "status-text") == "Cancelled; nothing was changed."
    assert _started(page) == started + 1  # the Cancel started no analysis
    assert not page.locator("#diagnosis-text").is_visible()  # and no result appeared
    assert _text(page, "error-text").strip() == ""
    assert _text(page, "analyze-button").strip().lower() == "segment & diagnose"


# in the page: the times the slice view (the first remote view) shows a new image, in window.images
WATCH_VIEW_JS = """() => {
    window.images = [];
    const img = document.querySelector('#views img');
    new MutationObserver(() => window.images.push(performance.now()))
        .observe(img, {attributes: true, attributeFilter: ['src']});
}"""
FIRST_IMAGE_AFTER_JS = (
    "(t) => { const later = window.images.filter(x => x >= t); return later.length ? later[0] : null; }"
)


def test_the_frame_slider_answers_within_half_a_second_during_an_analysis(page, slider_cine):
    _upload_and_start(page, slider_cine)
    thumb = page.locator("#frame-slider .v-slider-thumb")
    label_ms, view_ms = [], []
    for step in range(6):
        before = _text(page, "frame-label")
        if page.locator("#analyze-button").inner_text().strip().lower() != "cancel":
            break  # the analysis has ended: every move measured began during it
        page.evaluate(WATCH_JS, ["frame-label", f"t !== {json.dumps(before)}"])
        page.evaluate(WATCH_VIEW_JS)
        key = "ArrowRight" if step % 3 != 2 else "ArrowLeft"
        moved = thumb.evaluate(
            "(el, key) => { const t = performance.now(); el.dispatchEvent(new KeyboardEvent('keydown', "
            "{key, code: key, bubbles: true})); return t; }",
            key,
        )
        page.wait_for_function(
            f"() => window.seen !== null && window.images.some(x => x >= {moved})", timeout=30_000
        )
        label_ms.append(page.evaluate("() => window.seen") - moved)
        view_ms.append(page.evaluate(FIRST_IMAGE_AFTER_JS, moved) - moved)
        page.wait_for_timeout(300)
    _shot(page, "00c_slider_during_run")
    assert len(label_ms) >= 3, f"the analysis ended after {len(label_ms)} slider moves"
    if page.locator("#analyze-button").inner_text().strip().lower() == "cancel":
        page.locator("#analyze-button").click()  # cancel: the next tests start from a loaded case
    _wait_text(page, "status-text", "t.startsWith('Cancelled') || t.startsWith('Done')", timeout_ms=60_000)
    # that Cancel may cross the analysis's end on the wire; it must start nothing
    _wait_text(page, "analyze-button", "t.trim().toLowerCase() === 'segment & diagnose'", timeout_ms=60_000)
    (ARTIFACTS / "slider.json").write_text(
        json.dumps(
            {
                "slider_to_label_ms": [round(a, 1) for a in label_ms],
                "slider_to_view_image_ms": [round(a, 1) for a in view_ms],
            }
        )
    )
    assert max(label_ms) < 500, f"the frame label answered in {label_ms} ms"


def test_cine_play_shows_every_frame_and_stops(page, twenty_frame_cine):
    if not _text(page, "case-shown").startswith(twenty_frame_cine.name):
        page.locator("#upload-input").set_input_files(str(twenty_frame_cine))
        _wait_text(
            page, "status-text", f"t.startsWith('Loaded {twenty_frame_cine.name}')", timeout_ms=180_000
        )
    # every text the frame label takes while the cine plays
    page.evaluate(
        """() => { window.labels = new Set(); const e = document.getElementById('frame-label');
        new MutationObserver(() => window.labels.add(e.textContent.trim()))
            .observe(e, {childList: true, subtree: true, characterData: true}); }"""
    )
    page.locator("#cine-play").click()
    page.wait_for_function("() => window.labels.size >= 20", timeout=60_000)
    _shot(page, "00d_cine_playing")
    page.locator("#cine-play").click()
    # the frames already sent still arrive (the views stream images on the same connection), then none
    page.wait_for_timeout(3000)
    stopped = _text(page, "frame-label")
    page.wait_for_timeout(1500)
    labels = page.evaluate("() => Array.from(window.labels)")
    assert {f"({k}/20)" for k in range(1, 21)} <= {label.split(" ")[2] for label in labels}
    assert _text(page, "frame-label") == stopped  # paused


def test_analyse_a_case_edit_a_landmark_move_a_mode_and_download(page):
    steps = {}
    _wait_text(page, "device-text", "t.includes('cpu') || t.includes('cuda')")
    case = "patient001" if (ACDC / "patient001" / "Info.cfg").exists() else None
    if case:
        _choose_case(page, case)
    page.locator("#load-case").click()
    _wait_text(page, "status-text", "t.startsWith('Loaded')")
    page.wait_for_timeout(1500)  # the views' first images
    steps["01_case_loaded"] = _shot(page, "01_case_loaded")

    started = time.perf_counter()
    page.locator("#analyze-button").click()
    _wait_text(page, "diagnosis-text", "t.trim().length > 0", timeout_ms=300_000)
    seen_seconds = time.perf_counter() - started
    server_seconds = float(_text(page, "analysis-time").split(":")[1].split("s")[0])
    assert "INFO Done in" in (ARTIFACTS / "server.log").read_text()  # the server's log tells it too
    diagnosis = _text(page, "diagnosis-text")
    assert diagnosis.split(":")[0] in {"NOR", "MINF", "DCM", "HCM", "ARV"}, diagnosis
    probabilities = _text(page, "diagnosis-probabilities")
    assert probabilities.count("%") == 5
    indices_before = _text(page, "indices-table")
    assert "LVEDV" in indices_before and "mL" in indices_before
    assert "frame" in _text(page, "qc-warnings") or "none" in _text(page, "qc-warnings")
    assert "cpu" in _text(page, "device-text")
    page.wait_for_timeout(1000)
    steps["02_results"] = _shot(page, "02_results")

    landmarks = page.locator("#landmark-list [id^='landmark-']")
    if landmarks.count():
        # a mid-ventricular point of the first frame: its AHA segments depend on it
        landmarks.nth(landmarks.count() // 4).click()
        page.wait_for_timeout(2500)  # the slice view moves to the point's slice
        steps["03a_landmark_selected"] = _shot(page, "03a_landmark_selected")
        screen = json.loads(page.locator("#landmark-screen").text_content() or "[]")
        target = min(screen, key=lambda p: p["distance_mm"])
        view = page.locator("#views img, #views canvas").first.bounding_box()
        x, y = view["x"] + target["x"], view["y"] + target["y"]
        # the server sees the pointer hover the point before the press, as a person's mouse would
        for dx in (-6, -3, 0):
            page.mouse.move(x + dx, y + dx)
            page.wait_for_timeout(300)
        page.mouse.down()
        page.wait_for_timeout(300)
        for step in range(1, 9):
            page.mouse.move(x + 4 * step, y + 3 * step)
            page.wait_for_timeout(100)
        page.wait_for_timeout(300)
        page.mouse.up()
        _wait_text(page, "landmark-list", "t.includes('edited')", timeout_ms=60_000)
        _wait_text(page, "status-text", "t.includes('Landmark edited')", timeout_ms=60_000)
        steps["03_landmark_dragged"] = _shot(page, "03_landmark_dragged")
        assert _text(page, "indices-table") != indices_before

    shape_before = _text(page, "atlas-shape-text")
    page.locator("#mode-slider-1").scroll_into_view_if_needed()
    slider = page.locator("#mode-slider-1").bounding_box()
    page.mouse.click(slider["x"] + 0.9 * slider["width"], slider["y"] + slider["height"] / 2)
    _wait_text(page, "atlas-shape-text", f"t !== {json.dumps(shape_before)}", timeout_ms=30_000)
    shape_after = _text(page, "atlas-shape-text")
    cavity = [float(t.split("cavity ")[1].split(" mL")[0]) for t in (shape_before, shape_after)]
    assert cavity[1] > cavity[0]  # + along mode 1 enlarges the mean (the atlas' sign convention)
    page.wait_for_timeout(1500)
    steps["04_mode_slider"] = _shot(page, "04_mode_slider")

    with page.expect_download(timeout=60_000) as download:
        page.locator("#download-csv").click()
    text = Path(download.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1
    for column in ("ED frame", "ES frame", "LVEDV (mL)", "LVEF (%)", "RVEF (%)", "LVM (g)", "Diagnosis"):
        assert column in rows[0], column
    assert {f"P({c})" for c in ("NOR", "MINF", "DCM", "HCM", "ARV")} <= set(rows[0])
    assert rows[0]["Diagnosis"] == diagnosis.split(":")[0]
    (ARTIFACTS / "timing.json").write_text(
        json.dumps(
            {
                "case": case or "demo",
                "click_to_diagnosis_s": round(seen_seconds, 2),
                "server_analysis_s": server_seconds,
                "screenshots": {k: str(v) for k, v in steps.items()},
            },
            indent=1,
        )
    )


def _download(page, kind: str, folder: Path) -> Path:
    with page.expect_download(timeout=60_000) as download:
        page.locator(f"#dl-{kind}").click()
    path = folder / download.value.suggested_filename
    download.value.save_as(path)
    return path


def _ed_lv_voxels(page, folder: Path) -> tuple[int, float, float]:
    """From the downloads: the LV cavity voxels of the ED label map, the voxel volume (mL) and LVEDV."""
    import nibabel as nib
    import numpy as np

    document = json.loads(_download(page, "json", folder).read_text())
    ed = document["indices"]["ED frame"]
    kinds = page.locator("#downloads button").evaluate_all("bs => bs.map(b => b.id.slice(3))")
    kind = next(k for k in kinds if k.endswith(f"frame{ed:02d}_seg") or k == "labels")
    image = nib.load(_download(page, kind, folder))
    labels = np.asarray(image.dataobj)
    labels = labels[..., document["indices"]["ED frame"]] if labels.ndim == 4 else labels
    voxel_ml = float(np.prod(image.header.get_zooms()[:3])) / 1000.0
    return int((labels == 3).sum()), voxel_ml, float(document["indices"]["LVEDV (mL)"])


@pytest.mark.data
def test_a_brush_stroke_on_ed_changes_lvedv_by_the_painted_volume(page, tmp_path):
    if not (ACDC / "patient001" / "Info.cfg").exists():
        pytest.skip(f"ACDC data not found at {ACDC}")
    _wait_text(page, "device-text", "t.includes('cpu') || t.includes('cuda')")
    if _text(page, "case-shown").strip() != "patient001" or not page.locator("#diagnosis-text").is_visible():
        _choose_case(page, "patient001")
        page.locator("#load-case").click()
        _wait_text(page, "status-text", "t.startsWith('Loaded patient001')")
        page.locator("#analyze-button").click()
        _wait_text(page, "diagnosis-text", "t.trim().length > 0", timeout_ms=300_000)
    page.locator("#undo-edits").click()  # the analysis's own result, at ED
    _wait_text(page, "status-text", "t.startsWith('Edits undone')", timeout_ms=60_000)
    page.wait_for_selector("#dl-json", timeout=60_000)
    before_dir, after_dir = tmp_path / "before", tmp_path / "after"
    before_dir.mkdir(), after_dir.mkdir()
    lv_before, voxel_ml, lvedv_before = _ed_lv_voxels(page, before_dir)
    assert " ED" in _text(page, "frame-label")
    page.locator("#brush-paint").click()  # LV cavity is the brush's structure unless another is chosen
    page.locator("#brush-diameter").fill("12")
    page.wait_for_timeout(1000)
    _shot(page, "20_brush_on_ed")
    view = page.locator("#views img, #views canvas").first.bounding_box()
    x, y = view["x"] + view["width"] / 2, view["y"] + view["height"] / 2
    # a stroke across the middle of the view, where the heart is: from the cavity over the wall and out
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.mouse.down()
    for step in range(1, 15):
        page.mouse.move(x + 8 * step, y + step)
        page.wait_for_timeout(80)
    page.evaluate(WATCH_VIEW_JS)
    page.mouse.up()
    # as a user does: the brush off once the view shows the stroke (no new image for a second). On a busy
    # machine the view's mouse events queue up, one round trip each; should the release still be among
    # them, the stroke is painted all the same
    page.wait_for_function(
        "() => window.images.length > 0 && performance.now() - window.images[window.images.length - 1] > 1000",
        timeout=60_000,
    )
    page.locator("#brush-off").click()
    page.wait_for_timeout(500)
    _shot(page, "21_brush_stroke")
    page.locator("#update-results").click()
    _wait_text(page, "status-text", "t.startsWith('Segmentation edited')", timeout_ms=120_000)
    page.wait_for_selector("#dl-json", timeout=60_000)
    page.wait_for_timeout(1000)
    _shot(page, "22_results_updated")
    lv_after, _, lvedv_after = _ed_lv_voxels(page, after_dir)
    gained = lv_after - lv_before
    (ARTIFACTS / "brush.json").write_text(
        json.dumps(
            {"lv_voxels_gained": gained, "voxel_ml": voxel_ml, "lvedv_ml": [lvedv_before, lvedv_after]}
        )
    )
    assert gained > 20, f"the stroke painted {gained} LV cavity voxels"
    assert lvedv_after - lvedv_before == pytest.approx(gained * voxel_ml, abs=0.01)
    # Segment & diagnose again would replace the correction: the first click asks, starts nothing
    started = _started(page)
    page.locator("#analyze-button").click()
    _wait_text(page, "confirm-replace-text", "t.includes('segmentation of frame(s)')")
    _shot(page, "23_replace_asked")
    assert _text(page, "analyze-button").strip().lower() == "replace my edits"
    page.wait_for_timeout(1000)
    assert _started(page) == started
    page.locator("#undo-edits").click()  # nothing at stake any more: the question goes
    _wait_text(page, "status-text", "t.startsWith('Edits undone')", timeout_ms=60_000)
    assert _text(page, "analyze-button").strip().lower() == "segment & diagnose"


BIVME = REPO_ROOT.parent / "shared" / "data" / "bivme_patient1" / "dicom"


@pytest.mark.data
def test_a_zipped_oblique_dicom_study_uploads_in_its_own_plane_and_every_download_parses(page, tmp_path):
    """The biv-me short-axis series as one zip: no overlay of the previous case, the slice view in the
    image's plane, and each download (indices CSV/JSON, label map, landmarks, report, SEG, SR) readable."""
    import zipfile

    import nibabel as nib
    import numpy as np
    import pydicom

    from CardiacMTLLib.io.cine import read_cine

    if not BIVME.is_dir():
        pytest.skip(f"biv-me DICOM study not found at {BIVME}")
    archive = tmp_path / "bivme_sax.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for series in ("Se1", "Se2", "Se3", "Se4", "Se5", "Se11"):
            for f in sorted((BIVME / series).iterdir()):
                z.write(f, f"{series}/{f.name}")
    _wait_text(page, "device-text", "t.includes('cpu') || t.includes('cuda')")
    page.locator("#upload-input").set_input_files(str(archive))
    _wait_text(page, "status-text", "t.startsWith('Loaded bivme_sax.zip')", timeout_ms=180_000)
    page.wait_for_timeout(1500)
    _shot(page, "10_zip_uploaded")
    # a new case: none of the previous case's results (diagnosis, landmarks, downloads) remain
    assert not page.locator("#diagnosis-text").is_visible()
    assert json.loads(page.locator("#landmark-screen").text_content() or "[]") == []
    assert page.locator("#downloads button").count() == 0

    axes = np.array(json.loads(page.locator("#slice-orientation").text_content()))
    cine = read_cine(archive)
    direction = cine.affine[:3, :3] / np.linalg.norm(cine.affine[:3, :3], axis=0)
    assert abs(float(axes[2] @ direction[:, 2])) > 0.999  # the view's normal is the stack's normal
    assert abs(float(axes[0] @ direction[:, 0])) > 0.999

    page.locator("#analyze-button").click()
    _wait_text(page, "diagnosis-text", "t.trim().length > 0", timeout_ms=400_000)
    page.wait_for_selector("#dl-sr", timeout=60_000)
    page.wait_for_timeout(1000)
    _shot(page, "11_zip_results")
    kinds = page.locator("#downloads button").evaluate_all("bs => bs.map(b => b.id.slice(3))")
    assert {"csv", "json", "labels", "landmarks", "report", "pdf", "seg_ED", "seg_ES", "sr"} <= set(kinds)
    saved = {}
    for kind in kinds:
        with page.expect_download(timeout=60_000) as download:
            page.locator(f"#dl-{kind}").click()
        saved[kind] = tmp_path / download.value.suggested_filename
        download.value.save_as(saved[kind])
    assert saved["csv"].name.endswith("_indices.csv")
    rows = list(csv.DictReader(io.StringIO(saved["csv"].read_text())))
    document = json.loads(saved["json"].read_text())
    assert float(rows[0]["LVEDV (mL)"]) == pytest.approx(document["indices"]["LVEDV (mL)"])
    assert nib.load(saved["labels"]).shape[:3] == cine.data.shape[:0:-1]
    assert json.loads(saved["landmarks"].read_text())["markups"]
    assert saved["report"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = saved["pdf"].read_bytes()  # one page, complete (matplotlib writes the page objects plainly)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1
    assert saved["pdf"].name.endswith("_report.pdf")
    assert pydicom.dcmread(saved["seg_ED"]).Modality == "SEG"
    assert pydicom.dcmread(saved["sr"]).Modality == "SR"


def test_the_servers_log_holds_no_traceback_after_every_step_above(page):
    """Last in the file: a cancelled analysis, a dragged landmark, a brush stroke, an upload and every
    download leave no traceback in the log of the server the user runs (a traceback there reads as a
    crash, even when the app served on)."""
    page.wait_for_timeout(500)  # the last step's answers are written
    log = (ARTIFACTS / "server.log").read_text()
    at = log.find("Traceback")
    assert at < 0, "\n".join(log[at:].splitlines()[:12])
