"""Ablation: every registered architecture under the same budget, data and recipe.

    python -m bench.ablation --epochs 15            # writes bench/ablation.json

Each model trains on FER2013 Training with `python -m fer_core train` (checkpoint chosen on
PublicTest), then is evaluated once on PrivateTest with `python -m fer_core evaluate`. Runs are
resumable: rerunning the command continues unfinished runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from fer_core.training.runs import Run

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "ablation.json"
ARCHITECTURES = ["mini_xception", "cnn_wide", "cnn_gru"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ablation")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--data", default=os.environ.get("FER2013_PATH"))
    parser.add_argument("--runs-dir", default=str(ROOT / "runs"))
    parser.add_argument("--architectures", nargs="+", default=ARCHITECTURES)
    args = parser.parse_args(argv)
    if not args.data:
        print("set FER2013_PATH or pass --data", file=sys.stderr)
        return 2
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    for architecture in args.architectures:
        name = f"ablation-{architecture}-{args.epochs}ep"
        run = Path(args.runs_dir) / name
        subprocess.run(
            [
                sys.executable,
                "-m",
                "fer_core",
                "train",
                "--data",
                args.data,
                "-a",
                architecture,
                "--epochs",
                str(args.epochs),
                "--runs-dir",
                args.runs_dir,
                "--name",
                name,
            ],
            cwd=ROOT,
            env=env,
            check=True,
        )
        report_path = run / "private_test.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "fer_core",
                "evaluate",
                "--data",
                args.data,
                "--model",
                str(Run(run).best_model),
                "--split",
                "PrivateTest",
                "--json",
                str(report_path),
            ],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        report = json.loads(report_path.read_text())
        metrics = json.loads((run / "metrics.json").read_text())
        history = [line.split(",") for line in (run / "history.csv").read_text().splitlines()[1:]]
        results[name] = {
            "architecture": architecture,
            "epochs": args.epochs,
            "parameters": metrics["parameters"],
            "best_epoch": metrics["best_epoch"],
            "public_test_accuracy": metrics["accuracy"],
            "private_test_accuracy": report["accuracy"],
            "private_test_macro_f1": report["macro_f1"],
            "disgust_recall": report["per_class"]["disgust"]["recall"],
            "train_minutes": round(sum(float(row[-1]) for row in history) / 60, 1),
        }
        OUT.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results[name]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
