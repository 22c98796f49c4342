"""Batch prediction: ``FacePredictor`` for batch engines, and Ray Data for ``fer predict
--engine ray`` (the same rows as the plain CLI).

Photos are read as bytes (``ray.data.read_binary_files``), so a broken file becomes a row with
an ``error`` instead of failing the job, and ``FacePredictor`` (one model per worker, one model
call per batch) maps each batch to typed, nullable columns. Without ``RAY_ADDRESS`` a private
local Ray is started on this machine (loopback only, no dashboard, no usage statistics); with
it, the job runs on that cluster, which must see the same files (a shared file system).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from fer_core.data.image import read_image
from fer_core.errors import ConfigError, FerError
from fer_core.faces import DEFAULT_DETECTOR
from fer_core.recognition.recognizer import Recognizer
from fer_core.recognition.results import PHOTO_COLUMNS, face_rows, typed_frame
from fer_core.recognition.uncertainty import threshold_of


class FacePredictor:
    """A batch of images -> a table of per-face rows, for batch engines and the CLI.

    The model is loaded once per instance (once per worker under Ray Data), and the faces of
    all images in a batch are classified in one model call. A batch is a dict or DataFrame
    with ``path`` and either ``bytes`` (encoded files, as ``ray.data.read_binary_files``
    gives them, so that a broken file is a row with an ``error``, not a failed job) or
    ``image`` (decoded RGB arrays). The result has ``TABLE_COLUMNS`` with typed, nullable
    columns (no object cells: Arrow stores them as they are). An image without faces gives one
    row with ``faces == 0`` so that nothing disappears silently::

        ray.data.read_binary_files("photos/", include_paths=True) \\
            .map_batches(FacePredictor, batch_format="pandas", concurrency=4)
    """

    def __init__(
        self,
        model_path: str | None = None,
        preset: str = "photo",
        detector: str = DEFAULT_DETECTOR,
    ):
        self.recognizer = Recognizer(model_path, preset=preset, detector=detector)

    def __call__(self, batch):
        paths = [str(p) for p in batch["path"]]
        rows_by_index: dict[int, list[dict]] = {}
        images, where = [], []
        for index, path in enumerate(paths):
            try:
                if "bytes" in batch:
                    images.append(read_image(_named(batch["bytes"][index], path)))
                else:
                    images.append(np.asarray(batch["image"][index]))
                where.append(index)
            except FerError as exc:
                rows_by_index[index] = [{"file": path, "faces": 0, "face": None, "error": str(exc)}]
        for index, results in zip(where, self.recognizer.analyze_many(images)):
            rows_by_index[index] = face_rows(
                results, file=paths[index], uncertain_below=threshold_of(self.recognizer.model)
            )
        return as_table([row for index in range(len(paths)) for row in rows_by_index[index]])

    def rows_for(self, path: str, rgb: np.ndarray) -> list[dict]:
        return face_rows(
            self.recognizer.analyze(rgb),
            file=path,
            uncertain_below=threshold_of(self.recognizer.model),
        )


TABLE_COLUMNS = [*PHOTO_COLUMNS, "error"]


def as_table(rows: list[dict]):
    """Rows -> a DataFrame with ``TABLE_COLUMNS``: strings, nullable integers and floats."""
    return typed_frame(rows, TABLE_COLUMNS)


def _named(data, path: str):
    import io

    handle = io.BytesIO(bytes(data))
    handle.name = Path(path).name
    return handle


# Each model worker asks Ray for half a CPU: with a whole one, N workers on N cores leave no CPU
# for the tasks that read the files, and the job waits forever.
WORKER_CPUS = 0.5


def start_ray(num_cpus: int | None = None):
    """Connect to ``$RAY_ADDRESS``, or start a local Ray that stays on this machine."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never phone home
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "Ray is not installed: pip install -r requirements-ray.txt (or pip install '.[ray]')."
        ) from None
    if ray.is_initialized():
        return ray
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False, configure_logging=False)
    else:
        ray.init(
            num_cpus=num_cpus or os.cpu_count(),
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            configure_logging=False,
        )
    return ray


def predict_with_ray(
    files: list[Path],
    model: str | None,
    preset: str,
    concurrency: int,
    batch_size: int = 16,
    detector: str = DEFAULT_DETECTOR,
):
    """The rows (a DataFrame, ``predict.TABLE_COLUMNS``) for ``files``, computed on Ray Data,
    in the order of ``files``; also the seconds taken with and without Ray's start-up."""
    if concurrency < 1:
        raise ConfigError("--concurrency must be 1 or more.")
    started = time.perf_counter()
    ray = start_ray()
    ready = time.perf_counter()
    given = {str(Path(f).resolve()): str(f) for f in files}  # rows name files as given
    dataset = ray.data.read_binary_files(list(given), include_paths=True)
    table = dataset.map_batches(
        FacePredictor,
        fn_constructor_kwargs={"model_path": model, "preset": preset, "detector": detector},
        batch_format="pandas",
        batch_size=batch_size,
        concurrency=concurrency,
        num_cpus=WORKER_CPUS,
    ).to_pandas()
    table["file"] = (
        table["file"].map(lambda p: given.get(str(Path(p).resolve()), p)).astype("string")
    )
    order = {str(f): i for i, f in enumerate(files)}
    table = (
        table.assign(_order=table["file"].map(order))
        .sort_values(["_order", "face"], kind="stable", na_position="first")
        .drop(columns="_order")
        .reset_index(drop=True)
    )
    finished = time.perf_counter()
    return table, {"seconds": finished - started, "seconds_after_start": finished - ready}


__all__ = ["FacePredictor", "as_table", "TABLE_COLUMNS", "start_ray", "predict_with_ray"]
