"""What the browser app does to Slicer's views beyond trame-slicer's defaults: the patient's nodes (slice
plane, segmentation, landmarks) kept out of the atlas view, the window/level of the cine, and where landmarks are on the slice view's screen.
VTK and MRML calls only; no image arithmetic.
"""

from __future__ import annotations


def keep_out_of_view(scene, view, keep=()) -> None:
    """Every displayable node shown in all views (no view list of its own: landmarks, segmentations, slice
    planes) is drawn in every view but ``view``; the nodes in ``keep`` (the atlas shape) are left alone."""
    view_node_id = view.get_view_node_id()
    others = [
        scene.GetNthNodeByClass(n, "vtkMRMLAbstractViewNode").GetID()
        for n in range(scene.GetNumberOfNodesByClass("vtkMRMLAbstractViewNode"))
    ]
    others = [i for i in others if i != view_node_id]
    kept = {node.GetID() for node in keep if node is not None}
    for n in range(scene.GetNumberOfNodesByClass("vtkMRMLDisplayableNode")):
        node = scene.GetNthNodeByClass(n, "vtkMRMLDisplayableNode")
        if node.GetID() in kept:
            continue
        for d in range(node.GetNumberOfDisplayNodes()):
            display = node.GetNthDisplayNode(d)
            if display is not None and display.GetNumberOfViewNodeIDs() == 0:
                display.SetViewNodeIDs(others)


def set_window(volume_node, window_range) -> None:
    """Show ``volume_node`` with the intensities ``[low, high]`` mapped from black to white."""
    shown = volume_node.GetDisplayNode() if volume_node is not None else None
    if shown is None or not window_range or len(window_range) != 2:
        return
    shown.SetAutoWindowLevel(0)
    shown.SetWindowLevelMinMax(float(window_range[0]), float(window_range[1]))


def landmark_screen(view, node) -> list[dict]:
    """Where each control point of markups ``node`` is in the slice ``view``, in CSS pixels from its
    top-left corner, with its distance (mm) from the shown slice. Used by the browser tests to drag a
    point; harmless for users (a hidden element)."""
    if view is None or node is None:
        return []
    import vtk

    slice_node = view.get_view_node()
    ras_to_xy = vtk.vtkMatrix4x4()
    ras_to_xy.DeepCopy(slice_node.GetXYToRAS())
    ras_to_xy.Invert()
    height = slice_node.GetDimensions()[1]
    slice_to_ras = slice_node.GetSliceToRAS()
    normal = [slice_to_ras.GetElement(r, 2) for r in range(3)]
    origin = [slice_to_ras.GetElement(r, 3) for r in range(3)]
    points = []
    for n in range(node.GetNumberOfControlPoints()):
        ras = [0.0, 0.0, 0.0]
        node.GetNthControlPointPosition(n, ras)
        x, y, _, _ = ras_to_xy.MultiplyPoint([*ras, 1.0])
        distance = abs(sum((p - o) * d for p, o, d in zip(ras, origin, normal, strict=True)))
        label = node.GetNthControlPointLabel(n)
        points.append({"n": n, "label": label, "x": round(x, 1), "y": round(height - y, 1)})
        points[-1]["distance_mm"] = round(float(distance), 2)
    return points
