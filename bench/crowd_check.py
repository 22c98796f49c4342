"""An outside check of the crowd agreement the model card reports: FER2013 and FER+ read
with pandas alone (none of fer_core's readers, targets or scoring), the model called as a
user would (``fer_core.load_model().predict_faces``), the clear majority computed here.
Writes bench/crowd_check.json.

    python -m bench.crowd_check [--split PrivateTest] [--model a.keras]

Needs ``$FER2013_PATH`` and ``$FERPLUS_PATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# FER+'s columns, in FER2013's class order (angry, disgust, fear, happy, sad, surprise, neutral)
CROWD_COLUMNS = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]


def main(argv=None) -> int:
    import pandas as pd

    from fer_core import load_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="PrivateTest")
    parser.add_argument("--model", default=None, help="default: the shipped model")
    parser.add_argument("--out", default=str(ROOT / "bench" / "crowd_check.json"))
    args = parser.parse_args(argv)
    fer = pd.read_csv(os.environ["FER2013_PATH"])
    votes = pd.read_csv(os.environ["FERPLUS_PATH"])
    assert len(fer) == len(votes) and (fer["Usage"] == votes["Usage"]).all()
    rows = fer["Usage"] == args.split
    counts = votes.loc[rows, CROWD_COLUMNS].to_numpy()
    totals = votes.loc[rows, CROWD_COLUMNS + ["contempt", "unknown", "NF"]].to_numpy().sum(1)
    best = counts.argmax(axis=1)
    clear = counts.max(axis=1) * 2 > totals
    images = np.stack(
        [np.array(p.split(), dtype=np.uint8).reshape(48, 48) for p in fer.loc[rows, "pixels"]]
    )
    model = load_model(args.model)
    started = time.perf_counter()
    guess = model.predict_faces(images).argmax(axis=1)
    seconds = time.perf_counter() - started
    result = {
        "model": model.path.name,
        "split": args.split,
        "clear_faces": int(clear.sum()),
        "agreement_with_majority": float(np.mean(guess[clear] == best[clear])),
        "fer2013_accuracy": float(np.mean(guess == fer.loc[rows, "emotion"].to_numpy())),
        "seconds": round(seconds, 2),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(result, indent=1))
    out = Path(args.out)
    stored = json.loads(out.read_text()) if out.is_file() else {}
    stored[model.path.name] = result
    out.write_text(json.dumps(stored, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
