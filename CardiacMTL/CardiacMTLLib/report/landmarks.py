"""The figure of the mitral hinge points on the long-axis frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_hinge_figure(
    cine, points: list[dict], path: Path, labels: np.ndarray | None = None, frames: int = 4
) -> Path:
    """A picture of the hinges on ``frames`` evenly spaced frames of a long-axis cine, with the LV cavity
    (red) and myocardium (green) contours they were read from when ``labels`` are given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = np.unique(np.linspace(0, cine.num_frames - 1, min(frames, cine.num_frames)).round().astype(int))
    fig, axes = plt.subplots(1, len(picks), figsize=(3.6 * len(picks), 3.9), squeeze=False)
    for ax, t in zip(axes[0], picks, strict=True):
        image = cine.data[t, 0]
        low, high = np.percentile(image, [1, 99.5])
        ax.imshow(image, cmap="gray", vmin=low, vmax=high)
        if labels is not None:
            for value, colour in ((3, "tab:red"), (2, "tab:green")):
                if (labels[t] == value).any():
                    ax.contour(labels[t] == value, levels=[0.5], colors=[colour], linewidths=1.0)
        here = [p for p in points if p["frame"] == cine.frame_numbers[t]]
        for p in here:
            ax.plot(p["ijk"][0], p["ijk"][1], "o", ms=7, mfc="yellow", mec="black", mew=0.8)
            ax.annotate(
                p["label"][-1],
                (p["ijk"][0], p["ijk"][1]),
                xytext=(5, -5),
                textcoords="offset points",
                color="yellow",
                fontsize=9,
            )
        heart = np.argwhere(labels[t] > 0) if labels is not None else np.zeros((0, 2))
        if len(heart) or here:  # zoom on the LV (else the hinges) with a margin
            corners = [heart[:, ::-1]] if len(heart) else []
            corners += [np.array([p["ijk"][:2] for p in here])] if here else []
            box = np.concatenate(corners)
            centre = (box.min(axis=0) + box.max(axis=0)) / 2
            half = max(float(np.ptp(box, axis=0).max()) / 2 + 15.0, 30.0 / float(cine.spacing_mm[0]))
            ax.set_xlim(centre[0] - half, centre[0] + half)
            ax.set_ylim(centre[1] + half, centre[1] - half)
        ax.set_title(f"frame {cine.frame_numbers[t]}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        "mitral valve hinges (1, 2)" + ("; LV cavity red, myocardium green" if labels is not None else ""),
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
