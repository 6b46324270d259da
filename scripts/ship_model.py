"""Copy a trained model folder into the package's weights/ and record its sha256 in the catalogue.

    .venv/bin/python scripts/ship_model.py runs/seg/model acdc_unet2d

The manifest gets ``sha256`` of ``weights.pt`` (checked by ``load_model``), and
``CardiacMTLLib/weights/catalogue.json`` lists every shipped model with its checksum and size, so the
Slicer module can verify its files without a network.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parents[1] / "CardiacMTL" / "CardiacMTLLib" / "weights"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(source: str, name: str) -> int:
    source_dir, target = Path(source), WEIGHTS / name
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source_dir / "weights.pt", target / "weights.pt")
    manifest = json.loads((source_dir / "manifest.json").read_text())
    manifest["sha256"] = {"weights.pt": sha256(target / "weights.pt")}
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    catalogue_path = WEIGHTS / "catalogue.json"
    catalogue = json.loads(catalogue_path.read_text()) if catalogue_path.exists() else {"models": {}}
    catalogue["models"][name] = {
        "model_id": manifest.get("model_id"),
        "version": manifest.get("version"),
        "task": manifest.get("task"),
        "folder": name,
        "files": {"weights.pt": manifest["sha256"]["weights.pt"]},
        "size_bytes": (target / "weights.pt").stat().st_size,
    }
    catalogue_path.write_text(json.dumps(catalogue, indent=2) + "\n")
    # the Slicer module's CMakeLists.txt lists every shipped file
    subprocess.run([sys.executable, str(Path(__file__).with_name("update_cmake_lists.py"))], check=True)
    print(f"shipped {source_dir} as {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
