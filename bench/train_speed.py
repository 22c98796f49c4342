"""Training speed of the project's own loop (``fer_core.training.loop.train``), on any Keras backend.

    python -m bench.train_speed                      # this machine, writes bench/train_speed.json
    KERAS_BACKEND=jax python -m bench.train_speed    # also counts JAX's compilations
    python -m bench.train_speed --data DIR_OR_CSV --batch-size 256 --epochs 6 --out FILE

It trains ``cnn_gru`` with the default recipe (augmentation and all) for a few epochs on
FER2013 Training (``--data``/``$FER2013_PATH``; a folder holding ``img.npy``, ``lab.npy`` and
``use.npy`` as ``../shared/device/pack_fer2013.sh`` writes them also works) or, with neither,
on random images of the same size. Reported per epoch: training images a second, timed from
the first finished batch to the last (the first epoch includes compiling). Under JAX, the
number of compilations after the first epoch is reported too: a loop that runs its step
compiled compiles nothing more, one that runs op by op compiles in every batch.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "train_speed.json"


class CompileCounter(logging.Handler):
    """Counts JAX's "Compiling ..." log records (``jax_log_compiles``)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.count = 0
        self.names: dict[str, int] = {}

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("Compiling "):
            self.count += 1
            name = message.split(" ")[1]
            self.names[name] = self.names.get(name, 0) + 1


def _count_compiles():
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_log_compiles", True)
    counter = CompileCounter()
    logger = logging.getLogger("jax")  # every JAX module's records reach it
    logger.addHandler(counter)
    logger.setLevel(logging.DEBUG)
    return counter


def load_training_data(path: str | None, rows: int | None, seed: int):
    from fer_core.data.fer2013 import Fer2013, load_fer2013

    if path and Path(path).is_dir() and (Path(path) / "lab.npy").is_file():
        folder = Path(path)
        images = np.load(folder / "img.npy", mmap_mode="r")
        labels = np.load(folder / "lab.npy").astype(np.int64)
        usage = np.load(folder / "use.npy")
        dataset = Fer2013(np.asarray(images), labels, usage, source=str(folder))
    elif path:
        dataset = load_fer2013(path)
    else:
        rng = np.random.default_rng(seed)
        n = rows or 8192
        dataset = Fer2013(
            rng.integers(0, 256, (n + 512, 48, 48), dtype=np.uint8),
            np.arange(n + 512) % 7,
            np.array(["Training"] * n + ["PublicTest"] * 512),
            source="random",
        )
    return dataset


def measure(
    dataset,
    batch_size: int,
    epochs: int,
    rows: int | None,
    architecture: str,
    steps_per_execution: int = 1,
    stop_after: float | None = None,
) -> dict:
    import keras

    from fer_core.training.config import TrainConfig
    from fer_core.training.loop import train

    counter = _count_compiles()
    marks: dict[int, list[float]] = {}
    compiles_at_epoch_end: list[int] = []

    def on_batch(epoch, batch, steps):
        marks.setdefault(epoch, []).append(time.perf_counter())
        marks[epoch].append(batch)

    def on_epoch(row):
        if counter is not None:
            compiles_at_epoch_end.append(counter.count)

    with tempfile.TemporaryDirectory() as runs:
        config = TrainConfig(
            architecture=architecture,
            epochs=epochs,
            batch_size=batch_size,
            train_subset=rows,
            validation_subset=512,
            runs_dir=runs,
            run_name="speed",
            recalibrate_batch_norm=False,
            # only when asked: the same script then also times an older
            # fer_core (PYTHONPATH) that has no such setting
            **({"steps_per_execution": steps_per_execution} if steps_per_execution != 1 else {}),
        )
        started = time.perf_counter()

        def should_stop():  # a user's Stop, pressed mid-epoch
            return stop_after is not None and time.perf_counter() - started > stop_after

        run = train(config, dataset, on_batch=on_batch, on_epoch=on_epoch, should_stop=should_stop)
        total = time.perf_counter() - started
        state = json.loads((run / "state.json").read_text())
    per_epoch = []
    for epoch in sorted(marks):
        times, batches = marks[epoch][0::2], marks[epoch][1::2]
        if len(times) >= 2 and times[-1] > times[0]:
            per_epoch.append((batches[-1] - batches[0]) * batch_size / (times[-1] - times[0]))
    steady = per_epoch[1:] or per_epoch
    result = {
        "backend": keras.backend.backend(),
        "architecture": architecture,
        "batch_size": batch_size,
        "epochs": epochs,
        "training_images": int(rows or int(np.sum(dataset.usage == "Training"))),
        "steps_per_execution": steps_per_execution,
        "images_per_second_by_epoch": [round(v, 1) for v in per_epoch],
        "images_per_second": round(float(np.median(steady)), 1) if steady else None,
        "wall_seconds": round(total, 1),
        "status": state.get("status"),
        "epochs_done": state.get("epochs_done"),
    }
    if counter is not None:
        result["compilations_by_epoch_end"] = compiles_at_epoch_end
        result["compilations_after_first_epoch"] = (
            compiles_at_epoch_end[-1] - compiles_at_epoch_end[0] if compiles_at_epoch_end else None
        )
        result["compiled_steps"] = {
            name: count for name, count in counter.names.items() if "step" in name
        }
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train_speed")
    parser.add_argument("--data", default=os.environ.get("FER2013_PATH"))
    parser.add_argument(
        "--rows", type=int, default=4096, help="training images per epoch (0: all of Training)"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--architecture", default="cnn_gru")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--label", default=None, help="key of this row in the output file")
    parser.add_argument(
        "--stop-after",
        type=float,
        default=None,
        help="ask the run to stop after this many seconds (a Stop mid-epoch)",
    )
    args = parser.parse_args(argv)
    dataset = load_training_data(args.data, args.rows or None, 0)
    result = measure(
        dataset,
        args.batch_size,
        args.epochs,
        args.rows or None,
        args.architecture,
        args.steps_per_execution,
        args.stop_after,
    )
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores"
    result["command"] = (
        "python -m bench.train_speed --batch-size "
        f"{args.batch_size} --epochs {args.epochs} --rows {args.rows}"
    )
    out = Path(args.out)
    rows = json.loads(out.read_text()) if out.is_file() else {}
    rows[args.label or f"{result['backend']}-b{args.batch_size}"] = result
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
