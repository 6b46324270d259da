"""Atomic writes: a reader (or a crash) never sees a half-written result file or folder.

Files and folders are written under a hidden sibling name (``.<name>.partial...``) and renamed into place
when complete; an existing folder is moved aside (``.<name>.old-<ms>``) only once its replacement is
complete. ``batch`` recognises these names when it tidies up after killed writers.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_folder(out_dir: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder beside ``out_dir``; on success it replaces ``out_dir``, on an
    exception it is removed and ``out_dir`` is left as it was."""
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        yield staging
        if out_dir.exists():
            backup = out_dir.with_name(f".{out_dir.name}.old-{int(time.time() * 1000)}")
            out_dir.rename(backup)
            staging.rename(out_dir)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def json_safe(value):
    """``value`` with numpy scalars and arrays turned into Python numbers and lists, keys into strings."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_json_atomic(document: dict, path: str | Path, indent: int = 2) -> None:
    """Write ``document`` as JSON next to ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as f:
            json.dump(document, f, indent=indent)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
