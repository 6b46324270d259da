"""Draw the 128 x 128 icons of the extension and its modules (a stylised short-axis slice of the heart).

    .venv/bin/python scripts/make_icons.py

CardiacMTL: the LV myocardium as a ring around the LV cavity, with the RV cavity as a crescent on the
image left, coloured as the label maps are shown. CardiacAtlas: the same LV ring with the outlines of
two shape modes around it. Shapes are computed on a 4x finer grid and averaged down, so the edges are
anti-aliased; ``matplotlib.pyplot.imsave`` writes exactly one pixel per array element.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.colors import to_rgba

REPO_ROOT = Path(__file__).resolve().parents[1]
SIZE = 128
SUPERSAMPLE = 4
LV_CAVITY = "#f4a6a0"
MYOCARDIUM = "#b8322a"
RV_CAVITY = "#3f8fd2"
MODE_OUTLINES = ("#2e7d32", "#f0a500")


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [-1, 1], y pointing up, on the supersampled grid."""
    n = SIZE * SUPERSAMPLE
    c = (np.arange(n) + 0.5) / n * 2 - 1
    x, y = np.meshgrid(c, -c)
    return x, y


def _ellipse(x, y, cx, cy, ax, ay) -> np.ndarray:
    return ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1


def _paint(layers) -> np.ndarray:
    """Composite (mask, colour) layers, later ones on top, and average down to SIZE x SIZE RGBA."""
    n = SIZE * SUPERSAMPLE
    rgba = np.zeros((n, n, 4))
    for mask, colour in layers:
        rgba[mask] = to_rgba(colour)
    # premultiplied alpha so that transparent neighbours do not darken the edges
    rgba[..., :3] *= rgba[..., 3:]
    small = rgba.reshape(SIZE, SUPERSAMPLE, SIZE, SUPERSAMPLE, 4).mean(axis=(1, 3))
    alpha = small[..., 3:]
    small[..., :3] = np.divide(small[..., :3], alpha, out=np.zeros_like(small[..., :3]), where=alpha > 0)
    return np.clip(small, 0, 1)


def short_axis_icon() -> np.ndarray:
    x, y = _grid()
    lv_centre, epi, endo = (0.22, 0.0), 0.62, 0.40
    lv_epi = _ellipse(x, y, *lv_centre, epi, epi)
    lv_endo = _ellipse(x, y, *lv_centre, endo, endo)
    # the RV wraps around the septum: a wide ellipse on the left, minus the LV; a thin free wall
    rv_wall = _ellipse(x, y, -0.26, 0.02, 0.66, 0.76) & ~_ellipse(x, y, *lv_centre, epi + 0.04, epi + 0.04)
    rv_cavity = _ellipse(x, y, -0.26, 0.02, 0.59, 0.69) & ~_ellipse(x, y, *lv_centre, epi + 0.10, epi + 0.10)
    return _paint([(rv_wall, MYOCARDIUM), (rv_cavity, RV_CAVITY), (lv_epi, MYOCARDIUM), (lv_endo, LV_CAVITY)])


def atlas_icon() -> np.ndarray:
    x, y = _grid()
    layers = []
    for colour, (ax, ay, angle) in zip(MODE_OUTLINES, ((0.86, 0.66, 0.5), (0.66, 0.86, -0.5)), strict=True):
        xr = x * np.cos(angle) + y * np.sin(angle)
        yr = -x * np.sin(angle) + y * np.cos(angle)
        outline = _ellipse(xr, yr, 0, 0, ax, ay) & ~_ellipse(xr, yr, 0, 0, ax - 0.07, ay - 0.07)
        layers.append((outline, colour))
    layers += [(_ellipse(x, y, 0, 0, 0.62, 0.62), MYOCARDIUM), (_ellipse(x, y, 0, 0, 0.38, 0.38), LV_CAVITY)]
    return _paint(layers)


def main() -> None:
    icons = {
        REPO_ROOT / "Resources" / "Icons" / "CardiacMTL.png": short_axis_icon(),
        REPO_ROOT / "CardiacMTL" / "Resources" / "Icons" / "CardiacMTL.png": short_axis_icon(),
        REPO_ROOT / "CardiacAtlas" / "Resources" / "Icons" / "CardiacAtlas.png": atlas_icon(),
    }
    for path, image in icons.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        plt.imsave(path, image)
        print(f"wrote {path.relative_to(REPO_ROOT)} ({image.shape[1]} x {image.shape[0]})")


if __name__ == "__main__":
    main()
