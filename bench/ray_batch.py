"""Batch prediction over 1,000 JPEGs: the plain CLI against Ray Data on the same files, in
one run (``python -m bench.ray_batch``; writes bench/ray_batch.json).

Both are timed as a user runs them (``fer predict``, start-up included) and in-process with
the start-up left out (plain: the model already loaded; Ray: Ray already started, its workers
still loading their models)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).with_name("ray_batch.json")


def make_images(folder: Path, count: int) -> None:
    from PIL import Image

    from bench.run import synthetic_frame

    base = synthetic_frame(320, 240, 1, 110)
    for index in range(count):
        Image.fromarray(np.roll(base, index % 60, axis=1)).save(
            folder / f"img_{index:04d}.jpg", quality=90
        )


def timed_cli(folder: Path, *extra: str) -> float:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "RAY_USAGE_STATS_ENABLED": "0"}
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fer_core",
            "predict",
            str(folder),
            "--out",
            str(folder.parent / "out.csv"),
            *extra,
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=1200,
    )
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ray_batch")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)
    from fer_core.recognition.batch import predict_with_ray, start_ray
    from fer_core.recognition.predict import collect_inputs, run_predict

    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "photos"
        folder.mkdir()
        make_images(folder, args.images)
        results = {
            "images": args.images,
            "concurrency": args.concurrency,
            "cores": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d"),
        }
        cli = timed_cli(folder)
        ray_cli = timed_cli(folder, "--engine", "ray", "--concurrency", str(args.concurrency))
        files, _ = collect_inputs([str(folder)])
        run_predict([str(files[0])], None, None, 1, "photo", stream=open(os.devnull, "w"))
        started = time.perf_counter()
        plain = run_predict([str(folder)], None, None, 1, "photo", stream=open(os.devnull, "w"))
        plain_seconds = time.perf_counter() - started
        start_ray()
        table, timing = predict_with_ray(files, None, "photo", args.concurrency)
        assert len(table) == len(plain["rows"]), (len(table), len(plain["rows"]))
        results.update(
            {
                "plain_cli_images_per_second_with_start": round(args.images / cli, 1),
                "ray_cli_images_per_second_with_start": round(args.images / ray_cli, 1),
                "plain_images_per_second_without_start": round(args.images / plain_seconds, 1),
                "ray_images_per_second_without_start": round(
                    args.images / timing["seconds_after_start"], 1
                ),
                "seconds": {
                    "plain_cli": round(cli, 1),
                    "ray_cli": round(ray_cli, 1),
                    "plain_in_process": round(plain_seconds, 1),
                    "ray_in_process": round(timing["seconds_after_start"], 1),
                },
            }
        )
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
