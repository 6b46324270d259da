"""Is this a 2- or 4-chamber long-axis cine, and the view the user said? Checked before hinge points are
placed, so a short-axis stack (or a 3D volume read as frames) never gets mitral hinges.

Two independent signs: the series description a scanner writes (``2CH``, ``4CH``, ``3CH``, ``RVOT``,
``SAX``), when there is one, must not name another view; and the LV cavity of the long-axis segmentation
must be elongated, as it is in every long-axis view: on the biv-me study the median ratio of its principal
axes is 1.54-1.86 in the four long-axis series and 1.04-1.24 in the short-axis ones (1.08 for an ACDC
short-axis volume read as frames; 1.40 for the synthetic 4-chamber cine), hence :data:`MIN_LONG_AXIS_RATIO`
between the two.
"""

from __future__ import annotations

import re

import numpy as np

from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.types import Cine, Label

MIN_LONG_AXIS_RATIO = 1.32
MIN_FRAMES_WITH_LV = 3
_VIEW_WORDS = (
    (re.compile(r"(?<![0-9a-z])2\s*-?\s*ch", re.I), "2ch"),
    (re.compile(r"(?<![0-9a-z])3\s*-?\s*ch", re.I), "3ch"),
    (re.compile(r"(?<![0-9a-z])4\s*-?\s*ch", re.I), "4ch"),
    (re.compile(r"rvot|lvot", re.I), "outflow tract"),
    (re.compile(r"(?<![a-z])(sax|sa|short[ _-]?axis)(?![a-z])", re.I), "short axis"),
)


def described_view(description: str) -> str | None:
    """The view a series description names (``"2ch"``, ``"4ch"``, ``"3ch"``, ``"outflow tract"``,
    ``"short axis"``), or None."""
    for pattern, view in _VIEW_WORDS:
        if pattern.search(description or ""):
            return view
    return None


def check_described_view(cine: Cine, view: str, where: str) -> None:
    """Refuse a series whose description names a view other than ``view``."""
    for description in dict.fromkeys(cine.extra.get("series_descriptions") or []):
        named = described_view(description)
        if named is None or named == view:
            continue
        hint = f"; give --view {named}" if named in ("2ch", "4ch") else ", and not a 2- or 4-chamber view"
        raise CardiacInputError(
            f"{where}: the series is described as {description!r} ({named}), not {view}{hint}"
        )


def lv_axis_ratios(labels: np.ndarray, spacing_rc_mm) -> np.ndarray:
    """Per frame of ``(frames, rows, cols)`` labels: the ratio of the LV cavity's principal axes (nan
    where there is no cavity to measure)."""
    ratios = []
    for frame in labels:
        rows, cols = np.nonzero(frame == Label.LV_CAVITY)
        if rows.size < 20:
            ratios.append(np.nan)
            continue
        points = np.stack([rows * spacing_rc_mm[0], cols * spacing_rc_mm[1]], axis=1)
        eigenvalues = np.linalg.eigvalsh(np.cov((points - points.mean(axis=0)).T))
        ratios.append(float(np.sqrt(eigenvalues[1] / max(eigenvalues[0], 1e-9))))
    return np.asarray(ratios)


def check_long_axis(labels: np.ndarray, spacing_rc_mm, where: str) -> None:
    """Refuse images whose LV cavity is not elongated (a short-axis view) or is not found at all."""
    ratios = lv_axis_ratios(labels, spacing_rc_mm)
    found = int(np.isfinite(ratios).sum())
    if found < min(MIN_FRAMES_WITH_LV, len(ratios)):
        raise CardiacInputError(
            f"{where}: no LV cavity found on {len(ratios) - found} of {len(ratios)} frames; not a 2- or "
            "4-chamber long-axis cine"
        )
    median = float(np.nanmedian(ratios))
    if median < MIN_LONG_AXIS_RATIO:
        raise CardiacInputError(
            f"{where}: the LV cavity is round in these images (principal axes {median:.2f} : 1, long-axis "
            f"views give at least {MIN_LONG_AXIS_RATIO}); a short-axis image or stack, not a 2- or "
            "4-chamber long-axis cine"
        )
