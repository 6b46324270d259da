"""The browser app's segmentation brush: trame-slicer's Segment Editor paint and erase effects on the
shown frame's segmentation, as in Slicer's Segment Editor.

The brush paints the displayed (proxy) segmentation node of the result's segmentation sequence; the
sequence browser keeps each frame's edits, and "Update results" reads them back with
:meth:`CardiacMTLLib.scene.cardiac.CardiacScene.update_from_segmentation` (the path Slicer's module takes).
No label arithmetic here: the brush is trame-slicer's, the recomputation the Lib's.
"""

from __future__ import annotations

from CardiacMTLLib.scene.segmentation import LABEL_SEGMENT_IDS

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

    def set_mode(self, mode: str, label: int | None = None, diameter_mm: float | None = None) -> None:
        """``"paint"`` or ``"erase"`` structure ``label`` with a disc of ``diameter_mm``; ``"off"`` stops."""
        from trame_slicer.segmentation import (
            BrushDiameterMode,
            SegmentationEffectErase,
            SegmentationEffectPaint,
        )

        if mode not in BRUSH_MODES:
            raise ValueError(f"brush mode must be one of {BRUSH_MODES}, got {mode!r}")
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
