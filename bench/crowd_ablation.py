"""What the labels and the path augmentation each bring, at one budget. Writes
bench/crowd_ablation.json.

    python -m bench.crowd_ablation --train    # six fine-tunes of 6 epochs (~40 min, 2 cores)
    python -m bench.crowd_ablation            # score the six runs that exist

Six runs, identical but for two settings, each fine-tuned from the same start (the v3
FER2013 model, ``models/cnn_gru_fer2013.keras``) for the same epochs and schedule:
labels FER2013 | FER+ vote shares | FER+ majority, each with and without ``--path-augment``.
Every run is chosen on PublicTest by its own labels' validation (as ``fer train`` does).

Scored per run: PublicTest and PrivateTest (measured once, after the runs) on FER2013's labels
and against FER+'s clear majority, and the whole path on PublicTest (Haar and BlazeFace photo
presets, the first ``--faces`` faces with a clear majority): accuracy on the faces found and
the framing cost (the same model on the same faces' original crops, minus that).
Needs ``$FER2013_PATH`` and ``$FERPLUS_PATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from fer_core.faces import DETECTORS

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
OUT = ROOT / "bench" / "crowd_ablation.json"
START = ROOT / "models" / "cnn_gru_fer2013.keras"
EPOCHS = 6
RECIPE = [
    "--epochs",
    str(EPOCHS),
    "--learning-rate",
    "1e-3",
    "--warmup-epochs",
    "1",
    "--swa-start",
    "4",
    "--shift-fraction",
    "0.12",
    "--zoom-fraction",
    "0.15",
    "--label-smoothing",
    "0",
    "--class-weighting",
    "none",
]
RUNS = {
    f"ablation_{labels.replace('-', '_')}{'_path' if path else ''}": (labels, path)
    for labels in ("fer2013", "ferplus-votes", "ferplus-majority")
    for path in (False, True)
}


def train_run(runs_dir: Path, name: str, start: Path, flags: list[str]) -> None:
    """``fer train`` one run of an ablation: ``start``'s weights, RECIPE, then ``flags`` (a
    flag given again there overrides RECIPE's)."""
    command = [
        sys.executable,
        "-m",
        "fer_core",
        "train",
        "--name",
        name,
        "--runs-dir",
        str(runs_dir),
        "--init-from",
        str(start),
        *RECIPE,
        *flags,
    ]
    print(" ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)


def train_all(runs_dir: Path) -> None:
    for name, (labels, path) in RUNS.items():
        if not (runs_dir / name / "metrics.json").is_file():
            train_run(
                runs_dir, name, START, ["--labels", labels, *(["--path-augment"] if path else [])]
            )


def score(runs_dir: Path, faces: int) -> dict:
    from fer_core.data.fer2013 import load_fer2013
    from fer_core.data.ferplus import FerPlus, aligned, load_ferplus
    from fer_core.evaluation.reports import classification_report, predict_probabilities
    from fer_core.evaluation.whole_path import SceneOptions, evaluate_pipeline
    from fer_core.models.inference import EmotionModel
    from fer_core.recognition.recognizer import Recognizer
    from fer_core.training.runs import Run

    dataset = load_fer2013(os.environ["FER2013_PATH"])
    votes = aligned(load_ferplus(os.environ["FERPLUS_PATH"], dataset), dataset)
    results = {}
    for name, (labels, path) in RUNS.items():
        run = Run(runs_dir / name)
        if not run.best_model.is_file():
            continue
        model = EmotionModel(run.best_model, fast=False, flip_average=True)
        entry = {
            "labels": labels,
            "path_augment": path,
            "epochs": EPOCHS,
            "train_seconds": round(sum(r.get("seconds", 0.0) for r in run.history()), 1),
        }
        for split in ("PublicTest", "PrivateTest"):
            inside = dataset.usage == split
            images, fer_labels = dataset.split(split)
            probs = predict_probabilities(model, images)
            majority = FerPlus(votes.votes[inside], votes.usage[inside]).clear_majority()
            clear = majority >= 0
            guess = probs.argmax(axis=1)
            entry[split] = {
                "fer2013_accuracy": float(np.mean(guess == fer_labels)),
                "fer2013_macro_f1": classification_report(fer_labels, guess)["macro_f1"],
                "ferplus_majority_agreement": float(np.mean(guess[clear] == majority[clear])),
                "ferplus_macro_f1": classification_report(majority[clear], guess[clear])[
                    "macro_f1"
                ],
            }
        inside = dataset.usage == "PublicTest"
        images, _ = dataset.split("PublicTest")
        majority = FerPlus(votes.votes[inside], votes.usage[inside]).clear_majority()
        keep = np.flatnonzero(majority >= 0)[:faces]
        entry["whole_path_PublicTest"] = {}
        for detector in DETECTORS:
            recognizer = Recognizer(model, preset="photo", detector=detector)
            report = evaluate_pipeline(recognizer, images[keep], majority[keep], SceneOptions())
            entry["whole_path_PublicTest"][detector] = {
                key: report[key]
                for key in (
                    "faces",
                    "found",
                    "accuracy_found",
                    "crop_accuracy_found",
                    "framing_cost",
                    "end_to_end",
                )
            }
        results[name] = entry
        print(name, json.dumps(entry), flush=True)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", action="store_true", help="train the runs that are missing")
    parser.add_argument("--runs-dir", default=str(ROOT / "runs"))
    parser.add_argument(
        "--faces",
        type=int,
        default=1000,
        help="whole path: the first N PublicTest faces with a clear majority",
    )
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    for name in ("FER2013_PATH", "FERPLUS_PATH"):
        if not os.environ.get(name):
            print(f"error: set {name}", file=sys.stderr)
            return 2
    runs_dir = Path(args.runs_dir)
    if args.train:
        train_all(runs_dir)
    results = score(runs_dir, args.faces)
    from fer_core.storage import write_json

    write_json(
        args.out,
        {
            "recipe": " ".join(RECIPE),
            "start": START.name,
            "whole_path_faces": args.faces,
            "date": time.strftime("%Y-%m-%d"),
            "runs": results,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
