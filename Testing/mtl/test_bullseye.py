"""The AHA bull's-eye layout (segment 1 at the top, septum on the left) and its PNG."""

import numpy as np

from CardiacMTLLib.report.bullseye import segment_wedges, strain_maps, wall_motion_marks, write_bullseye


def _middle(wedge):
    inner, outer, start, end = wedge
    angle = np.deg2rad((start + end) / 2)
    r = (inner + outer) / 2
    return r * np.cos(angle), r * np.sin(angle)


def test_the_layout_is_the_aha_one():
    wedges = segment_wedges()
    assert sorted(wedges) == list(range(1, 17))
    for anterior in (1, 7, 13):
        x, y = _middle(wedges[anterior])
        assert y > 0 and abs(x) < 1e-9
    for septal in (2, 3, 8, 9, 14):
        assert _middle(wedges[septal])[0] < 0
    for lateral in (5, 6, 11, 12, 16):
        assert _middle(wedges[lateral])[0] > 0
    assert wedges[1][0] > wedges[7][0] > wedges[13][0]  # base outside, apex inside
    for first, count in ((1, 6), (7, 6), (13, 4)):
        spans = sum(wedges[s][3] - wedges[s][2] for s in range(first, first + count))
        assert spans == 360


def test_the_png_shows_the_three_maps(tmp_path):
    segments = [
        {"segment": s, "peak_circumferential_pct": -18.0, "peak_radial_pct": 30.0, "thickening_pct": None}
        for s in range(1, 17)
    ]
    strain = {"segments": segments, "akinetic_segments": [9], "hypokinetic_segments": [8, 9]}
    assert strain_maps(strain)["thickening"][4] is None
    assert wall_motion_marks(strain) == {8: "HK", 9: "AK"}
    data = write_bullseye(strain, tmp_path / "b.png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "b.png").read_bytes() == data
