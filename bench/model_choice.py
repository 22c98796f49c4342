"""Which shipped model is the default: the one that best agrees with the crowd on PublicTest
through the whole path, unless a FER2013-label model beats it there. Writes
bench/model_choice.json.

    python -m bench.model_choice    # about 2 minutes on 2 cores

Every shipped model goes through ``fer_core.evaluation.whole_path.evaluate_pipeline`` on PublicTest (the
split that chooses), Haar and BlazeFace photo presets, scored against FER+'s clear majority and
against FER2013's labels. PrivateTest is not read. Needs ``$FER2013_PATH`` and ``$FERPLUS_PATH``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from fer_core.faces import DETECTORS

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
OUT = ROOT / "bench" / "model_choice.json"
KEYS = ("faces", "found", "accuracy_found", "crop_accuracy_found", "framing_cost", "end_to_end")


def main() -> int:
    from fer_core.cli.pipeline_command import split_with_labels
    from fer_core.data.fer2013 import load_fer2013
    from fer_core.evaluation.whole_path import SceneOptions, evaluate_pipeline
    from fer_core.models.card import read_card
    from fer_core.models.inference import SHIPPED_MODELS
    from fer_core.recognition.recognizer import Recognizer

    for name in ("FER2013_PATH", "FERPLUS_PATH"):
        if not os.environ.get(name):
            print(f"error: set {name}", file=sys.stderr)
            return 2
    dataset = load_fer2013(os.environ["FER2013_PATH"])
    results = {}
    for key, path in SHIPPED_MODELS.items():
        card = read_card(path)
        trained = card.trained_labels if card else "fer2013"
        entry = {"model": path.name, "trained_on": trained, "rows": {}}
        for labels in ("ferplus-majority", "fer2013"):
            images, truth = split_with_labels(dataset, "PublicTest", labels)
            for detector in DETECTORS:
                recognizer = Recognizer(str(path), preset="photo", detector=detector)
                report = evaluate_pipeline(recognizer, images, truth, SceneOptions())
                entry["rows"][f"{labels}/{detector}"] = {k: report[k] for k in KEYS}
                print(key, labels, detector, f"end to end {report['end_to_end']:.4f}", flush=True)
        results[key] = entry

    def crowd(key: str) -> float:
        rows = results[key]["rows"]
        return sum(rows[f"ferplus-majority/{d}"]["end_to_end"] for d in DETECTORS)

    crowd_models = [k for k in results if results[k]["trained_on"] != "fer2013"]
    label_models = [k for k in results if results[k]["trained_on"] == "fer2013"]
    best_crowd = max(crowd_models, key=crowd, default=None)
    best_label = max(label_models, key=crowd, default=None)
    default = (
        best_crowd
        if best_label is None or (best_crowd is not None and crowd(best_crowd) >= crowd(best_label))
        else best_label
    )
    out = {
        "split": "PublicTest",
        "rule": "the highest end-to-end agreement with FER+'s clear "
        "majority, summed over Haar and BlazeFace (photo "
        "presets)",
        "default": default,
        "date": time.strftime("%Y-%m-%d"),
        "models": results,
    }
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"default: {default}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
