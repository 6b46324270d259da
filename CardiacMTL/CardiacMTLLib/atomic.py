"""Atomic writes and the one output-folder policy: a reader (or a crash) never sees a half-written result,
and no run ever deletes or replaces a file the project did not write.

Files and folders are written under a hidden sibling name (``.<name>.partial...``) and moved into place
when complete. A results folder carries a small manifest (``.cardiacmtl-output.json``) of the files the
project wrote there; only those are ever replaced. ``batch`` recognises the staging names when it tidies up
after killed writers.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from CardiacMTLLib.errors import CardiacOutputError

OUTPUT_MANIFEST = ".cardiacmtl-output.json"


def _owned_files(folder: Path) -> list[str] | None:
    """The files an earlier run wrote into ``folder`` (relative paths), or None when it left no manifest.

    Only entries that name a file inside ``folder`` count: a manifest is a file anyone can edit, and an
    entry such as ``../x``, ``/abs/x`` or ``link/x`` through a symbolic link that leads out of the folder
    must never make a run delete or replace something outside it."""
    try:
        document = json.loads((folder / OUTPUT_MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    files = document.get("files") if isinstance(document, dict) else None
    if document.get("written_by") != "CardiacMTL" or not isinstance(files, list):
        return None
    return [str(f) for f in files if isinstance(f, str) and _names_a_file_inside(folder, f)]


def files_written_by_project(folder: str | Path) -> list[str] | None:
    """The files (relative paths) the project's manifest of ``folder`` lists, or None without one."""
    return _owned_files(Path(folder))


def _names_a_file_inside(folder: Path, rel: str) -> bool:
    """``rel`` is a plain relative path (no ``..``, no root or drive) that stays inside ``folder`` once
    symbolic links are followed."""
    if not rel or "\\" in rel or ":" in rel:
        return False
    path = PurePosixPath(rel)
    if path.is_absolute() or any(part in ("..", ".") for part in rel.split("/")):
        return False
    root = folder.resolve()
    return (root / path).resolve().is_relative_to(root)


def check_output_folder(
    out_dir: str | Path, inputs: Sequence[str | Path] = (), overwrite: bool = False
) -> Path:
    """The resolved ``out_dir`` if results may be written there, else :class:`CardiacOutputError`.

    The policy of every writer of the project: a new folder is created; an existing one is used only when
    it is empty, or when an earlier run of the project wrote it (its manifest says so) and ``overwrite``
    is given, and then only the project's own files are replaced. Never the current folder, an input, or
    a folder above either. Called before the work starts, and again when the results are moved in.
    """
    out = Path(out_dir).expanduser().resolve()
    protected = [("the current folder", Path.cwd().resolve())]
    protected += [("the input", Path(p).expanduser().resolve()) for p in inputs if p]
    for what, path in protected:
        if out == path or out in path.parents:
            where = what if out == path else f"a folder above {what}"
            raise CardiacOutputError(
                f"{out_dir}: is {where} ({path}); results go into a new folder, never over {what}"
            )
    if out.exists() and not out.is_dir():
        raise CardiacOutputError(f"{out_dir}: exists and is not a folder; give a new folder for the results")
    if out.is_dir() and any(out.iterdir()):
        if _owned_files(out) is None:
            names = ", ".join(sorted(e.name for e in out.iterdir())[:5])
            raise CardiacOutputError(
                f"{out_dir}: already holds files CardiacMTL did not write ({names}); "
                "give a new or empty folder for the results"
            )
        if not overwrite:
            raise CardiacOutputError(
                f"{out_dir}: holds the results of an earlier run; pass --overwrite to replace them"
            )
    _check_creatable(out, out_dir)
    return out


def check_output_file(
    path: str | Path,
    inputs: Sequence[str | Path] = (),
    overwrite: bool = False,
    written_by_project: Callable[[Path], bool] | None = None,
) -> Path:
    """The resolved ``path`` if one result file may be written there, else :class:`CardiacOutputError`:
    never an input or a folder. An existing file is replaced only with ``overwrite``, and only when
    ``written_by_project(file)`` recognises it as one the project wrote there (a writer's own format:
    its CSV header, its JSON keys); without a recogniser an existing file is never replaced."""
    target = Path(path).expanduser().resolve()
    for p in inputs:
        if p and target == Path(p).expanduser().resolve():
            raise CardiacOutputError(f"{path}: is the input; write the result to a new file")
    if target.is_dir():
        raise CardiacOutputError(f"{path}: is a folder; give a file name for the result")
    if target.exists() or Path(path).expanduser().is_symlink():
        if Path(path).expanduser().is_symlink() or not _recognised(written_by_project, target):
            raise CardiacOutputError(
                f"{path}: exists and CardiacMTL did not write it; give a new file name "
                "(--overwrite replaces only a file an earlier run wrote)"
            )
        if not overwrite:
            raise CardiacOutputError(f"{path}: exists; pass --overwrite to replace it")
    _check_creatable(target.parent, path)
    return target


def _recognised(written_by_project: Callable[[Path], bool] | None, path: Path) -> bool:
    if written_by_project is None or not path.is_file():
        return False
    try:
        return bool(written_by_project(path))
    except (OSError, ValueError):  # unreadable, or not the format at all
        return False


