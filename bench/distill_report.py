"""The distillation ablation's scores: each model once on PublicTest and once on PrivateTest.

    python -m bench.distill_report NAME=MODEL.keras [NAME=A.keras+B.keras ...] [--out FILE]

A ``+`` joins models into an ensemble (their averaged probabilities, as ``train --teacher``
uses them). Every model is scored with flip averaging (image and mirror), as the teachers'
targets are made and as the shipped model runs. PublicTest is where the choices were made;
PrivateTest is reported here and steers nothing. Rows are merged into ``bench/distill.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "distill.json"


def main(argv=None) -> int:
    from fer_core.data.fer2013 import load_fer2013
    from fer_core.evaluation.reports import classification_report, predict_probabilities
    from fer_core.models.architectures import load_keras_model

    parser = argparse.ArgumentParser(prog="python -m bench.distill_report")
    parser.add_argument("models", nargs="+", help="NAME=PATH.keras or NAME=A.keras+B.keras")
    parser.add_argument("--data", default=os.environ.get("FER2013_PATH"))
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    dataset = load_fer2013(args.data)
    splits = {name: dataset.split(name) for name in ("PublicTest", "PrivateTest")}
    out = Path(args.out)
    rows = json.loads(out.read_text()) if out.is_file() else {}
    cache: dict[tuple[str, str], np.ndarray] = {}
    parameters: dict[str, int] = {}
    for item in args.models:
        name, _, paths = item.partition("=")
        members = paths.split("+")
        row = {"models": [Path(p).name for p in members], "parameters": 0}
        started = time.perf_counter()
        for split, (images, labels) in splits.items():
            probs = 0.0
            for path in members:
                if (path, split) not in cache:
                    model = load_keras_model(path)
                    parameters[path] = int(model.count_params())
                    cache[(path, split)] = predict_probabilities(model, images, flip_average=True)
                probs = probs + cache[(path, split)]
            report = classification_report(labels, np.asarray(probs).argmax(1))
            row[split] = {
                "accuracy": round(report["accuracy"], 4),
                "macro_f1": round(report["macro_f1"], 4),
                "disgust_recall": round(report["per_class"]["disgust"]["recall"], 4),
            }
        row["parameters"] = sum(parameters[p] for p in members)
        row["seconds"] = round(time.perf_counter() - started, 1)
        rows[name] = row
        print(name, json.dumps(row), flush=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
