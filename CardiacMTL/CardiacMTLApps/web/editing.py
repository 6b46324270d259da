"""The browser app's segmentation brush: trame-slicer's Segment Editor paint and erase effects on the
shown frame's segmentation, as in Slicer's Segment Editor.

The brush paints the displayed (proxy) segmentation node of the result's segmentation sequence; the
sequence browser keeps each frame's edits, and "Update results" reads them back with
:meth:`CardiacMTLLib.scene.cardiac.CardiacScene.update_from_segmentation` (the path Slicer's module takes).
No label arithmetic here: the brush is trame-slicer's, the recomputation the Lib's.
"""

from __future__ import annotations

import asyncio
import logging

from CardiacMTLApps.web import state as panel
from CardiacMTLLib.errors import CardiacError
from CardiacMTLLib.scene.segmentation import LABEL_SEGMENT_IDS

logger = logging.getLogger(__name__)

BRUSH_MODES = ("off", "paint", "erase")


class SegmentationBrush:
    """Paint or erase one structure of the shown frame with the mouse in the slice view.

    ``editor`` is trame-slicer's :class:`~trame_slicer.core.SegmentationEditor` of the app's scene.
    """

    def __init__(self, editor):
        self.editor = editor
        self.mode = "off"
        self.label = 3
        self.diameter_mm = 5.0
        self.segmentation = None

    def attach(self, segmentation_node, volume_node) -> None:
        """Edit ``segmentation_node`` (the result's displayed segmentation) on the grid of ``volume_node``."""
        self.finish_stroke()  # on the segmentation it was drawn on
        self.segmentation = segmentation_node
        if segmentation_node is None:
            self.set_mode("off")
            return
        self.editor.set_active_segmentation(segmentation_node, volume_node)
        mode = self.mode
        self.mode = "off"
        self.set_mode(mode)

    def detach(self) -> None:
        """Stop editing (a new case or a new result); the brush keeps its mode for the next one."""
        mode = self.mode
        self.set_mode("off")
        self.mode = mode
        self.segmentation = None

    def finish_stroke(self) -> bool:
        """Apply a stroke whose mouse release has not reached the server yet; whether there was one.

        The slice view's mouse events come on their own queue, one round trip each, so on a busy machine a
        click on the panel (the brush off, Update results) can arrive before the release that ends a
        stroke. Turning the effect off then would drop the stroke, and the next one would start inside
        it. Ended here, the stroke is painted up to the last point received; the late release finds no
        stroke and does nothing.
        """
        finished = False
        effect = self.editor.active_effect
        for weak_pipeline in getattr(effect, "pipelines", None) or []:
            widget = getattr(weak_pipeline(), "widget", None)
            if widget is not None and widget.is_painting():
                widget.stop_painting()  # paints the stroke's points into the segment
                finished = True
                logger.info("a brush stroke ended before its mouse release arrived")
        return finished

    def set_mode(self, mode: str, label: int | None = None, diameter_mm: float | None = None) -> None:
        """``"paint"`` or ``"erase"`` structure ``label`` with a disc of ``diameter_mm``; ``"off"`` stops.
        A stroke still open is applied first, with the structure and brush it was drawn with."""
        from trame_slicer.segmentation import (
            BrushDiameterMode,
            SegmentationEffectErase,
            SegmentationEffectPaint,
        )

        if mode not in BRUSH_MODES:
            raise ValueError(f"brush mode must be one of {BRUSH_MODES}, got {mode!r}")
        self.finish_stroke()
        self.mode = mode
        self.label = int(label) if label is not None else self.label
        self.diameter_mm = float(diameter_mm) if diameter_mm is not None else self.diameter_mm
        if self.segmentation is None or mode == "off":
            self.editor.deactivate_effect()
            return
        self.editor.set_active_segment_id(LABEL_SEGMENT_IDS[self.label])
        effect = self.editor.set_active_effect_type(
            SegmentationEffectPaint if mode == "paint" else SegmentationEffectErase
        )
        if effect is not None:
            # a disc in the slice's plane: a sphere no wider than the slices would paint the next slice too
            effect.set_use_sphere_brush(False)
            effect.set_brush_diameter(self.diameter_mm, BrushDiameterMode.Absolute)


class EditingActions:
    """The panel's editing actions of :class:`~.app.CardiacWebApp`: the brush, Update results, Undo edits."""

    def _on_brush(self, brush_mode, brush_label, brush_diameter_mm, **_):
        self.brush.set_mode(
            brush_mode, label=brush_label, diameter_mm=panel.positive_or_none(brush_diameter_mm)
        )

    def update_results(self):
        """Every result again from the segmentation as painted (Slicer's "Update results")."""
        if self.scene_logic.result is None or self._analysis is not None:
            return
        self.brush.finish_stroke()  # the click may have overtaken the stroke's mouse release
        before = self.scene_logic.result
        self._edit_kind = "Segmentation edited"
        try:
            updated = self.scene_logic.update_from_segmentation(classifier=self.engine.models()[1])
        except CardiacError as exc:
            with self.state:
                self._show_error(str(exc))
            return
        finally:
            self._edit_kind = "Landmark edited"
        if updated is before:
            with self.state:
                self.state.status = "No segmentation edits to apply."

    def undo_edits(self):
        """Show the analysis's own result again: brush strokes and landmark drags are undone."""
        if self._analysed is None or self._analysis is not None:
            return
        with self.state:
            self._show_result(self._analysed)
            self._prepare_downloads(self._analysed)
            self.state.status = "Edits undone: the analysis's own result is shown."
        asyncio.ensure_future(self._fit_lv_model())
