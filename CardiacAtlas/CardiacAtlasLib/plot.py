"""``modes.png``: the first atlas modes as long-axis cross-sections a cardiologist reads at a glance.

One row per mode and three columns (-3 SD, mean, +3 SD). Each panel cuts the LV along the plane through
the long axis and the mean shape's second principal direction and draws the endocardial (red) and
epicardial (blue) outlines, ED dark and thick, ES light and thin (a section is many short segments, so
dashes would not show), base at the top and apex at the bottom, in mm.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from CardiacAtlasLib.atlas import Atlas

# (colour, line width) per surface and phase
STYLES = {
    ("endo", "ED"): ("firebrick", 1.8),
    ("epi", "ED"): ("navy", 1.8),
    ("endo", "ES"): ("lightsalmon", 1.2),
    ("epi", "ES"): ("lightskyblue", 1.2),
}


def long_axis_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre, long axis pointing apex → base, in-plane transverse axis) of LV points (n, 3) in mm.

    The long axis is the points' first principal direction; it points to the end where the LV is wider
    (the open base), since the apex end narrows to a point.
    """
    centre = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - centre, full_matrices=False)
    axis, transverse = vt[0], vt[1]
    along = (points - centre) @ axis
    radial = np.linalg.norm((points - centre) - np.outer(along, axis), axis=1)
    low, high = np.quantile(along, [0.1, 0.9])
    if radial[along >= high].mean() < radial[along <= low].mean():
        axis = -axis
    return centre, axis, transverse


def plane_section(
    points: np.ndarray, faces: np.ndarray, origin: np.ndarray, normal: np.ndarray
) -> np.ndarray:
    """Segments (m, 2, 3) where the triangles ``faces`` of ``points`` cross the plane (origin, normal)."""
    distance = (points - origin) @ normal
    d = distance[faces]
    crossing = (d.min(axis=1) < 0) & (d.max(axis=1) > 0)
    segments = []
    for tri, dist in zip(faces[crossing], d[crossing], strict=True):
        ends = []
        for i, j in ((0, 1), (1, 2), (2, 0)):
            if (dist[i] < 0) != (dist[j] < 0):
                t = dist[i] / (dist[i] - dist[j])
                ends.append(points[tri[i]] + t * (points[tri[j]] - points[tri[i]]))
        if len(ends) == 2:
            segments.append(ends)
    return np.asarray(segments).reshape(-1, 2, 3)


def plot_modes(atlas: Atlas, path: str | Path, n_modes: int = 3, sd: float = 3.0) -> Path:
    """Write the mode figure (module docstring) as PNG to ``path``; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    mean = atlas.shape()
    first = mean[0]
    centre, axis, transverse = long_axis_frame(first[: atlas.n_endo_])
    normal = np.cross(axis, transverse)
    n_rows = max(1, min(n_modes, atlas.n_modes_))
    columns = (-sd, 0.0, sd)
    fig, axes = plt.subplots(n_rows, 3, figsize=(9.6, 3.3 * n_rows), squeeze=False)
    extent = []
    for row in range(n_rows):
        for col, step in enumerate(columns):
            ax = axes[row, col]
            shape = mean if (step == 0 or atlas.n_modes_ == 0) else atlas.mode_shape(row, step)
            for phase, points in zip(atlas.phases, shape, strict=True):
                for surface, faces in (("endo", atlas.faces_endo_), ("epi", atlas.faces_epi_)):
                    segments = plane_section(points, faces, centre, normal) - centre
                    # 2-D coordinates: transverse to the right, long axis up (base at the top)
                    xy = np.stack([segments @ transverse, segments @ axis], axis=-1)
                    extent.append(np.abs(xy).reshape(-1, 2).max(axis=0) if len(xy) else np.zeros(2))
                    colour, width = STYLES.get((surface, phase), ("grey", 1.0))
                    ax.add_collection(LineCollection(xy, colors=colour, linewidths=width))
            if step == 0:
                title = "mean shape"
            else:
                title = f"mode {row + 1} {step:+.0f} SD"
                if col == 0:
                    title = (
                        f"mode {row + 1} ({100 * atlas.explained_variance_ratio_[row]:.1f} %) {step:+.0f} SD"
                    )
            ax.set_title(title, fontsize=10)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=7)
            if col == 0:
                ax.set_ylabel("long axis (mm), base up")
            if row == n_rows - 1:
                ax.set_xlabel("mm")
    half = np.max(extent, axis=0) * 1.08 if extent else np.array([50.0, 60.0])
    for ax in axes.ravel():
        ax.set_xlim(-half[0], half[0])
        ax.set_ylim(-half[1], half[1])
    legend = [
        Line2D([], [], color=STYLES[(surface, phase)][0], linewidth=STYLES[(surface, phase)][1],
               label=f"{phase} {'endocardium' if surface == 'endo' else 'epicardium'}")
        for phase in atlas.phases for surface in ("endo", "epi") if (surface, phase) in STYLES
    ]  # fmt: skip
    fig.legend(handles=legend, loc="lower center", ncol=len(legend), fontsize=8, frameon=False)
    fig.suptitle(
        f"LV shape atlas: long-axis sections, {len(atlas.case_ids_)} cases"
        + (", size removed" if atlas.scaling else ""),
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
