"""The one place that words a result for people: the diagnosis with its probabilities and criteria, the QC
findings, the landmarks and the shipped models' check. The Slicer panel, the browser app and the result
folder's ``indices.csv`` all show these strings, so a result reads the same wherever it is looked at.
Plain strings only (no HTML): each front end lays them out in its own widgets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def format_value(value) -> str:
    """A number as the panels show it: four significant digits, ``n/a`` for a missing value."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def diagnosis_text(diagnosis: dict | None) -> str:
    """The headline: ``"DCM: dilated cardiomyopathy"``, or why there is none (``"No diagnosis: ..."``)."""
    diagnosis = diagnosis or {}
    if not diagnosis.get("class"):
        return f"No diagnosis: {diagnosis.get('error', 'not computed')}"
    return f"{diagnosis['class']}: {diagnosis.get('class_name', '')}"


def probability_texts(diagnosis: dict | None) -> list[str]:
    """One ``"NOR 70 %"`` per class, in the classifier's order; empty without a diagnosis."""
    if not (diagnosis or {}).get("class"):
        return []
    return [f"{cls} {100 * p:.0f} %" for cls, p in (diagnosis.get("probabilities") or {}).items()]


def criteria_text(diagnosis: dict | None) -> str:
    """The ACDC criteria per class: ``"NOR: 2/2 met; MINF: 0/2 met; ..."``; empty without a diagnosis."""
    if not (diagnosis or {}).get("class"):
        return ""
    return "; ".join(f"{cls}: {text}" for cls, text in (diagnosis.get("criteria_summary") or {}).items())


def diagnosis_lines(diagnosis: dict | None) -> list[str]:
    """The headline, the probabilities and the criteria met, one line each (the headline alone when
    there is no diagnosis)."""
    if not (diagnosis or {}).get("class"):
        return [diagnosis_text(diagnosis)]
    return [
        diagnosis_text(diagnosis),
        ", ".join(probability_texts(diagnosis)),
        f"criteria met: {criteria_text(diagnosis)}",
    ]


def qc_line(finding: dict) -> str:
    """``"frame 1 slice 3: <problem>"`` (no slice for a whole-frame finding)."""
    slice_index = finding.get("slice")
    if finding.get("frame") is None:  # about the whole study (the input, the plausibility of the result)
        return f"study: {finding['problem']}"
    where = f"frame {finding['frame']}" + ("" if slice_index is None else f" slice {slice_index}")
    return f"{where}: {finding['problem']}"


def qc_lines(findings: Iterable[dict]) -> list[str]:
    return [qc_line(f) for f in findings]


def qc_summary(findings: Iterable[dict]) -> list[str]:
    """The QC block of a panel: a heading line, then one line per finding."""
    lines = qc_lines(findings)
    return ["QC warnings:", *lines] if lines else ["QC: no warnings"]


def landmark_line(landmark: dict) -> str:
    """``"RV anterior insertion frame 1 slice 4 (61.2, 80.4, 4.0) edited"``."""
    ijk = ", ".join(f"{v:.1f}" for v in landmark.get("ijk", []))
    edited = " edited" if landmark.get("edited") else ""
    return (
        f"{landmark.get('label')} frame {landmark.get('frame')} slice {landmark.get('slice')} ({ijk}){edited}"
    )


def landmarks_text(landmarks: list[dict] | None) -> str:
    """``"8 landmarks (1 edited)"``."""
    landmarks = landmarks or []
    return f"{len(landmarks)} landmarks ({sum(bool(lm.get('edited')) for lm in landmarks)} edited)"


def catalogue_text(checks: Iterable) -> str:
    """One line per shipped model checked by ``models.registry.verify_catalogue``: ``"acdc_unet2d 1.0: ok"``
    or the files that are missing or corrupt."""
    return "\n".join(
        f"{c.model_id} {c.version}: {'; '.join(c.problems) if c.problems else 'ok'}" for c in checks
    )


def summary_lines(result, out_dir=None, max_findings: int = 8) -> list[str]:
    """The console summary of ``cardiac-mtl analyze``: device, the main indices, the diagnosis (or why it
    is withheld) and the QC findings, the first ``max_findings`` of them in full."""
    ind, prov = result.indices, result.provenance
    lines = [f"device: {prov.get('device')}  (model {prov.get('model_id')})"]
    lines.append(
        f"ED frame {ind.get('ED frame')}, ES frame {ind.get('ES frame')} ({prov.get('ED/ES from')}); "
        + ", ".join(
            f"{name} {format_number(ind.get(key))} {unit}"
            for name, key, unit in (
                ("LVEDV", "LVEDV (mL)", "mL"),
                ("LVESV", "LVESV (mL)", "mL"),
                ("LVEF", "LVEF (%)", "%"),
                ("LVM", "LVM (g)", "g"),
                ("RVEDV", "RVEDV (mL)", "mL"),
                ("RVEF", "RVEF (%)", "%"),
            )
        )
    )
    diagnosis = result.diagnosis
    if diagnosis:
        if diagnosis.get("class") is None:
            lines.append(f"diagnosis: not available ({diagnosis.get('error')})")
        else:
            probabilities = ", ".join(f"{c} {p:.2f}" for c, p in diagnosis["probabilities"].items())
            lines.append(
                f"diagnosis: {diagnosis['class']} ({diagnosis['class_name']}); probabilities {probabilities}"
            )
    if getattr(result, "strain", None) is not None:
        lines.append(strain_line(result.strain))
    findings = qc_lines(result.qc)
    if findings:
        lines.append(f"QC: {len(findings)} finding(s); check these before using the numbers:")
        lines += [f"  {line}" for line in findings[:max_findings]]
        if len(findings) > max_findings:
            lines.append(f"  ... and {len(findings) - max_findings} more (indices.json, report.png)")
    else:
        lines.append("QC: no findings")
    if out_dir is not None:
        lines.append(f"results written to {out_dir}")
    return lines