def starts_with(*prefixes: str) -> Callable[[Path], bool]:
    """A recogniser for :func:`check_output_file`: the file's text begins with one of ``prefixes`` (the
    header line a writer of the project puts first)."""

    def recognise(path: Path) -> bool:
        with open(path, "rb") as f:
            head = f.read(max(len(p.encode()) for p in prefixes))
        return any(head.startswith(p.encode()) for p in prefixes)

    return recognise


def _check_creatable(target: Path, named: str | Path) -> None:
    """``target`` can be created: its nearest existing ancestor is a folder this process may write."""
    existing = target
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise CardiacOutputError(f"{named}: cannot create files in {existing} (permission denied)")


def claim_folder(out_dir: str | Path, inputs: Sequence[str | Path] = (), overwrite: bool = False) -> Path:
    """Check ``out_dir`` by the policy of :func:`check_output_folder`, create it and mark it as the
    project's, for writers that fill a folder piece by piece (``demo``, ``batch``); each piece is written
    with :func:`staged_folder` or an atomic file write and listed with :func:`record_written`."""
    out = check_output_folder(out_dir, inputs, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o777 & ~_umask())
    if _owned_files(out) is None:
        _write_manifest(out, files=[])
    return out


def record_written(out: Path, *paths: Path) -> None:
    """Add the files at ``paths`` (files, or folders taken whole) inside ``out`` to its manifest."""
    out = Path(out)
    files = set(_owned_files(out) or ())
    for path in paths:
        path = Path(path)
        found = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        files.update(p.resolve().relative_to(out.resolve()).as_posix() for p in found)
    _write_manifest(out, files=sorted(files - {OUTPUT_MANIFEST}))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_manifest(folder: Path, files: list[str] | None = None) -> None:
    """The manifest of ``folder``: the files the project wrote there (default: every file in it)."""
    if files is None:
        files = sorted(
            p.relative_to(folder).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and p.name != OUTPUT_MANIFEST
        )
    document = {
        "written_by": "CardiacMTL",
        "note": "the files of this folder that CardiacMTL wrote",
        "files": files,
    }
    target = folder / OUTPUT_MANIFEST
    staging = folder / f".{OUTPUT_MANIFEST}.partial"
    staging.write_text(json.dumps(document, indent=1))
    os.replace(staging, target)


def _move_into(staging: Path, out: Path) -> None:
    """Replace the project's own files of ``out`` with those of ``staging``; any other file stays."""
    old = set(_owned_files(out) or ())
    new = {p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()}
    collisions = [
        rel
        for rel in sorted(new - old - {OUTPUT_MANIFEST})
        if (out / rel).exists() or (out / rel).is_symlink()
    ]
    if collisions:
        raise CardiacOutputError(
            f"{out}: would replace {', '.join(collisions[:5])}, which CardiacMTL did not write; nothing was changed"
        )
    for rel in sorted(old - new):
        target = out / rel
        if target.is_file() or target.is_symlink():
            target.unlink()
    for rel in sorted(new - {OUTPUT_MANIFEST}):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / rel, out / rel)
    os.replace(staging / OUTPUT_MANIFEST, out / OUTPUT_MANIFEST)
    folders = (p for p in out.rglob("*") if p.is_dir() and not p.is_symlink())
    for folder in sorted(folders, key=lambda p: -len(p.parts)):
        rel = folder.relative_to(out).as_posix()
        if not any(folder.iterdir()) and any(f.startswith(rel + "/") for f in old):
            folder.rmdir()  # emptied of the project's files


@contextmanager
def staged_folder(
    out_dir: str | Path, inputs: Sequence[str | Path] = (), overwrite: bool = False
) -> Iterator[Path]:
    """Yield an empty staging folder beside ``out_dir``; on success its files are moved into ``out_dir``
    under the policy of :func:`check_output_folder` (with a manifest of what the project wrote); on an
    exception, an interrupt included, it is removed and ``out_dir`` is left as it was."""
    out = check_output_folder(out_dir, inputs, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        os.chmod(staging, 0o777 & ~_umask())
        yield staging
        check_output_folder(out_dir, inputs, overwrite)  # nothing appeared there meanwhile
        _write_manifest(staging)
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        if out.exists():
            _move_into(staging, out)
            shutil.rmtree(staging, ignore_errors=True)
        else:
            staging.rename(out)
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


def write_text_atomic(text: str, path: str | Path) -> None:
    """Write ``text`` next to ``path`` and rename it into place (permissions as the umask gives)."""
    _write_atomic(text, path, "w")


def write_bytes_atomic(data: bytes, path: str | Path) -> None:
    """Write ``data`` next to ``path`` and rename it into place (permissions as the umask gives)."""
    _write_atomic(data, path, "wb")


def _write_atomic(content: str | bytes, path: str | Path, mode: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, mode, newline=None if "b" in mode else "") as f:
            f.write(content)
        os.chmod(staging, 0o666 & ~_umask())
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def write_json_atomic(document: dict, path: str | Path, indent: int = 2) -> None:
    """Write ``document`` as JSON next to ``path`` and rename it into place."""
    write_text_atomic(json.dumps(document, indent=indent), path)


def sha256_of(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in blocks (the checksum the model folders record)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
