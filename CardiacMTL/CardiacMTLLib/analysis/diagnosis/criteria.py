"""The published clinical criteria of the five ACDC groups, judged on a case's indices: the reasons shown beside the classifier's probabilities."""

from __future__ import annotations

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.types import CLASSES

# --- the challenge's criteria ---------------------------------------------------------------------------

# (class, index key of compute_indices, comparison, threshold(s), note). A threshold pair is (men, women):
# with the sex unknown, a value beyond both is judged and a value between them is not.
CRITERIA = (
    ("NOR", "LVEF (%)", ">", 50.0, None),
    ("NOR", "LVEDVi (mL/m2)", "<", (90.0, 80.0), None),
    ("NOR", "RVEF (%)", ">", 40.0, None),
    ("NOR", "RVEDVi (mL/m2)", "<", 100.0, None),
    ("NOR", "Max wall thickness ED (mm)", "<", 12.0, None),
    ("MINF", "LVEF (%)", "<", 40.0, "with abnormal regional contraction: see the akinetic segments"),
    ("DCM", "LVEF (%)", "<", 40.0, None),
    ("DCM", "LVEDVi (mL/m2)", ">", 100.0, None),
    ("HCM", "LVEF (%)", ">", 55.0, None),
    ("HCM", "Max wall thickness ED (mm)", ">", 15.0, "in several segments at end-diastole"),
    ("HCM", "LVMi (g/m2)", ">", 110.0, None),
    ("ARV", "RVEF (%)", "<", 40.0, "either ARV criterion suffices"),
    ("ARV", "RVEDVi (mL/m2)", ">", (110.0, 100.0), "either ARV criterion suffices"),
)
INDEXED_KEYS = {"LVEDVi (mL/m2)", "RVEDVi (mL/m2)", "LVMi (g/m2)"}
# The regional finding: an infarct leaves segments that do not contract while the others do.
REGIONAL_INDEX = "Akinetic AHA segments (n)"
REGIONAL_MINIMUM = 1


def _compare(value: float, op: str, threshold: float) -> bool:
    return value > threshold if op == ">" else value < threshold


def judge_criterion(indices: dict, key: str, op: str, threshold, sex: str | None = None) -> tuple[str, str]:
    """``(status, explanation)`` of one criterion; status is ``met``, ``not met`` or ``not judged``.

    Raises :class:`CardiacInputError` when the index is missing (an indexed value without height and
    weight, an ejection fraction without a systolic frame); :func:`criteria_trace` turns that into a
    ``not judged`` line carrying the message.
    """
    value = indices.get(key)
    if value is None:
        if key in INDEXED_KEYS:
            raise CardiacInputError(
                f"{key} needs the body surface area: height and weight are not known "
                "(pass --height and --weight, or Height/Weight in Info.cfg)"
            )
        raise CardiacInputError(f"{key} is not available for this study")
    if isinstance(threshold, tuple):
        men, women = threshold
        if sex in ("M", "F"):
            limit = men if sex == "M" else women
            met = _compare(value, op, limit)
            return (
                "met" if met else "not met"
            ), f"{value:g} {op} {limit:g} ({'men' if sex == 'M' else 'women'})"
        met_men, met_women = _compare(value, op, men), _compare(value, op, women)
        if met_men == met_women:
            return ("met" if met_men else "not met"), f"{value:g} {op} {men:g} (men) / {women:g} (women)"
        return (
            "not judged",
            f"{value:g} lies between the limits for men ({men:g}) and women ({women:g}); sex not recorded",
        )
    met = _compare(value, op, threshold)
    return ("met" if met else "not met"), f"{value:g} {op} {threshold:g}"


def regional_finding(strain) -> dict:
    """The MINF line of the trace judged on the wall motion of ``strain`` (a
    :class:`~CardiacMTLLib.analysis.strain.StrainResult` or its ``to_dict()``; ``None``: not judged):
    met when at least :data:`REGIONAL_MINIMUM` AHA segment is akinetic by the strain's rule."""
    item = {"class": "MINF", "index": REGIONAL_INDEX, "rule": f">= {REGIONAL_MINIMUM}"}
    item["limit"] = REGIONAL_MINIMUM
    if strain is None:
        item.update(
            value=None,
            status="not judged",
            explanation="strain was not measured (it needs end-diastole, end-systole and a wall to follow)",
        )
        return item
    get = strain.get if isinstance(strain, dict) else lambda key: getattr(strain, key)
    akinetic = list(get("akinetic_segments") or [])
    hypokinetic = list(get("hypokinetic_segments") or [])
    item["value"] = len(akinetic)
    item["status"] = "met" if len(akinetic) >= REGIONAL_MINIMUM else "not met"
    listed = ", ".join(str(s) for s in akinetic) or "none"
    item["explanation"] = (
        f"{len(akinetic)} akinetic (segments {listed}), {len(hypokinetic)} hypokinetic; "
        f"{len(akinetic)} {'>=' if akinetic else '<'} {REGIONAL_MINIMUM}"
    )
    item["note"] = f"wall motion by {get('rule')}"
    return item


def criteria_trace(indices: dict, sex: str | None = None, strain=None) -> list[dict]:
    """Every defining criterion of every class, judged on ``indices`` (as from ``compute_indices``), and
    the regional finding of ``strain`` (:func:`regional_finding`) after the MINF ejection fraction."""
    trace = []
    for cls, key, op, threshold, note in CRITERIA:
        if isinstance(threshold, tuple):
            limit, rule = list(threshold), f"{op} {threshold[0]:g} (men) / {threshold[1]:g} (women)"
        else:
            limit, rule = threshold, f"{op} {threshold:g}"
        item = {"class": cls, "index": key, "rule": rule, "limit": limit}
        item["value"] = indices.get(key)
        try:
            item["status"], item["explanation"] = judge_criterion(indices, key, op, threshold, sex)
        except CardiacInputError as exc:
            item["status"], item["explanation"] = "not judged", str(exc)
        if note:
            item["note"] = note
        trace.append(item)
        if cls == "MINF":
            trace.append(regional_finding(strain))
    return trace


def criteria_summary(trace: list[dict]) -> dict[str, str]:
    """Per class, e.g. ``"2/2 met"`` or ``"1/3 met, 1 not judged"`` (ARV needs only one of its two)."""
    summary = {}
    for cls in CLASSES:
        items = [t for t in trace if t["class"] == cls]
        met = sum(t["status"] == "met" for t in items)
        unjudged = sum(t["status"] == "not judged" for t in items)
        text = f"{met}/{len(items)} met"
        if unjudged:
            text += f", {unjudged} not judged"
        summary[cls] = text
    return summary
