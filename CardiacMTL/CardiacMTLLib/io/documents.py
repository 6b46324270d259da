"""JSON documents the project reads back (its own result, fit and atlas folders): one reader that names
the file and what was expected when it is missing or not JSON."""

from __future__ import annotations

import json
from pathlib import Path

from CardiacMTLLib.errors import CardiacInputError


def read_json_document(path: str | Path, folder_kind: str) -> dict:
    """The JSON document at ``path``; ``folder_kind`` says what its folder should be (``"an atlas
    folder"``) for the message when the file is missing."""
    path = Path(path)
    if not path.is_file():
        raise CardiacInputError(f"{path}: not found; is {path.parent} {folder_kind}?")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CardiacInputError(f"{path}: not valid JSON ({e})") from e
