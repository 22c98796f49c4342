"""Real faces that nobody here trained on, labelled by other people than FER2013's labeller.
Writes bench/wild.json (one entry per model file, keyed by its name and sha256).

    python -m bench.wild                          # the shipped model(s), ~6 min on 2 cores
    python -m bench.wild --model a.keras b.keras  # any models
    python -m bench.wild --peer                   # the `fer` package on the same photos too

The data is not in this repository: ``--wild`` (default ``$FER_WILD_PATH`` or
``../shared/data/wild``) holds

- ``genki4k/`` + ``genki4k_labels.csv``: 4,000 web photos of one person each (GENKI-4K, MPLab
  UCSD, research use), labelled "smiling" or not. Each photo goes through the whole path
  (detector, crop, model) with each detector's photo preset; the largest face is scored as
  "happy or not" (a non-smiling face's true emotion is unknown). Reported: the share of
  photos with a face found, accuracy and balanced accuracy of happy-or-not on those, and the
  same end to end (no face found counts as wrong);
- ``muxspace_crops.csv.gz``: 13,672 48x48 grey crops (muxspace/facial_expressions, each
  labelled by one student; tighter than FER2013's framing), classified directly: per-class
  recall and macro-F1 (the classes are very skewed: 5,693 happy, 6,864 neutral, 21 fear).

These sets choose between models (with PublicTest); they never train one.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from fer_core.faces import DETECTORS

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
DEFAULT_WILD = ROOT.parent / "shared" / "data" / "wild"
OUT = ROOT / "bench" / "wild.json"


def genki(wild: Path, limit: int | None = None, spread: bool = False):
    """(rgb images, smiling bools) of GENKI-4K, in file order: the first ``limit`` photos, or
    with ``spread`` about ``limit`` photos taken evenly over the file (it lists the smiling
    photos first). Only the photos returned are read."""
    from fer_core.data.image import read_image

    with open(wild / "genki4k_labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if limit and spread:
        rows = rows[:: max(1, len(rows) // limit)][:limit]
    elif limit:
        rows = rows[:limit]
    images, smiling = [], []
    for row in rows:
        images.append(read_image(wild / "genki4k" / row["file"]))
        smiling.append(int(row["smile"]) == 1)
    return images, np.array(smiling)


def muxspace(wild: Path):
    """The crops (N, 48, 48) uint8 and their labels (FER2013's CSV layout, Usage=muxspace,
    which FER2013's own reader does not take as a split)."""
    import pandas as pd

    table = pd.read_csv(wild / "muxspace_crops.csv.gz")
    images = np.stack(
        [np.array(p.split(), dtype=np.uint8).reshape(48, 48) for p in table["pixels"]]
    )
    return images, table["emotion"].to_numpy(dtype=np.int64)


def _happy_or_not(predicted_happy: np.ndarray, smiling: np.ndarray) -> dict:
    right = predicted_happy == smiling
    recall_smile = float(right[smiling].mean()) if smiling.any() else None
    recall_other = float(right[~smiling].mean()) if (~smiling).any() else None
    return {
        "n": int(len(smiling)),
        "accuracy": float(right.mean()) if len(right) else None,
        "balanced_accuracy": None
        if recall_smile is None or recall_other is None
        else (recall_smile + recall_other) / 2,
        "smiles_called_happy": recall_smile,
        "others_not_called_happy": recall_other,
    }


def genki_whole_path(model, images, smiling, detector: str) -> dict:
    from fer_core.recognition.recognizer import Recognizer

    recognizer = Recognizer(model, preset="photo", detector=detector)
    found = np.zeros(len(images), dtype=bool)
    happy = np.zeros(len(images), dtype=bool)
    started = time.perf_counter()
    for i, rgb in enumerate(images):
        faces = recognizer.analyze(rgb)
        if faces:
            largest = max(faces, key=lambda f: f.box[2] * f.box[3])
            found[i] = True
            happy[i] = largest.label == "happy"
    seconds = time.perf_counter() - started
    end_to_end = _happy_or_not(np.where(found, happy, ~smiling), smiling)
    end_to_end["accuracy"] = float(np.mean(found & (happy == smiling)))
    return {
        "detector": detector,
        "preset": "photo",
        "photos": len(images),
        "found": float(found.mean()),
        "on_found": _happy_or_not(happy[found], smiling[found]),
        "end_to_end_accuracy": end_to_end["accuracy"],
        "ms_per_photo": round(1000 * seconds / max(len(images), 1), 2),
    }


def genki_peer(images, smiling) -> dict:
    """The `fer` package (FER() defaults: its own Haar and 60k-parameter model) on the same
    photos, its largest face scored the same way."""
    try:
        from fer.fer import FER
    except Exception as exc:  # noqa: BLE001  (its import pulls optional things)
        return {"missing": f"the fer package cannot be imported ({type(exc).__name__})"}
    peer = FER()
    found = np.zeros(len(images), dtype=bool)
    happy = np.zeros(len(images), dtype=bool)
    started = time.perf_counter()
    for i, rgb in enumerate(images):
        faces = peer.detect_emotions(np.ascontiguousarray(rgb[:, :, ::-1]))
        if faces:
            largest = max(faces, key=lambda f: f["box"][2] * f["box"][3])
            found[i] = True
            happy[i] = max(largest["emotions"], key=largest["emotions"].get) == "happy"
    seconds = time.perf_counter() - started
    return {
        "detector": "fer's Haar",
        "photos": len(images),
        "found": float(found.mean()),
        "on_found": _happy_or_not(happy[found], smiling[found]),
        "end_to_end_accuracy": float(np.mean(found & (happy == smiling))),
        "ms_per_photo": round(1000 * seconds / max(len(images), 1), 2),
    }


def muxspace_report(model, crops, labels) -> dict:
    from fer_core.evaluation.reports import classification_report, predict_probabilities

    probs = predict_probabilities(model, crops)
    report = classification_report(labels, probs.argmax(axis=1))
    return {
        "n": report["n"],
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
        "balanced_accuracy": report["balanced_accuracy"],
        "recall": {emotion: row["recall"] for emotion, row in report["per_class"].items()},
        "support": {emotion: row["support"] for emotion, row in report["per_class"].items()},
        "confusion_matrix": report["confusion_matrix"],
    }


def score_model(path: Path, wild: Path, images, smiling, crops, labels) -> dict:
    from fer_core.models.inference import EmotionModel, file_sha256

    model = EmotionModel(path)
    entry = {
        "model": path.name,
        "sha256": file_sha256(path),
        "flip_average": model.flip_average,
        "genki4k": {},
        "muxspace": None,
    }
    for detector in DETECTORS:
        print(f"{path.name}: GENKI-4K through {detector}", file=sys.stderr, flush=True)
        entry["genki4k"][detector] = genki_whole_path(model, images, smiling, detector)
    print(f"{path.name}: muxspace crops", file=sys.stderr, flush=True)
    entry["muxspace"] = muxspace_report(model, crops, labels)
    return entry


def shipped_models() -> list[Path]:
    from fer_core.models.inference import SHIPPED_MODELS

    return [Path(path) for path in SHIPPED_MODELS.values() if Path(path).is_file()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", nargs="+", default=None, help=".keras files")
    parser.add_argument("--wild", default=os.environ.get("FER_WILD_PATH") or str(DEFAULT_WILD))
    parser.add_argument("--limit", type=int, default=None, help="GENKI-4K: the first N photos")
    parser.add_argument("--peer", action="store_true", help="the fer package too")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    wild = Path(args.wild)
    if not (wild / "genki4k_labels.csv").is_file():
        print(f"error: no GENKI-4K under {wild} (give --wild or FER_WILD_PATH)", file=sys.stderr)
        return 2
    images, smiling = genki(wild, args.limit)
    crops, labels = muxspace(wild)
    models = [Path(m) for m in args.model] if args.model else shipped_models()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results.setdefault("models", {})
    results["data"] = {
        "genki4k_photos": int(len(images)),
        "genki4k_smiling": int(smiling.sum()),
        "muxspace_crops": int(len(labels)),
    }
    for path in models:
        entry = score_model(path, wild, images, smiling, crops, labels)
        results["models"][entry["sha256"]] = entry
        print(json.dumps({k: entry[k] for k in ("model", "genki4k")}, indent=1))
        print(
            f"muxspace: accuracy {entry['muxspace']['accuracy']:.4f}, macro-F1 "
            f"{entry['muxspace']['macro_f1']:.4f}"
        )
    if args.peer:
        results["peer"] = {"genki4k": genki_peer(images, smiling)}
        print(json.dumps(results["peer"], indent=1))
    from fer_core.storage import write_json

    write_json(out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
