"""Copy a trained model folder (ONNX + card) into ``resources/models/<name>/`` with its notices.

``python -m engine.train.ship runs/landmarks`` (or ``runs/detector``): the card is re-verified
(sha256), the licence text and a NOTICE naming the training data are written beside it, and
the training summary is kept as ``training.json`` so the shipped numbers can be traced.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from engine.models.card import RESOURCES, load_card

NOTICES = {
    "landmarks": (
        "Stacked-hourglass 68-point landmark model, trained by facescope (`facescope train landmarks`).\n\n"
        "Weights: trained here from scratch (no pretrained weights) on the HELEN-train and AFW subsets of\n"
        "300-W (iBUG), 85 % of the faces (the other 15 %, chosen by a hash of the file names, are held\n"
        "out), plus LFW faces pseudo-labelled by MediaPipe FaceMesh (Apache-2.0, Copyright Google LLC;\n"
        "used as a teacher at training time only, not shipped) mapped to the 68 iBUG points.\n"
        "300-W and LFW are distributed for research use, so treat these weights as research /\n"
        "non-commercial. facescope's code is Apache-2.0 (LICENSE beside this file).\n"
    ),
    "detector": (
        "YOLO11 face detector (compact 'p' scale, boxes only), trained by facescope (`facescope train detector`)\n"
        "with Ultralytics YOLO from scratch (no pretrained weights).\n\n"
        "Training data: LFW (one image per training identity) and 300-W HELEN-train, research-use data;\n"
        "boxes are pseudo-labels from the shipped YuNet detector. Ultralytics YOLO is AGPL-3.0 and\n"
        "Ultralytics licenses models trained with it under AGPL-3.0; this model is therefore an opt-in\n"
        "alternative, never the silent default (YuNet, MIT, is). The model architecture file is\n"
        "engine/train/configs/yolo11p-face.yaml (derived from Ultralytics' yolo11.yaml).\n"
    ),
}


def _agpl_text() -> str:
    """The AGPL-3.0 text as shipped in ultralytics' own distribution (offline)."""
    from importlib import metadata

    for dist in ("ultralytics-opencv-headless", "ultralytics"):
        try:
            files = metadata.distribution(dist).files or []
        except metadata.PackageNotFoundError:
            continue
        for f in files:
            if f.name == "LICENSE":
                return f.read_text()
    return "GNU Affero General Public License v3.0 (AGPL-3.0): https://www.gnu.org/licenses/agpl-3.0.txt\n"


def ship(run_dir: str | Path, resources: Path = RESOURCES, extra_files: tuple[str, ...] = ()) -> Path:
    run_dir = Path(run_dir)
    card = load_card(run_dir / "card.json")
    card.verify()
    dest = resources / card.name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copyfile(card.path, dest / card.file)
    shutil.copyfile(run_dir / "card.json", dest / "card.json")
    for name in extra_files:
        shutil.copyfile(run_dir / name, dest / Path(name).name)
    root = Path(__file__).resolve().parents[2]
    licence = root / "LICENSE"
    if card.family == "detector":
        (dest / "LICENSE").write_text(_agpl_text())
    elif licence.is_file():
        shutil.copyfile(licence, dest / "LICENSE")
    else:
        (dest / "LICENSE").write_text("Apache License 2.0: https://www.apache.org/licenses/LICENSE-2.0\n")
    (dest / "NOTICE").write_text(NOTICES[card.family])
    summary = run_dir / "summary.json"
    if summary.is_file():
        data = json.loads(summary.read_text())
        for key in ("onnx", "card", "weights"):
            data.pop(key, None)
        (dest / "training.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    load_card(dest / "card.json").verify()
    return dest


if __name__ == "__main__":
    extra = tuple(sys.argv[2:])
    print(ship(sys.argv[1], extra_files=extra))
