"""Faces made on purpose: posed expressions at their peak, labelled by FACS-trained coders.
Writes bench/posed.json (one entry per model file, keyed by its name and sha256).

    python -m bench.posed                          # the shipped models, a few seconds
    python -m bench.posed --model a.keras b.keras  # any models (a run's best.keras)
    python -m bench.posed --write-card             # and record it in each model's card

The data is not in this repository: ``--posed`` (default ``$FER_POSED_PATH`` or
``../shared/data/posed/ckplus48_dev.csv``) is CK+48's development third (35 subjects, 297
frames; FER2013's CSV layout plus a ``subject`` column; no neutral faces). It is a yardstick
for *choosing*; it never trains a model that ships (CK+ is licensed for research, and a set
a model learnt from measures nothing). The other CK+48 subjects are held out elsewhere.

Each crop goes to the model as it is (48x48 grey), with the flip averaging its card chose.
Reported: accuracy, balanced accuracy (the mean of per-class recall, so a model that answers
one class cannot look good), per-class recall, the confusion matrix, and on each class's
faces the model's mean probability of *neutral* (the failure this yardstick was made for:
a frown read as neutral).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
DEFAULT_POSED = ROOT.parent / "shared" / "data" / "posed" / "ckplus48_dev.csv"
OUT = ROOT / "bench" / "posed.json"
MAX_BYTES = 64 * 2**20  # the dev file is about 1.7 MB


def load_posed(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (N, 48, 48) uint8, labels (N,), subjects (N,) str) of a posed CSV."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ValueError(f"{path.name} is larger than {MAX_BYTES // 2**20} MB")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    images = np.stack(
        [np.array(row["pixels"].split(), dtype=np.uint8).reshape(48, 48) for row in rows]
    )
    labels = np.array([int(row["emotion"]) for row in rows], dtype=np.int64)
    subjects = np.array([row.get("subject", "") for row in rows])
    return images, labels, subjects


def posed_report(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, balanced accuracy, per-class recall and the neutral pull, on the classes the
    set holds."""
    from fer_core.evaluation.reports import classification_report
    from fer_core.labels import EMOTIONS

    report = classification_report(labels, probabilities.argmax(axis=1))
    present = [i for i, e in enumerate(EMOTIONS) if report["per_class"][e]["support"]]
    neutral = EMOTIONS.index("neutral")
    return {
        "n": report["n"],
        "accuracy": report["accuracy"],
        "balanced_accuracy": report["balanced_accuracy"],
        "recall": {EMOTIONS[i]: report["per_class"][EMOTIONS[i]]["recall"] for i in present},
        "support": {EMOTIONS[i]: report["per_class"][EMOTIONS[i]]["support"] for i in present},
        "called_neutral": float(np.mean(probabilities.argmax(axis=1) == neutral)),
        "mean_neutral_probability": {
            EMOTIONS[i]: float(probabilities[labels == i, neutral].mean()) for i in present
        },
        "confusion_matrix": report["confusion_matrix"],
    }


def score_model(path: Path, images: np.ndarray, labels: np.ndarray) -> dict:
    from fer_core.evaluation.reports import predict_probabilities
    from fer_core.models.inference import EmotionModel, file_sha256

    model = EmotionModel(path, fast=False)
    probs = predict_probabilities(model, images, flip_average=model.flip_average)
    return {
        "model": path.name,
        "sha256": file_sha256(path),
        "flip_average": model.flip_average,
        **posed_report(probs, labels),
    }


def summary_line(entry: dict) -> str:
    recall = " ".join(f"{k} {v:.2f}" for k, v in entry["recall"].items())
    return (
        f"{entry['model']}: accuracy {entry['accuracy']:.4f}, balanced "
        f"{entry['balanced_accuracy']:.4f}, said neutral {entry['called_neutral']:.3f}; "
        f"recall {recall}"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", nargs="+", default=None, help=".keras files")
    parser.add_argument("--posed", default=os.environ.get("FER_POSED_PATH") or str(DEFAULT_POSED))
    parser.add_argument("--out", default=str(OUT), help="results file ('-': print only)")
    parser.add_argument(
        "--write-card",
        action="store_true",
        help="record the result in each model's card (the Model page, docs/model.md)",
    )
    args = parser.parse_args(argv)
    posed = Path(args.posed)
    if not posed.is_file():
        print(f"error: no posed faces at {posed} (give --posed or FER_POSED_PATH)", file=sys.stderr)
        return 2
    images, labels, subjects = load_posed(posed)
    if args.model:
        models = [Path(m) for m in args.model]
    else:
        from bench.wild import shipped_models

        models = shipped_models()
    results = {}
    out = None if args.out == "-" else Path(args.out)
    if out is not None and out.is_file():
        results = json.loads(out.read_text())
    results.setdefault("models", {})
    results["data"] = {
        "file": posed.name,
        "frames": int(len(labels)),
        "subjects": int(len(set(subjects.tolist()))),
    }
    for path in models:
        entry = score_model(path, images, labels)
        results["models"][entry["sha256"]] = entry
        print(summary_line(entry), flush=True)
        if args.write_card:
            from fer_core.models.card_writer import add_posed

            add_posed(
                path,
                entry,
                dataset=f"{posed.name} ({entry['n']} frames, "
                f"{results['data']['subjects']} subjects)",
                command="python -m bench.posed --write-card",
            )
    if out is not None:
        from fer_core.storage import write_json

        write_json(out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
