"""Landmark edits: corrected points replace the automatic ones and the indices that depend on them are recomputed."""

from __future__ import annotations

import numpy as np

from CardiacMTLLib.analysis.strain import strain_or_none
from CardiacMTLLib.errors import CardiacInputError
from CardiacMTLLib.io.landmarks import complete_point, insertions_of_frame, landmark_key


def aha_indices(result) -> dict:
    """``WT_AHA_1 (mm)`` ... ``WT_AHA_16 (mm)`` of an analysis result from its ED labels and ED landmarks."""
    from CardiacMTLLib.analysis.indices import aha_wall_thickness_mm

    ed_frame = result.cine.frame_numbers[result.ed_index]
    return aha_wall_thickness_mm(
        result.labels[result.ed_index],
        result.cine.spacing_mm,
        insertions_of_frame(result.landmarks, ed_frame),
    )


def update_landmarks(result, landmarks: list[dict], source: str = "landmarks"):
    """An analysis result with ``landmarks`` put in and everything that depends on them recomputed.

    ``landmarks`` are dicts as in ``landmarks.json`` (``label``, ``frame``, ``slice``, and ``ijk`` or
    ``ras``); each replaces the result's point with the same label, frame and slice, or is added. A point
    that moved (by more than 0.01 voxel) or comes with ``"edited": true`` is marked edited by a person
    (``"edited": true``, ``"source": "user"``); points not given keep their place. The AHA segment wall
    thicknesses (``WT_AHA_* (mm)``) are recomputed from the ED insertion points, and the provenance
    counts the edited points. Returns a new result; the one passed in is not changed. A point on a frame
    the cine does not have (the landmarks of another study) is refused, naming ``source`` (the file).
    """
    import dataclasses

    if not isinstance(landmarks, list | tuple):
        raise CardiacInputError(f"landmarks must be a list of points, got {type(landmarks).__name__}")
    shape = result.labels.shape[1:]
    current = {landmark_key(p): dict(p) for p in result.landmarks}
    frames = result.cine.frame_numbers
    for given in landmarks:
        point = complete_point(given, result.cine.ras_affine, shape, where=source)
        if point["frame"] not in frames:
            raise CardiacInputError(
                f"{source}: landmark {point['label']} is on frame {point['frame']}, but this cine's frames are "
                f"{_frame_list(frames)}: the landmarks of another study?"
            )
        key = landmark_key(point)
        before = current.get(key)
        moved = before is None or np.max(np.abs(np.subtract(point["ijk"], before["ijk"]))) > 0.01
        if moved or point["edited"]:
            point["edited"] = True
            point["source"] = "user"
        else:
            point = before
        current[key] = point
    updated = dataclasses.replace(
        result,
        landmarks=sorted(
            current.values(),
            key=lambda p: (p["frame"], p["slice"] if p["slice"] is not None else -1, p["label"]),
        ),
        indices=dict(result.indices),
        provenance=dict(result.provenance),
    )
    updated.indices.update(aha_indices(updated))
    if result.strain is not None:  # the AHA segments of the strain are oriented by the same points
        updated.strain = strain_or_none(
            updated.cine, updated.labels, updated.ed_index, updated.es_index, updated.landmarks
        )
    updated.provenance["landmarks edited by a person"] = sum(bool(p["edited"]) for p in updated.landmarks)
    return updated


def _frame_list(frames: list[int]) -> str:
    return ", ".join(str(f) for f in frames) if len(frames) <= 6 else f"{frames[0]}-{frames[-1]}"
