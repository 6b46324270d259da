"""Copy a trained model folder into the package's weights/ and record its sha256 in the catalogue.

    .venv/bin/python scripts/ship_model.py runs/seg/model acdc_unet2d

The shipped folder is written by the one model-folder writer (``models.registry.write_model_folder``:
staged, moved into place, the manifest with the ``sha256`` of ``weights.pt`` that ``load_model`` checks);
files already there that a model folder does not hold (the model card) stay. ``weights/catalogue.json``
lists every shipped model with its checksum and size, so the Slicer module can verify its files without a
network. A segmentation network is converted for OpenVINO first where the source folder lacks it
(``cardiac-train export-openvino``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from CardiacMTLLib.atomic import OUTPUT_MANIFEST, record_written, write_text_atomic
from CardiacMTLLib.models.registry import MANIFEST, WEIGHTS, WEIGHTS_DIR, sha256_of, write_model_folder
from CardiacMTLLib.models.runtime import RUNTIME_FILES


def main(source: str, name: str) -> int:
    source_dir, target = Path(source), WEIGHTS_DIR / name
    manifest = json.loads((source_dir / MANIFEST).read_text())
    manifest.pop("sha256", None)  # recomputed by the writer
    extra = {
        p.name: p
        for p in source_dir.iterdir()
        if p.is_file() and p.name not in (MANIFEST, WEIGHTS) and not p.name.startswith(".")
    }
    if target.is_dir():  # the package's own weights folder (a model card may be there first)
        record_written(target)
    write_model_folder(target, None, manifest, {WEIGHTS: source_dir / WEIGHTS, **extra})
    # the package ships model files only; a later write adopts them again by their manifest.json
    (target / OUTPUT_MANIFEST).unlink(missing_ok=True)
    shipped = json.loads((target / MANIFEST).read_text())
    catalogue_path = WEIGHTS_DIR / "catalogue.json"
    catalogue = json.loads(catalogue_path.read_text()) if catalogue_path.exists() else {"models": {}}
    catalogue["models"][name] = {
        "model_id": shipped.get("model_id"),
        "version": shipped.get("version"),
        "task": shipped.get("task"),
        "folder": name,
        "files": {
            WEIGHTS: shipped["sha256"][WEIGHTS],
            # the network converted for OpenVINO, where the folder carries it (models.runtime)
            **{n: sha256_of(target / n) for n in RUNTIME_FILES if (target / n).is_file()},
        },
        "size_bytes": (target / WEIGHTS).stat().st_size,
    }
    write_text_atomic(json.dumps(catalogue, indent=2) + "\n", catalogue_path)
    # the Slicer module's CMakeLists.txt lists every shipped file
    subprocess.run([sys.executable, str(Path(__file__).with_name("update_cmake_lists.py"))], check=True)
    print(f"shipped {source_dir} as {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
