"""The patient's height and weight as every input gives them (command line, ACDC ``Info.cfg``, a cohort
manifest, the Slicer and browser panels): numbers a person can have, or a one-line error that says which.

A height or weight outside what people measure is a typing mistake (metres for centimetres, pounds or
grams for kilograms); taken as given it would scale every indexed volume and change the diagnosis.
"""

from __future__ import annotations

import math

from CardiacMTLLib.errors import CardiacInputError

# from a newborn (about 45 cm; a premature baby smaller still is not imaged in an adult cine) to the tallest
# living people (about 250 cm); the 100 ACDC training patients are 140-192 cm tall. The Slicer module's
# height field (CardiacMTL.py) stops at the same 250 cm.
HEIGHT_CM_RANGE = (40.0, 250.0)
# from a newborn (about 2 kg and up) to beyond what MR tables carry (250-300 kg for wide-bore systems); the
# 100 ACDC training patients weigh 35-123 kg. The Slicer module's weight field stops at the same 350 kg.
WEIGHT_KG_RANGE = (2.0, 350.0)
# a height this small in centimetres is a height in metres (1.84 for 184 cm)
METRES_BELOW = 3.0


def body_size_problem(quantity: str, value: float) -> str | None:
    """Why ``value`` is not a person's ``quantity`` (``"height"`` in cm, ``"weight"`` in kg), worded to
    follow its name (``"1.84 looks like metres; give centimetres (184)"``); ``None`` when it is one."""
    low, high = HEIGHT_CM_RANGE if quantity == "height" else WEIGHT_KG_RANGE
    unit = "cm" if quantity == "height" else "kg"
    if not (math.isfinite(value) and value > 0):
        return f"must be a positive number, got {value:g}"
    if quantity == "height" and value < METRES_BELOW:
        return f"{value:g} looks like metres; give centimetres ({100 * value:g})"
    if not low <= value <= high:
        return f"{value:g} {unit} is outside {low:g}-{high:g} {unit}, the {quantity}s of people"
    return None


def checked_body_size(quantity: str, value: float | None, name: str) -> float | None:
    """``value`` as a float when it is a person's ``quantity`` (``"height"`` in cm, ``"weight"`` in kg),
    ``None`` for ``None``; else a :class:`CardiacInputError` whose message starts with ``name`` (the
    option, the file and key, the manifest line and column)."""
    if value is None:
        return None
    problem = body_size_problem(quantity, float(value))
    if problem is not None:
        raise CardiacInputError(f"{name} {problem}")
    return float(value)
