"""The one-page PDF report and the panel figures drawn with it (matplotlib's PDF and Agg backends)."""

from __future__ import annotations

import re

import pytest

from CardiacMTLLib.errors import CardiacOutputError
from CardiacMTLLib.pipeline import measure
from CardiacMTLLib.report.pdf import pdf_report, strain_curves_png, volume_curve_png, write_pdf_report
from CardiacMTLLib.synthetic.sax import generate_synthetic_cine

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def result():
    case = generate_synthetic_cine(seed=5, num_frames=8, shape=(80, 80, 5), subslices=1)
    return measure(case.cine, case.labels, {"device": "cpu (test)", "model_id": "exact labels"})


def test_the_report_is_one_complete_pdf_page(result):
    pdf = pdf_report(result)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1
    assert b"CardiacMTL report" in pdf  # the document title


def test_the_report_file_is_written_once_and_never_over_a_file_it_did_not_write(result, tmp_path):
    path = write_pdf_report(result, tmp_path / "report.pdf")
    assert path.read_bytes().startswith(b"%PDF-")
    other = tmp_path / "notes.pdf"
    other.write_text("a user's file")
    for overwrite in (False, True):
        with pytest.raises(CardiacOutputError):
            write_pdf_report(result, other, overwrite=overwrite)
    assert other.read_text() == "a user's file"
    with pytest.raises(CardiacOutputError, match="--overwrite"):
        write_pdf_report(result, path)
    assert write_pdf_report(result, path, overwrite=True) == path  # its own report is replaced
    assert not list(tmp_path.glob(".*partial"))


def test_the_panel_figures_are_png(result):
    assert volume_curve_png(result).startswith(PNG)
    assert result.strain is not None
    assert strain_curves_png(result.strain).startswith(PNG)


def test_a_structure_outline_is_the_line_matplotlib_contour_draws(result):
    import numpy as np

    from CardiacMTLLib.report.figures import agg_figure, structure_outline
    from CardiacMTLLib.types import Label

    mask = result.labels[result.ed_index, 2] == Label.LV_MYOCARDIUM  # a ring: an outer and an inner loop
    x, y = np.linspace(0, 112.0, mask.shape[1]), np.linspace(0, 98.0, mask.shape[0])
    outline = structure_outline(mask, x, y)
    (drawn,) = agg_figure().subplots().contour(x, y, mask.astype(float), levels=[0.5]).get_paths()
    assert outline.vertices.shape == drawn.vertices.shape and int((outline.codes == 79).sum()) == 2
    np.testing.assert_allclose(outline.vertices, drawn.vertices, atol=1e-9)
    np.testing.assert_array_equal(outline.codes, drawn.codes)
    assert structure_outline(np.zeros_like(mask), x, y) is None
