"""The AHA 17-segment bull's-eye (polar map) of segments 1-16, as cardiologists read it: base outside,
apex inside, anterior at the top, septum on the viewer's left (segment 1 basal anterior at 12 o'clock
to 2 o'clock going counter-clockwise, the AHA 2002 layout). Used by ``report.png``, the Slicer module
and the web app, so every front end draws the same map.

``values`` maps a segment number (1-16) to a number or ``None`` (drawn grey, "n/a"); ``marks`` maps a
segment to a short text drawn under its value (for example "AK" for akinetic).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

# Ring of each segment (0 = basal, outermost; 2 = apical) and its first segment number.
_RINGS = ((1, 6, 2), (7, 6, 1), (13, 4, 0))  # (first segment, count, ring index from the centre)
SEGMENT_ABBREVIATIONS = {
    1: "bA", 2: "bAS", 3: "bIS", 4: "bI", 5: "bIL", 6: "bAL",
    7: "mA", 8: "mAS", 9: "mIS", 10: "mI", 11: "mIL", 12: "mAL",
    13: "aA", 14: "aS", 15: "aI", 16: "aL",
}  # fmt: skip


def segment_wedges() -> dict[int, tuple[float, float, float, float]]:
    """Each segment's wedge as ``(inner radius, outer radius, start angle, end angle)`` in a unit disc,
    angles in degrees counter-clockwise from 3 o'clock: segment 1 (basal anterior) spans 60-120 deg
    and the numbering runs counter-clockwise, so the septum (2, 3; 8, 9; 14) is on the left."""
    wedges = {}
    radii = (0.25, 0.5, 0.75, 1.0)  # centre (segment 17, apex cap, not drawn) then apical, mid, basal
    for first, count, ring in _RINGS:
        inner, outer = radii[ring], radii[ring + 1]
        width = 360.0 / count
        start0 = 60.0 if count == 6 else 45.0
        for i in range(count):
            start = start0 + i * width
            wedges[first + i] = (inner, outer, start, start + width)
    return wedges


def draw_bullseye(
    ax,
    values: Mapping[int, float | None],
    *,
    title: str = "",
    cmap: str = "RdBu_r",
    vmin: float | None = None,
    vmax: float | None = None,
    unit: str = "%",
    marks: Mapping[int, str] | None = None,
    digits: int = 0,
):
    """Draw the map on a matplotlib axis; returns the ``ScalarMappable`` for a colour bar."""
    import matplotlib
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Wedge

    marks = marks or {}
    finite = [float(v) for v in values.values() if v is not None]
    lo = vmin if vmin is not None else (min(finite) if finite else 0.0)
    hi = vmax if vmax is not None else (max(finite) if finite else 1.0)
    if hi <= lo:
        hi = lo + 1.0
    norm = matplotlib.colors.Normalize(vmin=lo, vmax=hi)
    colours = matplotlib.colormaps[cmap]
    import numpy as np

    wedges = []
    for segment, (inner, outer, start, end) in segment_wedges().items():
        value = values.get(segment)
        face = "0.85" if value is None else colours(norm(float(value)))
        wedges.append(
            Wedge((0, 0), outer, start, end, width=outer - inner, facecolor=face, edgecolor="white", lw=1.5)
        )
        middle = np.deg2rad((start + end) / 2)
        r = (inner + outer) / 2
        text = "n/a" if value is None else f"{float(value):.{digits}f}"
        if segment in marks:
            text += f"\n{marks[segment]}"
        ax.text(r * np.cos(middle), r * np.sin(middle), text, ha="center", va="center", fontsize=7)
    # one collection, drawn as the wedges would be one by one (mitred white edges), without updating the
    # data limits after each wedge: the limits are fixed below
    ax.add_collection(PatchCollection(wedges, match_original=True, joinstyle="miter"), autolim=False)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.text(0, 1.04, "anterior", ha="center", va="bottom", fontsize=7, color="0.4")
    ax.text(-1.04, 0, "septal", ha="right", va="center", fontsize=7, color="0.4", rotation=90)
    if title:  # placed where matplotlib would place it, without measuring the hidden axes at each draw
        ax.set_title(title, fontsize=10, y=1.0)
    mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap=colours)
    mappable.set_array([])
    mappable.unit = unit
    return mappable


def strain_maps(strain) -> dict[str, dict[int, float | None]]:
    """The maps people look at for a :class:`~CardiacMTLLib.analysis.strain.StrainResult` (or its
    ``to_dict()``): peak circumferential strain, peak radial strain and wall thickening per segment."""
    segments = strain["segments"] if isinstance(strain, dict) else [vars(s) for s in strain.segments]
    return {
        "circumferential": {s["segment"]: s["peak_circumferential_pct"] for s in segments},
        "radial": {s["segment"]: s["peak_radial_pct"] for s in segments},
        "thickening": {s["segment"]: s["thickening_pct"] for s in segments},
    }


def wall_motion_marks(strain) -> dict[int, str]:
    """``AK`` / ``HK`` for the akinetic and hypokinetic segments."""
    get = strain.get if isinstance(strain, dict) else lambda k: getattr(strain, k)
    marks = {s: "HK" for s in get("hypokinetic_segments") or []}
    marks.update({s: "AK" for s in get("akinetic_segments") or []})
    return marks


# (key of strain_maps, title, colour map, colour range): the three maps every front end shows
STRAIN_MAPS = (
    ("circumferential", "Peak circumferential strain (%)", "RdBu", -30.0, 0.0),
    ("radial", "Peak radial strain (%)", "RdBu_r", 0.0, 60.0),
    ("thickening", "Wall thickening (%)", "RdBu_r", 0.0, 80.0),
)


def draw_strain_maps(fig, axes, strain) -> None:
    """The :data:`STRAIN_MAPS` of ``strain`` on three axes of ``fig``, each with its colour bar and the
    akinetic and hypokinetic segments marked."""
    maps, marks = strain_maps(strain), wall_motion_marks(strain)
    for ax, (key, title, cmap, lo, hi) in zip(axes, STRAIN_MAPS, strict=True):
        mappable = draw_bullseye(ax, maps[key], title=title, cmap=cmap, vmin=lo, vmax=hi, marks=marks)
        fig.colorbar(mappable, ax=ax, fraction=0.046, pad=0.02)


def write_bullseye(strain, path: str | Path | None = None, *, dpi: int = 100) -> bytes:
    """Circumferential strain, radial strain and thickening side by side as a PNG; written to ``path``
    when given, and returned as bytes (the web app shows them without a file)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.5, 3.8))  # on its own canvas: no pyplot figure manager, no backend switch
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    draw_strain_maps(fig, axes, strain)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data
