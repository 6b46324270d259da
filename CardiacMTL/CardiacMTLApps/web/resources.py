"""What the browser app loads: the network and classifier (once, in the background), the shape atlas of the
atlas panel, the cases it offers and the cines users upload. No trame views here and no analysis of its own.
"""

from __future__ import annotations

from pathlib import Path

from CardiacAtlasLib.atlas_io import read_atlas
from CardiacAtlasLib.cap import cap_release_files, read_cap_atlas
from CardiacAtlasLib.synthetic import synthetic_atlas
from CardiacMTLLib.analysis.diagnosis.classifiers import load_classifier
from CardiacMTLLib.errors import CardiacError
from CardiacMTLLib.io.acdc import has_4d_cine
from CardiacMTLLib.io.cine import read_cine
from CardiacMTLLib.io.dicom_export import study_file_stem, write_dicom_exports
from CardiacMTLLib.models.registry import load_model
from CardiacMTLLib.outputs import write_outputs
from CardiacMTLLib.report.pdf import write_pdf_report
from CardiacMTLLib.tasks import BackgroundTask, TaskOutcome

DEMO_CASE = "Synthetic demo cine (generated)"
CAP_ATLAS_FOLDER = "cap_lv_atlas_mesa"  # the published CAP MESA atlas, when it lies beside the ACDC data


class Engine:
    """The network and the diagnosis classifier, loaded once on a background task and shared by every
    analysis, so a click on Segment & diagnose pays only for the analysis itself."""

    def __init__(self, device: str = "auto", precision: str = "auto"):
        self.device, self.precision = device, precision
        self.task: BackgroundTask | None = None

    def start(self) -> Engine:
        import_engine_packages()
        self.task = BackgroundTask(self._load, name="loading the network").start()
        return self

    def _load(self, progress) -> tuple:
        model = load_model(device=self.device, precision=self.precision)
        classifier = load_classifier()
        classifier.fit_all()
        return model, classifier

    @property
    def error(self) -> str | None:
        if self.task is not None and self.task.outcome is TaskOutcome.FAILED:
            return f"could not load the network: {self.task.error}"
        return None

    @property
    def device_text(self) -> str:
        """What runs the network, once everything is loaded (so the line also says "ready")."""
        if self.error:
            return self.error
        if self.task is None or not self.task.finished:
            return "loading the network ..."
        return self.task.result[0].device_text

    def models(self) -> tuple:
        """``(model, classifier)``, waiting while they load; :class:`CardiacError` when loading failed."""
        self.task.wait()
        if self.error:
            raise CardiacError(self.error)
        return self.task.result


def import_engine_packages() -> None:
    """Import on the calling (main) thread what the loader thread imports: two threads importing scipy's
    submodules at once can leave one of them half initialised (``KeyError: 'scipy'`` at start-up)."""
    import sklearn.ensemble  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.pipeline  # noqa: F401
    import sklearn.preprocessing  # noqa: F401


def default_atlas():
    """A small atlas for the sliders: synthetic LV shapes with known modes (no data needed)."""
    return synthetic_atlas(n_modes=8)


def load_app_atlas(atlas_dir: str | Path | None, acdc_dir: str | Path | None = None) -> tuple:
    """``(atlas, name)`` for the atlas panel: ``atlas_dir`` (a ``cardiac-atlas build``/``import-cap`` folder,
    or the CAP release's folder with ``PCA_ED.mat``, ``PCA_ES.mat``, ``SurfaceFaces.mat``); without one, the
    published CAP MESA atlas when it lies beside the ACDC data (``acdc_dir``), else a small synthetic atlas."""
    if atlas_dir is not None:
        files = cap_release_files(atlas_dir)
        if files:
            return read_cap_atlas(*files), f"CAP MESA LV atlas ({atlas_dir})"
        return read_atlas(Path(atlas_dir)), str(atlas_dir)
    files = cap_release_files(Path(acdc_dir).parent / CAP_ATLAS_FOLDER) if acdc_dir is not None else None
    if files:
        atlas = read_cap_atlas(*files)
        return atlas, f"CAP MESA LV atlas ({len(atlas.scores_):,} cases)"
    return default_atlas(), "synthetic demo atlas (40 generated LV shapes)"


ALL_FRAMES_SUFFIX = " (all frames)"


def list_cases(acdc_dir: Path | None) -> list[str]:
    """The demo case, then the ACDC patient folders of ``acdc_dir`` (those with an ``Info.cfg``): each as
    its ED and ES frames and, when it has its ``_4d.nii.gz``, as its whole cine (``ALL_FRAMES_SUFFIX``)."""
    cases = [DEMO_CASE]
    if acdc_dir is not None and acdc_dir.is_dir():
        for folder in sorted(p for p in acdc_dir.iterdir() if (p / "Info.cfg").is_file()):
            cases.append(folder.name)
            if has_4d_cine(folder):
                cases.append(folder.name + ALL_FRAMES_SUFFIX)
    return cases


def acdc_case(name: str) -> tuple[str, bool]:
    """``(patient folder name, all frames?)`` of a case of :func:`list_cases`."""
    if name.endswith(ALL_FRAMES_SUFFIX):
        return name[: -len(ALL_FRAMES_SUFFIX)], True
    return name, False


def read_uploaded_cine(files: list[dict], folder: Path):
    """Write uploaded files into ``folder`` and read them as one cine: a NIfTI file, a zip (of a DICOM study
    or an ACDC folder), or the files of an ACDC or DICOM set. ``folder`` must outlive the cine when it is
    DICOM: the exports read the source images from there."""
    from trame.app.file_upload import ClientFile

    paths = []
    for file in files:
        client_file = ClientFile(file)
        path = folder / Path(client_file.name).name
        path.write_bytes(client_file.content)
        paths.append(path)
    if len(paths) == 1 and paths[0].name.endswith((".nii", ".nii.gz", ".zip")):
        return read_cine(paths[0])
    return read_cine(folder)


def uploaded_names(files: list[dict], shown: int = 3) -> str:
    """The names of uploaded files for the status line: the first few and how many more."""
    names = [str(f.get("name", "upload")) for f in files]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def result_files(result, folder: Path) -> dict[str, Path]:
    """The result's downloads, written into ``folder`` as ``cardiac-mtl analyze`` writes them and named
    after the study: ``{kind: path}`` with kinds csv, json, landmarks, report (PNG), pdf, the label maps (``labels``,
    or one per ACDC frame file), and seg_ED, seg_ES, sr for a DICOM input."""
    stem = study_file_stem(result.cine)
    out = write_outputs(result, folder / "result")
    files = {
        "csv": out / "indices.csv",
        "json": out / "indices.json",
        "landmarks": out / "landmarks.mrk.json",
        "report": out / "report.png",
        "pdf": write_pdf_report(result, folder / "report.pdf"),
    }
    labels = sorted((out / "segmentation").glob("*.nii.gz"))  # one 4D map, or ACDC's one per frame file
    files.update({"labels" if len(labels) == 1 else path.name.split(".")[0]: path for path in labels})
    if result.cine.extra.get("dicom_files"):
        dicom = write_dicom_exports(result, folder / "dicom")
        files.update({p.stem: p for p in sorted(dicom.glob("*.dcm"))})
    named = {}
    for kind, path in files.items():
        name = {"labels": "labels.nii.gz"}.get(kind, path.name)  # indices.csv, report.png, seg_ED.dcm, ...
        named[kind] = path.replace(folder / (name if name.startswith(stem) else f"{stem}_{name}"))
    return named