def format_number(value) -> str:
    """``n/a`` for a missing value, else the shortest form of the number (``77.07``)."""
    return "n/a" if value is None else f"{value:g}"


def progress_text(done: int | None, total: int | None) -> str:
    """The status line while an analysis runs: that the network is loading, the frames segmented so far,
    then the measurements (indices, landmarks, strain, diagnosis) once every frame is segmented."""
    if not done or not total:
        return "Loading the network ..."
    if done >= total:
        return "Measuring: indices, landmarks, strain, diagnosis ..."
    return f"Segmenting frame {done} of {total} ..."


def outcome_text(outcome: str, error: BaseException | str | None = None) -> str:
    """The status line once an analysis is over (``outcome`` as ``tasks.TaskOutcome`` values it)."""
    if outcome == "cancelled":
        return "Cancelled; nothing was changed."
    if outcome == "failed":
        return f"Failed: {error}"
    return "Done."


@dataclass(frozen=True)
class PanelTexts:
    """A result as a GUI panel shows it: one string per field, lines separated by newlines."""

    device: str
    diagnosis: str
    qc: str
    landmarks: str


def panel_texts(result) -> PanelTexts:
    """The device that ran the analysis, the diagnosis lines, the QC block and the landmark count."""
    return PanelTexts(
        device=str(result.provenance.get("device", "")),
        diagnosis="\n".join(diagnosis_lines(result.diagnosis)),
        qc="\n".join(qc_summary(result.qc)),
        landmarks=landmarks_text(result.landmarks),
    )


def replace_edits_text(edits: str) -> str:
    """The question before a new analysis replaces the user's corrections (``edits``: what
    :meth:`~CardiacMTLLib.scene.cardiac.CardiacScene.edits_at_stake` names), in Slicer and the browser."""
    return f"Segment & diagnose again replaces {edits}."


def edits_text(result) -> str:
    """The status line after "Update results": which frames' corrected labels the results now come from."""
    frames = result.provenance.get("edited_frames") or []
    if not frames:
        return "No label was changed; the results stay as they were."
    return f"Results recomputed from the corrected labels of frame(s) {', '.join(str(f) for f in frames)}."


def diagnosis_table(diagnosis: dict) -> str:
    """The report's diagnosis block: the headline, then per class its probability as a bar and the
    criteria met; why there is none, wrapped, when the diagnosis is missing or withheld."""
    if diagnosis.get("class") is None:
        error = diagnosis.get("error", "")
        return "not available:\n" + "\n".join(error[i : i + 40] for i in range(0, len(error), 40))
    probabilities = diagnosis["probabilities"]
    lines = [f"{diagnosis['class']}: {diagnosis.get('class_name', '')}", f"{'':5}{'p':>5} {'':20} criteria"]
    for cls, p in sorted(probabilities.items(), key=lambda kv: -kv[1]):
        bar = "\u2588" * int(round(p * 20))
        criteria = diagnosis.get("criteria_summary", {}).get(cls, "")
        lines.append(f"{cls:<5}{p:5.2f} {bar:<20} {criteria}")
    if diagnosis.get("not_judged"):
        lines.append("not judged: " + ", ".join(k.split(" (")[0] for k in diagnosis["not_judged"]))
    return "\n".join(lines)


def qc_block(findings: list[dict], shown: int = 3, width: int = 64) -> str:
    """The report's QC block: the first ``shown`` findings shortened to ``width`` characters."""
    import textwrap

    if not findings:
        return "QC: no findings"
    lines = [textwrap.shorten(qc_line(f), width, placeholder=" ...") for f in findings[:shown]]
    more = f"\n... and {len(findings) - shown} more (indices.json)" if len(findings) > shown else ""
    return "QC: check\n" + "\n".join(lines) + more


# Why a segment has no strain (StrainResult.unmeasured_segments), in the summary line.
UNMEASURED_WHY = "not followed to ES: no cavity there, or one mostly without wall"


def strain_line(strain) -> str:
    """``"strain (ED to ES): GCS -19.8 %, GRS 41.2 %; peak GCS -21.0 % at frame 9"``."""

    def pct(value) -> str:
        return "n/a" if value is None else f"{value:.1f}"

    line = f"strain (ED to ES): GCS {pct(strain.es_circumferential_pct)} %, GRS {pct(strain.es_radial_pct)} %"
    curve = strain.global_circumferential_curve_pct or []
    followed = [i for i, v in enumerate(curve) if v is not None]
    if strain.from_curves and followed:
        peak = min(followed, key=lambda i: curve[i])
        line += f"; peak GCS {pct(curve[peak])} % at frame {strain.frame_numbers[peak]}"
    if strain.unmeasured_segments:
        line += f"; segments {segment_list(strain.unmeasured_segments)} not measured ({UNMEASURED_WHY})"
    return line


def segment_list(segments) -> str:
    """``[1, 2, 3, 5, 9]`` as ``"1-3, 5, 9"``."""
    runs: list[list[int]] = []
    for number in sorted(segments):
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)
